"""Judging the search end to end: grid baseline, comparison, repeats, constraints."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from nmhpo.cli import app
from nmhpo.config import load_config
from nmhpo.record import TrialRecord
from nmhpo.study import load_existing, run_study
from tests.conftest import tiny_study_text, users_digits

pytestmark = pytest.mark.slow
runner = CliRunner()


def _study(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _small_grid_text(n_trials: int = 3) -> str:
    # 8 grid points: lr 2 x encoding 2 x xbar 2 (steps and adc fixed)
    text = tiny_study_text(n_trials=n_trials)
    text = text.replace('num_steps = { type = "int", low = 2, high = 3 }', "num_steps = 2")
    return text.replace(
        'adc_bits = { type = "int", low = 3, high = 5, grid = [3, 5] }', "adc_bits = 4"
    )


def test_grid_runs_every_point_once_as_name_grid_and_resumes(tmp_path: Path) -> None:
    path = _study(tmp_path, _small_grid_text())
    result = runner.invoke(app, ["grid", str(path)])
    assert result.exit_code == 0, result.output
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("grid of 8 points (lr 2 x encoding 2 x xbar_size 2)")
    storage = f"sqlite:///{tmp_path / 'nmhpo-studies.db'}"
    trials = optuna.load_study(study_name="tiny-grid", storage=storage).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 8
    assert set(Counter(tuple(sorted(t.params.items())) for t in complete).values()) == {1}
    again = runner.invoke(app, ["grid", str(path)])
    assert again.exit_code == 0 and "(0 run now" in again.stdout


def test_grid_without_levels_for_a_float_is_one_line_exit_2(tmp_path: Path) -> None:
    path = _study(tmp_path, tiny_study_text().replace(", grid = [0.01, 0.03]", ""))
    result = runner.invoke(app, ["grid", str(path)])
    assert result.exit_code == 2
    assert "space.software.lr.grid: a grid needs levels" in result.stderr
    assert not (tmp_path / "nmhpo-studies.db").exists()


def test_compare_a_search_with_its_grid(tmp_path: Path) -> None:
    path = _study(tmp_path, _small_grid_text(n_trials=5))
    assert runner.invoke(app, ["grid", str(path)]).exit_code == 0
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "to 99%" in result.stdout and "tiny-grid" in result.stdout
    data = json.loads((out / "compare.json").read_text())
    (tiny,) = data["studies"]
    assert data["grid"]["n_complete"] == 8 and tiny["n_complete"] == 5
    assert tiny["hv_ratio"] > 0  # may exceed 1: the search also tries lr between grid levels
    assert set(tiny["to_grid_hv"]) == {"95%", "99%", "100%"}
    assert tiny["grid_front_found"] <= tiny["grid_front_size"]
    for png in ("hv_vs_trials.png", "hv_vs_cpu.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert all(t["cpu_history"] == sorted(t["cpu_history"]) for t in data["studies"])
    # the report now overlays the grid and plots the hypervolume against it
    rep = runner.invoke(
        app, ["report", str(path), "--out", str(tmp_path / "rep"), "--importance", "fanova"]
    )
    assert rep.exit_code == 0, rep.output
    assert (tmp_path / "rep" / "hypervolume_history.png").is_file()
    assert (tmp_path / "rep" / "importance.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_without_a_grid_needs_two_studies(tmp_path: Path) -> None:
    path = _study(tmp_path, _small_grid_text(n_trials=2))
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    result = runner.invoke(app, ["compare", str(path)])
    assert result.exit_code == 2 and "nmhpo grid" in result.stderr


def test_comparing_studies_of_different_tasks_warns(tmp_path: Path) -> None:
    """Hypervolumes of two tasks (or of one task on two datasets) measure different
    problems: the comparison is made, since the objectives match, but says so. Studies of
    one task with other searches (samplers, spaces, training samples) compare silently."""
    users_digits(tmp_path)
    text = _small_grid_text(n_trials=1)
    a = _study(tmp_path, text, "a.toml")
    b = _study(
        tmp_path,
        text.replace('name = "tiny"', 'name = "tiny-b"').replace("n_train = 600", "n_train = 300"),
        "b.toml",
    )
    c = _study(
        tmp_path,
        text.replace('name = "tiny"', 'name = "tiny-c"').replace(
            "n_train = 600", 'path = "mine.npz"'
        ),
        "c.toml",
    )
    for path in (a, b, c):
        assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    same = runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "ab")])
    assert same.exit_code == 0 and "warning" not in same.stderr
    other = runner.invoke(app, ["compare", str(a), str(c), "--out", str(tmp_path / "ac")])
    assert other.exit_code == 0
    assert "warning: the compared studies ran different tasks or data" in other.stderr
    assert "'tiny-c': digits" in other.stderr


def test_studies_run_under_other_names_are_compared_by_those_names(tmp_path: Path) -> None:
    """Two searches of one file (say, two samplers tried with --study-name) are compared
    from the command line by naming each study in order."""
    path = _study(tmp_path, _small_grid_text(n_trials=1))
    assert runner.invoke(app, ["run", str(path)]).exit_code == 0
    again = ["run", str(path), "--study-name", "tiny-again"]
    assert runner.invoke(app, again).exit_code == 0
    both = [str(path), str(path), "--no-grid", "--out", str(tmp_path / "cmp")]
    result = runner.invoke(
        app, ["compare", *both, "--study-name", "tiny", "--study-name", "tiny-again"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [s["name"] for s in data["studies"]] == ["tiny", "tiny-again"]
    one = runner.invoke(app, ["compare", *both, "--study-name", "tiny-again"])
    assert one.exit_code == 2
    assert one.stderr.strip().endswith(
        "--study-name: expected one per study (2, in their order); got 1"
    )


def test_repeats_store_mean_and_spread(tmp_path: Path) -> None:
    text = tiny_study_text(n_trials=2).replace("seed = 0", "seed = 0\nrepeats = 2")
    cfg = load_config(_study(tmp_path, text))
    run_study(cfg)
    for trial in load_existing(cfg).trials:
        result = TrialRecord.from_trial(trial).result
        assert result is not None
        seeds = [r["training_seed"] for r in result.repeats]
        assert len(set(seeds)) == 2
        assert trial.values[0] == pytest.approx(result.metrics["accuracy"])
        assert result.metrics_std["accuracy"] >= 0
        assert "energy_uj" in result.metrics_std
        assert trial.user_attrs["std.accuracy"] == result.metrics_std["accuracy"]


def test_constraints_reach_the_sampler_and_the_report(tmp_path: Path) -> None:
    text = tiny_study_text(n_trials=3).replace(
        "seed = 0", 'seed = 0\nconstraints = ["energy_uj <= 1e-12", "accuracy >= 0"]'
    )
    path = _study(tmp_path, text)
    cfg = load_config(path)
    run_study(cfg)
    for trial in load_existing(cfg).trials:
        values = list(trial.constraints.values())
        assert len(values) == 2
        assert max(values) > 0  # the energy bound is impossible
        assert min(values) <= 0  # accuracy >= 0 always holds
    result = runner.invoke(app, ["report", str(path), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "0 feasible" in result.stdout


def test_hostile_constraint_is_rejected_before_anything_runs(tmp_path: Path) -> None:
    text = tiny_study_text().replace(
        "seed = 0", "seed = 0\nconstraints = [\"__import__('os').system('true') <= 1\"]"
    )
    result = runner.invoke(app, ["run", str(_study(tmp_path, text))])
    assert result.exit_code == 2
    assert "study.constraints[0]" in result.stderr
    assert not (tmp_path / "nmhpo-studies.db").exists()
