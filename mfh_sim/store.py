"""A results directory: a manifest, then one file per finished block, written atomically.

Layout of ``sweep(..., out=DIR)`` and ``table2(..., out=DIR)``::

    DIR/manifest.json        what the sweep is: the protocol (name and version) and the package
                             version that compute it, every point in full, the grid, the seed
                             indices, the root seed, a fingerprint of all of these, and the
                             library versions and backend that created it (written once, atomically)
    DIR/blocks/gGGGG-SSSSSSSSSSSS-EEEEEEEEEEEE.HHHH....npz
                             rows S:E of static group G, one engine *block* (see
                             :mod:`mfh_sim.engine`); HHHH... is the SHA-256 of the file's bytes,
                             so a truncated or altered file is detected before it is opened
    DIR/theory.json          the theory's prediction per point (paper protocol), once finished

Every file is written to a temporary name in the same directory, flushed to disk, then renamed
(:func:`atomic_write`): a sweep killed at any instant leaves only whole files, and a re-run of the
same call recomputes only the blocks that are missing (or fail their checksum, which are set
aside as ``*.corrupt``).  A directory whose manifest describes another sweep, another protocol or
protocol version, or another package version is refused, never mixed
(:class:`ResultsMismatchError`).

Directories of results format 1 (before protocols and versions were recorded: blocks in a
``chunks/`` folder, the paper's configs under ``configs``) still load; resuming one is refused.

Nothing here unpickles: blocks are ``.npz`` archives of plain numeric arrays read with
``allow_pickle=False`` and metadata is JSON, so opening a results directory cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfh_sim.engine import Block, Group, block_cells, metric_specs, plan_groups
from mfh_sim.protocols import MetricSpec, Protocol
from mfh_sim.protocols import get as get_protocol
from mfh_sim.validation import json_default

FORMAT = "mfh_sim.results"
FORMAT_VERSION = 2
#: Results format 1 (read only): the paper's sweeps before protocols and versions were recorded.
LEGACY_FORMAT, LEGACY_FORMAT_VERSION = "mfh_sim.sweep", 1
MANIFEST = "manifest.json"
THEORY = "theory.json"
BLOCKS = "blocks"
#: The block folder of results format 1.
LEGACY_BLOCKS = "chunks"
_BLOCK_NAME = re.compile(r"^g(\d{4})-(\d{12})-(\d{12})\.([0-9a-f]{64})\.npz$")


class ResultsMismatchError(ValueError):
    """The results directory holds a different sweep (protocol, versions, points, seeds or root seed)."""


def package_version() -> str:
    """The version of this package, recorded in every manifest (resuming needs the same one)."""
    try:
        from mfh_sim._version import __version__
    except ImportError:  # until the provenance module exists, the package face holds it
        from mfh_sim import __version__
    return str(__version__)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` so that ``path`` is either absent or complete, never partial:
    write a temporary file in the same directory, flush it to disk, rename it over ``path``."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
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
    return path


_atomic_write = atomic_write  # the name used before it was shared

#: What a manifest's fingerprint covers: everything that fixes the stored numbers.
SWEEP_KEYS = ("protocol", "package_version", "settings", "points", "grid", "seeds", "root_seed")
LEGACY_SWEEP_KEYS = ("configs", "grid", "seeds", "root_seed", "common_random_numbers")


def describe(protocol: Protocol, points: Sequence[Any], grid: Sequence[dict], seeds: np.ndarray,
             root_seed: int, version: str | None = None) -> dict:
    """The part of a manifest that defines the sweep's numbers, with its fingerprint."""
    sweep = {
        "protocol": {"name": protocol.name, "version": int(protocol.version)},
        "package_version": version if version is not None else package_version(),
        "settings": json.loads(_canonical(protocol.options())),
        "points": json.loads(_canonical([protocol.describe(p) for p in points])),
        "grid": json.loads(_canonical(list(grid))),
        "seeds": [int(s) for s in seeds],
        "root_seed": int(root_seed),
    }
    return {"fingerprint": _sha256(_canonical(sweep).encode()), **sweep}


_FRESH = "choose another directory, or delete this one, to start fresh"


def _code_differences(old: dict, new: dict) -> list[str]:
    """What differs in the code that computes the numbers: protocol, its version, the package."""
    found = []
    old_protocol, new_protocol = old.get("protocol") or {}, new["protocol"]
    if old_protocol.get("name") != new_protocol["name"]:
        found.append(f"protocol {old_protocol.get('name')!r} there, {new_protocol['name']!r} here")
    elif old_protocol.get("version") != new_protocol["version"]:
        found.append(f"protocol {new_protocol['name']!r} version {old_protocol.get('version')} there, "
                     f"{new_protocol['version']} here")
    if old.get("package_version") != new["package_version"]:
        found.append(f"mfh_sim {old.get('package_version')} there, {new['package_version']} here")
    return found


def _differences(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two sweep descriptions (first few only)."""
    found = []
    old_settings, new_settings = old.get("settings") or {}, new["settings"]
    for key in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(key) != new_settings.get(key):
            found.append(f"{key}={old_settings.get(key)} there, {new_settings.get(key)} here")
    if old.get("root_seed") != new["root_seed"]:
        found.append(f"root_seed {old.get('root_seed')} there, {new['root_seed']} here")
    old_seeds, new_seeds = old.get("seeds", []), new["seeds"]
    if old_seeds != new_seeds:
        found.append(f"seeds: {len(old_seeds)} seed indices there, {len(new_seeds)} here"
                     + ("" if len(old_seeds) != len(new_seeds) else " (different indices)"))
    old_points, new_points = old.get("points", []), new["points"]
    if len(old_points) != len(new_points):
        found.append(f"{len(old_points)} grid points there, {len(new_points)} here")
    for index, (a, b) in enumerate(zip(old_points, new_points)):
        changed = [f"{k}={a.get(k)!r} there, {b.get(k)!r} here"
                   for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        if changed:
            found.append(f"point {index}: " + "; ".join(changed[:4]))
        if len(found) >= 5:
            break
    if not found and old.get("grid") != new["grid"]:
        found.append("the grid's keyword values differ")
    return found or ["the fingerprints differ"]


class ResultStore:
    """An open results directory for one sweep (see the module docstring for the layout)."""

    def __init__(self, path: Path, manifest: dict, protocol: Protocol, points: Sequence[Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.protocol = protocol
        self.points = list(points)
        self.seeds = np.asarray(manifest["seeds"], dtype=np.int64)
        self.groups: list[Group] = plan_groups(protocol, self.points)
        self.metrics: dict[str, MetricSpec] = metric_specs(protocol, self.groups)
        self.blocks_dir = self.path / (LEGACY_BLOCKS if is_legacy(manifest) else BLOCKS)
        # Only one process writes (with several hosts, process 0; the directory must be shared).
        import jax

        self.writer = jax.process_index() == 0

    @property
    def configs(self) -> list[Any]:
        """The points (the name used when the store held only the paper's configs)."""
        return self.points

    # ------------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        protocol: Protocol,
        points: Sequence[Any],
        grid: Sequence[dict],
        seeds: np.ndarray,
        root_seed: int,
        *,
        resume: bool = True,
        versions: dict[str, str] | None = None,
    ) -> ResultStore:
        """Create ``path`` for this sweep, or reopen it if it already holds the same sweep.

        Raises :class:`ResultsMismatchError` (a ``ValueError``) if ``path`` holds another sweep,
        one computed by another protocol, protocol version or package version, or one of an older
        results format, or holds this one and ``resume`` is False; ``ValueError`` if ``path`` is a
        file or a non-empty directory that is not a results directory.
        """
        path = Path(path)
        wanted = describe(protocol, points, grid, seeds, root_seed)
        if path.exists() and not path.is_dir():
            raise ValueError(f"out={str(path)!r} is not allowed: it is a file, not a directory")
        manifest_path = path / MANIFEST
        if manifest_path.exists():
            existing = read_manifest(path)
            if is_legacy(existing):
                raise ResultsMismatchError(
                    f"out={str(path)!r} was written by an older mfh_sim (results format "
                    f"{LEGACY_FORMAT_VERSION}, which did not record the protocol and package versions), "
                    f"so its blocks cannot be trusted to match this code; it can still be loaded "
                    f"(mfh_sim.results.load); {_FRESH}"
                )
            code = _code_differences(existing, wanted)
            if code:
                raise ResultsMismatchError(
                    f"out={str(path)!r} holds results computed by other code ({'; '.join(code)}); "
                    f"blocks of different code are never mixed: {_FRESH}"
                )
            if existing["fingerprint"] != wanted["fingerprint"]:
                details = "; ".join(_differences(existing, wanted))
                raise ResultsMismatchError(
                    f"out={str(path)!r} holds the results of a different sweep ({details}); {_FRESH}"
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
                        f"{path}: resuming with other library versions or backend than the sweep began "
                        f"with ({', '.join(f'{k}: {a} -> {b}' for k, (a, b) in changed.items())}); "
                        "blocks computed by each may differ in rounding", RuntimeWarning, stacklevel=3,
                    )
            return cls(path, existing, protocol, points)
        # (Hidden names are temporary files of a writer that is creating this directory now.)
        if path.is_dir() and any(p.name != BLOCKS and not p.name.startswith(".") for p in path.iterdir()):
            raise ValueError(
                f"out={str(path)!r} is not allowed: it is a non-empty directory without a {MANIFEST}"
            )
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, **wanted,
                    "versions": dict(versions or {})}
        store = cls(path, manifest, protocol, points)
        if store.writer:
            (path / BLOCKS).mkdir(parents=True, exist_ok=True)
            atomic_write(manifest_path, json.dumps(manifest, indent=1, default=json_default))
        return store

    # ------------------------------------------------------------------------ blocks
    def _block_files(self) -> list[Path]:
        return sorted(self.blocks_dir.glob("g*.npz")) if self.blocks_dir.is_dir() else []

    def completed(self, set_aside: bool = True) -> list[Block]:
        """Every stored block that passes its checksum and matches this sweep.

        A file that fails (truncated, altered, or from another sweep) is never loaded: a warning
        names it, its rows count as missing and, if ``set_aside``, it is renamed to
        ``<name>.corrupt`` so that it is not read again.
        """
        blocks = []
        for file in self._block_files():
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
        match = _BLOCK_NAME.match(file.name)
        if match is None:
            raise ValueError("not a block file name")
        group, start, stop, digest = int(match[1]), int(match[2]), int(match[3]), match[4]
        data = file.read_bytes()
        if _sha256(data) != digest:
            raise ValueError("checksum mismatch (truncated or altered file)")
        if not 0 <= group < len(self.groups) or not 0 <= start < stop <= self.groups[group].rows(self.seeds.size):
            raise ValueError(f"rows {start}:{stop} of group {group} are not part of this sweep")
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
        for name, spec in self.metrics.items():
            values = arrays[name]
            if values.shape != (stop - start,) + spec.shape or values.dtype != spec.dtype:
                raise ValueError(f"array {name!r} has shape {values.shape} and dtype {values.dtype}")
            metrics[name] = values
        return Block(group, start, stop, metrics)

    def write(self, block: Block) -> Path | None:
        """Write one finished block atomically (a no-op on processes other than the writer)."""
        if not self.writer:
            return None
        points, columns = block_cells(self.groups[block.group], self.seeds.size, block.start, block.stop)
        meta = {"fingerprint": self.manifest["fingerprint"], "group": block.group,
                "start": block.start, "stop": block.stop}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.asarray(json.dumps(meta)), point=points, seed=self.seeds[columns],
                 **{name: np.asarray(block.metrics[name], dtype=spec.dtype) for name, spec in self.metrics.items()})
        data = buffer.getvalue()
        name = f"g{block.group:04d}-{block.start:012d}-{block.stop:012d}.{_sha256(data)}.npz"
        self.blocks_dir.mkdir(parents=True, exist_ok=True)
        return atomic_write(self.blocks_dir / name, data)

    def write_theory(self, theory: dict[str, np.ndarray] | None) -> None:
        if self.writer and theory is not None:
            payload = {k: [float(x) for x in np.asarray(v)] for k, v in theory.items()}
            atomic_write(self.path / THEORY, json.dumps(payload, indent=1))

    def progress(self) -> tuple[int, int]:
        """(runs stored and valid, runs in the sweep), without renaming anything."""
        total = len(self.points) * self.seeds.size
        done = 0
        for file in self._block_files():
            match = _BLOCK_NAME.match(file.name)
            if match and _sha256(file.read_bytes()) == match[4]:
                done += int(match[3]) - int(match[2])
        return min(done, total), total

    def gather(self, *, partial: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every stored metric as (points, seeds, *shape) arrays, and the indices of the points
        whose every seed is stored.

        Raises ``ValueError`` for an unfinished directory (re-run the same call to finish it)
        unless ``partial``.  Reading changes nothing on disk.
        """
        n_points, n_seeds = len(self.points), self.seeds.size
        arrays = {name: np.zeros((n_points, n_seeds) + spec.shape, dtype=spec.dtype)
                  for name, spec in self.metrics.items()}
        have = np.zeros((n_points, n_seeds), dtype=bool)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            blocks = self.completed(set_aside=False)
        for warning in caught:
            warnings.warn(str(warning.message), RuntimeWarning, stacklevel=3)
        for block in blocks:
            points, columns = block_cells(self.groups[block.group], n_seeds, block.start, block.stop)
            for name in self.metrics:
                arrays[name][points, columns] = block.metrics[name]
            have[points, columns] = True
        complete = have.all(axis=1)
        if not complete.all() and not partial:
            raise ValueError(
                f"{str(self.path)!r} is unfinished: {int(have.sum())} of {have.size} runs are stored; "
                "re-run the same call to finish it, or load(..., partial=True) for the finished points"
            )
        return arrays, np.flatnonzero(complete)

    def theory(self) -> dict[str, np.ndarray] | None:
        """The stored theory per point (all points), or None."""
        file = self.path / THEORY
        if not file.is_file():
            return None
        return {k: np.asarray(v, dtype=np.float64) for k, v in json.loads(file.read_text()).items()}


def is_legacy(manifest: dict) -> bool:
    """True for a manifest of results format 1 (read only)."""
    return manifest.get("format") == LEGACY_FORMAT


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
    formats = {(FORMAT, FORMAT_VERSION): SWEEP_KEYS, (LEGACY_FORMAT, LEGACY_FORMAT_VERSION): LEGACY_SWEEP_KEYS}
    keys = formats.get((manifest.get("format"), manifest.get("format_version")))
    if keys is None:
        raise ValueError(
            f"{file}: format {manifest.get('format')!r} version {manifest.get('format_version')!r} is not "
            f"supported (expected {FORMAT!r} version {FORMAT_VERSION})"
        )
    sweep = {k: manifest.get(k) for k in keys}
    if _sha256(_canonical(sweep).encode()) != manifest.get("fingerprint"):
        raise ValueError(f"{file}: the manifest does not match its fingerprint (edited or corrupted)")
    return manifest


def open_existing(path: str | os.PathLike) -> ResultStore:
    """Open results directory ``path`` for reading (its protocol and points rebuilt from the manifest)."""
    manifest = read_manifest(path)
    if is_legacy(manifest):
        # Format 1 held only the paper's sweeps.
        protocol = get_protocol("paper", {"common_random_numbers": bool(manifest["common_random_numbers"])})
        points = [protocol.point_from_dict(c) for c in manifest["configs"]]
    else:
        protocol = get_protocol(manifest["protocol"]["name"], manifest.get("settings"))
        if int(manifest["protocol"]["version"]) != protocol.version:
            warnings.warn(
                f"{path}: written by protocol {protocol.name!r} version {manifest['protocol']['version']}, "
                f"this code has version {protocol.version}; the stored numbers are read as they are",
                RuntimeWarning, stacklevel=2,
            )
        points = [protocol.point_from_dict(p) for p in manifest["points"]]
    return ResultStore(Path(path), manifest, protocol, points)


def load(path: str | os.PathLike, *, partial: bool = False):
    """The result stored in results directory ``path``: a :class:`~mfh_sim.results.SweepResult`
    (paper protocol) or :class:`~mfh_sim.results.Table2Result` (Table 2); see
    :func:`mfh_sim.results.load`, which also opens saved ``.npz`` files.

    An unfinished directory raises ``ValueError`` (re-run the same call to finish it), unless
    ``partial`` is True: then only the points whose every seed is stored are returned.  Never
    unpickles anything.
    """
    from mfh_sim.results import from_store

    return from_store(open_existing(path), partial=partial)
