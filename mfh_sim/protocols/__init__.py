"""The protocol interface: what the engine needs to know about an experiment, and nothing more.

A *protocol* is one kind of simulated experiment (the paper's teacher / no-KD / KD triple, the
Table 2 modality-general teacher, ...).  Its runs are described by *points* (a
:class:`~mfh_sim.config.SimConfig`, a Table 2 row, ...) and seed indices.  The engine
(:func:`mfh_sim.engine.execute`) runs any protocol; it never imports one.  What it asks:

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
  manifest), and ``settings()``: protocol-wide options that change numbers.

``name`` and ``version`` identify the protocol's arithmetic: bump ``version`` whenever a change
alters any number a protocol returns, so that a results directory written before the change is
never resumed after it (:mod:`mfh_sim.store`).

The core (this package included) never imports the engine, the store, results, plots, commands
or the package face.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Hashable, Mapping
from typing import Any, ClassVar, NamedTuple

import numpy as np

__all__ = ["MetricSpec", "Protocol", "get", "names"]


class MetricSpec(NamedTuple):
    """One metric of a run: its numpy dtype and its per-run shape (``()`` for a scalar)."""

    dtype: Any
    shape: tuple[int, ...] = ()


class Protocol(abc.ABC):
    """Abstract protocol (see the module docstring).  Instances must be hashable (the engine caches
    compiled programs by ``(protocol, static, devices)``): make them frozen dataclasses."""

    #: Short unique name, recorded in results directories.
    name: ClassVar[str]
    #: Bumped whenever the protocol's numbers change.
    version: ClassVar[int]

    @abc.abstractmethod
    def static_of(self, point: Any) -> Hashable:
        """The part of ``point`` that fixes the compiled program."""

    @abc.abstractmethod
    def inputs_of(self, point: Any) -> Any:
        """The traced inputs of ``point``'s runs: a pytree of numpy arrays, no row axis."""

    @abc.abstractmethod
    def identity_of(self, point: Any) -> int:
        """Integer in [0, 2**32) folded into the root key before the seed index."""

    @abc.abstractmethod
    def make_run(self, static: Hashable) -> Callable[[Any, Any], Any]:
        """A pure ``run(key, inputs) -> metrics`` for the points sharing ``static``."""

    @abc.abstractmethod
    def metrics(self, static: Hashable) -> dict[str, MetricSpec]:
        """Each metric's dtype and per-run shape, in a fixed order."""

    @abc.abstractmethod
    def bytes_per_run(self, static: Hashable) -> int:
        """Estimated device memory (bytes) one run of ``static`` uses while it executes."""

    @abc.abstractmethod
    def describe(self, point: Any) -> dict[str, Any]:
        """``point`` as a JSON-able dict (inverse of :meth:`point_from_dict`)."""

    @abc.abstractmethod
    def point_from_dict(self, values: Mapping[str, Any]) -> Any:
        """The point :meth:`describe` described."""

    def settings(self) -> dict[str, Any]:
        """Protocol-wide options that change numbers (recorded in a results manifest)."""
        return {}

    def runs_concurrently(self, static: Hashable) -> bool:
        """Whether chunks of ``static``'s program may execute in several threads at once.

        False for programs that call LAPACK (a Cholesky factorisation, say) inside a loop: on
        JAX's CPU runtime (jaxlib 0.10) two such executions in flight together deadlock, so the
        engine then runs every chunk of the sweep in one thread (XLA still uses every core within
        a chunk).
        """
        return True


def as_metric_dict(metrics: Any) -> dict[str, Any]:
    """A run's metrics (NamedTuple or mapping) as a dict of arrays."""
    if hasattr(metrics, "_asdict"):
        return dict(metrics._asdict())
    return dict(metrics)


def metric_dtypes(specs: Mapping[str, MetricSpec]) -> dict[str, Any]:
    """``{name: dtype}`` of a protocol's metric specs."""
    return {name: np.dtype(spec.dtype) for name, spec in specs.items()}


def names() -> tuple[str, ...]:
    """Names of the protocols this package defines."""
    return ("paper", "table2")


def get(name: str, settings: Mapping[str, Any] | None = None) -> Protocol:
    """The protocol called ``name`` with the manifest ``settings`` (see :meth:`Protocol.settings`)."""
    settings = dict(settings or {})
    if name == "paper":
        from mfh_sim.protocols.paper import PaperProtocol

        return PaperProtocol(**settings)
    if name == "table2":
        from mfh_sim.protocols.table2 import Table2Protocol

        return Table2Protocol(**settings)
    if name == "real":
        # Its points hold the data arrays, which a results directory does not keep.
        raise ValueError("protocol='real' cannot be reopened from its results directory (the data are not "
                         "stored there): run `mfh-sim real` again with the same --out, which reads these runs back")
    raise ValueError(f"protocol={name!r} is not known: use one of {names()}")
