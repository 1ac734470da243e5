"""The protocol interface: what the engine needs to know about an experiment, and nothing more.

A *protocol* is one kind of simulated experiment (the paper's teacher / no-KD / KD triple, the
Table 2 modality-general teacher, ...).  Its runs are described by *points* (a
:class:`~mfh_sim.config.SimConfig`, a Table 2 row, ...) and seed indices.  The engine
(:mod:`mfh_sim.engine`) runs any protocol; it never imports one.

A :class:`Protocol` is a NamedTuple of plain values and pure functions, in the style of optax's
``GradientTransformation``: a protocol module defines its functions at module level and returns
them bundled by a factory (``paper_protocol(common_random_numbers=True)``), which is cached so
that equal settings give the very same (hashable) protocol and the engine's compiled programs are
reused.  What the engine asks of it:

* ``static_of(point)``: the hashable part of a point that fixes the compiled program (shapes,
  step counts, model kinds); points with equal static parts share one program;
* ``inputs_of(point)``: the traced inputs of a point's runs, a pytree of numpy arrays (the
  engine stacks them along a leading row axis);
* ``identity_of(point)``: the 32-bit integer behind the keys: run (point p, seed s) uses
  ``fold_in(fold_in(PRNGKey(root_seed), identity_of(p)), s)``;
* ``make_run(static)``: PureJaxRL's ``make_train``: a pure ``run(key, inputs) -> metrics``
  (a NamedTuple or mapping of arrays) for the points sharing ``static``;
* ``metrics(static)``: each metric's dtype and per-run shape (``()`` for a scalar);
* ``bytes_per_run(static)``: device memory one run needs while it executes (sizes chunks);
* ``describe(point)`` / ``point_from_dict``: the point as JSON and back (the results store's
  manifest); ``settings``: protocol-wide options that change numbers (the factory's keywords);
* ``result``: the result type, ``"module:Class"``, whose ``from_run`` builds a result from the
  engine's arrays (:func:`mfh_sim.engine.run`, :func:`mfh_sim.results.load`);
* ``runs_concurrently(static)``: whether chunks may execute in several threads at once;
* ``share_of(point)`` and ``make_pack_run(static, size)`` (optional): trainings that points have
  in common.  Points of one program (equal ``static_of`` and ``identity_of``) whose ``share_of``
  is equal and not None train some models on identical inputs (the paper's no-KD student across
  a grid over the teacher's view or the KD knobs); the engine runs them together as one *pack*
  through ``make_pack_run(static, size, layout)``, a pure ``run(key, inputs) -> metrics`` whose
  inputs and metrics have a leading (size,) axis and which trains each shared model once;
  ``pack_layout(points)`` (optional) says which of a pack's points share more (the paper's
  teacher, across KD-knob axes), a hashable fixed at compile time.  A pack must give every point
  exactly, bit for bit, what ``make_run`` gives it alone.

``name`` and ``version`` identify the protocol's arithmetic: bump ``version`` whenever a change
alters any number a protocol returns, so that a results directory written before the change is
never resumed after it (:mod:`mfh_sim.store`).

Protocols are found by name through :data:`REGISTRY` (a results directory records the name and
the settings); the core (this package included) never imports the engine, the store, results,
plots, commands or the package face.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["REGISTRY", "MetricSpec", "Protocol", "get", "names"]


class MetricSpec(NamedTuple):
    """One metric of a run: its numpy dtype and its per-run shape (``()`` for a scalar)."""

    dtype: Any
    shape: tuple[int, ...] = ()


def _always(static: Hashable) -> bool:
    return True


def _shares_nothing(point: Any) -> None:
    return None


def _no_layout(points: Any) -> None:
    return None


class Protocol(NamedTuple):
    """One kind of experiment, as the engine and the store see it (see the module docstring).

    Build one with its module's cached factory, never by hand at each call: the engine caches
    compiled programs by ``(protocol, static, devices)``, and two protocols holding different
    function objects are different keys.
    """

    #: Short unique name, recorded in results directories (a key of :data:`REGISTRY`).
    name: str
    #: Bumped whenever the protocol's numbers change.
    version: int
    static_of: Callable[[Any], Hashable]
    inputs_of: Callable[[Any], Any]
    identity_of: Callable[[Any], int]
    make_run: Callable[[Hashable], Callable[[Any, Any], Any]]
    metrics: Callable[[Hashable], dict[str, MetricSpec]]
    bytes_per_run: Callable[[Hashable], int]
    describe: Callable[[Any], dict[str, Any]]
    point_from_dict: Callable[[Mapping[str, Any]], Any]
    #: The result type, ``"module:Class"``; the class has ``from_run`` (see :mod:`mfh_sim.results`).
    result: str
    #: Protocol-wide options that change numbers, as sorted (key, value) pairs (hashable); the
    #: factory's keywords, recorded in a results manifest and passed back by :func:`get`.
    settings: tuple[tuple[str, Any], ...] = ()
    #: False for programs that call LAPACK (a Cholesky factorisation, say) inside a loop: on JAX's
    #: CPU runtime (jaxlib 0.10) two such executions in flight together deadlock, so the engine
    #: then runs every chunk in one thread (XLA still uses every core within a chunk).
    runs_concurrently: Callable[[Hashable], bool] = _always
    #: What a point's runs share with other points' (hashable), or None: points of one program and
    #: key identity with equal values run as one pack (``make_pack_run``).
    share_of: Callable[[Any], Hashable | None] = _shares_nothing
    #: ``make_pack_run(static, size, layout)``: a pure ``run(key, inputs) -> metrics`` over
    #: ``size`` points of equal ``share_of``, inputs and metrics with a leading (size,) axis,
    #: bit-identical to ``make_run``'s runs of the points one by one; None where the protocol has
    #: no packs.
    make_pack_run: Callable[[Hashable, int, Hashable], Callable[[Any, Any], Any]] | None = None
    #: ``pack_layout(points)``: the ``layout`` of a pack of these points (hashable, fixed when
    #: the pack's program is compiled; packs of equal layouts share a program).
    pack_layout: Callable[[Any], Hashable] = _no_layout

    def options(self) -> dict[str, Any]:
        """``settings`` as a dict (what :func:`get` takes back)."""
        return dict(self.settings)


def as_metric_dict(metrics: Any) -> dict[str, Any]:
    """A run's metrics (NamedTuple or mapping) as a dict of arrays."""
    if hasattr(metrics, "_asdict"):
        return dict(metrics._asdict())
    return dict(metrics)


def metric_specs(protocol: Protocol, statics: Iterable[Hashable]) -> dict[str, MetricSpec]:
    """The metrics of a sweep whose points have the static parts ``statics``: every one must give
    the same names, dtypes and shapes (they are stacked into one (points, seeds, *shape) array
    per metric)."""
    specs = None
    for static in statics:
        these = {name: MetricSpec(np.dtype(spec.dtype), tuple(spec.shape))
                 for name, spec in protocol.metrics(static).items()}
        if specs is None:
            specs = these
        elif these != specs:
            raise ValueError(
                f"the points of this {protocol.name!r} sweep return metrics of different shapes "
                f"({specs} and {these}): run them as separate sweeps"
            )
    return specs or {}


def metric_dtypes(specs: Mapping[str, MetricSpec]) -> dict[str, Any]:
    """``{name: dtype}`` of a protocol's metric specs."""
    return {name: np.dtype(spec.dtype) for name, spec in specs.items()}


#: Every protocol a results directory can name: name -> ``"module:factory"``, the factory taking
#: the manifest's settings as keywords.  A protocol whose points cannot be rebuilt from a manifest
#: (the real-data protocol: its points hold the data) is listed in :data:`NOT_REOPENABLE` instead.
REGISTRY: dict[str, str] = {
    "paper": "mfh_sim.protocols.paper:paper_protocol",
    "table2": "mfh_sim.protocols.table2:table2_protocol",
}
NOT_REOPENABLE: dict[str, str] = {
    "real": "its points hold the data arrays, which a results directory does not keep: run `mfh-sim real` "
            "again with the same --out, which reads these runs back",
}


def names() -> tuple[str, ...]:
    """Names of the protocols a results directory can be reopened with."""
    return tuple(REGISTRY)


def resolve(reference: str) -> Any:
    """The object a ``"module:attribute"`` reference names (imported on first use)."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def get(name: str, settings: Mapping[str, Any] | None = None) -> Protocol:
    """The protocol called ``name`` with the manifest ``settings`` (see :attr:`Protocol.settings`)."""
    if name in NOT_REOPENABLE:
        raise ValueError(f"protocol={name!r} cannot be reopened from its results directory: {NOT_REOPENABLE[name]}")
    if name not in REGISTRY:
        raise ValueError(f"protocol={name!r} is not known: use one of {names()}")
    return resolve(REGISTRY[name])(**dict(settings or {}))
