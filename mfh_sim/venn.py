"""The modality Venn diagram (MVD): latent blocks, overlap ratios and channel layout.

Latent factors are either *decisive* (the label depends on them) or not, and each is visible in
modality ``a`` (the teacher's), modality ``b`` (the student's), both, or neither.  A
:class:`VennConfig` holds the size of every block and the channel counts of ``x^a`` and ``x^b``;
channels that show no latent carry independent N(0, 1) noise.

Ratios (Xue et al., ICLR 2023, Section 3)::

    gamma = |G| / |G u A u B|   share of the visible decisive latents that are modality-general
    alpha = |A| / |G u A|       share of the teacher's decisive latents that are teacher-specific
    beta  = |B| / |G u B|       share of the student's decisive latents that are student-specific

so that ``1/gamma = 1/(1-alpha) + 1/(1-beta) - 1``.  A ratio whose denominator is zero (``alpha``
when the teacher sees no decisive latent: |G u A| = 0) is 0/0: :meth:`VennConfig.from_ratios`
refuses it, and a diagram given by counts reports it as 0 (:attr:`VennConfig.alpha`) and prints it
as "n/a".

Latent order (fixed; use :meth:`VennConfig.latent_slices` rather than positions)::

    [ B | G | A | U | Gn | An | Bn ]

B b-only decisive, G shared decisive, A a-only decisive, U decisive but unseen by both, Gn shared
non-decisive, An a-only non-decisive, Bn b-only non-decisive.  This is the paper's order in its
Fig. 2 and 3 (x^b shows latents 0..9, x^a shows a window further along), so that with common
random numbers (see :mod:`mfh_sim.engine`) the student's view is the same draw at every gamma, as
in the paper.  Each modality shows its latents in increasing latent index in its first channels
(``x^a``: G, A, Gn, An; ``x^b``: B, G, Gn, Bn), and noise after.  The order of channels is
immaterial to the models (their initialisation and gradient descent are equivariant to channel
permutations); :meth:`VennConfig.channels_of` says where each block is.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

from mfh_sim.validation import require_integer, require_ratio

Region = Literal["G", "A", "B", "U", "Gn", "An", "Bn"]
REGIONS: tuple[Region, ...] = ("G", "A", "B", "U", "Gn", "An", "Bn")
#: Order of the regions in the latent vector z.
LATENT_ORDER: tuple[Region, ...] = ("B", "G", "A", "U", "Gn", "An", "Bn")
_COUNT_FIELDS = (
    "shared",
    "a_only",
    "b_only",
    "unseen",
    "shared_nondecisive",
    "a_nondecisive",
    "b_nondecisive",
)


def _knob(kind: str, doc: str, role: str = "layout") -> dict[str, str]:
    """Field metadata for :class:`mfh_sim.config.Knob` (plain data: venn imports no config)."""
    return {"kind": kind, "doc": doc, "role": role}


def _safe_ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator > 0 else 0.0


@dataclass(frozen=True)
class VennConfig:
    """Block sizes of a modality Venn diagram and the channel counts of both modalities.

    All counts are numbers of latent coordinates (integers >= 0); ``dim_a`` and ``dim_b`` are the
    numbers of input channels of ``x^a`` and ``x^b`` (integers >= 1).  Construction validates
    everything and raises :class:`ValueError` naming the offending parameter.
    """

    # The metadata says what the command line and the docs need (see mfh_sim.config.Knob): the
    # value's kind, one line with range and unit, and its role in a compiled program ('layout':
    # traced as index arrays, though the total of the blocks, with latent_padding, fixes the
    # number of latents, a static shape; 'static': fixes the program's shapes).
    shared: int = field(metadata=_knob("int", "|G|, shared decisive latents (seen by both modalities), >= 0"))
    a_only: int = field(metadata=_knob("int", "|A|, decisive latents only x^a (the teacher) sees, >= 0"))
    b_only: int = field(metadata=_knob("int", "|B|, decisive latents only x^b (the student) sees, >= 0"))
    unseen: int = field(default=0, metadata=_knob("int", "|U|, decisive latents neither modality sees, >= 0"))
    shared_nondecisive: int = field(
        default=0, metadata=_knob("int", "|Gn|, non-decisive latents both modalities see, >= 0"))
    a_nondecisive: int = field(default=0, metadata=_knob("int", "|An|, non-decisive latents only x^a sees, >= 0"))
    b_nondecisive: int = field(default=0, metadata=_knob("int", "|Bn|, non-decisive latents only x^b sees, >= 0"))
    dim_a: int = field(
        default=50,
        metadata=_knob("int", "channels of x^a, >= the latents it shows (the rest are N(0, 1) noise)", "static"),
    )
    dim_b: int = field(
        default=50,
        metadata=_knob("int", "channels of x^b, >= the latents it shows (the rest are N(0, 1) noise)", "static"),
    )

    def __post_init__(self) -> None:
        for name in _COUNT_FIELDS:
            object.__setattr__(self, name, require_integer(name, getattr(self, name)))
        for name in ("dim_a", "dim_b"):
            object.__setattr__(self, name, require_integer(name, getattr(self, name), minimum=1))
        if self.n_visible_decisive == 0:
            raise ValueError(
                "shared + a_only + b_only = 0 is not allowed: at least one decisive latent must be "
                "visible to a modality"
            )
        if self.channels_used_a > self.dim_a:
            raise ValueError(
                f"dim_a={self.dim_a} is not allowed: x^a must hold shared + a_only + "
                f"shared_nondecisive + a_nondecisive = {self.channels_used_a} latent channels, "
                f"so dim_a >= {self.channels_used_a}"
            )
        if self.channels_used_b > self.dim_b:
            raise ValueError(
                f"dim_b={self.dim_b} is not allowed: x^b must hold shared + b_only + "
                f"shared_nondecisive + b_nondecisive = {self.channels_used_b} latent channels, "
                f"so dim_b >= {self.channels_used_b}"
            )

    # ----------------------------------------------------------------------------- sizes
    @property
    def n_visible_decisive(self) -> int:
        """|G u A u B|: decisive latents seen by at least one modality."""
        return self.shared + self.a_only + self.b_only

    @property
    def n_decisive(self) -> int:
        """All decisive latents, including those seen by neither modality."""
        return self.n_visible_decisive + self.unseen

    @property
    def n_latent(self) -> int:
        """All latent coordinates (decisive and not)."""
        return self.n_decisive + self.shared_nondecisive + self.a_nondecisive + self.b_nondecisive

    @property
    def channels_used_a(self) -> int:
        return self.shared + self.a_only + self.shared_nondecisive + self.a_nondecisive

    @property
    def channels_used_b(self) -> int:
        return self.shared + self.b_only + self.shared_nondecisive + self.b_nondecisive

    # ---------------------------------------------------------------------------- ratios
    @property
    def gamma(self) -> float:
        """|G| / |G u A u B| in [0, 1]."""
        return _safe_ratio(self.shared, self.n_visible_decisive)

    @property
    def alpha(self) -> float:
        """|A| / |G u A| in [0, 1] (0 when the teacher sees no decisive latent)."""
        return _safe_ratio(self.a_only, self.shared + self.a_only)

    @property
    def beta(self) -> float:
        """|B| / |G u B| in [0, 1] (0 when the student sees no decisive latent)."""
        return _safe_ratio(self.b_only, self.shared + self.b_only)

    @property
    def unseen_share(self) -> float:
        """|U| / (all decisive latents): decisive signal neither modality sees, in [0, 1)."""
        return _safe_ratio(self.unseen, self.n_decisive)

    def ratios_text(self, digits: int = 3) -> str:
        """"gamma=..., alpha=..., beta=..." with "n/a" for a ratio that is 0/0 (a modality that
        sees no decisive latent)."""
        shown = lambda value, defined: f"{value:.{digits}f}" if defined else "n/a"
        return (f"gamma={shown(self.gamma, True)}, alpha={shown(self.alpha, self.shared + self.a_only > 0)}, "
                f"beta={shown(self.beta, self.shared + self.b_only > 0)}")

    def counts(self) -> dict[str, int]:
        """Block sizes keyed by region name ``G, A, B, U, Gn, An, Bn``."""
        return dict(zip(REGIONS, (getattr(self, name) for name in _COUNT_FIELDS)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # ---------------------------------------------------------------------------- layout
    def latent_slices(self) -> dict[str, slice]:
        """Positions of each region in the latent vector ``z`` (see the module docstring)."""
        counts, slices, start = self.counts(), {}, 0
        for region in LATENT_ORDER:
            slices[region] = slice(start, start + counts[region])
            start += counts[region]
        return slices

    def decisive_mask(self) -> np.ndarray:
        """Float array of shape (n_latent,): 1 for decisive latents (G, A, B, U), else 0."""
        mask = np.zeros(self.n_latent, dtype=np.float32)
        for region, block in self.latent_slices().items():
            if region in ("G", "A", "B", "U"):
                mask[block] = 1.0
        return mask

    def _channel_latents(self, regions: tuple[str, ...], dim: int) -> np.ndarray:
        slices = self.latent_slices()
        shown = np.sort(np.concatenate([np.arange(slices[r].start, slices[r].stop) for r in regions]))
        index = np.full(dim, -1, dtype=np.int32)
        index[: shown.size] = shown
        return index

    def channel_latents_a(self) -> np.ndarray:
        """Int array of shape (dim_a,): the latent index each channel of x^a shows, -1 for noise."""
        return self._channel_latents(("G", "A", "Gn", "An"), self.dim_a)  # increasing index

    def channel_latents_b(self) -> np.ndarray:
        """Int array of shape (dim_b,): the latent index each channel of x^b shows, -1 for noise."""
        return self._channel_latents(("G", "B", "Gn", "Bn"), self.dim_b)

    def channels_of(self, region: Region, modality: Literal["a", "b"]) -> np.ndarray:
        """Indices of the channels of ``x^modality`` that show latents of ``region``."""
        if region not in REGIONS:
            raise ValueError(f"region={region!r} is not allowed: use one of {REGIONS}")
        if modality not in ("a", "b"):
            raise ValueError(f"modality={modality!r} is not allowed: use 'a' or 'b'")
        index = self.channel_latents_a() if modality == "a" else self.channel_latents_b()
        block = self.latent_slices()[region]
        return np.flatnonzero((index >= block.start) & (index < block.stop))

    def __str__(self) -> str:
        return (
            f"VennConfig(G={self.shared}, A={self.a_only}, B={self.b_only}, U={self.unseen}, "
            f"Gn={self.shared_nondecisive}, An={self.a_nondecisive}, Bn={self.b_nondecisive}; "
            f"dim_a={self.dim_a}, dim_b={self.dim_b}; {self.ratios_text()})"
        )

    # ------------------------------------------------------------------------ from ratios
    @classmethod
    def from_ratios(
        cls,
        gamma: float | None = None,
        alpha: float | None = None,
        beta: float | None = None,
        *,
        n_visible: int = 20,
        teacher_fraction_when_disjoint: float = 0.5,
        tolerance: float = 1e-9,
        warn: bool = True,
        **rest: int,
    ) -> VennConfig:
        """Build a config whose overlap ratios are as close as counts allow to the ones given.

        Any two of ``gamma``, ``alpha``, ``beta`` (each in [0, 1]) determine the third; all three
        may be given if they are consistent.  The real-valued shares of the ``n_visible`` visible
        decisive latents,

            G : A : B = gamma : gamma*alpha/(1-alpha) : gamma*beta/(1-beta),

        are rounded to integer counts summing to ``n_visible`` by the largest-remainder rule
        (ties go to G, then A, then B).  When gamma = 0 the ratios do not fix how the visible
        decisive latents split between A and B; ``teacher_fraction_when_disjoint`` (default: an
        even split) does.  Ratios that are 0/0 (alpha = 0 or beta = 0 with gamma = 0: a modality
        that sees no decisive latent) are refused: give counts for such a diagram.  If rounding moves
        any ratio by more than ``tolerance`` a
        :class:`UserWarning` names the realised ratios; raise ``n_visible`` for finer ratios.

        ``rest`` passes ``unseen``, the non-decisive block sizes and ``dim_a`` / ``dim_b``.
        """
        n_visible = require_integer("n_visible", n_visible, minimum=1)
        shares = decisive_shares(gamma, alpha, beta, teacher_fraction_when_disjoint)
        counts = _largest_remainder(np.asarray(shares), n_visible)
        config = cls(shared=counts[0], a_only=counts[1], b_only=counts[2], **rest)
        requested = {"gamma": gamma, "alpha": alpha, "beta": beta}
        realised = {"gamma": config.gamma, "alpha": config.alpha, "beta": config.beta}
        moved = {
            k: v for k, v in requested.items() if v is not None and abs(realised[k] - v) > tolerance
        }
        if moved and warn:
            warnings.warn(
                f"counts G={config.shared}, A={config.a_only}, B={config.b_only} (n_visible="
                f"{n_visible}) realise gamma={config.gamma:.4f}, alpha={config.alpha:.4f}, "
                f"beta={config.beta:.4f}; requested "
                + ", ".join(f"{k}={v:.4f}" for k, v in moved.items())
                + ". Raise n_visible for finer ratios.",
                UserWarning,
                stacklevel=2,
            )
        return config


def decisive_shares(
    gamma: float | None,
    alpha: float | None,
    beta: float | None,
    teacher_fraction_when_disjoint: float = 0.5,
) -> tuple[float, float, float]:
    """Shares (g, a, b) of the visible decisive latents in G, A and B, summing to 1.

    Validates the ratios and their consistency; raises :class:`ValueError` naming the parameter.
    """
    given = {
        name: require_ratio(name, value)
        for name, value in (("gamma", gamma), ("alpha", alpha), ("beta", beta))
        if value is not None
    }
    teacher_fraction = require_ratio(
        "teacher_fraction_when_disjoint", teacher_fraction_when_disjoint
    )
    if len(given) < 2:
        raise ValueError(
            f"ratios {given or 'none'} are not enough: give at least two of gamma, alpha, beta "
            "(the third follows from 1/gamma = 1/(1-alpha) + 1/(1-beta) - 1)"
        )
    g, a, b = given.get("gamma"), given.get("alpha"), given.get("beta")

    if g is None:  # alpha and beta given
        g = implied_gamma(a, b)  # type: ignore[arg-type]
    if g == 0.0:
        # No shared latent: alpha = |A| / |A| is 1 when the teacher sees decisive latents, and 0/0
        # when it sees none (then it is not a ratio at all); the same for beta and the student.
        for name, value, who in (("alpha", a, "teacher"), ("beta", b, "student")):
            if value is not None and value != 1.0:
                undefined = (f"{name}=0 with gamma=0 is 0/0: the {who} would see no decisive latent, so "
                             f"{name} is undefined" if value == 0.0 else
                             f"{name}={value} is not allowed with gamma=0: with no shared decisive latent "
                             f"{name} is 1")
                raise ValueError(f"{undefined}; for a disjoint diagram give gamma=0 with {name}=1 (or leave "
                                 f"it out), or give the counts shared, a_only, b_only")
        return (0.0, teacher_fraction, 1.0 - teacher_fraction)

    # gamma > 0: both modality-specific shares follow from alpha and beta.
    if a is None:
        a = _solve_other_ratio(g, b, known="beta")  # type: ignore[arg-type]
    if b is None:
        b = _solve_other_ratio(g, a, known="alpha")
    for name, value in (("alpha", a), ("beta", b)):
        if value == 1.0:
            raise ValueError(
                f"{name}=1 is not allowed with gamma={g}: {name}=1 means no shared decisive "
                "latent, so gamma would be 0"
            )
    implied = implied_gamma(a, b)
    if abs(implied - g) > 1e-9:
        raise ValueError(
            f"gamma={g}, alpha={a}, beta={b} are inconsistent: alpha and beta imply "
            f"gamma = 1/(1/(1-alpha) + 1/(1-beta) - 1) = {implied:.6g}"
        )
    a_share = g * a / (1.0 - a)
    b_share = g * b / (1.0 - b)
    return (g, a_share, b_share)


def implied_gamma(alpha: float, beta: float) -> float:
    """gamma from alpha and beta: 1/gamma = 1/(1-alpha) + 1/(1-beta) - 1 (0 if either is 1)."""
    if alpha >= 1.0 or beta >= 1.0:
        return 0.0
    return 1.0 / (1.0 / (1.0 - alpha) + 1.0 / (1.0 - beta) - 1.0)


def _solve_other_ratio(gamma: float, known_value: float, known: str) -> float:
    """The ratio (alpha or beta) that ``gamma`` and the ``known`` one, of value ``known_value``, imply."""
    if known_value == 1.0:
        raise ValueError(
            f"{known}=1 is not allowed with gamma={gamma}: {known}=1 means no shared decisive "
            "latent, so gamma would be 0"
        )
    # 1/(1-other) = 1/gamma + 1 - 1/(1-known)
    inverse = 1.0 / gamma + 1.0 - 1.0 / (1.0 - known_value)
    if inverse < 1.0 - 1e-12:
        raise ValueError(
            f"gamma={gamma} with {known}={known_value} is impossible: it requires "
            f"gamma <= 1 - {known} = {1.0 - known_value:.6g}"
        )
    return max(0.0, 1.0 - 1.0 / inverse) if inverse > 0 else 0.0


def _largest_remainder(shares: np.ndarray, total: int) -> list[int]:
    exact = shares / shares.sum() * total
    counts = np.floor(exact + 1e-12).astype(int)
    remainders = exact - counts
    # Stable sort keeps ties in region order G, A, B.
    for index in np.argsort(-remainders, kind="stable")[: total - counts.sum()]:
        counts[index] += 1
    return [int(c) for c in counts]
