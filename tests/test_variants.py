"""Hardware variants: a network a trial trains is scored at other hardware points too, each
as a trial of its own, from the train-once cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from nmhpo.cli import app
from nmhpo.config import load_config
from nmhpo.constraints import parse_constraints
from nmhpo.crossbar import KNOBS, Layer, Network, evaluate
from nmhpo.database import create_or_load, open_storage
from nmhpo.errors import ConfigError
from nmhpo.objective import Objective
from nmhpo.record import TrialRecord, TrialResult
from nmhpo.snn import ModelStore
from nmhpo.study import load_existing, run_study
from nmhpo.variants import hardware_variants, pick_variants
from tests.conftest import tiny_study_text


def _cfg(tmp_path: Path, n_trials: int = 3, variants: int = 2, extra: str = "") -> Path:
    text = tiny_study_text(n_trials=n_trials).replace(
        "seed = 0", f"seed = 0\nhardware_variants = {variants}{extra}"
    )
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def test_variants_are_distinct_hardware_points_of_the_same_software_point(
    tmp_path: Path,
) -> None:
    cfg = load_config(_cfg(tmp_path))
    own = {"lr": 0.01, "num_steps": 2, "encoding": "rate", "xbar_size": 32, "adc_bits": 3}
    points = hardware_variants(cfg, own, 4, (0, 7))
    assert len(points) == 4
    hardware = {(p["xbar_size"], p["adc_bits"]) for p in points}
    assert len(hardware) == 4 and (32, 3) not in hardware
    assert all(p["xbar_size"] in (32, 64) and 3 <= p["adc_bits"] <= 5 for p in points)
    software = ("lr", "num_steps", "encoding")
    assert all({k: p[k] for k in software} == {k: own[k] for k in software} for p in points)
    assert all(type(p["adc_bits"]) is int for p in points)
    assert hardware_variants(cfg, own, 4, (0, 7)) == points  # seeded
    # the space holds 6 hardware points: 5 others at most
    assert len(hardware_variants(cfg, own, 10, (0, 7))) == 5


def test_a_study_scores_each_trained_network_at_other_hardware_points(tmp_path: Path) -> None:
    """Two networks trained, each scored at its own and two other hardware points: six
    completed trials, four of them from the cache, none left waiting."""
    cfg = load_config(_cfg(tmp_path, n_trials=6))
    assert run_study(cfg).n_variants_new == 4
    trials = load_existing(cfg).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    records = {t.number: TrialRecord.from_trial(t) for t in trials}
    trained = [n for n, r in records.items() if r.result and r.result.run.trained]
    variants = {n: r.result.run.variant_of for n, r in records.items() if r.result}
    assert len(trained) == 2
    for number, origin in variants.items():
        if number in trained:
            assert origin is None
            continue
        assert origin in trained
        mine, theirs = trials[number].params, trials[origin].params
        assert {k: mine[k] for k in ("lr", "num_steps", "encoding")} == {
            k: theirs[k] for k in ("lr", "num_steps", "encoding")
        }
        assert (mine["xbar_size"], mine["adc_bits"]) != (theirs["xbar_size"], theirs["adc_bits"])
        assert records[number].result is not None
        assert records[number].result.run.model_key == records[origin].result.run.model_key
    # a hardware point changes the price of one network: not a copy of its first trial
    assert len({t.values[1] for t in trials}) == 6
    rows = {r.number: r.row(["accuracy", "energy_uj"]) for r in records.values()}
    assert {n: row.get("variant_of") for n, row in rows.items()} == variants


@pytest.mark.slow
def test_two_workers_share_variants_without_training_them_again(tmp_path: Path) -> None:
    """With two workers, variants queued by either are taken by either: exactly n_trials
    complete, no variant trains."""
    cfg = load_config(_cfg(tmp_path, n_trials=8))
    run_study(cfg, workers=2)
    trials = load_existing(cfg).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 8
    records = [TrialRecord.from_trial(t) for t in trials]
    keys = {r.number: r.result.run.model_key for r in records if r.result}
    for r in records:
        assert r.result is not None
        if r.result.run.variant_of is not None:
            assert not r.result.run.trained
            assert keys[r.number] == keys[r.result.run.variant_of]


def test_queued_variants_are_taken_by_the_next_worker_from_the_disk_cache(
    tmp_path: Path,
) -> None:
    """A variant is queued in the study's storage, not in the worker that trained: a worker
    stopped after the training leaves its variants to the next one, which scores the network
    from the cache folder and trains nothing."""
    cfg = load_config(_cfg(tmp_path, n_trials=3))
    study = create_or_load(cfg, open_storage(cfg.storage_url()))
    study.optimize(Objective(cfg, ModelStore(cfg.cache_dir / "models")), n_trials=1)
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.WAITING,
        TrialState.WAITING,
    ]
    run_study(cfg)
    records = [TrialRecord.from_trial(t) for t in load_existing(cfg).trials]
    assert [r.state for r in records] == ["COMPLETE"] * 3
    first = records[0].result
    assert first is not None and first.run.trained
    for r in records[1:]:
        assert r.result is not None and r.result.run.variant_of == 0
        assert not r.result.run.trained and r.result.run.model_key == first.run.model_key


def test_a_resumed_study_with_variants_keeps_to_n_trials(tmp_path: Path) -> None:
    """Variants are queued only as far as n_trials leaves room: a study asked for 4 trials
    stops at 4 (none waiting), and resuming it to 6 trains again only when needed."""
    path = _cfg(tmp_path, n_trials=4)
    checked = CliRunner().invoke(app, ["validate", str(path)])
    line = "4 trials (each trained network scored at up to 2 more hardware points, picked along"
    assert line in checked.stdout
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 0, result.output
    assert "(4 run now, 2 of them hardware variants, 0 failed)" in result.stdout
    shown = CliRunner().invoke(app, ["report", str(path), "--out", str(tmp_path / "rep")])
    assert shown.exit_code == 0, shown.output
    assert "hardware variants: 2 of the completed trials scored a network another" in shown.stdout
    cfg = load_config(path)
    storage = f"sqlite:///{tmp_path / 'nmhpo-studies.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    run_study(cfg.with_overrides(n_trials=6))
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6


def test_a_network_cached_by_another_study_still_gets_this_studys_variants(
    tmp_path: Path,
) -> None:
    """The cache is shared by every study of a folder (its grid, a search run again under
    another name): a point trained there is new to this study, which has none of its
    variants yet. A point whose variants this study queued queues none again."""
    cfg = load_config(_cfg(tmp_path, n_trials=1, variants=0))
    run_study(cfg)
    again = load_config(_cfg(tmp_path, n_trials=3, variants=2)).with_overrides(name="tiny-b")
    run_study(again)
    records = [TrialRecord.from_trial(t) for t in load_existing(again).trials]
    first = records[0].result
    assert first is not None and not first.run.trained  # the same seed: the same first point
    assert [r.result.run.variant_of for r in records if r.result] == [None, 0, 0]


def test_nsga_gives_variants_a_generation_so_they_can_be_parents(tmp_path: Path) -> None:
    path = _cfg(tmp_path, n_trials=3)
    path.write_text(path.read_text().replace('sampler = "tpe"', 'sampler = "nsga2"'))
    cfg = load_config(path)
    run_study(cfg)
    trials = load_existing(cfg).trials
    assert [t.user_attrs.get("variant.of") for t in trials] == [None, 0, 0]
    assert all(t.system_attrs.get("NSGAIISampler:generation") == 0 for t in trials)


def test_a_queued_variant_has_no_result_until_it_runs() -> None:
    assert TrialResult.from_attrs({"variant.of": 3}) is None
    assert TrialResult.from_attrs({"variant.of": 3, "fail_reason": "killed"}) is None


@pytest.mark.parametrize(
    ("extra", "sampler", "message"),
    [
        ("", "grid", "study.hardware_variants: a grid search scores every hardware point"),
        ("\nreuse_models = false", "tpe", "set reuse_models = true"),
    ],
)
def test_variants_that_cannot_work_are_refused(
    tmp_path: Path, extra: str, sampler: str, message: str
) -> None:
    path = _cfg(tmp_path, extra=extra)
    path.write_text(path.read_text().replace('sampler = "tpe"', f'sampler = "{sampler}"'))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_variants_need_a_searched_hardware_parameter(tmp_path: Path) -> None:
    path = _cfg(tmp_path)
    text = path.read_text()
    text = text.replace(
        'xbar_size = { type = "categorical", choices = [32, 64] }', "xbar_size = 64"
    )
    text = text.replace('adc_bits = { type = "int", low = 3, high = 5, grid = [3, 5] }', "")
    path.write_text(text)
    with pytest.raises(ConfigError, match="expected a searched \\[space.hardware\\] parameter"):
        load_config(path)


# --- which points: variant_pick = "front" -------------------------------------------------

LAYERS = ((64, 32), (32, 10))
ACTIVITY = (0.3, 0.1)


def _pick_cfg(tmp_path: Path, hardware: str, extra: str = "", hw_section: str = "") -> Any:
    """The tiny study with another searched hardware space (and [study]/[hardware] lines)."""
    text = tiny_study_text()
    head, _ = text.split("[space.hardware]")
    head = head.replace("seed = 0", f"seed = 0\nhardware_variants = 4{extra}")
    head = head.replace('preset = "spikesim-65nm"', f'preset = "spikesim-65nm"{hw_section}')
    path = tmp_path / "pick.toml"
    path.write_text(f"{head}[space.hardware]\n{hardware}\n")
    return load_config(path)


def _energy(cfg: Any, point: dict[str, Any]) -> float:
    """One point priced on its own (scalar knobs), independently of the vectorized pick."""
    preset = cfg.preset()
    knobs = {**preset.knobs, **{k: v for k, v in point.items() if k in KNOBS}}
    network = Network(tuple(Layer(*shape) for shape in LAYERS))
    price = evaluate(
        network, preset, knobs, num_steps=3, activity=ACTIVITY, mode=cfg.hardware.mode
    )
    return float(price.energy_pj[0])


def _pick(
    cfg: Any,
    own: dict[str, Any],
    n: int = 4,
    constraints: Any = (),
    metrics: dict[str, float] | None = None,
) -> list[dict]:
    """The front pick for a trial at ``own`` (hardware values) that measured ``metrics``."""
    params = {"lr": 0.01, "num_steps": 3, "encoding": "rate", **own}
    return pick_variants(
        cfg,
        params,
        n,
        (0, 1),
        layers=LAYERS,
        activity=ACTIVITY,
        num_steps=3,
        constraints=constraints,
        metrics=metrics,
    )


def test_front_pick_keeps_only_the_cheapest_point_of_each_set_of_inference_knobs(
    tmp_path: Path,
) -> None:
    """Device and technology node change the price, not what the network computes: of the
    points sharing an ADC resolution, all but the cheapest are dominated whatever the
    network scores, and the one sharing the trial's own resolution only if cheaper."""
    cfg = _pick_cfg(
        tmp_path,
        'adc_bits = { type = "int", low = 3, high = 5 }\n'
        'device = { type = "categorical", choices = ["rram", "sram"] }\n'
        'tech_node = { type = "categorical", choices = [22, 45, 65] }',
    )
    own = {"adc_bits": 4, "device": "sram", "tech_node": 65}
    picks = _pick(cfg, own)
    expected = []
    for bits in (3, 4, 5):
        group = [
            {"adc_bits": bits, "device": d, "tech_node": t}
            for d in ("rram", "sram")
            for t in (22, 45, 65)
        ]
        best = min(group, key=lambda p: _energy(cfg, p))
        if best != own:
            expected.append(best)
    hardware = [{k: p[k] for k in own} for p in picks]
    assert sorted(hardware, key=str) == sorted(expected, key=str)
    assert len(picks) == 3  # fewer than asked: the 14 others could not be on the front
    assert all(p["lr"] == 0.01 and p["num_steps"] == 3 for p in picks)
    # the trial's own point at the cheapest device and node of its group: no variant there
    cheapest_own = next(p for p in expected if p["adc_bits"] == 4)
    assert all(p["adc_bits"] != 4 for p in _pick(cfg, cheapest_own))


def test_front_pick_spreads_the_rest_along_energy(tmp_path: Path) -> None:
    """Every point differs in an inference knob, so none is dominated for sure: one pick
    from the cheaper two of the five others by energy, one from the dearer three; which
    ones varies with the seed (so networks of one study do not all get the same points)."""
    cfg = load_config(_cfg(tmp_path))
    own = {"xbar_size": 32, "adc_bits": 3}
    others = [
        {"xbar_size": x, "adc_bits": b} for x in (32, 64) for b in (3, 4, 5) if (x, b) != (32, 3)
    ]
    ranked = sorted(others, key=lambda p: _energy(cfg, p))
    params = {"lr": 0.01, "num_steps": 3, "encoding": "rate", **own}
    seen = set()
    for seed in range(20):
        picks = pick_variants(
            cfg, params, 2, (seed,), layers=LAYERS, activity=ACTIVITY, num_steps=3
        )
        first, second = ({k: p[k] for k in own} for p in picks)
        assert first in ranked[:2] and second in ranked[2:]
        seen.add((str(first), str(second)))
    assert len(seen) > 2
    assert len(_pick(cfg, own, n=10)) == 5


def test_front_pick_with_float_inference_takes_only_the_cheapest_point(tmp_path: Path) -> None:
    """Float inference: no hardware knob changes accuracy, so every point but the cheapest is
    dominated (and none is picked when the trial's own point is the cheapest)."""
    cfg = _pick_cfg(
        tmp_path,
        'xbar_size = { type = "categorical", choices = [32, 64] }\n'
        'adc_bits = { type = "int", low = 3, high = 5 }',
        hw_section='\ninference = "float"',
    )
    points = [{"xbar_size": x, "adc_bits": b} for x in (32, 64) for b in (3, 4, 5)]
    cheapest = min(points, key=lambda p: _energy(cfg, p))
    dearest = max(points, key=lambda p: _energy(cfg, p))
    assert [{k: p[k] for k in cheapest} for p in _pick(cfg, dearest)] == [cheapest]
    assert _pick(cfg, cheapest) == []


def test_front_pick_skips_points_that_break_a_constraint_on_a_priced_metric(
    tmp_path: Path,
) -> None:
    constraint = "energy_pj <= {bound}"
    cfg = load_config(_cfg(tmp_path))
    own = {"xbar_size": 32, "adc_bits": 3}
    others = [
        {"xbar_size": x, "adc_bits": b} for x in (32, 64) for b in (3, 4, 5) if (x, b) != (32, 3)
    ]
    energies = sorted(_energy(cfg, p) for p in others)
    bound = energies[2]
    constraints = parse_constraints(
        [constraint.format(bound=bound), "accuracy >= 0.99"], cfg.allowed_metrics()
    )
    picks = _pick(cfg, own, n=10, constraints=constraints)
    assert len(picks) == 3  # the accuracy bound is the network's to meet: it drops nothing
    assert all(_energy(cfg, p) <= bound for p in picks)


def test_random_pick_is_the_uniform_draw(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path, extra='\nvariant_pick = "random"'))
    own = {"lr": 0.01, "num_steps": 2, "encoding": "rate", "xbar_size": 32, "adc_bits": 3}
    picked = pick_variants(cfg, own, 3, (0, 7), layers=LAYERS, activity=ACTIVITY, num_steps=2)
    assert picked == hardware_variants(cfg, own, 3, (0, 7))


def test_variant_pick_must_be_front_or_random(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["validate", str(_cfg(tmp_path, extra='\nvariant_pick = "best"'))]
    )
    assert result.exit_code == 2
    assert "variant_pick" in result.output and "front" in result.output


def test_front_pick_never_returns_the_trials_own_point_a_rounding_error_away(
    tmp_path: Path,
) -> None:
    """A sampler's stepped float may sit a rounding error off low + i * step (GP gives
    0.05000000000000001 for 0.05): still the trial's own point, not a variant of it."""
    cfg = _pick_cfg(
        tmp_path,
        'conductance_sigma = { type = "float", low = 0.0, high = 0.1, step = 0.05 }',
    )
    for own in (0.05, 0.05000000000000001):
        sigmas = sorted(p["conductance_sigma"] for p in _pick(cfg, {"conductance_sigma": own}))
        assert sigmas == [0.0, 0.1]


def test_front_pick_groups_by_weight_bits_under_float_inference(tmp_path: Path) -> None:
    """Float inference ignores every knob, but the crossbar footprint counts weight bits:
    with that footprint an objective, the cheapest point of each weight width is kept;
    without it, only the cheapest point of all."""
    cfg = _pick_cfg(
        tmp_path,
        'weight_bits = { type = "categorical", choices = [4, 8] }\n'
        'device = { type = "categorical", choices = ["rram", "sram"] }',
        hw_section='\ninference = "float"',
    )
    points = [{"weight_bits": w, "device": d} for w in (4, 8) for d in ("rram", "sram")]
    dearest = max(points, key=lambda p: _energy(cfg, p))
    cheapest = {
        w: min((p for p in points if p["weight_bits"] == w), key=lambda p: _energy(cfg, p))
        for w in (4, 8)
    }
    footprint = cfg.with_overrides(
        objectives=[
            {"name": "accuracy"},
            {"name": "energy_uj"},
            {"name": "footprint_bytes_crossbar"},
        ]
    )
    picks = [{k: p[k] for k in dearest} for p in _pick(footprint, dearest)]
    expected = [p for p in cheapest.values() if p != dearest]
    assert sorted(picks, key=str) == sorted(expected, key=str)
    picks = [{k: p[k] for k in dearest} for p in _pick(cfg, dearest)]
    assert picks == [min(points, key=lambda p: _energy(cfg, p))]


def test_front_pick_queues_nothing_when_the_network_breaks_a_constraint_of_its_own(
    tmp_path: Path,
) -> None:
    """No hardware point changes a network's parameter count: if the trial broke a bound
    on it, every variant would."""
    cfg = _pick_cfg(
        tmp_path,
        'adc_bits = { type = "int", low = 3, high = 5 }\n'
        'device = { type = "categorical", choices = ["rram", "sram"] }',
    )
    constraints = parse_constraints(["parameter_count <= 100"], cfg.allowed_metrics())
    own = {"adc_bits": 4, "device": "sram"}
    assert _pick(cfg, own, constraints=constraints, metrics={"parameter_count": 5000}) == []
    assert len(_pick(cfg, own, constraints=constraints, metrics={"parameter_count": 50})) >= 2


def test_front_pick_skips_the_own_group_when_the_trial_breaks_a_constraint_it_shares(
    tmp_path: Path,
) -> None:
    """Accuracy is the same at every point sharing the trial's inference knobs: if the trial
    broke an accuracy bound, so would they."""
    cfg = _pick_cfg(
        tmp_path,
        'adc_bits = { type = "int", low = 3, high = 5 }\n'
        'device = { type = "categorical", choices = ["rram", "sram"] }',
    )
    own = max(
        ({"adc_bits": 4, "device": d} for d in ("rram", "sram")), key=lambda p: _energy(cfg, p)
    )
    constraints = parse_constraints(["accuracy >= 0.9"], cfg.allowed_metrics())

    def pick(accuracy: float) -> set[int]:
        chosen = _pick(cfg, own, constraints=constraints, metrics={"accuracy": accuracy})
        return {p["adc_bits"] for p in chosen}

    assert pick(0.95) == {3, 4, 5}  # the cheaper device at the trial's own resolution
    assert pick(0.5) == {3, 5}


def test_front_pick_in_a_space_too_large_to_enumerate(tmp_path: Path) -> None:
    """1024 ADC sharings: a sample of the space is priced, not all of it."""
    cfg = _pick_cfg(
        tmp_path,
        'adc_bits = { type = "int", low = 3, high = 5 }\n'
        'cols_per_adc = { type = "int", low = 1, high = 1024 }',
    )
    own = {"adc_bits": 4, "cols_per_adc": 8}
    picks = _pick(cfg, own)
    assert 1 <= len(picks) <= 4
    hardware = [(p["adc_bits"], p["cols_per_adc"]) for p in picks]
    assert len(set(hardware)) == len(hardware) and (4, 8) not in hardware
    # one point per ADC resolution at most: within one, only the cheapest sharing survives;
    # none shares an ADC between more columns than a crossbar has (the model refuses those)
    assert len({bits for bits, _ in hardware}) == len(hardware)
    assert all(cols <= cfg.preset().knobs["xbar_size"] for _, cols in hardware)


def test_front_pick_without_a_priced_objective_keeps_one_point_per_group(
    tmp_path: Path,
) -> None:
    """Accuracy alone: the device cannot change it, so one point per ADC resolution."""
    cfg = _pick_cfg(
        tmp_path,
        'adc_bits = { type = "int", low = 3, high = 5 }\n'
        'device = { type = "categorical", choices = ["rram", "sram"] }',
    ).with_overrides(objectives=[{"name": "accuracy"}, {"name": "spikes_per_inference"}])
    picks = _pick(cfg, {"adc_bits": 4, "device": "sram"})
    assert sorted(p["adc_bits"] for p in picks) == [3, 5]


def test_variants_are_refused_where_no_hardware_knob_changes_an_objective(
    tmp_path: Path,
) -> None:
    """Float inference and no priced objective: every hardware point scores the same."""
    path = tmp_path / "float.toml"
    text = tiny_study_text().replace("seed = 0", "seed = 0\nhardware_variants = 2")
    text = text.replace('"energy_uj"', '"spikes_per_inference"')
    text = text.replace(
        'preset = "spikesim-65nm"', 'preset = "spikesim-65nm"\ninference = "float"'
    )
    path.write_text(text)
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "study.hardware_variants: no searched hardware knob changes an objective" in (
        result.output
    )
    # the same study with crossbar inference: the ADC changes accuracy
    path.write_text(text.replace('inference = "float"', 'inference = "crossbar"'))
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0
    # or with a bound on a priced metric: the hardware decides which trials meet it
    constrained = text.replace("seed = 0", 'seed = 0\nconstraints = ["area_mm2 <= 5.0"]')
    path.write_text(constrained)
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 0


def test_a_failure_while_queuing_variants_leaves_the_trial_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> list[dict]:
        raise RuntimeError("pick broke")

    monkeypatch.setattr("nmhpo.objective.pick_variants", broken)
    cfg = load_config(_cfg(tmp_path, n_trials=2))
    with caplog.at_level("WARNING", logger="nmhpo.objective"):
        run_study(cfg)
    trials = load_existing(cfg).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    warnings = {r.getMessage() for r in caplog.records if r.name == "nmhpo.objective"}
    assert warnings == {
        f"trial {n}: no hardware variants queued (RuntimeError: pick broke)" for n in (0, 1)
    }
