"""Reading a finished (or running) study: Pareto set, flat trial records, hypervolume,
parameter importance, comparisons between studies, and report files."""

from __future__ import annotations

import csv
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nmhpo.errors import ConfigError, StorageError
from nmhpo.record import TrialRecord

if TYPE_CHECKING:
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import FrozenTrial, TrialState

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
    """CPU seconds the trial used (see `TrialRecord.cpu_s`)."""
    return TrialRecord.from_trial(trial).cpu_s


def records(study: optuna.Study, states: Sequence[TrialState] | None = None) -> list[TrialRecord]:
    """Every trial of ``study`` (or those in ``states``) as typed records, by number."""
    trials = study.get_trials(deepcopy=False, states=None if states is None else tuple(states))
    return [TrialRecord.from_trial(t) for t in sorted(trials, key=lambda t: t.number)]


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials in trial-number order (the order the sampler proposed them)."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(trials, key=lambda t: t.number)


def _values(trials: Sequence[FrozenTrial], n_objectives: int) -> np.ndarray:
    return np.array([t.values for t in trials], dtype=float).reshape(len(trials), n_objectives)


def pareto_trials(study: optuna.Study) -> list[TrialRecord]:
    """Completed, feasible, non-dominated trials, ordered by the first objective (best first)."""
    from optuna.study import StudyDirection

    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    trials = sorted(study.best_trials, key=lambda t: sign * t.values[0])
    return [TrialRecord.from_trial(t) for t in trials]


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """All trials as flat rows (`TrialRecord.row`), by number."""
    names = objective_names(study)
    return [r.row(names) for r in records(study)]


def write_trials_csv(study: optuna.Study, path: Path) -> int:
    """All trials as CSV (one row each, union of columns); returns the row count."""
    rows = trial_rows(study)
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
    return _history(complete_trials(study), np.asarray(reference, dtype=float), dirs)


def _params_key(params: Mapping[str, Any]) -> str:
    """A canonical text for a parameter dict; numbers as floats so 3 and 3.0 match."""

    def norm(v: Any) -> Any:
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    return json.dumps({k: norm(v) for k, v in params.items()}, sort_keys=True, default=str)


def shared_objectives(studies: Sequence[optuna.Study]) -> tuple[list[str], list[Direction]]:
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


@dataclass(frozen=True)
class Reach:
    """When a study first reached a share of the grid's hypervolume."""

    trials: int  # completed trials spent, in trial-number order
    trial_number: int
    cpu_s: float  # CPU seconds of every trial up to that one, failed ones included


@dataclass(frozen=True)
class StudySummary:
    """One study's hypervolume figures within a `Comparison` (one reference point for all).

    The grid fields (``hv_ratio``, ``to_grid_hv``, ``grid_front_*``) are None when the
    comparison has no grid; ``pareto_size`` is set on the grid's own summary.
    """

    name: str
    n_trials: int
    n_complete: int
    n_feasible: int
    cpu_s_total: float
    hv_at: Mapping[int, float | None]  # hypervolume after k completed trials
    final_hv: float
    history: tuple[float, ...]  # after each completed trial
    cpu_history: tuple[float, ...]  # cumulative CPU seconds at each completed trial
    hv_ratio: float | None = None
    to_grid_hv: Mapping[str, Reach | None] | None = None  # "95%", "99%", "100%"
    grid_front_size: int | None = None
    grid_front_found: int | None = None
    pareto_size: int | None = None

    @property
    def grid_front_all_found(self) -> bool | None:
        if self.grid_front_size is None or self.grid_front_found is None:
            return None
        return self.grid_front_found == self.grid_front_size

    def to_dict(self) -> dict[str, Any]:
        """compare.json's layout (keys as text, absent grid fields left out)."""
        out: dict[str, Any] = {
            "name": self.name,
            "n_trials": self.n_trials,
            "n_complete": self.n_complete,
            "n_feasible": self.n_feasible,
            "cpu_s_total": self.cpu_s_total,
            "hv_at": {str(k): v for k, v in self.hv_at.items()},
            "final_hv": self.final_hv,
            "history": list(self.history),
            "cpu_history": list(self.cpu_history),
        }
        if self.to_grid_hv is not None:
            out["hv_ratio"] = self.hv_ratio
            out["to_grid_hv"] = {
                k: None if v is None else asdict(v) for k, v in self.to_grid_hv.items()
            }
        if self.grid_front_size is not None:
            out["grid_front_size"] = self.grid_front_size
            out["grid_front_found"] = self.grid_front_found
            out["grid_front_all_found"] = self.grid_front_all_found
        if self.pareto_size is not None:
            out["pareto_size"] = self.pareto_size
        return out


@dataclass(frozen=True)
class Comparison:
    """`compare_studies`' result: every study (and the grid) against one reference point."""

    objectives: tuple[str, ...]
    directions: tuple[Direction, ...]
    reference: tuple[float, ...]
    reference_rule: str
    ks: tuple[int, ...]
    grid: StudySummary | None
    studies: tuple[StudySummary, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (what ``nmhpo compare --json`` prints and compare.json holds)."""
        return {
            "objectives": list(self.objectives),
            "directions": list(self.directions),
            "reference": list(self.reference),
            "reference_rule": self.reference_rule,
            "ks": list(self.ks),
            "grid": None if self.grid is None else self.grid.to_dict(),
            "studies": [s.to_dict() for s in self.studies],
        }


def _study_summary(
    study: optuna.Study,
    reference: np.ndarray,
    directions: Sequence[str],
    ks: Sequence[int],
    grid_hv: float | None,
    grid_front: set[str] | None,
) -> StudySummary:
    complete = complete_trials(study)
    history = _history(complete, reference, directions)
    n = len(complete)
    final = float(history[-1]) if n else 0.0
    cost = _cost_until(study)
    summary = StudySummary(
        name=study.study_name,
        n_trials=len(study.get_trials(deepcopy=False)),
        n_complete=n,
        n_feasible=sum(is_feasible(t) for t in complete),
        cpu_s_total=max(cost.values(), default=0.0),
        hv_at={int(k): (float(history[k - 1]) if 0 < k <= n else None) for k in ks},
        final_hv=final,
        history=tuple(float(h) for h in history),
        cpu_history=tuple(cost[t.number] for t in complete),
    )
    if grid_hv is None:
        return summary
    reached: dict[str, Reach | None] = {}
    for frac in HV_THRESHOLDS:
        hit = (
            np.flatnonzero(history >= frac * grid_hv * (1.0 - HV_RTOL))
            if grid_hv > 0
            else np.empty(0, dtype=np.intp)
        )
        if len(hit) == 0:
            reached[f"{frac:.0%}"] = None
            continue
        trial = complete[int(hit[0])]
        reached[f"{frac:.0%}"] = Reach(int(hit[0]) + 1, trial.number, cost[trial.number])
    found = None
    if grid_front is not None:
        found = len(grid_front & {_params_key(t.params) for t in complete})
    return replace(
        summary,
        hv_ratio=final / grid_hv if grid_hv > 0 else None,
        to_grid_hv=reached,
        grid_front_size=None if grid_front is None else len(grid_front),
        grid_front_found=found,
    )


def compare_studies(
    studies: list[optuna.Study],
    grid: optuna.Study | None = None,
    ks: Sequence[int] = (24, 48, 96),
) -> Comparison:
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

    Raises:
        StorageError: no study given, objectives differ, or no completed feasible trial at all.
    """
    if not studies:
        raise StorageError("compare_studies: expected at least one study; got none")
    everyone = [*studies, *([grid] if grid is not None else [])]
    names, dirs = shared_objectives(everyone)
    points = [
        _values([t for t in complete_trials(s) if is_feasible(t)], len(names)) for s in everyone
    ]
    if not any(len(p) for p in points):
        listed = ", ".join(repr(s.study_name) for s in everyone)
        raise StorageError(f"no completed feasible trial to compare in {listed}")
    ref = reference_point(points, dirs)
    grid_summary = None
    grid_hv = grid_front = None
    if grid is not None:
        grid_front = {_params_key(t.params) for t in grid.best_trials}
        grid_summary = replace(
            _study_summary(grid, ref, dirs, ks, None, None), pareto_size=len(grid_front)
        )
        grid_hv = grid_summary.final_hv
    return Comparison(
        objectives=tuple(names),
        directions=tuple(dirs),
        reference=tuple(float(r) for r in ref),
        reference_rule=REFERENCE_RULE,
        ks=tuple(int(k) for k in ks),
        grid=grid_summary,
        studies=tuple(_study_summary(s, ref, dirs, ks, grid_hv, grid_front) for s in studies),
    )


@dataclass(frozen=True)
class PruningSummary:
    """What stopping trials early did in a study: how many, where, what they cost and saved.

    ``cpu_s_saved_est`` extrapolates each stopped trial's training seconds per epoch to the
    epochs it did not train, plus the final scoring pass it skipped (an estimate: a trial that
    went on might have stopped early by patience; with one torch thread per worker, training
    seconds are CPU seconds). ``rung_eval_s`` is what scoring at rungs cost, in every trial
    that reached one.

    ``rung_agreement`` says whether a rung predicts the end: per rung epoch and objective, the
    Spearman rank correlation between the completed trials' values there and their final
    values, over the ``rung_agreement_n[epoch]`` trials that reached the rung (rungs fewer
    than 3 reached are left out; pairs with a non-finite value are skipped; None where fewer
    than 3 pairs are left or a column is constant). Only trials that passed the rung count,
    whose spread is narrower than all trials', so the figure understates the rung's
    agreement: a high value says the rung ranks trials as their end does; a low one says it
    ranks them noisily, not by itself that a later first rung (``[study.pruning]
    min_epochs``) pays. Over 30 random trials of 20 epochs trained to the end, epoch 1 ranked
    accuracy at 0.31 on digits and pixel error at 0.55 on bragg, where epoch 1 still made the
    better first rung, and R^2 at 0.66 on pbl, where epoch 3 did
    (benchmarks/results/rung_agreement.json and multifidelity.json).
    """

    n_stopped: int
    stopped_at: Mapping[int, int]  # epoch -> trials stopped there
    epochs_saved: int
    cpu_s_saved_est: float
    cpu_s_stopped: float  # CPU seconds the stopped trials used
    n_rung_evaluations: int
    rung_eval_s: float
    n_resumed: int  # completed trials that resumed a stopped point's checkpoint
    epochs_resumed: int
    rung_agreement: Mapping[int, Mapping[str, float | None]] = field(default_factory=dict)
    rung_agreement_n: Mapping[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("stopped_at", "rung_agreement", "rung_agreement_n"):
            out[key] = {str(k): v for k, v in out[key].items()}
        return out


def _rung_agreement(
    recs: Sequence[TrialRecord], names: Sequence[str]
) -> tuple[dict[int, dict[str, float | None]], dict[int, int]]:
    """`PruningSummary.rung_agreement` and its counts, from the completed trials: per
    objective, the pairs (rung value, final value) where both are finite."""
    from scipy.stats import spearmanr

    done = [r for r in recs if r.state == "COMPLETE" and r.values is not None]
    agreement: dict[int, dict[str, float | None]] = {}
    counts: dict[int, int] = {}
    for epoch in sorted({e for r in done for e in r.rungs}):
        there = [r for r in done if epoch in r.rungs]
        if len(there) < 3:
            continue
        counts[epoch] = len(there)
        agreement[epoch] = {}
        for i, name in enumerate(names):
            pairs = np.array(
                [(r.rungs[epoch].get(name, np.nan), r.values[i]) for r in there if r.values],
                dtype=float,
            ).reshape(-1, 2)
            pairs = pairs[np.isfinite(pairs).all(axis=1)]
            if len(pairs) < 3 or np.ptp(pairs[:, 0]) == 0 or np.ptp(pairs[:, 1]) == 0:
                agreement[epoch][name] = None
            else:
                agreement[epoch][name] = float(spearmanr(pairs[:, 0], pairs[:, 1]).statistic)
    return agreement, counts


def pruning_summary(study: optuna.Study) -> PruningSummary | None:
    """The study's `PruningSummary`, or None when no trial was scored at a rung."""
    recs = records(study)
    if not any(r.rungs for r in recs):
        return None
    stopped = [r.pruned for r in recs if r.pruned is not None]
    at: dict[int, int] = {}
    for p in stopped:
        at[p.epoch] = at.get(p.epoch, 0) + 1
    resumed = [r.result.run.resumed_epochs for r in recs if r.result is not None]
    agreement, agreement_n = _rung_agreement(recs, objective_names(study))
    return PruningSummary(
        n_stopped=len(stopped),
        stopped_at=dict(sorted(at.items())),
        epochs_saved=sum(p.epochs_saved for p in stopped),
        cpu_s_saved_est=float(sum(p.cpu_s_saved_est for p in stopped)),
        cpu_s_stopped=float(sum(p.cpu_s for p in stopped)),
        n_rung_evaluations=sum(len(r.rungs) for r in recs),
        rung_eval_s=float(sum(v.get("eval_s", 0.0) for r in recs for v in r.rungs.values())),
        n_resumed=sum(e > 0 for e in resumed),
        epochs_resumed=int(sum(resumed)),
        rung_agreement=agreement,
        rung_agreement_n=agreement_n,
    )


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
    complete = complete_trials(study)
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
        names = _searched_params(complete_trials(study))
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


# --- Pareto front data ------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontInfo:
    """What the Pareto-front figure draws, computed here so `nmhpo.plots` only renders.

    Arrays follow ``numbers``: the completed trials in trial-number order. ``grid_front`` is
    the grid study's Pareto set, (0, n_objectives) without a grid.
    """

    study_name: str
    names: tuple[str, ...]
    directions: tuple[Direction, ...]
    numbers: np.ndarray
    values: np.ndarray
    feasible: np.ndarray
    on_front: np.ndarray
    constrained: bool
    grid_name: str
    grid_front: np.ndarray


def pareto_front_info(study: optuna.Study, grid: optuna.Study | None = None) -> FrontInfo:
    """The completed trials, which are feasible and on the Pareto set, and the grid's front."""
    names = objective_names(study)
    trials = complete_trials(study)
    best = {t.number for t in study.best_trials}
    grid_front = np.empty((0, len(names)))
    if grid is not None:
        grid_front = _values(grid.best_trials, len(names))
    return FrontInfo(
        study_name=study.study_name,
        names=tuple(names),
        directions=tuple(direction_names(study.directions)),
        numbers=np.array([t.number for t in trials], dtype=int),
        values=_values(trials, len(names)),
        feasible=np.array([is_feasible(t) for t in trials], dtype=bool),
        on_front=np.array([t.number in best for t in trials], dtype=bool),
        constrained=any(t.constraints for t in trials),
        grid_name=grid.study_name if grid is not None else "",
        grid_front=grid_front,
    )
