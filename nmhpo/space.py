"""The search space: study-file parameters as Optuna suggestions and as grid levels."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nmhpo.config import CategoricalParam, FloatParam, IntParam, StudyConfig
from nmhpo.errors import ConfigError
from nmhpo.registry import SOFTWARE

if TYPE_CHECKING:
    import optuna


def suggest(trial: optuna.Trial, cfg: StudyConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ask the trial for every searched parameter; return the full software and hardware
    points (searched values over fixed values and defaults)."""
    software = cfg.fixed_software()
    hardware = cfg.fixed_hardware()
    for name, spec in cfg.searched().items():
        value: Any
        if isinstance(spec, FloatParam):
            value = trial.suggest_float(name, spec.low, spec.high, log=spec.log, step=spec.step)
        elif isinstance(spec, IntParam):
            value = trial.suggest_int(name, spec.low, spec.high, log=spec.log, step=spec.step)
        else:
            value = trial.suggest_categorical(name, spec.choices)
        (software if name in SOFTWARE else hardware)[name] = value
    return software, hardware


def grid_levels(cfg: StudyConfig) -> dict[str, list[Any]]:
    """The values a grid search visits for each searched parameter.

    Categorical parameters use their choices, integers their whole range (or their grid
    levels), floats their grid levels, which a grid study must give.
    """
    out: dict[str, list[Any]] = {}
    for name, spec in cfg.searched().items():
        if isinstance(spec, CategoricalParam):
            out[name] = list(spec.choices)
        elif spec.grid is not None:
            out[name] = list(spec.grid)
        elif isinstance(spec, IntParam):
            out[name] = list(range(spec.low, spec.high + 1, spec.step))
        else:
            raise ConfigError(
                f"space parameter {name}: a grid needs grid levels for a continuous parameter"
            )
    return out


def grid_size(cfg: StudyConfig) -> int:
    """Number of points in the study's grid."""
    return math.prod(len(v) for v in grid_levels(cfg).values())
