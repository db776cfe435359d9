"""Hardware variants: a network a trial trains is scored at other hardware points too, each
as a trial of its own, from the train-once cache."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from nmhpo.cli import app
from nmhpo.config import load_config
from nmhpo.database import create_or_load, open_storage
from nmhpo.errors import ConfigError
from nmhpo.objective import Objective
from nmhpo.record import TrialRecord, TrialResult
from nmhpo.snn import ModelStore
from nmhpo.space import hardware_variants
from nmhpo.study import load_existing, run_study
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
    assert "4 trials (each trained network scored at 2 more hardware points)" in checked.stdout
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
