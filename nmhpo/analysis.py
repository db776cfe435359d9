"""Reading a finished (or running) study: Pareto set, flat trial records, hypervolume,
parameter importance, comparisons between studies, and report files."""

from __future__ import annotations

import csv
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nmhpo.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial

logger = logging.getLogger(__name__)

#: Fractions of the grid's hypervolume `compare_studies` reports the cost of reaching.
HV_THRESHOLDS: tuple[float, ...] = (0.95, 0.99, 1.0)
#: Relative slack when testing "reached x% of the grid's hypervolume": the same front summed
#: with extra dominated points can differ from the grid's value in the last bits.
HV_RTOL = 1e-9
#: How far `reference_point` pushes the reference beyond the worst value, as a share of the
#: objective's range. A reference slightly beyond the nadir lets the extreme points count;
#: where exactly it sits changes the ranking of studies (Ishibuchi et al., "How to specify a
#: reference point in hypervolume calculation for fair performance comparison", Evol. Comput.
#: 26(3), 2018), which is why one comparison uses one point.
REFERENCE_MARGIN = 0.1
REFERENCE_RULE = (
    "per objective, the worst value over the completed feasible trials of every compared study "
    "(and the grid), pushed outwards by 10% of that objective's range over the same trials "
    "(a range of 0 is replaced by |worst|, or by 1 when that is 0 too)"
)
#: `importance` and the report need at least this many completed trials.
MIN_TRIALS_FOR_IMPORTANCE = 4

#: Every file `write_report` may write; those it skips are removed from ``out_dir``.
REPORT_FILES = frozenset(
    {
        "trials.csv",
        "trials.json",
        "pareto.json",
        "pareto_front.png",
        "hypervolume.json",
        "hypervolume_history.png",
        "importance.png",
        "breakdown.png",
    }
)

Direction = Literal["minimize", "maximize"]
Evaluator = Literal["ped-anova", "fanova"]


def objective_names(study: optuna.Study) -> list[str]:
    """Objective names as stored with the study (``values_0``... for foreign studies)."""
    names = study.metric_names
    return list(names) if names else [f"values_{i}" for i in range(len(study.directions))]


def direction_names(directions: Sequence[str | StudyDirection]) -> list[Direction]:
    """``"minimize"``/``"maximize"`` for each direction, whether given as text or as Optuna's
    ``StudyDirection`` (functions here take either)."""
    out: list[Direction] = []
    for d in directions:
        name = (d if isinstance(d, str) else d.name).lower()
        if name not in ("minimize", "maximize"):
            raise ConfigError(f"direction: expected 'minimize' or 'maximize'; got {d!r}")
        out.append("maximize" if name == "maximize" else "minimize")
    return out


def _signs(directions: Sequence[str | StudyDirection]) -> np.ndarray:
    """+1 for a minimized objective, -1 for a maximized one: ``values * signs`` is minimized."""
    return np.array([-1.0 if d == "maximize" else 1.0 for d in direction_names(directions)])


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether all the trial's constraint values are <= 0 (Optuna's rule; no constraints:
    feasible). Reads ``trial.constraints``, which covers both the old list stored under
    ``system_attrs["constraints"]`` and ``trial.set_constraint``'s per-key attributes."""
    return all(value <= 0.0 for value in trial.constraints.values())


def trial_cost_s(trial: FrozenTrial) -> float:
    """CPU seconds the trial used: ``run.cpu_s`` when recorded, else its wall duration (older
    trials and failed ones have no ``run``), else 0 (a trial still running)."""
    cpu = trial.user_attrs.get("run", {}).get("cpu_s")
    if cpu is not None:
        return float(cpu)
    return trial.duration.total_seconds() if trial.duration is not None else 0.0


def _complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials in trial-number order (the order the sampler proposed them)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(trials, key=lambda t: t.number)


def _values(trials: Sequence[FrozenTrial], n_objectives: int) -> np.ndarray:
    return np.array([t.values for t in trials], dtype=float).reshape(len(trials), n_objectives)


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed, feasible, non-dominated trials, ordered by the first objective (best first)."""
    from optuna.study import StudyDirection

    trials = list(study.best_trials)
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    return sorted(trials, key=lambda t: sign * t.values[0])


def trial_record(trial: FrozenTrial, names: list[str]) -> dict[str, Any]:
    """One flat row per trial: state, objectives, feasibility, parameters, metrics, timings,
    breakdowns. ``feasible`` is None for a trial that did not complete."""
    from optuna.trial import TrialState

    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "duration_s": trial.duration.total_seconds() if trial.duration else None,
    }
    for name, value in zip(names, trial.values or [None] * len(names), strict=False):
        row[name] = value
    row["feasible"] = is_feasible(trial) if trial.state == TrialState.COMPLETE else None
    row.update({f"constraint_{k}": v for k, v in trial.constraints.items()})
    row.update({f"param_{k}": v for k, v in trial.params.items()})
    attrs = trial.user_attrs
    for key, value in attrs.get("metrics", {}).items():
        row.setdefault(f"metric_{key}", value)
    run = attrs.get("run", {})
    for key in (
        "trained",
        "train_time_s",
        "eval_time_s",
        "hw_time_s",
        "cpu_s",
        "training_seed",
        "worker",
    ):
        if key in run:
            row[key] = run[key]
    breakdown = attrs.get("breakdown", {})
    for comp, value in breakdown.get("energy_pj", {}).items():
        row[f"energy_pj_{comp}"] = value
    for comp, value in breakdown.get("area_um2", {}).items():
        row[f"area_um2_{comp}"] = value
    if "fail_reason" in attrs:
        row["fail_reason"] = attrs["fail_reason"]
    return row


def write_trials_csv(study: optuna.Study, path: Path) -> int:
    """All trials as CSV (one row each, union of columns); returns the row count."""
    names = objective_names(study)
    rows = [trial_record(t, names) for t in study.get_trials(deepcopy=False)]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # a reader never sees a half-written file
    return len(rows)


# --- hypervolume ------------------------------------------------------------------------------


def hypervolume(
    points: np.ndarray, directions: Sequence[str | StudyDirection], reference: np.ndarray
) -> float:
    """Hypervolume dominated by ``points`` (n_points, n_objectives) up to ``reference``.

    Maximized objectives are negated so moocore sees a minimization problem. A point that is
    not strictly better than the reference in every objective (or has a NaN) adds nothing,
    as in the indicator's definition; an empty set has hypervolume 0.
    """
    import moocore

    signs = _signs(directions)
    pts = np.asarray(points, dtype=float).reshape(-1, len(signs)) * signs
    ref = np.asarray(reference, dtype=float).reshape(len(signs)) * signs
    inside = pts[np.all(pts < ref, axis=1)]  # NaN compares False: dropped too
    if len(inside) == 0:
        return 0.0
    return float(moocore.hypervolume(inside, ref=ref))


def reference_point(
    studies_points: list[np.ndarray], directions: Sequence[str | StudyDirection]
) -> np.ndarray:
    """One reference point for a whole comparison (see ``REFERENCE_RULE``).

    Per objective: the worst value over all given points, pushed outwards by
    ``REFERENCE_MARGIN`` (10%) of the range of that objective over the same points; a range
    of 0 is replaced by the worst value's magnitude, or by 1 when that is 0 too. Every point
    of every study then lies strictly inside, so even a study's first trial counts, and the
    studies' hypervolumes are comparable because they share the point. Non-finite values are
    ignored.

    Raises:
        ValueError: there is no finite point at all.
    """
    signs = _signs(directions)
    arrays = [np.asarray(p, dtype=float).reshape(-1, len(signs)) for p in studies_points]
    pts = np.concatenate(arrays) if arrays else np.empty((0, len(signs)))
    pts = pts[np.all(np.isfinite(pts), axis=1)] * signs
    if len(pts) == 0:
        raise ValueError("reference_point needs at least one finite point")
    worst, best = pts.max(axis=0), pts.min(axis=0)
    span = worst - best
    span = np.where(span > 0, span, np.abs(worst))
    span = np.where(span > 0, span, 1.0)
    return (worst + REFERENCE_MARGIN * span) * signs


def _history(
    trials: Sequence[FrozenTrial], reference: np.ndarray, directions: Sequence[str]
) -> np.ndarray:
    """Hypervolume of the feasible trials among the first i+1 of ``trials``, for each i."""
    out = np.zeros(len(trials))
    if not trials:
        return out
    values = _values(trials, len(directions))
    feasible = np.array([is_feasible(t) for t in trials])
    current = 0.0
    for i in range(len(trials)):
        # Only a new feasible point can change the hypervolume: skip the others.
        if feasible[i]:
            current = hypervolume(values[: i + 1][feasible[: i + 1]], directions, reference)
        out[i] = current
    return out


def hypervolume_history(
    study: optuna.Study,
    reference: np.ndarray,
    directions: Sequence[str | StudyDirection] | None = None,
) -> np.ndarray:
    """Hypervolume of the feasible completed trials after each completed trial.

    Trials are taken in trial-number order (the order they were proposed, as Optuna's own
    hypervolume-history plot does), so entry ``k-1`` is the hypervolume after ``k`` completed
    trials; infeasible trials count as spent but add nothing. Non-decreasing by construction.

    Args:
        study: The study to read.
        reference: Reference point in the objectives' own units, e.g. from `reference_point`.
        directions: Defaults to the study's directions.
    """
    dirs = direction_names(directions if directions is not None else study.directions)
    return _history(_complete_trials(study), np.asarray(reference, dtype=float), dirs)


def _params_key(params: Mapping[str, Any]) -> str:
    """A canonical text for a parameter dict; numbers as floats so 3 and 3.0 match."""

    def norm(v: Any) -> Any:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    return json.dumps({k: norm(v) for k, v in params.items()}, sort_keys=True, default=str)


def _shared_objectives(studies: Sequence[optuna.Study]) -> tuple[list[str], list[Direction]]:
    """The objectives all studies share; a mismatch would make the hypervolumes meaningless."""
    first = studies[0]
    names, dirs = objective_names(first), direction_names(first.directions)
    for other in studies[1:]:
        o_names, o_dirs = objective_names(other), direction_names(other.directions)
        if (o_names, o_dirs) != (names, dirs):

            def describe(s: optuna.Study, n: list[str], d: list[Direction]) -> str:
                pairs = ", ".join(f"{a} ({b})" for a, b in zip(n, d, strict=True))
                return f"{s.study_name!r} has {pairs}"

            raise StorageError(
                "cannot compare studies with different objectives: "
                f"{describe(first, names, dirs)}; {describe(other, o_names, o_dirs)}"
            )
    return names, dirs


def _cost_until(study: optuna.Study) -> dict[int, float]:
    """Cumulative CPU seconds of all trials (any state) up to and including each number."""
    total, out = 0.0, {}
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        total += trial_cost_s(trial)
        out[trial.number] = total
    return out


def _study_summary(
    study: optuna.Study,
    reference: np.ndarray,
    directions: Sequence[str],
    ks: Sequence[int],
    grid_hv: float | None,
    grid_front: set[str] | None,
) -> dict[str, Any]:
    complete = _complete_trials(study)
    history = _history(complete, reference, directions)
    n = len(complete)
    final = float(history[-1]) if n else 0.0
    cost = _cost_until(study)
    summary: dict[str, Any] = {
        "name": study.study_name,
        "n_trials": len(study.get_trials(deepcopy=False)),
        "n_complete": n,
        "n_feasible": sum(is_feasible(t) for t in complete),
        "cpu_s_total": max(cost.values(), default=0.0),
        "hv_at": {str(k): (float(history[k - 1]) if 0 < k <= n else None) for k in ks},
        "final_hv": final,
        "history": history.tolist(),
        "cpu_history": [cost[t.number] for t in complete],
    }
    if grid_hv is None:
        return summary
    summary["hv_ratio"] = final / grid_hv if grid_hv > 0 else None
    reached: dict[str, dict[str, Any] | None] = {}
    for frac in HV_THRESHOLDS:
        hit = np.flatnonzero(history >= frac * grid_hv * (1.0 - HV_RTOL)) if grid_hv > 0 else []
        if len(hit) == 0:
            reached[f"{frac:.0%}"] = None
            continue
        trial = complete[int(hit[0])]
        reached[f"{frac:.0%}"] = {
            "trials": int(hit[0]) + 1,
            "trial_number": trial.number,
            "cpu_s": cost[trial.number],
        }
    summary["to_grid_hv"] = reached
    if grid_front is not None:
        seen = {_params_key(t.params) for t in complete}
        found = len(grid_front & seen)
        summary["grid_front_size"] = len(grid_front)
        summary["grid_front_found"] = found
        summary["grid_front_all_found"] = found == len(grid_front)
    return summary


def compare_studies(
    studies: list[optuna.Study],
    grid: optuna.Study | None = None,
    ks: Sequence[int] = (24, 48, 96),
) -> dict[str, Any]:
    """How well and how cheaply each study found the trade-off, against an optional grid.

    All studies (and the grid) are measured with one reference point (`reference_point` over
    all their completed feasible trials), so their hypervolumes compare directly. Trial counts
    are completed trials in trial-number order; CPU seconds add ``run.cpu_s`` (else the
    duration) of every trial up to that point, failed ones included, because they were paid for.

    Args:
        studies: The searches to judge; they must share objective names and directions.
        grid: An exhaustive (or reference) study of the same space: its hypervolume is the
            100% mark and its Pareto set, matched by parameters, the set to find.
        ks: Report the hypervolume after this many completed trials (None when fewer ran).

    Returns:
        A JSON-able dict: ``objectives``, ``directions``, ``reference``, ``reference_rule``,
        ``ks``, ``grid`` (summary or None) and ``studies`` (one summary each, in order) with
        ``name``, ``n_trials``, ``n_complete``, ``n_feasible``, ``cpu_s_total``, ``hv_at``
        (``{"24": hv or None, ...}``), ``final_hv``, ``history``, and with a grid also
        ``hv_ratio``, ``to_grid_hv`` (``{"95%": {"trials", "trial_number", "cpu_s"} or None,
        "99%": ..., "100%": ...}``), ``grid_front_size``, ``grid_front_found`` and
        ``grid_front_all_found``.

    Raises:
        StorageError: no study given, objectives differ, or no completed feasible trial at all.
    """
    if not studies:
        raise StorageError("compare_studies: expected at least one study; got none")
    everyone = [*studies, *([grid] if grid is not None else [])]
    names, dirs = _shared_objectives(everyone)
    points = [
        _values([t for t in _complete_trials(s) if is_feasible(t)], len(names)) for s in everyone
    ]
    if not any(len(p) for p in points):
        listed = ", ".join(repr(s.study_name) for s in everyone)
        raise StorageError(f"no completed feasible trial to compare in {listed}")
    ref = reference_point(points, dirs)
    grid_summary = None
    grid_hv = grid_front = None
    if grid is not None:
        grid_summary = _study_summary(grid, ref, dirs, ks, None, None)
        grid_hv = grid_summary["final_hv"]
        grid_front = {_params_key(t.params) for t in grid.best_trials}
        grid_summary["pareto_size"] = len(grid_front)
    return {
        "objectives": names,
        "directions": list(dirs),
        "reference": ref.tolist(),
        "reference_rule": REFERENCE_RULE,
        "ks": [int(k) for k in ks],
        "grid": grid_summary,
        "studies": [_study_summary(s, ref, dirs, ks, grid_hv, grid_front) for s in studies],
    }


# --- importance -------------------------------------------------------------------------------


def _searched_params(trials: Sequence[FrozenTrial]) -> list[str]:
    """Parameters that vary in some completed trial (a single-value distribution is fixed)."""
    names: dict[str, None] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if not dist.single():
                names[name] = None
    return list(names)


def importance(
    study: optuna.Study,
    objective_index: int,
    evaluator: Evaluator = "ped-anova",
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Importance of each searched parameter for one objective, normalized to sum to 1.

    PED-ANOVA (Optuna's default; fast, asks what distinguishes the top 10% of trials) or fANOVA
    (a random forest's variance decomposition; seeded by ``seed``). PED-ANOVA ranks low target
    values as good, so a maximized objective is negated. Completed trials only, feasible or not:
    the question is what moves the objective.

    Returns:
        ``{param: importance}`` from most to least important; ``{}`` with fewer than
        ``MIN_TRIALS_FOR_IMPORTANCE`` completed trials or no searched parameter.

    Raises:
        ConfigError: ``objective_index`` or ``evaluator`` is out of range.
    """
    from optuna.importance import (
        FanovaImportanceEvaluator,
        PedAnovaImportanceEvaluator,
        get_param_importances,
    )
    from optuna.study import StudyDirection

    n_obj = len(study.directions)
    if not 0 <= objective_index < n_obj:
        raise ConfigError(
            f"objective index: expected 0-{n_obj - 1} (study {study.study_name!r} has "
            f"{n_obj} objectives); got {objective_index}"
        )
    complete = _complete_trials(study)
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}
    everywhere = set.intersection(*(set(t.params) for t in complete))
    params = [p for p in _searched_params(complete) if p in everywhere]
    if not params:
        return {}
    i = objective_index
    sign = -1.0 if study.directions[i] == StudyDirection.MAXIMIZE else 1.0
    if evaluator == "ped-anova":
        ev: Any = PedAnovaImportanceEvaluator()
    elif evaluator == "fanova":
        ev = FanovaImportanceEvaluator(seed=seed)
    else:
        raise ConfigError(f"importance evaluator: expected ped-anova or fanova; got {evaluator!r}")
    with warnings.catch_warnings():
        # The sign is handled above; with few trials PED-ANOVA also says its two quantiles
        # coincide, which the caller cannot act on.
        warnings.filterwarnings("ignore", message=".*low `target` values.*")
        warnings.filterwarnings("ignore", message=".*quantiles select the same set.*")
        result = get_param_importances(
            study, evaluator=ev, params=params, target=lambda t: sign * t.values[i]
        )
    return dict(sorted(result.items(), key=lambda kv: -kv[1]))


def param_classes(study: optuna.Study) -> dict[str, str]:
    """The class (encoding, training, neuron, architecture, hardware, ...) of each searched
    parameter, for importance by class.

    From the study's ``nmhpo_config``: a ``class`` key on the parameter's spec wins, then
    ``nmhpo.registry.param_class``, then the section (software -> training, hardware ->
    hardware). A study without ``nmhpo_config`` (made by other tools) uses its trials'
    varying parameters, and ``other`` for names the registry does not know.
    """
    from nmhpo.registry import param_class

    def registry_class(name: str) -> str | None:
        try:
            return param_class(name)
        except KeyError:
            return None

    config = study.user_attrs.get("nmhpo_config")
    if not isinstance(config, Mapping):
        names = _searched_params(_complete_trials(study))
        return {name: registry_class(name) or "other" for name in names}
    out: dict[str, str] = {}
    space = config.get("space") or {}
    for section, default in (("software", "training"), ("hardware", "hardware")):
        for name, spec in (space.get(section) or {}).items():
            if not isinstance(spec, Mapping) or spec.get("type") == "fixed":
                continue  # a bare value or a fixed spec is not searched
            out[name] = str(spec.get("class") or registry_class(name) or default)
    return out


def importance_by_class(
    importances: Mapping[str, float], classes: Mapping[str, str]
) -> dict[str, float]:
    """Sum of importances per class (``other`` for unclassified), largest first."""
    out: dict[str, float] = {}
    for name, value in importances.items():
        cls = classes.get(name, "other")
        out[cls] = out.get(cls, 0.0) + float(value)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


# --- report -----------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null (json.dumps would write bare NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, default=str, allow_nan=False))
    tmp.replace(path)


@dataclass(frozen=True)
class Report:
    """Files a report wrote and the Pareto set it found.

    ``pareto_records`` are the Pareto trials as `trial_record` rows (with ``feasible``);
    ``comparison`` is `compare_studies` of the study (against the grid, when given).
    """

    study_name: str
    objective_names: list[str]
    directions: list[str]
    pareto: list[FrozenTrial]
    n_trials: int
    n_complete: int
    files: list[Path]
    constrained: bool = False
    n_feasible: int = 0
    pareto_records: list[dict[str, Any]] = field(default_factory=list)
    hypervolume: float | None = None
    reference: list[float] | None = None
    comparison: dict[str, Any] | None = None
    breakdown_trial: int | None = None


def _breakdown_trial(
    study: optuna.Study, trial_number: int | None, pareto: list[FrozenTrial]
) -> FrozenTrial | None:
    """The trial whose breakdown the report shows: ``trial_number``, else the first Pareto
    trial; checked before any file is written, so a wrong number writes nothing."""
    if trial_number is None:
        return pareto[0] if pareto else None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if trial_number not in trials:
        top = max(trials, default=-1)
        raise ConfigError(
            f"trial: expected a trial number of study {study.study_name!r} (0-{top}); "
            f"got {trial_number}"
        )
    return trials[trial_number]


def _breakdown_figure(
    study: optuna.Study, trial: FrozenTrial, chosen: bool, path: Path
) -> int | None:
    """Plot one trial's energy/area breakdown; returns its number, or None if it has none."""
    from nmhpo.plots import plot_breakdown

    breakdown = trial.user_attrs.get("breakdown") or {}
    energy, area = breakdown.get("energy_pj") or {}, breakdown.get("area_um2") or {}
    if not energy and not area:
        if chosen:
            warnings.warn(
                f"trial {trial.number} has no energy/area breakdown (state {trial.state.name}); "
                "pass the number of a completed nmhpo trial",
                stacklevel=3,
            )
        return None
    names = objective_names(study)
    values = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, trial.values or [], strict=False))
    plot_breakdown(
        energy,
        area,
        path,
        title=f"{study.study_name}: trial {trial.number}" + (f" ({values})" if values else ""),
        by_layer=breakdown.get("energy_by_layer_pj"),
    )
    return trial.number


def write_report(
    study: optuna.Study,
    out_dir: Path,
    grid: optuna.Study | None = None,
    trial_number: int | None = None,
    evaluator: Evaluator = "ped-anova",
) -> Report:
    """Write everything needed to judge a study under ``out_dir``.

    Files: ``trials.csv`` and ``trials.json`` (every trial), ``pareto.json`` (the Pareto set),
    ``pareto_front.png`` (feasible/infeasible trials marked; the grid's front overlaid when
    ``grid`` is given), ``hypervolume_history.png`` and ``hypervolume.json`` (`compare_studies`
    of this study against the grid), ``importance.png`` (PED-ANOVA per objective and per
    parameter class, from `MIN_TRIALS_FOR_IMPORTANCE` completed trials) and ``breakdown.png``
    (energy and area by component of ``trial_number``, default the first Pareto trial).
    A figure without data to show is skipped, not drawn empty, and a stale copy of it from an
    earlier report is removed. The hypervolume's reference point comes from this study and the
    grid only, so two reports' hypervolumes do not compare: use `compare_studies` for that.

    Raises:
        StorageError: ``grid`` has different objectives.
        ConfigError: ``trial_number`` is not a trial of the study.
    """
    from nmhpo.plots import plot_hypervolume_history, plot_importance, plot_pareto_front

    names = objective_names(study)
    if grid is not None:
        _shared_objectives([study, grid])
    pareto = pareto_trials(study)
    breakdown_trial = _breakdown_trial(study, trial_number, pareto)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_trials = study.get_trials(deepcopy=False)
    complete = _complete_trials(study)
    files = []

    csv_path = out_dir / "trials.csv"
    write_trials_csv(study, csv_path)
    files.append(csv_path)
    trials_json = out_dir / "trials.json"
    _write_json(trials_json, [trial_record(t, names) for t in all_trials])
    files.append(trials_json)
    pareto_records = [trial_record(t, names) for t in pareto]
    json_path = out_dir / "pareto.json"
    _write_json(json_path, pareto_records)
    files.append(json_path)

    if complete:
        png = out_dir / "pareto_front.png"
        plot_pareto_front(study, png, grid=grid)
        files.append(png)

    comparison = None
    grid_has_points = grid is not None and any(is_feasible(t) for t in _complete_trials(grid))
    if any(is_feasible(t) for t in complete) or grid_has_points:
        comparison = compare_studies([study], grid)
        hv_json = out_dir / "hypervolume.json"
        _write_json(hv_json, comparison)
        files.append(hv_json)
        series = {study.study_name: np.asarray(comparison["studies"][0]["history"])}
        target = None
        if comparison["grid"] is not None:
            series[f"grid ({comparison['grid']['name']})"] = np.asarray(
                comparison["grid"]["history"]
            )
            target = comparison["grid"]["final_hv"]
        png = out_dir / "hypervolume_history.png"
        plot_hypervolume_history(
            series,
            png,
            title=f"hypervolume of the feasible trials, reference {_fmt(comparison['reference'])}",
            target=target,
        )
        files.append(png)

    per_objective = {
        name: importance(study, i, evaluator=evaluator) for i, name in enumerate(names)
    }
    per_objective = {k: v for k, v in per_objective.items() if v}  # {}: too few trials
    if per_objective:
        classes = param_classes(study)
        per_class = {k: importance_by_class(v, classes) for k, v in per_objective.items()}
        png = out_dir / "importance.png"
        label = "PED-ANOVA" if evaluator == "ped-anova" else "fANOVA"
        plot_importance(
            per_objective,
            per_class,
            png,
            classes=classes,
            title=f"parameter importance ({label}, normalized per objective)",
        )
        files.append(png)

    png = out_dir / "breakdown.png"
    shown = None
    if breakdown_trial is not None:
        shown = _breakdown_figure(study, breakdown_trial, trial_number is not None, png)
    if shown is not None:
        files.append(png)

    for name in REPORT_FILES - {p.name for p in files}:
        (out_dir / name).unlink(missing_ok=True)  # a figure from an older report would mislead

    final = comparison["studies"][0]["final_hv"] if comparison else None
    return Report(
        study_name=study.study_name,
        objective_names=names,
        directions=[d.name.lower() for d in study.directions],
        pareto=pareto,
        n_trials=len(all_trials),
        n_complete=len(complete),
        files=files,
        constrained=any(t.constraints for t in complete),
        n_feasible=sum(is_feasible(t) for t in complete),
        pareto_records=pareto_records,
        hypervolume=final,
        reference=comparison["reference"] if comparison else None,
        comparison=comparison,
        breakdown_trial=shown,
    )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"
