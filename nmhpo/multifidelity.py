"""Multi-fidelity search: stop trials that are dominated part-way through their training.

Optuna cannot prune a multi-objective study (``Trial.report`` raises with more than one
direction), so nmhpo does it itself:

- **Rungs.** A trial with ``E`` epochs is scored at epochs ``min_epochs * eta**k < E`` exactly as
  the study scores it at the end (float or crossbar-aware inference on the validation split,
  its measured activity priced on the crossbar model). Its objective values there are stored as
  user attributes ``rung<epoch>.<objective>`` (with ``rung<epoch>.cpu_s``, the trial's CPU
  seconds so far, and ``rung<epoch>.eval_s``, what scoring at that rung cost), committed at
  once so that other workers, on this machine or others, decide with them.
- **Decisions** (asynchronous successive halving by non-dominated rank): at a rung, a trial is
  compared with every trial that reached the same rung, whatever its state now (running
  elsewhere, finished or stopped). It goes on when it is on their non-dominated front, or when
  it is among the best ``ceil(n / eta)`` of the ``n`` by (feasibility, non-dominated rank,
  crowding distance). With fewer than ``min_trials`` trials at the rung it always goes on.
- **Learning from stopped trials.** `StoppedTrialsSampler` shows the sampler each stopped trial
  as a completed one with the values of its last rung: a real measurement of that point,
  pessimistic for measures that improve with training. GP and NSGA-II would otherwise ignore
  it, and TPE would file it as bad whatever it measured.

Nothing here imports torch: the decisions are NumPy over the trials in storage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo.config import PruningSection, StudyConfig

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial, TrialState

#: User attributes of a stopped trial.
PRUNED_EPOCH = "pruned.epoch"
PRUNED_REASON = "pruned.reason"
PRUNED_EPOCHS_SAVED = "pruned.epochs_saved"
PRUNED_CPU_S_SAVED = "pruned.cpu_s_saved_est"

_RUNG_KEY = re.compile(r"^rung(\d+)\.(.+)$")


def rung_epochs(pruning: PruningSection, epochs: int) -> list[int]:
    """Epochs at which a trial of ``epochs`` epochs is scored and may be stopped: none at or
    past its last epoch, which is the trial's end."""
    out: list[int] = []
    k = 0
    while True:
        epoch = int(round(pruning.min_epochs * pruning.reduction_factor**k))
        if epoch >= epochs:
            return out
        if not out or epoch > out[-1]:
            out.append(epoch)
        k += 1


def rung_key(epoch: int, name: str) -> str:
    return f"rung{epoch}.{name}"


def rung_attrs(
    epoch: int,
    values: Mapping[str, float],
    *,
    cpu_s: float,
    eval_s: float,
    violation: float | None = None,
) -> dict[str, float]:
    """The user attributes a trial stores at a rung (scalars: sortable in optuna-dashboard)."""
    out = {rung_key(epoch, k): float(v) for k, v in values.items()}
    out[rung_key(epoch, "cpu_s")] = float(cpu_s)
    out[rung_key(epoch, "eval_s")] = float(eval_s)
    if violation is not None:
        out[rung_key(epoch, "violation")] = float(violation)
    return out


def rung_values(
    user_attrs: Mapping[str, Any], epoch: int, names: Sequence[str]
) -> tuple[float, ...] | None:
    """A trial's objective values at ``epoch``, or None when it has not reached that rung."""
    out = []
    for name in names:
        value = user_attrs.get(rung_key(epoch, name))
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        out.append(float(value))
    return tuple(out)


def reached_rungs(user_attrs: Mapping[str, Any]) -> list[int]:
    """The rungs a trial stored values at, ascending."""
    return sorted({int(m.group(1)) for k in user_attrs if (m := _RUNG_KEY.match(k))})


# --- decisions -------------------------------------------------------------------------------


def nondominated_ranks(loss: np.ndarray) -> np.ndarray:
    """Front index (0 = non-dominated) of each row of ``loss`` (n, m), every column minimised.

    O(n^2 m) in NumPy: a rung holds at most a study's trials, thousands at the very most.
    """
    n = len(loss)
    ranks = np.full(n, -1, dtype=int)
    if n == 0:
        return ranks
    le = np.all(loss[:, None, :] <= loss[None, :, :], axis=2)
    lt = np.any(loss[:, None, :] < loss[None, :, :], axis=2)
    dominates = le & lt  # dominates[i, j]: i dominates j
    left = np.ones(n, dtype=bool)
    front = 0
    while left.any():
        dominated = (dominates & left[:, None]).any(axis=0)
        current = left & ~dominated
        ranks[current] = front
        left &= ~current
        front += 1
    return ranks


def crowding_distances(loss: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance within one front: infinite at the extremes, so that a
    trial at the end of a front (the cheapest or the most accurate) is the last one cut."""
    n, m = loss.shape
    out = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(loss[:, j], kind="stable")
        column = loss[order, j]
        span = column[-1] - column[0]
        out[order[0]] = out[order[-1]] = np.inf
        if span > 0:
            out[order[1:-1]] += (column[2:] - column[:-2]) / span
    return out


@dataclass(frozen=True)
class RungDecision:
    """Whether a trial goes on past a rung, and why (stored with a stopped trial)."""

    go_on: bool
    position: int  # 0-based place of the trial among those at the rung
    n: int  # trials at the rung, the deciding one included
    n_keep: int
    on_front: bool

    def reason(self, epoch: int) -> str:
        if self.n_keep >= self.n:
            return f"epoch {epoch}: {self.n} trial(s) at this rung, fewer than needed to decide"
        where = "on the rung's front" if self.on_front else f"rank {self.position + 1}"
        return f"epoch {epoch}: {where} of {self.n} trials; the best {self.n_keep} go on"


def decide(
    loss: np.ndarray,
    me: int,
    *,
    reduction_factor: float,
    min_trials: int,
    violation: np.ndarray | None = None,
) -> RungDecision:
    """Whether row ``me`` of ``loss`` (n, m), every column minimised, goes on.

    Order: feasible trials (violation <= 0) first, then by non-dominated rank, then by
    decreasing crowding distance within the rank (ties by index: earlier trials first);
    infeasible trials after, by increasing violation. A feasible trial on the first front
    always goes on: stopping a point of the rung's front could only make the front worse.
    """
    n = len(loss)
    if n < min_trials:
        return RungDecision(True, 0, n, n, False)
    violation = np.zeros(n) if violation is None else np.asarray(violation, float)
    feasible = violation <= 0
    ranks = np.full(n, np.iinfo(np.int64).max // 2, dtype=np.int64)
    crowd = np.zeros(n)
    if feasible.any():
        idx = np.flatnonzero(feasible)
        ranks[idx] = nondominated_ranks(loss[idx])
        for r in np.unique(ranks[idx]):
            members = idx[ranks[idx] == r]
            crowd[members] = crowding_distances(loss[members])
    keys = sorted(
        range(n),
        key=lambda i: (not feasible[i], ranks[i], -crowd[i], max(violation[i], 0.0), i),
    )
    position = keys.index(me)
    n_keep = max(1, math.ceil(n / reduction_factor))
    on_front = bool(feasible[me] and ranks[me] == 0)
    return RungDecision(on_front or position < n_keep, position, n, n_keep, on_front)


def rung_table(
    trials: Sequence[FrozenTrial],
    epoch: int,
    names: Sequence[str],
    directions: Sequence[str],
    *,
    exclude_number: int | None = None,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """(trial numbers, losses (n, m), violations (n,)) of the trials that reached ``epoch``.

    Failed trials are left out: a killed trial's re-run (a new trial with the same point and
    the same attributes) would otherwise count twice.
    """
    from optuna.trial import TrialState

    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    numbers, rows, violations = [], [], []
    for t in trials:
        if t.state == TrialState.FAIL or t.number == exclude_number:
            continue
        values = rung_values(t.user_attrs, epoch, names)
        if values is None:
            continue
        numbers.append(t.number)
        rows.append(values)
        violations.append(float(t.user_attrs.get(rung_key(epoch, "violation"), 0.0)))
    loss = np.asarray(rows, float).reshape(len(rows), len(names)) * sign
    return numbers, loss, np.asarray(violations, float)


def decide_for_trial(
    cfg: StudyConfig,
    trials: Sequence[FrozenTrial],
    number: int,
    epoch: int,
    values: Sequence[float],
    violation: float = 0.0,
) -> RungDecision:
    """The decision for trial ``number`` at ``epoch`` given the study's ``trials`` as stored
    (its own row is ``values``, not read back from storage)."""
    names = [o.name for o in cfg.study.objectives]
    directions = [o.resolved_direction for o in cfg.study.objectives]
    _, loss, violations = rung_table(trials, epoch, names, directions, exclude_number=number)
    sign = np.array([-1.0 if d == "maximize" else 1.0 for d in directions])
    loss = np.vstack([loss, np.asarray(values, float) * sign])
    violations = np.append(violations, violation)
    pruning = cfg.study.pruning
    return decide(
        loss,
        len(loss) - 1,
        reduction_factor=pruning.reduction_factor,
        min_trials=pruning.min_trials,
        violation=violations,
    )


# --- the sampler learns from stopped trials ----------------------------------------------------


def as_observation(trial: FrozenTrial, names: Sequence[str]) -> FrozenTrial | None:
    """A stopped trial as a completed one with its last rung's values, or None when it
    stopped before any rung (e.g. a grid point skipped as taken)."""
    from optuna.trial import TrialState

    rungs = reached_rungs(trial.user_attrs)
    for epoch in reversed(rungs):
        values = rung_values(trial.user_attrs, epoch, names)
        if values is not None:
            seen = _copy_trial(trial)
            seen.state = TrialState.COMPLETE
            seen.values = list(values)
            return seen
    return None


def _copy_trial(trial: FrozenTrial) -> FrozenTrial:
    from optuna.trial import FrozenTrial

    out = FrozenTrial(
        number=trial.number,
        state=trial.state,
        value=None,
        values=trial.values,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs=trial.user_attrs,
        system_attrs=trial.system_attrs,
        intermediate_values=trial.intermediate_values,
        trial_id=trial._trial_id,
    )
    return out


class _StudyView:
    """The study as the inner sampler should see it: stopped trials with rung values appear
    as completed ones. Everything else (storage, directions, writes) is the study's own."""

    def __init__(self, study: optuna.Study, names: Sequence[str]) -> None:
        self._study = study
        self._names = list(names)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Sequence[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        from optuna.trial import TrialState

        trials = self._study._get_trials(deepcopy=deepcopy, states=None, use_cache=use_cache)
        out = []
        for t in trials:
            if t.state == TrialState.PRUNED:
                t = as_observation(t, self._names) or t
            if states is None or t.state in states:
                out.append(t)
        return out

    def get_trials(
        self,
        deepcopy: bool = True,
        states: Sequence[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states, use_cache=False)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    @property
    def best_trials(self) -> list[FrozenTrial]:
        return self._study.best_trials


def wrap_sampler(inner: BaseSampler, cfg: StudyConfig) -> BaseSampler:
    """``inner`` seeing stopped trials as observations when the study prunes and asks for it;
    ``inner`` itself otherwise."""
    if cfg.study.pruner == "none" or not cfg.study.pruning.learn_from_stopped:
        return inner
    return _sampler_class()(inner, [o.name for o in cfg.study.objectives])


_CLASS: type | None = None


def _sampler_class() -> type:
    """`StoppedTrialsSampler`, a subclass of Optuna's BaseSampler made on first use, so that
    importing this module does not import Optuna."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    from optuna.samplers import BaseSampler

    class StoppedTrialsSampler(BaseSampler):
        """Asks ``inner`` with stopped trials shown as completed ones (module docstring)."""

        def __init__(self, inner: BaseSampler, names: Sequence[str]) -> None:
            self.inner = inner
            self.names = list(names)

        def _view(self, study: optuna.Study) -> Any:
            return _StudyView(study, self.names)

        def infer_relative_search_space(
            self, study: optuna.Study, trial: FrozenTrial
        ) -> dict[str, BaseDistribution]:
            return self.inner.infer_relative_search_space(self._view(study), trial)

        def sample_relative(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            search_space: dict[str, BaseDistribution],
        ) -> dict[str, Any]:
            return self.inner.sample_relative(self._view(study), trial, search_space)

        def sample_independent(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            param_name: str,
            param_distribution: BaseDistribution,
        ) -> Any:
            return self.inner.sample_independent(
                self._view(study), trial, param_name, param_distribution
            )

        def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
            self.inner.before_trial(self._view(study), trial)

        def after_trial(
            self,
            study: optuna.Study,
            trial: FrozenTrial,
            state: TrialState,
            values: Sequence[float] | None,
        ) -> None:
            self.inner.after_trial(self._view(study), trial, state, values)

        def reseed_rng(self) -> None:
            self.inner.reseed_rng()

        def __repr__(self) -> str:
            return f"StoppedTrialsSampler({self.inner!r})"

    _CLASS = StoppedTrialsSampler
    return _CLASS
