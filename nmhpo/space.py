"""The search space: study-file parameters as Optuna suggestions and as grid levels."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nmhpo.config import CategoricalParam, FloatParam, IntParam, SearchedParam, StudyConfig
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


def hardware_variants(
    cfg: StudyConfig, params: Mapping[str, Any], n: int, seed: Sequence[int]
) -> list[dict[str, Any]]:
    """Up to ``n`` other points of the searched hardware space, each with the software values
    of ``params`` (a trial's parameters): the trials that score its trained network again.

    Drawn at random (uniformly, or log-uniformly for a log range), not by the sampler: with
    the software values fixed, a relative sampler's proposal would be for another software
    point, and asking it costs a model fit per trial. Distinct from each other and from
    ``params``' own hardware point; fewer than ``n`` when the hardware space is smaller.
    """
    import numpy as np

    hardware = {k: spec for k, spec in cfg.searched().items() if k not in SOFTWARE}
    if n <= 0 or not hardware:
        return []
    rng = np.random.default_rng(list(seed))
    seen = {tuple(params.get(k) for k in hardware)}
    out: list[dict[str, Any]] = []
    for _ in range(50 * n):
        point = tuple(_draw(spec, rng) for spec in hardware.values())
        if point not in seen:
            seen.add(point)
            out.append({**params, **dict(zip(hardware, point, strict=True))})
            if len(out) == n:
                break
    return out


def _draw(spec: SearchedParam, rng: Any) -> Any:
    if isinstance(spec, CategoricalParam):
        return spec.choices[int(rng.integers(len(spec.choices)))]
    low, high = float(spec.low), float(spec.high)
    value = (
        math.exp(rng.uniform(math.log(low), math.log(high)))
        if spec.log
        else rng.uniform(low, high)
    )
    if isinstance(spec, IntParam):
        step = spec.step or 1
        return int(min(spec.high, spec.low + step * round((value - low) / step)))
    if spec.step is not None:
        value = low + spec.step * round((value - low) / spec.step)
    return float(min(high, max(low, value)))


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
