"""Knobs from one place: every keyword of make_config is described by the config's field
metadata, has an `mfh-sim sweep` option generated from it, takes a grid of values there, and its
declared role (static or traced) is what the config's static signature says."""

import re
from dataclasses import fields

import pytest

from mfh_sim.cli import build_parser
from mfh_sim.commands.sweep import grid_keywords
from mfh_sim.config import (
    ALL_KEYS,
    COUNT_KEYS,
    DEPENDENCIES,
    KINDS,
    KNOBS,
    RATIO_KEYS,
    ROLES,
    SIM_KEYS,
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
        if name == "teacher_fraction_when_disjoint":
            fixed = {"gamma": "0", "alpha": "1"}  # it splits the latents of a disjoint diagram only
    else:
        fixed = {k: str(v) for k, v in BASE.items() if k != name}
        if name in ("hidden", "kd_loss"):
            fixed["model"] = "mlp"  # hidden widths and the feature hint need an MLP
        if name == "l2":
            fixed["optimizer"] = "erm"  # the ridge belongs to the converged ERM fits
        if name == "mixing_strength":
            fixed["mixing_depth"] = "1"  # a strength needs mixing layers
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
    if name == "mixing_strength":
        common["mixing_depth"] = 1
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


# ------------------------------------------------------------------ every knob acts or is refused
def _non_default(rule):
    """A valid value of ``rule.knob`` other than its default."""
    return {"hidden": (8,), "momentum": 0.5, "learning_rate": 0.05, "steps": 7, "init": "lecun", "l2": 0.01,
            "temperature": 2.0, "kd_reduction": "batchmean", "kd_loss": "mse", "mixing_strength": 0.5}[rule.knob]


#: For each rule, a value of the knob it depends on where the dependent knob does nothing, and one
#: where it acts (with what else that value needs).
_INERT = {"model": ("linear", "mlp", {}), "optimizer": ("adam", "sgd", {}), "kd_loss": ("mse", "kl", {}),
          "mixing_depth": (0, 1, {})}


@pytest.mark.parametrize("rule", DEPENDENCIES, ids=lambda r: f"{r.knob}-{r.on}")
def test_a_knob_without_effect_is_refused_naming_both(rule):
    inert, active, _ = _INERT[rule.on]
    if rule.knob in ("l2",):
        inert, active = "sgd", "erm"
    if rule.on == "optimizer" and rule.knob in ("learning_rate", "steps", "init"):
        inert, active = "erm", "sgd"
    needs = {"l2": 0.01} if inert == "erm" and rule.knob != "l2" else {}
    if rule.knob == "kd_loss":
        needs["model"] = "mlp"  # so that 'hint' would also be valid where it acts
    value = _non_default(rule)
    with pytest.raises(ValueError, match=rf"^{rule.knob}=.* is not allowed with {rule.on}=.*has no effect"):
        make_config(**BASE, **needs, **{rule.on: inert, rule.knob: value})
    active_needs = {"l2": 0.01} if active == "erm" and rule.knob != "l2" else {}
    config = make_config(**BASE, **{k: v for k, v in needs.items() if k != "l2"}, **active_needs,
                         **{rule.on: active, rule.knob: value})
    assert getattr(config, rule.knob) == value
    # At its default the knob is never in the way.
    make_config(**BASE, **needs, **{rule.on: inert})


@pytest.mark.parametrize("keywords, words", [
    (dict(gamma=0.5, alpha=1 / 3, hidden=[64, 128]), "hidden=(128,) is not allowed with model='linear'"),
    (dict(gamma=0.5, alpha=1 / 3, kd_loss="mse", temperature=[1.0, 2.0]),
     "temperature=2.0 is not allowed with kd_loss='mse'"),
    (dict(gamma=0.5, alpha=1 / 3, mixing_strength=[0.5, 1.0]),
     "mixing_strength=0.5 is not allowed with mixing_depth=0"),
    (dict(gamma=0.5, alpha=1 / 3, teacher_fraction_when_disjoint=[0.25, 0.5]),
     "teacher_fraction_when_disjoint=0.25 is not allowed with gamma=0.5"),
    (dict(gamma=0.5, alpha=1 / 3, optimizer="adam", momentum=[0.0, 0.9]), "momentum=0.9 is not allowed with optimizer"),
])
def test_a_sweep_refuses_every_inert_grid_point_before_running(keywords, words, monkeypatch):
    import mfh_sim
    from mfh_sim import engine

    monkeypatch.setattr(engine, "execute", lambda *a, **k: pytest.fail("a sweep ran"))
    with pytest.raises(ValueError, match=re.escape(words)):
        mfh_sim.sweep(**keywords, seeds=2)


def test_the_command_line_refuses_an_inert_knob_naming_both_options(tmp_path, capsys):
    from mfh_sim.cli import main

    out = tmp_path / "new"
    assert main(["sweep", "--gamma", "0.5", "--alpha", "0", "--hidden", "64,128", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--hidden" in err[0] and "--model" in err[0] and "no effect" in err[0]
    assert not out.exists()


def test_counts_are_all_given_and_ratios_are_never_0_over_0():
    with pytest.raises(ValueError, match="^b_only missing: counts are given all three"):
        make_config(shared=10, a_only=5)
    with pytest.raises(ValueError, match="^a_only, b_only missing"):
        make_config(shared=10)
    assert make_config(shared=10, a_only=0, b_only=0).venn.n_visible_decisive == 10
    for ratios, name in ((dict(gamma=0, alpha=0), "alpha=0 with gamma=0 is 0/0"),
                         (dict(gamma=0, beta=0), "beta=0 with gamma=0 is 0/0"),
                         (dict(alpha=1, beta=0), "beta=0 with gamma=0 is 0/0")):
        with pytest.raises(ValueError, match=re.escape(name)):
            make_config(**ratios)
    disjoint = make_config(gamma=0, alpha=1)
    assert disjoint.venn.shared == 0 and disjoint.venn.a_only == disjoint.venn.b_only == 10
    # A diagram given by counts may leave a modality blind: its ratio prints as n/a, not 0.
    assert "alpha=n/a" in make_config(shared=0, a_only=0, b_only=5).venn.ratios_text()


@pytest.mark.parametrize("keywords, words", [
    (dict(gamma="0.5", alpha=0), "gamma='0.5' is not allowed: it must be a number in [0, 1], not a str"),
    (dict(gamma=0.5, alpha=0, learning_rate="0.1"), "learning_rate='0.1' is not allowed"),
    (dict(gamma=0.5, alpha=0, kd_weight=True), "kd_weight=True is not allowed"),
    (dict(gamma=0.5, alpha=0, n_train="200"), "n_train='200' is not allowed"),
    (dict(gamma=0.5, alpha=0, learnign_rate=0.1), "'learnign_rate' (did you mean 'learning_rate'?)"),
])
def test_a_wrong_type_or_name_names_the_argument(keywords, words):
    with pytest.raises(ValueError, match=re.escape(words)):
        make_config(**keywords)


def test_a_tuple_is_an_axis_only_for_widths_and_configs_are_points():
    from mfh_sim.simulation import expand_grid

    with pytest.raises(ValueError, match=re.escape("gamma=(0.0, 0.5) is not allowed: a tuple is neither a value nor "
                                                   "an axis of gamma; to sweep over values give a list, gamma=[0.0, "
                                                   "0.5]")):
        expand_grid(gamma=(0.0, 0.5), alpha=0.0)
    assert expand_grid(gamma=0.5, alpha=0.0, model="mlp", hidden=(8, 4)) == [
        dict(gamma=0.5, alpha=0.0, model="mlp", hidden=(8, 4))]
    assert [p["hidden"] for p in expand_grid(gamma=0.5, alpha=0.0, hidden=[(8,), (8, 4)])] == [(8,), (8, 4)]
    config = make_config(**BASE, n_train=30)
    (point,) = expand_grid(points=[config])
    assert make_config(**point) == config


# The systematic check: under each setting of the knobs that other knobs depend on (one switch at a
# time from the paper's recipe), every training knob set to another value either is refused with a
# message naming it and the switch, or changes the simulator's numbers.  A knob that silently does
# nothing somewhere fails here, whether or not a rule in DEPENDENCIES names it.  The knobs that
# change the data themselves (sample sizes, the generator's extensions, padding) are checked under
# the paper's recipe only: every training of every context reads those data.
SMALL = dict(shared=3, a_only=2, b_only=2, unseen=1, dim_a=8, dim_b=8, n_train=30, n_test=400, steps=12,
             learning_rate=0.5)
CONTEXTS = {"paper": {}, "mlp": dict(model="mlp", hidden=(6,)), "adam": dict(optimizer="adam", learning_rate=0.05),
            "erm": dict(optimizer="erm", l2=0.05, learning_rate=0.1, steps=1000), "mse": dict(kd_loss="mse"),
            "hint": dict(model="mlp", hidden=(6,), kd_loss="hint"), "mixing": dict(mixing_depth=1),
            "classes": dict(n_classes=3)}
#: Two values of each training knob (the second is used where a context already sets the first).
OTHER = {"hyperplane": ("ones",), "n_train": (36, 24), "n_test": (300,), "fresh_student_sample": (True,),
         "model": ("mlp", "linear"), "hidden": ((10,), (4, 4)), "init": ("lecun",), "optimizer": ("adam", "sgd"),
         "learning_rate": (0.2, 0.3), "momentum": (0.6,), "steps": (6, 18), "ce_weight": (0.3,),
         "kd_weight": (3.0, 1.0), "temperature": (4.0,), "kd_reduction": ("batchmean",), "n_classes": (3, 2),
         "label_noise": (0.2,), "mixing_depth": (2, 0), "mixing_strength": (0.3,), "kd_loss": ("mse", "kl"),
         "l2": (0.2, 0.0), "latent_padding": (3,)}
DATA_KNOBS = ("hyperplane", "n_train", "n_test", "fresh_student_sample", "n_classes", "label_noise", "mixing_depth",
              "latent_padding")
#: Contexts that change only the data or the number of classes, not how models train: there only the
#: traced knobs are varied (each static variant is another compilation; the training contexts
#: cover them).
DATA_CONTEXTS = ("mixing", "classes")


@pytest.mark.slow
def test_every_knob_changes_the_numbers_or_is_refused_under_every_switch():
    import numpy as np

    from mfh_sim.engine import execute
    from mfh_sim.protocols.paper import PAPER

    assert set(OTHER) == {f.name for f in fields(SimConfig)} - {"venn"}
    configs, pairs, refused = [], [], []
    for context_name, context in CONTEXTS.items():
        base = make_config(**{**SMALL, **context})
        configs.append(base)
        for name, values in OTHER.items():
            if name in DATA_KNOBS and context_name != "paper":
                continue
            if context_name in DATA_CONTEXTS and KNOBS[name].role == "static":
                continue
            value = values[0] if getattr(base, name) != values[0] else values[-1]
            changed = {**SMALL, **context, name: value}
            if name == "model" and value == "mlp" and "hidden" not in changed:
                changed["hidden"] = (6,)
            try:
                other = make_config(**changed)
            except ValueError as error:
                # Refused: the message names the knob and another knob whose value leaves it inert.
                assert f"{name}=" in str(error), (context_name, name, str(error))
                assert any(f"{k}=" in str(error) for k in SIM_KEYS if k != name), (context_name, name, str(error))
                refused.append((context_name, name))
                continue
            pairs.append((context_name, name, len(configs) - 1, len(configs)))
            configs.append(other)
    # About 40 programs: a couple of minutes of compiling on a cold cache, seconds on a warm one.
    out = execute(PAPER, configs, np.arange(3), root_seed=11)
    inert = [(context_name, name) for context_name, name, first, second in pairs
             if all(np.array_equal(out[m][first], out[m][second], equal_nan=True) for m in out)]
    assert not inert, f"knobs that change nothing and are not refused: {inert}"
    # The rules are exercised: each switch refuses the knobs DEPENDENCIES says it leaves inert.
    assert {("erm", "learning_rate"), ("adam", "momentum"), ("mse", "temperature"), ("hint", "kd_reduction"),
            ("paper", "mixing_strength"), ("paper", "hidden")} <= set(refused)


def test_kd_weight_zero_is_the_one_documented_exemption():
    # kd_weight = 0 switches the KD term off: its knobs then change nothing, by design (the control
    # point of a sweep over the KD weight), and they are accepted there.
    import numpy as np

    from mfh_sim.engine import execute
    from mfh_sim.protocols.paper import PAPER

    configs = [make_config(**SMALL, kd_weight=0.0, **extra)
               for extra in ({}, dict(temperature=4.0), dict(kd_reduction="batchmean"), dict(kd_loss="mse"))]
    out = execute(PAPER, configs, np.arange(2), root_seed=3)
    for index in range(1, len(configs)):
        np.testing.assert_array_equal(out["kd_acc"][index], out["kd_acc"][0])
