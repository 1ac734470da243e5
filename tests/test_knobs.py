"""Knobs from one place: every keyword of make_config is described by the config's field
metadata, has an `mfh-sim sweep` option generated from it, takes a grid of values there, and its
declared role (static or traced) is what the config's static signature says."""

from dataclasses import fields

import pytest

from mfh_sim.cli import build_parser
from mfh_sim.commands.sweep import grid_keywords
from mfh_sim.config import (
    ALL_KEYS,
    COUNT_KEYS,
    KINDS,
    KNOBS,
    RATIO_KEYS,
    ROLES,
    SimConfig,
    knobs_markdown,
    make_config,
)
from mfh_sim.protocols.paper import static_of
from mfh_sim.venn import VennConfig

#: A Venn diagram every training knob can be varied on (7 decisive latents: up to 8 classes).
BASE = dict(shared=3, a_only=2, b_only=2, dim_a=10, dim_b=10)


def _sweep_options() -> dict[str, str]:
    """option string -> dest of the `mfh-sim sweep` parser, as production builds it."""
    parser = build_parser(only="sweep")
    sweep = next(a for a in parser._subparsers._group_actions[0].choices.values())  # the one subcommand
    return {option: action.dest for action in sweep._actions for option in action.option_strings}


def test_every_keyword_of_make_config_is_a_described_knob():
    assert set(KNOBS) == set(ALL_KEYS) - {"venn"}
    assert {f.name for f in fields(SimConfig)} - {"venn"} <= set(KNOBS)
    assert {f.name for f in fields(VennConfig)} <= set(KNOBS)
    for knob in KNOBS.values():
        assert knob.kind in KINDS and knob.role in ROLES and knob.doc.strip(), knob
        assert (knob.kind == "choice") == bool(knob.choices), knob


def test_every_knob_has_a_sweep_option():
    options = _sweep_options()
    for name, knob in KNOBS.items():
        assert options.get(knob.option) == name, f"{knob.option} is missing from mfh-sim sweep"
    for name in RATIO_KEYS + COUNT_KEYS + ("n_classes", "label_noise", "mixing_depth", "mixing_strength", "kd_loss",
                                           "latent_padding", "fresh_student_sample", "teacher_fraction_when_disjoint"):
        assert "--" + name.replace("_", "-") in options


def _two_values(name: str) -> list[str]:
    """Two valid command-line values of knob ``name``, derived from its metadata."""
    knob = KNOBS[name]
    if knob.kind == "choice":
        return list(knob.choices[:2])
    if knob.kind == "bool":
        return ["true", "false"]
    if knob.kind == "widths":
        return ["8", "8x4"]
    if name in RATIO_KEYS:
        # Ratios that 20 visible decisive latents realise exactly (no rounding warning).
        return {"gamma": ["0.5", "1"], "alpha": ["0", repr(1 / 3)], "beta": ["0", repr(1 / 3)]}[name]
    default = knob.default if knob.default is not None else BASE[name]
    if name == "l2":
        return ["0.01", "0.125"]  # with optimizer='erm', which needs l2 > 0
    if knob.kind == "int":
        return [str(default), str(default + 2)]  # + 2: n_visible stays even, so gamma = 0.5 is exact
    # A real knob: its default and a value inside every range the docs state ([0, 1), > 0, ...).
    return [str(default), str(0.25 if default >= 0.5 else default / 2 + 0.125)]


@pytest.mark.parametrize("name", list(KNOBS))
def test_a_grid_of_values_of_every_option_reaches_valid_configs(name):
    values = _two_values(name)
    words = ["sweep", "--out", "unused", f"--{name.replace('_', '-')}", ",".join(values)]
    if name in RATIO_KEYS or name in ("n_visible", "teacher_fraction_when_disjoint"):
        fixed = {"gamma": "0.5", "alpha": "0"} if name != "gamma" else {"alpha": "0"}
        if name in ("alpha", "beta"):
            fixed = {"gamma": "0.5"}
    else:
        fixed = {k: str(v) for k, v in BASE.items() if k != name}
        if name in ("hidden", "kd_loss"):
            fixed["model"] = "mlp"  # hidden widths and the feature hint need an MLP
        if name == "l2":
            fixed["optimizer"] = "erm"  # the ridge belongs to the converged ERM fits
    for key, value in fixed.items():
        words += [f"--{key.replace('_', '-')}", value]
    args = build_parser(only="sweep").parse_args(words)
    keywords = grid_keywords(args)
    assert isinstance(keywords[name], list) and len(keywords[name]) == 2, keywords
    for value in keywords[name]:
        config = make_config(**{**{k: v for k, v in keywords.items() if k != name}, name: value})
        if name in SimConfig.__dataclass_fields__:
            assert getattr(config, name) == (tuple(value) if name == "hidden" else value)


def _variant(name: str):
    """A valid non-default value of training knob ``name`` (the second of :func:`_two_values`)."""
    value = grid_keywords(build_parser(only="sweep").parse_args(
        ["sweep", "--out", "unused", f"--{name.replace('_', '-')}", ",".join(_two_values(name))]))[name]
    return [v for v in value if v != KNOBS[name].default and v != (KNOBS[name].default,)][0]


@pytest.mark.parametrize("name", [n for n in KNOBS if KNOBS[n].group == "training"])
def test_the_declared_role_is_the_static_part(name):
    """A 'static' knob changes the compiled program's signature; a 'traced' one does not.

    A traced number is compared at two values off its default: ``label_noise`` is traced, but
    whether it is > 0 is static (its doc says so).
    """
    common = dict(BASE, model="mlp" if name in ("hidden", "kd_loss") else "linear")
    if name == "l2":
        common["optimizer"] = "erm"
    value = _variant(name)
    if KNOBS[name].role == "static":
        first, second = KNOBS[name].default, value
    elif KNOBS[name].kind == "float":
        first, second = value, value / 2
    else:
        first, second = KNOBS[name].default, value
    one = static_of(make_config(**{**common, name: first}))
    two = static_of(make_config(**{**common, name: second}))
    assert (one != two) == (KNOBS[name].role == "static"), (name, first, second, KNOBS[name].role)


def test_knobs_markdown_lists_every_knob_once():
    table = knobs_markdown()
    for name in KNOBS:
        assert table.count(f"| `{name}` |") == 1
