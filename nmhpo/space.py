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
    """One value as Optuna's random sampler draws it: every step of a range equally likely
    (rounding a continuous draw would give both ends half weight), a log range uniform in
    the logarithm."""
    if isinstance(spec, CategoricalParam):
        return spec.choices[int(rng.integers(len(spec.choices)))]
    if isinstance(spec, IntParam):
        if spec.log:  # (Optuna's log-int rule: widen by half a step each side, round, clip)
            value = math.exp(rng.uniform(math.log(spec.low - 0.5), math.log(spec.high + 0.5)))
            return int(min(spec.high, max(spec.low, round(value))))
        return int(spec.low + spec.step * rng.integers((spec.high - spec.low) // spec.step + 1))
    if spec.step is not None:
        n = round((spec.high - spec.low) / spec.step)
        return float(min(spec.high, spec.low + spec.step * int(rng.integers(n + 1))))
    if spec.log:
        return float(math.exp(rng.uniform(math.log(spec.low), math.log(spec.high))))
    return float(rng.uniform(spec.low, spec.high))


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
