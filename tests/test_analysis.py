"""Hypervolume, comparisons, importance and the report, on small real Optuna studies."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from nmhpo.analysis import (
    Reach,
    compare_studies,
    hypervolume,
    hypervolume_history,
    importance,
    importance_by_class,
    param_classes,
    reference_point,
)
from nmhpo.errors import ConfigError, StorageError
from nmhpo.record import DETAIL_KEY, Breakdown, Point, RunInfo, TrialRecord, TrialResult
from nmhpo.report import write_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

PNG = b"\x89PNG\r\n\x1a\n"


def _study(name: str, directions: Sequence[str], metric_names: Sequence[str]) -> optuna.Study:
    study = optuna.create_study(study_name=name, directions=list(directions))
    study.set_metric_names(list(metric_names))
    return study


def _complete(
    values: Sequence[float],
    params: dict[str, Any] | None = None,
    distributions: dict[str, Any] | None = None,
    *,
    cpu_s: float | None = None,
    duration_s: float | None = None,
    constraints: dict[str, float] | None = None,
    user_attrs: dict[str, Any] | None = None,
    system_attrs: dict[str, Any] | None = None,
) -> FrozenTrial:
    attrs = dict(user_attrs or {})
    if cpu_s is not None:
        attrs["run.cpu_s"] = cpu_s
    trial = create_trial(
        values=list(values),
        params=params or {},
        distributions=distributions or {},
        user_attrs=attrs,
        system_attrs=system_attrs,
        constraints=constraints,
    )
    if duration_s is not None:
        trial.datetime_start = trial.datetime_complete - dt.timedelta(seconds=duration_s)
    return trial


def _failed(duration_s: float) -> FrozenTrial:
    trial = create_trial(state=TrialState.FAIL)
    trial.datetime_start = trial.datetime_complete - dt.timedelta(seconds=duration_s)
    return trial


# --- hypervolume ------------------------------------------------------------------------------


def test_hypervolume_of_two_rectangles() -> None:
    # (1,2) and (2,1) below (3,3): 2x1 + 1x2 - 1x1 overlap = 3.
    points = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert hypervolume(points, ["minimize", "minimize"], np.array([3.0, 3.0])) == pytest.approx(3)


def test_hypervolume_with_a_maximized_objective() -> None:
    # (acc 0.9, 2 uJ) covers 0.4 x 1, (0.8, 1 uJ) covers 0.3 x 2; they overlap on 0.3 x 1.
    points = np.array([[0.9, 2.0], [0.8, 1.0]])
    hv = hypervolume(points, ["maximize", "minimize"], np.array([0.5, 3.0]))
    assert hv == pytest.approx(0.4 + 0.6 - 0.3)
    dirs = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    assert hypervolume(points, dirs, np.array([0.5, 3.0])) == pytest.approx(0.7)


def test_points_beyond_the_reference_add_nothing() -> None:
    ref = np.array([3.0, 3.0])
    dirs = ["minimize", "minimize"]
    inside = np.array([[1.0, 1.0]])
    beyond = np.array([[1.0, 1.0], [4.0, 0.0], [0.0, 5.0], [3.0, 0.0], [np.nan, 0.0]])
    assert hypervolume(inside, dirs, ref) == pytest.approx(4.0)
    assert hypervolume(beyond, dirs, ref) == pytest.approx(4.0)
    assert hypervolume(np.array([[4.0, 4.0]]), dirs, ref) == 0.0
    assert hypervolume(np.empty((0, 2)), dirs, ref) == 0.0


def test_hypervolume_in_three_dimensions() -> None:
    cube = hypervolume(np.zeros((1, 3)), ["minimize"] * 3, np.array([1.0, 2.0, 3.0]))
    assert cube == pytest.approx(6.0)


def test_reference_point_pushes_the_worst_value_out_by_a_tenth_of_the_range() -> None:
    a = np.array([[1.0, 10.0], [3.0, 5.0]])
    b = np.array([[2.0, 8.0]])
    ref = reference_point([a, b], ["minimize", "minimize"])
    assert ref == pytest.approx([3.2, 10.5])
    # Maximized: the worst is the lowest; a zero range is replaced by |worst|, then by 1.
    ref = reference_point(
        [np.array([[0.9, -5.0, 0.0], [0.7, -5.0, 0.0]])], ["maximize", "minimize", "minimize"]
    )
    assert ref == pytest.approx([0.68, -4.5, 0.1])
    # Every point lies strictly inside, so each one alone has a positive hypervolume.
    ref = reference_point([a, b], ["minimize", "minimize"])
    for p in np.concatenate([a, b]):
        assert hypervolume(p[None, :], ["minimize", "minimize"], ref) > 0


def test_reference_point_needs_a_point() -> None:
    with pytest.raises(ValueError, match="at least one finite point"):
        reference_point([np.empty((0, 2))], ["minimize", "minimize"])


# --- hypervolume history ----------------------------------------------------------------------


def test_history_skips_failed_and_infeasible_trials() -> None:
    study = _study("h", ["minimize", "minimize"], ["a", "b"])
    study.add_trial(_complete([2.0, 2.0], constraints={"c": -1.0}))
    study.add_trial(_complete([0.0, 0.0], constraints={"c": 1.0}))  # infeasible: dominates all
    study.add_trial(_failed(1.0))
    study.add_trial(_complete([1.0, 3.0], constraints={"c": 0.0}))  # on the bound: feasible
    history = hypervolume_history(study, np.array([4.0, 4.0]))
    assert history.tolist() == pytest.approx([4.0, 4.0, 5.0])


def test_history_reads_the_old_constraints_list() -> None:
    study = _study("old", ["minimize", "minimize"], ["a", "b"])
    study.add_trial(create_trial(values=[1.0, 1.0], system_attrs={"constraints": [0.5]}))
    study.add_trial(create_trial(values=[2.0, 2.0], system_attrs={"constraints": [-0.5]}))
    assert hypervolume_history(study, np.array([3.0, 3.0])).tolist() == pytest.approx([0, 1])


def test_history_is_monotone_and_ends_at_the_hypervolume_of_all() -> None:
    rng = np.random.default_rng(1)
    study = _study("r", ["maximize", "minimize", "minimize"], ["a", "b", "c"])
    values = rng.random((40, 3))
    for v in values:
        study.add_trial(_complete(v.tolist()))
    dirs = ["maximize", "minimize", "minimize"]
    ref = reference_point([values], dirs)
    history = hypervolume_history(study, ref)
    assert len(history) == 40
    assert np.all(np.diff(history) >= 0)
    assert history[-1] == pytest.approx(hypervolume(values, dirs, ref))
    assert history[0] == pytest.approx(hypervolume(values[:1], dirs, ref))


# --- compare_studies --------------------------------------------------------------------------

GRID_DISTS = {"x": IntDistribution(0, 3), "y": IntDistribution(0, 1)}


def _point(x: int, y: int, **kwargs: Any) -> FrozenTrial:
    """f1 = x + y, f2 = 3 - x + y (both minimized): the Pareto set is y = 0, x = 0..3, and
    its hypervolume to (4.4, 4.4) is 1.4 + 2.4 + 3.4 + 6.16 = 13.36."""
    return _complete([x + y, 3 - x + y], {"x": x, "y": y}, GRID_DISTS, **kwargs)


def _grid() -> optuna.Study:
    grid = _study("grid", ["minimize", "minimize"], ["f1", "f2"])
    for x in range(4):
        for y in range(2):
            grid.add_trial(_point(x, y, cpu_s=1.0))
    return grid


def _finder() -> optuna.Study:
    """Finds the whole grid front at its 6th completed trial (number 6), having spent
    1 + 2 + 10 (failed, by duration) + 4 + 3 (no cpu_s, by duration) + 6 + 7 = 33 CPU s."""
    study = _study("finder", ["minimize", "minimize"], ["f1", "f2"])
    study.add_trial(_point(1, 1, cpu_s=1.0))  # (2, 3)
    study.add_trial(_point(0, 0, cpu_s=2.0))  # (0, 3) grid front
    study.add_trial(_failed(10.0))
    study.add_trial(_point(3, 0, cpu_s=4.0))  # (3, 0) grid front
    study.add_trial(_point(0, 1, duration_s=3.0))  # (1, 4)
    study.add_trial(_point(1, 0, cpu_s=6.0))  # (1, 2) grid front: 12.36, 92.5%
    study.add_trial(_point(2, 0, cpu_s=7.0))  # (2, 1) grid front: 13.36, 100%
    study.add_trial(_point(3, 1, cpu_s=8.0))  # (4, 1)
    return study


def _misser() -> optuna.Study:
    study = _study("misser", ["minimize", "minimize"], ["f1", "f2"])
    for x in (0, 1, 3):
        study.add_trial(_point(x, 1, cpu_s=1.0))
    return study


def test_compare_studies_against_a_grid() -> None:
    result = compare_studies([_finder(), _misser()], _grid(), ks=(2, 6, 100))
    json.dumps(result.to_dict(), allow_nan=False)  # JSON-able
    assert result.objectives == ("f1", "f2")
    assert result.reference == pytest.approx([4.4, 4.4])
    assert result.grid is not None and result.grid.final_hv == pytest.approx(13.36)
    assert result.grid.pareto_size == 4

    finder, misser = result.studies
    assert finder.name == "finder" and finder.n_complete == 7 and finder.n_trials == 8
    assert finder.hv_at == {2: pytest.approx(6.16), 6: pytest.approx(13.36), 100: None}
    assert finder.final_hv == pytest.approx(13.36)
    assert finder.hv_ratio == pytest.approx(1.0)
    for frac in ("95%", "99%", "100%"):
        assert finder.to_grid_hv is not None
        assert finder.to_grid_hv[frac] == Reach(trials=6, trial_number=6, cpu_s=33.0)
    assert finder.grid_front_found == 4 and finder.grid_front_all_found is True
    assert finder.cpu_s_total == pytest.approx(41.0)

    assert misser.to_grid_hv == {"95%": None, "99%": None, "100%": None}
    assert misser.grid_front_found == 0 and misser.grid_front_all_found is False
    assert misser.hv_ratio is not None and 0 < misser.hv_ratio < 0.95
    as_json = result.to_dict()["studies"][0]
    assert as_json["to_grid_hv"]["95%"] == {"trials": 6, "trial_number": 6, "cpu_s": 33.0}
    assert as_json["hv_at"] == {"2": pytest.approx(6.16), "6": pytest.approx(13.36), "100": None}


def test_compare_studies_without_a_grid_has_no_grid_fields() -> None:
    result = compare_studies([_misser()])
    assert result.grid is None
    (misser,) = result.studies
    assert misser.to_grid_hv is None and misser.hv_ratio is None
    assert misser.final_hv > 0
    assert "to_grid_hv" not in result.to_dict()["studies"][0]


def test_compare_studies_refuses_different_objectives() -> None:
    other = _study("other", ["minimize", "maximize"], ["f1", "f2"])
    other.add_trial(_complete([1.0, 1.0]))
    with pytest.raises(StorageError, match="different objectives: 'finder' has f1 \\(minimize\\)"):
        compare_studies([_finder(), other])
    renamed = _study("renamed", ["minimize", "minimize"], ["f1", "energy"])
    with pytest.raises(StorageError, match="'renamed' has f1 \\(minimize\\), energy"):
        compare_studies([_finder()], renamed)
    with pytest.raises(StorageError, match="at least one study"):
        compare_studies([])


# --- importance -------------------------------------------------------------------------------

IMP_DISTS = {
    "x": FloatDistribution(0.0, 1.0),
    "y": FloatDistribution(0.0, 1.0),
    "c": CategoricalDistribution(["a", "b"]),
    "fixed": IntDistribution(3, 3),
}


def _driven_study(n: int = 60) -> optuna.Study:
    """Objective 0 (minimized) is driven by x, objective 1 (maximized) by y; c is noise."""
    rng = np.random.default_rng(0)
    study = _study("driven", ["minimize", "maximize"], ["loss", "gain"])
    for _ in range(n):
        p = {"x": rng.random(), "y": rng.random(), "c": str(rng.choice(["a", "b"])), "fixed": 3}
        noise = 0.01 * rng.random(2)
        study.add_trial(_complete([10 * p["x"] + noise[0], p["y"] + noise[1]], p, IMP_DISTS))
    return study


@pytest.mark.parametrize("evaluator", ["ped-anova", "fanova"])
def test_importance_ranks_the_driving_parameter_first(evaluator: str) -> None:
    study = _driven_study()
    for index, driver in ((0, "x"), (1, "y")):
        imp = importance(study, index, evaluator)  # type: ignore[arg-type]
        assert set(imp) == {"x", "y", "c"}  # "fixed" is not searched
        assert all(v >= 0 for v in imp.values())
        assert sum(imp.values()) == pytest.approx(1.0)
        assert next(iter(imp)) == driver
        assert imp[driver] > 0.5


def test_importance_needs_a_few_trials_and_valid_arguments() -> None:
    assert importance(_driven_study(3), 0) == {}
    study = _driven_study(4)
    assert set(importance(study, 0)) == {"x", "y", "c"}
    with pytest.raises(ConfigError, match="expected 0-1"):
        importance(study, 2)
    with pytest.raises(ConfigError, match="ped-anova or fanova; got 'shap'"):
        importance(study, 0, "shap")  # type: ignore[arg-type]


def test_importance_by_class_sums_per_class() -> None:
    imp = {"lr": 0.5, "adc_bits": 0.3, "xbar_size": 0.1, "mystery": 0.1}
    classes = {"lr": "training", "adc_bits": "hardware", "xbar_size": "hardware"}
    by_class = importance_by_class(imp, classes)
    assert by_class == pytest.approx({"training": 0.5, "hardware": 0.4, "other": 0.1})
    assert list(by_class) == ["training", "hardware", "other"]


def test_param_classes_from_the_study_config() -> None:
    study = _study("cfg", ["minimize"], ["loss"])
    study.set_user_attr(
        "nmhpo_config",
        {
            "space": {
                "software": {
                    "lr": {"type": "float", "low": 1e-3, "high": 1e-1},
                    "num_steps": {"type": "int", "low": 2, "high": 8},
                    "epochs": {"type": "fixed", "value": 2},
                    "beta": {"type": "float", "low": 0.5, "high": 0.9, "class": "custom"},
                    "new_knob": {"type": "int", "low": 1, "high": 3},
                },
                "hardware": {
                    "adc_bits": {"type": "int", "low": 3, "high": 8},
                    "new_device_knob": {"type": "categorical", "choices": [1, 2]},
                },
            }
        },
    )
    assert param_classes(study) == {
        "lr": "training",
        "num_steps": "encoding",
        "beta": "custom",
        "new_knob": "training",
        "adc_bits": "hardware",
        "new_device_knob": "hardware",
    }


def test_param_classes_of_a_foreign_study_come_from_its_trials() -> None:
    study = _study("foreign", ["minimize"], ["loss"])
    dists = {"num_steps": IntDistribution(2, 8), "zzz": FloatDistribution(0, 1)}
    study.add_trial(_complete([1.0], {"num_steps": 2, "zzz": 0.5}, dists))
    assert param_classes(study) == {"num_steps": "encoding", "zzz": "other"}


# --- write_report -----------------------------------------------------------------------------

CODESIGN_DISTS = {"num_steps": IntDistribution(2, 12), "adc_bits": IntDistribution(3, 8)}
CODESIGN_CONFIG = {
    "space": {
        "software": {"num_steps": {"type": "int", "low": 2, "high": 12}},
        "hardware": {"adc_bits": {"type": "int", "low": 3, "high": 8}},
    }
}


def _codesign(
    name: str, points: list[tuple[int, int]], area_limit: float | None, *, legacy: bool = False
) -> optuna.Study:
    """Accuracy (max) and energy (min) with the attributes a real nmhpo trial stores (or, with
    ``legacy``, the dictionaries nmhpo 0.1 stored)."""
    study = _study(name, ["maximize", "minimize"], ["accuracy", "energy_uj"])
    study.set_user_attr("nmhpo_config", CODESIGN_CONFIG)
    for steps, bits in points:
        acc = 0.95 - 0.3 * np.exp(-steps / 3) - 0.2 * 2.0**-bits
        energy = {"adc": 0.5 * 2**bits * steps, "xbar": 0.2 * steps, "leakage": 0.3}
        area = {"xbar": 1e4, "adc": 3e3 * bits}
        total = sum(energy.values())
        metrics = {
            "accuracy": acc,
            "energy_uj": total * 1e-6,
            "area_mm2": sum(area.values()) / 1e6,
        }
        by_layer = (0.6 * total, 0.4 * total)
        result = TrialResult(
            metrics=metrics,
            breakdown=Breakdown(energy, area, by_layer),
            point=Point({"num_steps": steps}, {"adc_bits": bits}, "crossbar", ((64, 10),)),
            run=RunInfo(True, "key", 1, 0.5, 2, 0.1, 0.01, 0.001, cpu_s=1.5, worker="h:1"),
        )
        legacy_attrs = {
            "metrics": metrics,
            "breakdown": {
                "energy_pj": energy,
                "area_um2": area,
                "energy_by_layer_pj": list(by_layer),
            },
            "run": {"cpu_s": 1.5},
        }
        study.add_trial(
            _complete(
                [acc, total * 1e-6],
                {"num_steps": steps, "adc_bits": bits},
                CODESIGN_DISTS,
                constraints=None
                if area_limit is None
                else {"area": metrics["area_mm2"] - area_limit},
                user_attrs=legacy_attrs if legacy else result.to_user_attrs(),
                system_attrs=None if legacy else {DETAIL_KEY: result.detail()},
            )
        )
    study.add_trial(_failed(2.0))
    return study


def _grid_points() -> list[tuple[int, int]]:
    return [(s, b) for s in range(2, 13, 2) for b in range(3, 9)]


@pytest.mark.parametrize("legacy", [False, True])
def test_write_report_writes_every_file(tmp_path: Path, legacy: bool) -> None:
    points = _grid_points()
    order = np.random.default_rng(0).permutation(len(points))
    study = _codesign("tpe", [points[i] for i in order[:20]], area_limit=0.03, legacy=legacy)
    grid = _codesign("grid", points, area_limit=0.03, legacy=legacy)
    report = write_report(study, tmp_path / "rep", grid=grid)

    names = {p.name for p in report.files}
    assert names == {
        "trials.csv",
        "trials.json",
        "pareto.json",
        "pareto_front.png",
        "hypervolume.json",
        "hypervolume_history.png",
        "hypervolume_cpu.png",
        "importance.png",
        "breakdown.png",
    }
    for path in report.files:
        assert path.is_file() and path.stat().st_size > 100
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG
    trials = json.loads((tmp_path / "rep" / "trials.json").read_text())
    assert len(trials) == report.n_trials == 21
    assert sum(row["feasible"] is True for row in trials) == report.n_feasible
    assert report.constrained and 0 < report.n_feasible < 20
    assert report.pareto_records and all(row["feasible"] for row in report.pareto_records)
    assert [row["number"] for row in report.pareto_records] == [t.number for t in report.pareto]
    assert report.breakdown_trial == report.pareto[0].number
    comparison = json.loads((tmp_path / "rep" / "hypervolume.json").read_text())
    assert comparison["grid"]["name"] == "grid"
    assert report.hypervolume == pytest.approx(comparison["studies"][0]["final_hv"])
    assert 0 < comparison["studies"][0]["hv_ratio"] <= 1 + 1e-9
    header = (tmp_path / "rep" / "trials.csv").read_text().splitlines()[0].split(",")
    assert {"feasible", "constraint_area", "cpu_s", "energy_pj_adc"} <= set(header)


def test_write_report_with_few_trials_skips_importance(tmp_path: Path) -> None:
    study = _codesign("small", [(2, 3), (12, 8)], area_limit=None)
    (tmp_path / "importance.png").write_bytes(PNG)  # left by an earlier, larger report
    report = write_report(study, tmp_path, trial_number=1)
    names = {p.name for p in report.files}
    assert "importance.png" not in names and not (tmp_path / "importance.png").exists()
    assert {"pareto_front.png", "hypervolume_history.png", "breakdown.png"} <= names
    assert report.breakdown_trial == 1 and not report.constrained and report.n_feasible == 2


def test_write_report_rejects_a_missing_trial_and_a_foreign_grid(tmp_path: Path) -> None:
    study = _codesign("small", [(2, 3), (12, 8)], area_limit=None)
    with pytest.raises(ConfigError, match="trial number of study 'small' \\(0-2\\); got 7"):
        write_report(study, tmp_path, trial_number=7)
    with pytest.raises(StorageError, match="different objectives"):
        write_report(study, tmp_path, grid=_finder())
    out = tmp_path / "failed"
    # The failed trial: refused in one line before anything is written, as export refuses it.
    with pytest.raises(ConfigError, match=r"^trial 2 of study 'small' is FAIL and has no"):
        write_report(study, out, trial_number=2)
    assert not out.exists()


# --- the trial record -------------------------------------------------------------------------


def test_trial_record_round_trips_through_user_attrs() -> None:
    study = _codesign("rt", [(4, 5)], area_limit=None)
    trial = study.trials[0]
    record = TrialRecord.from_trial(trial)
    assert record.result is not None
    # Every stored user attribute is a scalar: optuna-dashboard shows each as a sortable column.
    assert all(isinstance(v, int | float | str) for v in trial.user_attrs.values())
    assert {"accuracy", "energy_uj", "run.cpu_s", "energy_pj.adc", "area_um2.xbar"} <= set(
        trial.user_attrs
    )
    again = TrialResult.from_attrs(record.result.to_user_attrs(), record.result.detail())
    assert again == record.result
    assert record.result.breakdown.energy_by_layer_pj == pytest.approx(
        [
            0.6 * sum(record.result.breakdown.energy_pj.values()),
            0.4 * sum(record.result.breakdown.energy_pj.values()),
        ]
    )
    assert record.cpu_s == 1.5 and record.feasible is True and record.state == "COMPLETE"


def test_legacy_records_read_like_new_ones() -> None:
    new = TrialRecord.from_trial(_codesign("n", [(4, 5)], area_limit=None).trials[0])
    old = TrialRecord.from_trial(_codesign("o", [(4, 5)], area_limit=None, legacy=True).trials[0])
    assert old.result is not None and new.result is not None
    assert old.metrics == new.metrics
    assert old.result.breakdown == new.result.breakdown
    assert old.cpu_s == new.cpu_s
    assert old.row(["accuracy", "energy_uj"])["energy_pj_adc"] == pytest.approx(
        new.row(["accuracy", "energy_uj"])["energy_pj_adc"]
    )


def test_a_failed_or_foreign_trial_has_no_result() -> None:
    failed = TrialRecord.from_trial(_failed(2.0))
    assert failed.result is None and failed.cpu_s == pytest.approx(2.0)
    foreign = TrialRecord.from_trial(_complete([1.0], user_attrs={"note": "mine"}))
    assert foreign.result is None and foreign.metrics == {}
