"""Report figures: each writes a real PNG from plain data (computed from a small real study
by `nmhpo.analysis` where the figure shows one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from matplotlib.image import imread
from optuna.trial import create_trial

from nmhpo.analysis import pareto_front_info
from nmhpo.plots import (
    plot_breakdown,
    plot_hypervolume_history,
    plot_importance,
    plot_pareto_front,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

PNG = b"\x89PNG\r\n\x1a\n"


def _png_shape(path: Path) -> tuple[int, ...]:
    """Height and width in pixels of a PNG that was written."""
    assert path.read_bytes()[:8] == PNG
    return imread(path).shape[:2]


def _study(n_objectives: int, *, constrained: bool, seed: int = 0) -> optuna.Study:
    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["maximize"] + ["minimize"] * (n_objectives - 1))
    names = ["accuracy", "energy_uj", "area_mm2"][:n_objectives]
    study.set_metric_names(names)
    for k in range(30):
        values = [rng.uniform(0.7, 0.95)] + list(10.0 ** rng.uniform(-5, -2, n_objectives - 1))
        constraints = {"area": float(k % 3 == 0)} if constrained else None
        study.add_trial(create_trial(values=values, constraints=constraints))
    return study


@pytest.mark.parametrize(
    ("n_objectives", "constrained"), [(1, True), (2, False), (2, True), (3, True)]
)
def test_pareto_front_with_and_without_a_grid(
    tmp_path: Path, n_objectives: int, constrained: bool
) -> None:
    study = _study(n_objectives, constrained=constrained)
    plot_pareto_front(pareto_front_info(study), tmp_path / "alone.png")
    grid = _study(n_objectives, constrained=False, seed=1)
    plot_pareto_front(pareto_front_info(study, grid), tmp_path / "grid.png")
    height, width = _png_shape(tmp_path / "grid.png")
    panels = max(1, n_objectives * (n_objectives - 1) // 2)
    assert width > 500 * panels and height > 400
    assert _png_shape(tmp_path / "alone.png") == (height, width)


def test_pareto_front_of_a_study_without_completed_trials(tmp_path: Path) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    plot_pareto_front(pareto_front_info(study), tmp_path / "empty.png")
    assert _png_shape(tmp_path / "empty.png")[1] > 0


def test_hypervolume_history_draws_every_series(tmp_path: Path) -> None:
    series = {
        "tpe": np.array([1.0, 2.0, 2.0, 3.5]),
        "grid": np.linspace(0.5, 4.0, 40),
        "empty": np.array([]),
    }
    plot_hypervolume_history(series, tmp_path / "hv.png", target=4.0)
    plot_hypervolume_history({"tpe": series["tpe"]}, tmp_path / "one.png", xlabel="trials")
    assert _png_shape(tmp_path / "hv.png") == _png_shape(tmp_path / "one.png")


def test_importance_has_a_panel_per_objective_and_one_per_class(tmp_path: Path) -> None:
    per_objective = {
        "accuracy": {"num_steps": 0.7, "lr": 0.2, "adc_bits": 0.1},
        "energy_uj": {"adc_bits": 0.6, "num_steps": 0.3, "lr": 0.1},
    }
    classes = {"num_steps": "encoding", "lr": "training", "adc_bits": "hardware"}
    per_class = {
        obj: {classes[p]: v for p, v in imp.items()} for obj, imp in per_objective.items()
    }
    plot_importance(per_objective, per_class, tmp_path / "two.png", classes=classes)
    one = {"accuracy": per_objective["accuracy"]}
    plot_importance(one, {"accuracy": per_class["accuracy"]}, tmp_path / "one.png")
    assert _png_shape(tmp_path / "two.png")[1] > _png_shape(tmp_path / "one.png")[1]


def test_breakdown_with_layers_zeros_and_no_area(tmp_path: Path) -> None:
    energy = {"adc": 768.0, "xbar": 2.4, "leakage": 0.3, "htree": 0.0}
    area = {"xbar": 1e4, "adc": 2.1e4}
    plot_breakdown(energy, area, tmp_path / "full.png", "trial 3", by_layer=[500.0, 270.7])
    plot_breakdown(energy, {}, tmp_path / "no_area.png", "trial 4")
    assert _png_shape(tmp_path / "full.png")[1] > _png_shape(tmp_path / "no_area.png")[1]
