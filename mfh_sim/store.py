"""A results directory: a manifest, then one file per finished block, written atomically.

Layout of ``sweep(..., out=DIR)`` and ``table2(..., out=DIR)``::

    DIR/manifest.json        what the sweep is: the protocol (name and version) and the package
                             version that compute it, every point in full, the grid, the seed
                             indices, the root seed, a fingerprint of all of these, and the
                             library versions and backend that created it (written atomically)
    DIR/blocks/gGGGG-SSSSSSSSSSSS-EEEEEEEEEEEE.HHHH....npz
                             one engine *block* (rows S:E of static group G when it was computed,
                             see :mod:`mfh_sim.engine`): the (point, seed index) of each of its
                             runs and their metrics; HHHH... is the SHA-256 of the file's bytes,
                             so a truncated or altered file is detected before it is opened
    DIR/theory.json          the theory's prediction per point (paper protocol), once finished

Every file is written to a temporary name in the same directory, flushed to disk, then renamed
(:func:`mfh_sim.files.atomic_write`): a sweep killed at any instant leaves only whole files, and a
re-run of the same call recomputes only the runs that are missing (or whose block fails its
checksum: set aside as ``*.corrupt``).  A directory whose manifest describes another sweep,
another protocol or protocol version, or another package version is refused, never mixed
(:class:`ResultsMismatchError`).

**More seeds.**  A block names each run by its point and its *seed index*, and a run's key comes
from its seed index alone, so the same sweep asked with more seeds (``seeds=20`` on a directory of
10) computes only the new seeds: the manifest's seeds become the union, and every run is
bit-identical to a fresh run with all the seeds.  Blocks carry the fingerprint of the sweep's
*design* (everything but the seeds), so they stay valid when the seeds grow.

Directories of results formats 1 and 2 (format 1: before protocols and versions were recorded,
blocks in a ``chunks/`` folder; format 2: blocks tied to the seed list) still load; resuming or
extending one is refused.

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
from typing import Any, NamedTuple

import numpy as np

from mfh_sim.files import atomic_write
from mfh_sim.protocols import MetricSpec, Protocol, metric_specs
from mfh_sim.protocols import get as get_protocol
from mfh_sim.validation import json_default

FORMAT = "mfh_sim.results"
FORMAT_VERSION = 3
#: Read-only results formats: 2 (blocks tied to the seed list) and 1 (the paper's sweeps before
#: protocols and versions were recorded).
FORMAT_2 = (FORMAT, 2)
LEGACY_FORMAT, LEGACY_FORMAT_VERSION = "mfh_sim.sweep", 1
MANIFEST = "manifest.json"
THEORY = "theory.json"
BLOCKS = "blocks"
#: The block folder of results format 1.
LEGACY_BLOCKS = "chunks"
_BLOCK_NAME = re.compile(r"^g(\d{4})-(\d{12})-(\d{12})\.([0-9a-f]{64})\.npz$")


class ResultsMismatchError(ValueError):
    """The results directory holds a different sweep (protocol, versions, points, seeds or root seed)."""


class Cells(NamedTuple):
    """Runs already computed: run i is (point ``points[i]``, seed column ``columns[i]``) of the
    sweep being run, with ``metrics`` (name -> (len, *per-run shape)); what
    :func:`mfh_sim.engine.execute` takes as ``completed``."""

    points: np.ndarray
    columns: np.ndarray
    metrics: dict[str, np.ndarray]


def package_version() -> str:
    """The version of this package, recorded in every manifest (resuming needs the same one)."""
    from mfh_sim._version import __version__

    return str(__version__)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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


def design_fingerprint(manifest: dict) -> str:
    """What a block of this sweep carries: the fingerprint of the sweep without its seeds (format
    3), so that blocks stay valid when the seeds grow; the manifest's own fingerprint in the
    read-only formats 1 and 2."""
    if (manifest.get("format", FORMAT), manifest.get("format_version", FORMAT_VERSION)) != (FORMAT, FORMAT_VERSION):
        return manifest["fingerprint"]
    return _sha256(_canonical({k: manifest.get(k) for k in SWEEP_KEYS if k != "seeds"}).encode())


def merged_seeds(stored: Sequence[int], wanted: Sequence[int]) -> list[int]:
    """The stored seed indices, then those of ``wanted`` not among them (in ``wanted``'s order)."""
    known = set(int(s) for s in stored)
    return [int(s) for s in stored] + [int(s) for s in wanted if int(s) not in known]


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
    """An open results directory for one sweep (see the module docstring for the layout).

    ``seeds`` are the manifest's seed indices (every seed any call asked for); ``metrics`` each
    metric's dtype and per-run shape.
    """

    def __init__(self, path: Path, manifest: dict, protocol: Protocol, points: Sequence[Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.protocol = protocol
        self.points = list(points)
        self.seeds = np.asarray(manifest["seeds"], dtype=np.int64)
        statics = dict.fromkeys(protocol.static_of(p) for p in self.points)
        self.metrics: dict[str, MetricSpec] = metric_specs(protocol, statics)
        self.blocks_dir = self.path / (LEGACY_BLOCKS if is_legacy(manifest) else BLOCKS)
        self.fingerprint = design_fingerprint(manifest)
        # Only one process writes (with several hosts, process 0; the directory must be shared).
        self.writer = jax_writer()

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

        The same sweep with other seed indices is the same sweep (see "More seeds" in the module
        docstring): the manifest's seeds become the union.  Raises :class:`ResultsMismatchError`
        (a ``ValueError``) if ``path`` holds another sweep, one computed by another protocol,
        protocol version or package version, or one of an older results format, or holds this one
        and ``resume`` is False; ``ValueError`` if ``path`` is a file or a non-empty directory that
        is not a results directory.
        """
        path = Path(path)
        wanted = describe(protocol, points, grid, seeds, root_seed)
        if path.exists() and not path.is_dir():
            raise ValueError(f"out={str(path)!r} is not allowed: it is a file, not a directory")
        manifest_path = path / MANIFEST
        if manifest_path.exists():
            existing = read_manifest(path)
            if (existing.get("format"), existing.get("format_version")) != (FORMAT, FORMAT_VERSION):
                raise ResultsMismatchError(
                    f"out={str(path)!r} was written by an older mfh_sim (results format "
                    f"{existing.get('format_version')}), so its blocks cannot be trusted to match this code; it "
                    f"can still be loaded (mfh_sim.load); {_FRESH}"
                )
            code = _code_differences(existing, wanted)
            if code:
                raise ResultsMismatchError(
                    f"out={str(path)!r} holds results computed by other code ({'; '.join(code)}); "
                    f"blocks of different code are never mixed: {_FRESH}"
                )
            seeds_there = merged_seeds(existing["seeds"], [])
            union = merged_seeds(seeds_there, wanted["seeds"])
            if design_fingerprint(existing) != design_fingerprint(wanted):
                details = "; ".join(_differences(existing, {**wanted, "seeds": existing["seeds"]}))
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
            manifest = existing
            if union != seeds_there:
                # More seeds: the manifest now describes all of them (its blocks stay valid).
                grown = describe(protocol, points, grid, np.asarray(union), root_seed, existing["package_version"])
                manifest = {**existing, **grown}
                if jax_writer():
                    atomic_write(manifest_path, json.dumps(manifest, indent=1, default=json_default))
            return cls(path, manifest, protocol, points)
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

    def completed(self, seeds: Sequence[int] | None = None, set_aside: bool = True) -> list[Cells]:
        """Every stored run of the seed indices ``seeds`` (default: the manifest's), as
        :class:`Cells` whose columns index ``seeds``: what :func:`mfh_sim.engine.execute` takes as
        ``completed``.

        A block file that fails (truncated, altered, or from another sweep) is never loaded: a
        warning names it, its runs count as missing and, if ``set_aside``, it is renamed to
        ``<name>.corrupt`` so that it is not read again.
        """
        seeds = self.seeds if seeds is None else np.asarray(seeds, dtype=np.int64)
        column_of = {int(s): i for i, s in enumerate(seeds)}
        found = []
        for file in self._block_files():
            try:
                points, seed_values, metrics = self._read_block(file)
            except (ValueError, OSError, KeyError, EOFError) as error:
                warnings.warn(f"{file}: {error}; the block will be recomputed", RuntimeWarning, stacklevel=2)
                if self.writer and set_aside:
                    try:
                        os.replace(file, file.with_name(file.name + ".corrupt"))
                    except OSError:
                        pass
                continue
            columns = np.asarray([column_of.get(int(s), -1) for s in seed_values], dtype=np.int64)
            keep = columns >= 0
            if keep.any():
                found.append(Cells(points[keep], columns[keep], {k: v[keep] for k, v in metrics.items()}))
        return found

    def _read_block(self, file: Path) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(point indices, seed indices, metrics) of one block file, every check passed."""
        match = _BLOCK_NAME.match(file.name)
        if match is None:
            raise ValueError("not a block file name")
        data = file.read_bytes()
        if _sha256(data) != match[4]:
            raise ValueError("checksum mismatch (truncated or altered file)")
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            arrays = {name: archive[name] for name in archive.files if name != "meta"}
        if meta.get("fingerprint") != self.fingerprint:
            raise ValueError("the block belongs to another sweep")
        points, seeds = arrays["point"], arrays["seed"]
        rows = int(match[3]) - int(match[2])
        if (points.shape != (rows,) or seeds.shape != (rows,) or (points < 0).any()
                or (points >= len(self.points)).any()):
            raise ValueError("the block's runs are not runs of this sweep")
        metrics = {}
        for name, spec in self.metrics.items():
            values = arrays[name]
            if values.shape != (rows,) + spec.shape or values.dtype != spec.dtype:
                raise ValueError(f"array {name!r} has shape {values.shape} and dtype {values.dtype}")
            metrics[name] = values
        return points.astype(np.int64), seeds.astype(np.int64), metrics

    def write(self, block) -> Path | None:
        """Write one finished :class:`mfh_sim.engine.Block` atomically, its runs named by point and
        seed index (a no-op on processes other than the writer)."""
        if not self.writer:
            return None
        meta = {"fingerprint": self.fingerprint, "group": block.group, "start": block.start, "stop": block.stop}
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.asarray(json.dumps(meta)), point=np.asarray(block.points, np.int64),
                 seed=np.asarray(block.seeds, np.int64),
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
            cells = self.completed(set_aside=False)
        for warning in caught:
            warnings.warn(str(warning.message), RuntimeWarning, stacklevel=3)
        for known in cells:
            for name in self.metrics:
                arrays[name][known.points, known.columns] = known.metrics[name]
            have[known.points, known.columns] = True
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


def jax_writer() -> bool:
    """Whether this process writes (process 0 of a multi-host run)."""
    import jax

    return jax.process_index() == 0


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
    formats = {(FORMAT, FORMAT_VERSION): SWEEP_KEYS, FORMAT_2: SWEEP_KEYS,
               (LEGACY_FORMAT, LEGACY_FORMAT_VERSION): LEGACY_SWEEP_KEYS}
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
