"""A sweep's results directory: a manifest, then one file per finished block, written atomically.

Layout of ``sweep(..., out=DIR)``::

    DIR/manifest.json        what the sweep is: every config in full, the grid, the seed indices,
                             the root seed, a fingerprint of all of these, and the versions and
                             backend that created it (written once, atomically)
    DIR/chunks/gGGGG-SSSSSSSSSSSS-EEEEEEEEEEEE.HHHH....npz
                             rows S:E of static group G (see :mod:`mfh_sim.engine`); HHHH... is
                             the SHA-256 of the file's bytes, so a truncated or altered file is
                             detected before it is opened
    DIR/theory.json          the theory's prediction per point, once the sweep has finished

Every file is written to a temporary name in the same directory, flushed to disk, then renamed:
a sweep killed at any instant leaves only whole files, and a re-run of the same call recomputes
only the blocks that are missing (or fail their checksum, which are set aside as ``*.corrupt``).
A directory whose manifest describes another sweep is refused, never mixed.

Nothing here unpickles: chunks are ``.npz`` archives of plain numeric arrays read with
``allow_pickle=False`` and metadata is JSON, so opening a results directory cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mfh_sim.config import SimConfig
from mfh_sim.engine import METRIC_DTYPES, Block, Group, block_cells, plan_groups
from mfh_sim.validation import json_default

FORMAT = "mfh_sim.sweep"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
THEORY = "theory.json"
CHUNKS = "chunks"
_CHUNK_NAME = re.compile(r"^g(\d{4})-(\d{12})-(\d{12})\.([0-9a-f]{64})\.npz$")


class ResultsMismatchError(ValueError):
    """The results directory holds a different sweep (config, grid, seeds or root seed)."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete, never partial."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass


SWEEP_KEYS = ("configs", "grid", "seeds", "root_seed", "common_random_numbers")


def describe(configs: Sequence[SimConfig], grid: Sequence[dict], seeds: np.ndarray, root_seed: int,
             common_random_numbers: bool = True) -> dict:
    """The part of a manifest that defines the sweep's numbers (and its fingerprint)."""
    sweep = {
        "configs": [c.as_dict() for c in configs],
        "grid": json.loads(_canonical(list(grid))),
        "seeds": [int(s) for s in seeds],
        "root_seed": int(root_seed),
        "common_random_numbers": bool(common_random_numbers),
    }
    return {"fingerprint": _sha256(_canonical(sweep).encode()), **sweep}


def _differences(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two sweep descriptions (first few only)."""
    found = []
    if old.get("common_random_numbers") != new["common_random_numbers"]:
        found.append(f"common_random_numbers={old.get('common_random_numbers')} there, "
                     f"{new['common_random_numbers']} here")
    if old.get("root_seed") != new["root_seed"]:
        found.append(f"root_seed {old.get('root_seed')} there, {new['root_seed']} here")
    old_seeds, new_seeds = old.get("seeds", []), new["seeds"]
    if old_seeds != new_seeds:
        found.append(f"seeds: {len(old_seeds)} seed indices there, {len(new_seeds)} here"
                     + ("" if len(old_seeds) != len(new_seeds) else " (different indices)"))
    old_configs, new_configs = old.get("configs", []), new["configs"]
    if len(old_configs) != len(new_configs):
        found.append(f"{len(old_configs)} grid points there, {len(new_configs)} here")
    for index, (a, b) in enumerate(zip(old_configs, new_configs)):
        changed = [f"{k}={a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if changed:
            found.append(f"point {index}: " + "; ".join(changed[:4]))
        if len(found) >= 5:
            break
    if not found and old.get("grid") != new["grid"]:
        found.append("the grid's keyword values differ")
    return found or ["the fingerprints differ"]


class ResultStore:
    """An open results directory for one sweep (see the module docstring for the layout)."""

    def __init__(self, path: Path, manifest: dict, configs: Sequence[SimConfig]):
        self.path = Path(path)
        self.manifest = manifest
        self.configs = list(configs)
        self.seeds = np.asarray(manifest["seeds"], dtype=np.int64)
        self.groups: list[Group] = plan_groups(self.configs, bool(manifest["common_random_numbers"]))
        # Only one process writes (with several hosts, process 0; the directory must be shared).
        import jax

        self.writer = jax.process_index() == 0

    # ------------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        configs: Sequence[SimConfig],
        grid: Sequence[dict],
        seeds: np.ndarray,
        root_seed: int,
        *,
        resume: bool = True,
        versions: dict[str, str] | None = None,
        common_random_numbers: bool = True,
    ) -> "ResultStore":
        """Create ``path`` for this sweep, or reopen it if it already holds the same sweep.

        Raises :class:`ResultsMismatchError` (a ``ValueError``) if ``path`` holds another sweep,
        or holds this one and ``resume`` is False; ``ValueError`` if ``path`` is a file or a
        non-empty directory that is not a results directory.
        """
        path = Path(path)
        wanted = describe(configs, grid, seeds, root_seed, common_random_numbers)
        if path.exists() and not path.is_dir():
            raise ValueError(f"out={str(path)!r} is not allowed: it is a file, not a directory")
        manifest_path = path / MANIFEST
        if manifest_path.exists():
            existing = read_manifest(path)
            if existing["fingerprint"] != wanted["fingerprint"]:
                details = "; ".join(_differences(existing, wanted))
                raise ResultsMismatchError(
                    f"out={str(path)!r} holds the results of a different sweep ({details}); "
                    "choose another directory or delete this one"
                )
            if not resume:
                raise ResultsMismatchError(
                    f"out={str(path)!r} already holds this sweep's results and resume=False: "
                    "pass resume=True to finish it, or choose another directory"
                )
            if versions is not None:
                before = existing.get("versions", {})
                changed = {k: (before.get(k), v) for k, v in versions.items() if before.get(k) != v}
                if changed:
                    warnings.warn(
                        f"{path}: resuming with other versions or backend than the sweep began with "
                        f"({', '.join(f'{k}: {a} -> {b}' for k, (a, b) in changed.items())}); blocks "
                        "computed by each may differ in rounding", RuntimeWarning, stacklevel=3,
                    )
            return cls(path, existing, configs)
        # (Hidden names are temporary files of a writer that is creating this directory now.)
        if path.is_dir() and any(p.name != CHUNKS and not p.name.startswith(".") for p in path.iterdir()):
            raise ValueError(
                f"out={str(path)!r} is not allowed: it is a non-empty directory without a {MANIFEST}"
            )
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **wanted,
                    "versions": dict(versions or {})}
        store = cls(path, manifest, configs)
        if store.writer:
            (path / CHUNKS).mkdir(parents=True, exist_ok=True)
            _atomic_write(manifest_path, json.dumps(manifest, indent=1, default=json_default).encode())
        return store

    # ------------------------------------------------------------------------ blocks
    def _chunk_files(self) -> list[Path]:
        directory = self.path / CHUNKS
        return sorted(directory.glob("g*.npz")) if directory.is_dir() else []

    def completed(self, set_aside: bool = True) -> list[Block]:
        """Every stored block that passes its checksum and matches this sweep.

        A file that fails (truncated, altered, or from another sweep) is never loaded: a warning
        names it, its rows count as missing and, if ``set_aside``, it is renamed to
        ``<name>.corrupt`` so that it is not read again.
        """
        blocks = []
        for file in self._chunk_files():
            try:
                blocks.append(self._read_block(file))
            except (ValueError, OSError, KeyError, EOFError) as error:
                warnings.warn(f"{file}: {error}; the block will be recomputed", RuntimeWarning, stacklevel=2)
                if self.writer and set_aside:
                    try:
                        os.replace(file, file.with_name(file.name + ".corrupt"))
                    except OSError:
                        pass
        return blocks

    def _read_block(self, file: Path) -> Block:
        match = _CHUNK_NAME.match(file.name)
        if match is None:
            raise ValueError("not a chunk file name")
        group, start, stop, digest = int(match[1]), int(match[2]), int(match[3]), match[4]
        data = file.read_bytes()
        if _sha256(data) != digest:
            raise ValueError("checksum mismatch (truncated or altered file)")
        if not 0 <= group < len(self.groups) or not 0 <= start < stop <= self.groups[group].rows(self.seeds.size):
            raise ValueError(f"rows {start}:{stop} of group {group} are not part of this sweep")
        import io

        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            arrays = {name: archive[name] for name in archive.files if name != "meta"}
        if meta.get("fingerprint") != self.manifest["fingerprint"]:
            raise ValueError("the block belongs to another sweep")
        if (meta.get("group"), meta.get("start"), meta.get("stop")) != (group, start, stop):
            raise ValueError("the block's contents do not match its name")
        points, columns = block_cells(self.groups[group], self.seeds.size, start, stop)
        if not (np.array_equal(arrays["point"], points) and np.array_equal(arrays["seed"], self.seeds[columns])):
            raise ValueError("the block's rows do not match this sweep's grid and seeds")
        metrics = {}
        for name, dtype in METRIC_DTYPES.items():
            values = arrays[name]
            if values.shape != (stop - start,) or values.dtype != dtype:
                raise ValueError(f"array {name!r} has shape {values.shape} and dtype {values.dtype}")
            metrics[name] = values
        return Block(group, start, stop, metrics)

    def write(self, block: Block) -> Path | None:
        """Write one finished block atomically (a no-op on processes other than the writer)."""
        if not self.writer:
            return None
        import io

        points, columns = block_cells(self.groups[block.group], self.seeds.size, block.start, block.stop)
        meta = {"fingerprint": self.manifest["fingerprint"], "group": block.group,
                "start": block.start, "stop": block.stop}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.asarray(json.dumps(meta)), point=points, seed=self.seeds[columns],
                 **{name: np.asarray(block.metrics[name], dtype=dtype) for name, dtype in METRIC_DTYPES.items()})
        data = buffer.getvalue()
        name = f"g{block.group:04d}-{block.start:012d}-{block.stop:012d}.{_sha256(data)}.npz"
        path = self.path / CHUNKS / name
        _atomic_write(path, data)
        return path

    def write_theory(self, theory: dict[str, np.ndarray] | None) -> None:
        if self.writer and theory is not None:
            payload = {k: [float(x) for x in np.asarray(v)] for k, v in theory.items()}
            _atomic_write(self.path / THEORY, json.dumps(payload, indent=1).encode())

    def progress(self) -> tuple[int, int]:
        """(runs stored and valid, runs in the sweep), without renaming anything."""
        total = len(self.configs) * self.seeds.size
        done = 0
        for file in self._chunk_files():
            match = _CHUNK_NAME.match(file.name)
            if match and _sha256(file.read_bytes()) == match[4]:
                done += int(match[3]) - int(match[2])
        return min(done, total), total


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of results directory ``path`` (validated JSON; nothing is executed)."""
    path = Path(path)
    file = path / MANIFEST
    if not file.is_file():
        raise ValueError(f"{str(path)!r} is not a results directory: it has no {MANIFEST}")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{file} is not valid JSON: {error}") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{file}: format {manifest.get('format')!r} version {manifest.get('format_version')!r} is not "
            f"supported (expected {FORMAT!r} version {FORMAT_VERSION})"
        )
    sweep = {k: manifest.get(k) for k in SWEEP_KEYS}
    if _sha256(_canonical(sweep).encode()) != manifest.get("fingerprint"):
        raise ValueError(f"{file}: the manifest does not match its fingerprint (edited or corrupted)")
    return manifest


def open_existing(path: str | os.PathLike) -> ResultStore:
    """Open results directory ``path`` for reading (its configs rebuilt from the manifest)."""
    manifest = read_manifest(path)
    configs = [SimConfig.from_dict(c) for c in manifest["configs"]]
    return ResultStore(Path(path), manifest, configs)


def load(path: str | os.PathLike, *, partial: bool = False):
    """The :class:`~mfh_sim.results.SweepResult` stored in results directory ``path``.

    An unfinished directory raises ``ValueError`` (re-run the same ``sweep`` call to finish it),
    unless ``partial`` is True: then only the grid points whose every seed is stored are
    returned.  Never unpickles anything.
    """
    from mfh_sim.results import SweepResult

    store = open_existing(path)
    n_points, n_seeds = len(store.configs), store.seeds.size
    arrays = {name: np.zeros((n_points, n_seeds), dtype=dtype) for name, dtype in METRIC_DTYPES.items()}
    have = np.zeros((n_points, n_seeds), dtype=bool)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocks = store.completed(set_aside=False)  # reading changes nothing on disk
    for warning in caught:
        warnings.warn(str(warning.message), RuntimeWarning, stacklevel=2)
    for block in blocks:
        points, columns = block_cells(store.groups[block.group], n_seeds, block.start, block.stop)
        for name in METRIC_DTYPES:
            arrays[name][points, columns] = block.metrics[name]
        have[points, columns] = True
    complete = have.all(axis=1)
    if not complete.all() and not partial:
        raise ValueError(
            f"{str(path)!r} is unfinished: {int(have.sum())} of {have.size} runs are stored; re-run "
            "the same sweep call to finish it, or load(..., partial=True) for the finished points"
        )
    keep = np.flatnonzero(complete)
    theory = None
    theory_file = Path(path) / THEORY
    if theory_file.is_file():
        stored = json.loads(theory_file.read_text())
        theory = {k: np.asarray(v, dtype=np.float64)[keep] for k, v in stored.items()}
    return SweepResult(
        configs=[store.configs[i] for i in keep],
        grid=[store.manifest["grid"][i] for i in keep],
        arrays={name: values[keep] for name, values in arrays.items()},
        seeds=store.seeds,
        root_seed=int(store.manifest["root_seed"]),
        theory=theory,
        versions=store.manifest.get("versions", {}),
    )
