"""Multi-fidelity search: rungs, decisions by non-dominated rank, stopped trials as the
sampler's observations, checkpoints, and pruned studies end to end (one and two workers,
killed and resumed)."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nmhpo import load_config
from nmhpo.config import PruningSection
from nmhpo.multifidelity import (
    as_observation,
    decide,
    decide_for_trial,
    nondominated_ranks,
    rung_attrs,
    rung_epochs,
    wrap_sampler,
)
from nmhpo.record import TrialRecord
from tests.conftest import count_trials, kill_once_trials_run, tiny_study_text

CMD = [sys.executable, "-m", "nmhpo"]


def _pruned_study_text(n_trials: int, epochs: int = 4, **pruning: object) -> str:
    options = {"min_trials": 2, **pruning}
    table = "\n".join(f"{k} = {str(v).lower()}" for k, v in options.items())
    return (
        tiny_study_text(sampler="tpe", n_trials=n_trials, pruner="asha")
        .replace("epochs = 2", f"epochs = {epochs}")
        .replace("[task]", f"[study.pruning]\n{table}\n\n[task]")
    )


def test_searches_prune_by_default_and_grids_do_not(tmp_path: Path) -> None:
    for sampler, expected in (("tpe", "asha"), ("gp", "asha"), ("grid", "none")):
        text = tiny_study_text(sampler=sampler).replace('pruner = "none"\n', "")
        assert load_config(_write(tmp_path, text)).study.pruner == expected
    # `nmhpo grid` of a pruned search runs every point in full.
    from nmhpo.grid import grid_config

    search = load_config(_write(tmp_path, tiny_study_text(pruner="asha")))
    assert grid_config(search).study.pruner == "none"


@pytest.mark.parametrize(
    ("min_epochs", "factor", "epochs", "expected"),
    [(1, 3.0, 20, [1, 3, 9]), (1, 3.0, 9, [1, 3]), (1, 3.0, 1, []), (2, 2.0, 10, [2, 4, 8])],
)
def test_rungs_lie_below_the_last_epoch(
    min_epochs: int, factor: float, epochs: int, expected: list[int]
) -> None:
    pruning = PruningSection(min_epochs=min_epochs, reduction_factor=factor)
    assert rung_epochs(pruning, epochs) == expected


def test_nondominated_ranks_match_optuna() -> None:
    from optuna.study._multi_objective import _fast_non_domination_rank

    rng = np.random.default_rng(0)
    loss = rng.integers(0, 6, size=(40, 3)).astype(float)  # many ties and duplicates
    np.testing.assert_array_equal(nondominated_ranks(loss), _fast_non_domination_rank(loss))


def test_a_dominated_learning_curve_is_stopped_and_a_front_point_is_not() -> None:
    # (1 - accuracy, energy) at a rung for six trials, all minimised.
    loss = np.array(
        [
            [0.10, 5.0],  # accurate, costly: on the front
            [0.30, 1.0],  # cheap: on the front
            [0.20, 2.0],  # between: on the front
            [0.40, 6.0],  # dominated by all three
            [0.35, 5.5],  # dominated
            [0.80, 0.5],  # the cheapest: on the front however inaccurate
        ]
    )
    kw = {"reduction_factor": 3.0, "min_trials": 3}
    for me in (0, 1, 2, 5):
        assert decide(loss, me, **kw).go_on, me
        assert decide(loss, me, **kw).on_front
    for me in (3, 4):
        decision = decide(loss, me, **kw)
        assert not decision.go_on and decision.n_keep == 2 and decision.n == 6
        assert "rank" in decision.reason(3)
    # Too few trials at the rung to decide: everyone goes on.
    assert decide(loss[[0, 3]], 1, reduction_factor=3.0, min_trials=3).go_on
    # Off the front but within the best ceil(n / eta): goes on.
    assert decide(loss[[0, 3, 4]], 2, reduction_factor=1.5, min_trials=1).go_on


def test_an_infeasible_trial_ranks_after_every_feasible_one() -> None:
    loss = np.array([[0.1, 1.0], [0.5, 5.0], [0.6, 6.0], [0.7, 7.0]])
    violation = np.array([2.0, 0.0, 0.0, 0.0])  # the best point breaks a constraint
    assert not decide(loss, 0, reduction_factor=2.0, min_trials=1, violation=violation).go_on
    assert decide(loss, 1, reduction_factor=2.0, min_trials=1, violation=violation).go_on


def _trial(number: int, state: TrialState, attrs: dict[str, float]) -> optuna.trial.FrozenTrial:
    trial = create_trial(
        state=state,
        values=[0.9, 1.0] if state == TrialState.COMPLETE else None,
        params={"lr": 0.01 * (number + 1)},
        distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)},
        user_attrs=attrs,
    )
    trial.number = number
    return trial


def test_decisions_read_every_trial_at_the_rung_whatever_its_state(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, _pruned_study_text(4, min_trials=3)))
    at = {
        "complete": rung_attrs(1, {"accuracy": 0.9, "energy_uj": 1.0}, cpu_s=1, eval_s=0),
        "running": rung_attrs(1, {"accuracy": 0.8, "energy_uj": 0.5}, cpu_s=1, eval_s=0),
        "pruned": rung_attrs(1, {"accuracy": 0.3, "energy_uj": 0.9}, cpu_s=1, eval_s=0),
    }
    trials = [
        _trial(0, TrialState.COMPLETE, at["complete"]),
        _trial(1, TrialState.RUNNING, at["running"]),
        _trial(2, TrialState.PRUNED, at["pruned"]),
        _trial(3, TrialState.FAIL, at["complete"]),  # a killed trial: its re-run counts
        _trial(4, TrialState.COMPLETE, {}),  # never reached the rung (a cached network)
    ]
    # Dominated by trial 0: stopped (4 trials at the rung, the best 2 go on).
    stop = decide_for_trial(cfg, trials, 5, 1, [0.85, 1.2])
    assert not stop.go_on and stop.n == 4
    # Cheaper than anyone: on the front, goes on.
    assert decide_for_trial(cfg, trials, 5, 1, [0.2, 0.1]).go_on
    # At a rung nobody else reached: too few to decide.
    assert decide_for_trial(cfg, trials, 5, 3, [0.1, 9.0]).go_on


def test_the_sampler_sees_stopped_trials_as_observations_at_their_last_rung(
    tmp_path: Path,
) -> None:
    cfg = load_config(_write(tmp_path, _pruned_study_text(4)))
    study = optuna.create_study(directions=["maximize", "minimize"])
    rng = random.Random(0)
    for i in range(3):
        study.add_trial(
            create_trial(
                values=[rng.random(), rng.random()],
                params={"lr": 0.01 * (i + 1)},
                distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)},
            )
        )
    for i in range(3):
        attrs = {
            **rung_attrs(1, {"accuracy": 0.2 + i / 10, "energy_uj": 0.5}, cpu_s=1, eval_s=0),
            **rung_attrs(3, {"accuracy": 0.4 + i / 10, "energy_uj": 0.6}, cpu_s=2, eval_s=0),
        }
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED,
                params={"lr": 0.1 * (i + 1)},
                distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)},
                user_attrs=attrs,
            )
        )
    seen = as_observation(study.trials[3], ["accuracy", "energy_uj"])
    assert seen is not None and seen.state == TrialState.COMPLETE
    assert seen.values == [0.4, 0.6]  # the last rung's values
    assert study.trials[3].state == TrialState.PRUNED  # the stored trial is untouched

    space = {"lr": FloatDistribution(1e-3, 1.0, log=True)}

    def relative(sampler: optuna.samplers.BaseSampler) -> dict[str, object]:
        trial = study.ask()
        out = sampler.sample_relative(study, study._storage.get_trial(trial._trial_id), space)
        study.tell(trial, state=TrialState.FAIL)
        return out

    # GP waits for 5 completed trials: 3 exist, 6 once the stopped ones count.
    gp = optuna.samplers.GPSampler(seed=0, n_startup_trials=5)
    assert relative(gp) == {}
    assert "lr" in relative(
        wrap_sampler(optuna.samplers.GPSampler(seed=0, n_startup_trials=5), cfg)
    )
    unwrapped = load_config(_write(tmp_path, _pruned_study_text(4, learn_from_stopped=False)))
    assert wrap_sampler(gp, unwrapped) is gp


class Stop(Exception):
    """Raised by `stop_at_3`: a rung callback that stops the point at epoch 3."""


def stop_at_3(epoch: int, result: object) -> None:
    if epoch == 3:
        raise Stop


def _write(folder: Path, text: str, name: str = "tiny.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_stopped_point_resumes_from_its_checkpoint_with_the_same_result(
    tmp_path: Path,
) -> None:
    from nmhpo.objective import evaluate_point
    from nmhpo.snn import ModelStore

    cfg = load_config(_write(tmp_path, _pruned_study_text(4)))
    software = {**cfg.fixed_software(), "lr": 0.02, "num_steps": 2, "encoding": "rate"}
    hardware = {**cfg.fixed_hardware(), "xbar_size": 32, "adc_bits": 4}
    store = ModelStore(tmp_path / "models")

    with pytest.raises(Stop):
        evaluate_point(cfg, software, hardware, store, rungs=[1, 3], on_rung=stop_at_3)
    assert (
        len(
            store.checkpoint_epochs(
                next(iter({p.stem.split(".")[0] for p in (tmp_path / "models").iterdir()}))
            )
        )
        == 2
    )

    seen: list[int] = []
    again = evaluate_point(
        cfg,
        software,
        {**hardware, "adc_bits": 5},  # another hardware point of the same software point
        store,
        rungs=[1, 3],
        on_rung=lambda epoch, result: seen.append(epoch),
    )
    assert seen == [1, 3] and again.run.resumed_epochs == 3 and again.run.trained
    assert again.run.epochs_run == 4
    # The same network as one trained without a stop, and the checkpoints are gone.
    fresh = evaluate_point(cfg, software, {**hardware, "adc_bits": 5}, None)
    assert again.metrics["accuracy"] == fresh.metrics["accuracy"]
    assert again.metrics["energy_pj"] == fresh.metrics["energy_pj"]
    assert store.checkpoint_epochs(again.run.model_key) == []
    # A later trial of the point reuses the whole network and skips the rungs.
    seen.clear()
    third = evaluate_point(
        cfg, software, hardware, store, rungs=[1, 3], on_rung=lambda e, r: seen.append(e)
    )
    assert seen == [] and not third.run.trained


def test_a_pruned_study_end_to_end(tmp_path: Path) -> None:
    from nmhpo.api import open_study, run_study

    path = _write(tmp_path, _pruned_study_text(n_trials=6, epochs=4))
    cfg = load_config(path)
    run_study(cfg)
    study = open_study(path)
    records = study.trials()
    complete = [r for r in records if r.state == "COMPLETE"]
    pruned = [r for r in records if r.state == "PRUNED"]
    assert len(complete) == 6
    assert pruned, "no trial was stopped; the test study no longer exercises pruning"
    for r in pruned:
        assert r.pruned is not None and r.pruned.epoch in (1, 3)
        assert r.pruned.epochs_saved == 4 - r.pruned.epoch and r.pruned.cpu_s > 0
        assert set(r.rungs[r.pruned.epoch]) >= {"accuracy", "energy_uj", "cpu_s", "eval_s"}
        assert r.result is None  # rung values are not the trial's result
    for r in complete:
        if r.result is not None and r.result.run.trained:
            assert sorted(r.rungs) == [1, 3]
            assert "rung1.accuracy" not in r.metrics
    report = study.report(tmp_path / "report")
    assert {"pruning.json", "hypervolume_cpu.png"} <= {p.name for p in report.files}
    assert report.pruning is not None
    assert report.pruning.n_stopped == len(pruned)
    assert report.pruning.epochs_saved == sum(r.pruned.epochs_saved for r in pruned if r.pruned)
    assert sum(report.pruning.stopped_at.values()) == len(pruned)
    assert report.pruning.rung_eval_s > 0
    stored = json.loads((tmp_path / "report" / "pruning.json").read_text())
    assert set(stored["rung_agreement"]) == {str(e) for e in report.pruning.rung_agreement}
    assert stored["rung_agreement_n"] == {
        str(e): n for e, n in report.pruning.rung_agreement_n.items()
    }
    reached = {e: sum(e in r.rungs for r in complete) for e in (1, 3)}
    assert set(report.pruning.rung_agreement) == {e for e, n in reached.items() if n >= 3}
    for epoch, row in report.pruning.rung_agreement.items():
        assert epoch in (1, 3) and report.pruning.rung_agreement_n[epoch] >= 3
        assert set(row) == {"accuracy", "energy_uj"}
        assert all(v is None or -1.0 <= v <= 1.0 for v in row.values())


def _record(number: int, final: tuple[float, float], rungs: dict) -> TrialRecord:  # type: ignore[type-arg]
    return TrialRecord(
        number=number,
        state="COMPLETE",
        values=final,
        params={},
        constraints={},
        feasible=True,
        duration_s=1.0,
        fail_reason=None,
        result=None,
        rungs=rungs,
    )


def test_rung_agreement_ranks_rung_values_against_final_ones() -> None:
    from nmhpo.analysis import _rung_agreement

    recs = [
        _record(
            i,
            (0.5 + 0.1 * i, 1.0 + i),
            {
                # rung 1: accuracy in the reverse order of the end, energy constant
                1: {"accuracy": 0.9 - 0.1 * i, "energy_uj": 2.0, "cpu_s": 1.0},
                # rung 3: the end's order with other values
                3: {"accuracy": 0.1 * i**2, "energy_uj": 5.0 + i, "cpu_s": 2.0},
            },
        )
        for i in range(5)
    ]
    # a rung only two trials reached is left out
    recs += [_record(5 + i, (0.1, 1.0), {9: {"accuracy": 0.1, "energy_uj": 1.0}}) for i in (0, 1)]
    # a diverged rung value and a rung without energy skip only their own pairs
    recs.append(_record(7, (0.0, 0.5), {3: {"accuracy": float("nan"), "energy_uj": 4.0}}))
    recs.append(_record(8, (2.0, 99.0), {3: {"accuracy": 100.0}}))
    # stopped and failed trials have no final values to compare with
    for state in ("PRUNED", "FAIL"):
        recs.append(
            dataclasses.replace(
                _record(9, (0.0, 0.0), {1: {"accuracy": 5.0, "energy_uj": 0.0}}),
                state=state,
                values=None,
            )
        )
    agreement, counts = _rung_agreement(recs, ["accuracy", "energy_uj"])
    assert counts == {1: 5, 3: 7}
    assert agreement[1] == {"accuracy": pytest.approx(-1.0), "energy_uj": None}
    # rung 3: trial 7's energy (4.0 against 0.5, both lowest) and trial 8's accuracy (100
    # against 2.0, both highest) extend the same order
    assert agreement[3] == {"accuracy": pytest.approx(1.0), "energy_uj": pytest.approx(1.0)}


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=False)


def test_two_workers_decide_with_each_others_rung_values(tmp_path: Path) -> None:
    path = _write(tmp_path, _pruned_study_text(n_trials=10, epochs=12))
    result = subprocess.run(
        [*CMD, "run", str(path), "--workers", "2"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    trials = [
        TrialRecord.from_trial(t) for t in _trials(f"sqlite:///{tmp_path / 'nmhpo-studies.db'}")
    ]
    # (the other worker finishes the trial it has started when the target is reached)
    assert 10 <= sum(t.state == "COMPLETE" for t in trials) <= 11
    workers = {t.result.run.worker for t in trials if t.result is not None}
    workers |= {t.pruned.worker for t in trials if t.pruned is not None}
    assert len(workers) == 2
    # Some decision counted a trial of the other worker at its rung.
    crossed = False
    for t in trials:
        if t.pruned is None:
            continue
        others = [
            u
            for u in trials
            if u.number != t.number
            and t.pruned.epoch in u.rungs
            and (u.pruned.worker if u.pruned else u.result and u.result.run.worker)
            != t.pruned.worker
        ]
        crossed |= bool(others)
    assert crossed


def test_killed_and_resumed_pruned_study_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    text = _pruned_study_text(n_trials=10, epochs=30).replace("n_train = 600", "n_train = 600\n")
    path = _write(tmp_path, text.replace('name = "tiny"', 'name = "tiny"\nheartbeat_s = 1'))
    database = tmp_path / "nmhpo-studies.db"
    storage = f"sqlite:///{database}"
    rng = random.Random(3)
    seen: dict[int, tuple[float, ...]] = {}
    kills = mid_trial = 0
    for _ in range(3):
        before = count_trials(database)
        proc = subprocess.Popen(
            [*CMD, "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        kills += kill_once_trials_run(proc, database, before, rng, within_s=3.0)
        proc.wait(timeout=30)
        try:
            stored = _trials(storage)
        except KeyError:  # killed before the study existed (slow start)
            continue
        for t in stored:
            if t.state == TrialState.COMPLETE:
                assert seen.setdefault(t.number, tuple(t.values)) == tuple(t.values)
        mid_trial += any(t.state == TrialState.RUNNING for t in stored)
    assert kills >= 2, "the study finished too fast to be killed; make it longer"
    assert mid_trial >= 1, "no kill landed during a trial; change the kill times"
    done = subprocess.run([*CMD, "run", str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    trials = _trials(storage)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 10
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    for t in trials:
        if t.number in seen:
            assert t.state == TrialState.COMPLETE and tuple(t.values) == seen[t.number]
    # Each suggested point completed at most once (a killed trial's re-run replaces it).
    points = [tuple(sorted(t.params.items())) for t in trials if t.state == TrialState.COMPLETE]
    assert len(points) == len(set(points))


def test_a_hybrid_point_counts_its_fine_tuning_epochs_in_rungs_and_resumes_after_them(
    tmp_path: Path,
) -> None:
    """epochs = 2 ReLU epochs + finetune_epochs = 2: the rung at epoch 3 is mid fine-tuning."""
    from nmhpo.objective import evaluate_point
    from nmhpo.snn import ModelStore

    text = _pruned_study_text(4, epochs=2).replace(
        "hidden_size = 32", 'hidden_size = 32\ntraining = "hybrid"\nfinetune_epochs = 2'
    )
    cfg = load_config(_write(tmp_path, text))
    software = {**cfg.fixed_software(), "lr": 0.02, "num_steps": 2, "encoding": "rate"}
    hardware = {**cfg.fixed_hardware(), "xbar_size": 32, "adc_bits": 4}
    store = ModelStore(tmp_path / "models")

    with pytest.raises(Stop):
        evaluate_point(cfg, software, hardware, store, rungs=[1, 3], on_rung=stop_at_3)
    again = evaluate_point(cfg, software, hardware, store, rungs=[1, 3])
    assert again.run.resumed_epochs == 3 and again.run.epochs_run == 4
    fresh = evaluate_point(cfg, software, hardware, None)
    assert fresh.run.epochs_run == 4
    assert again.metrics["accuracy"] == fresh.metrics["accuracy"]
