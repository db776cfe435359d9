"""Syne Tune's MOASHA driving an nmhpo objective in-process: the multi-fidelity baseline that
nmhpo's own pruning is benchmarked against.

Syne Tune's Tuner would run each trial in a worker process behind a backend, poll it and
time it by the wall clock; a CPU-time comparison on a shared 2-core machine needs neither
the processes nor the polling. So this module plays the Tuner's part itself, one trial at a
time (MOASHA is asynchronous: one worker is a valid schedule), and counts CPU seconds as
the runners report them.

Syne Tune is a benchmark-only requirement (benchmarks/requirements-bench.txt, installed
with ``--no-deps``), never a dependency of nmhpo. Written against syne-tune 0.16.0; the
MOASHA, Trial and TrialSuggestion APIs used here are the same in 0.14.2.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol, TypedDict

import numpy as np
from syne_tune.backend.trial_status import Trial
from syne_tune.config_space import (
    Domain,
    choice,
    finrange,
    lograndint,
    loguniform,
    randint,
    uniform,
)
from syne_tune.optimizer.scheduler import SchedulerDecision
from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA
from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import MOPriority
from syne_tune.optimizer.schedulers.multiobjective.non_dominated_priority import (
    compute_epsilon_net,
    pareto_efficient,
)

from nmhpo.config import CategoricalParam, FloatParam, IntParam, ParamSpec, StudyConfig

logger = logging.getLogger(__name__)

#: What a trial with a non-finite objective reports on every objective (lower is better):
#: worse than any real value, yet finite, so the epsilon-net's distances stay numbers.
WORST = 1e30

#: The result key MOASHA reads progress from (its ``time_attr``): epochs trained, 1-based.
TIME_ATTR = "epoch"


class Runner(Protocol):
    """One trial's training, advanced epoch by epoch so the scheduler can stop it between
    epochs; it keeps its own CPU clock so the comparison with nmhpo is in CPU seconds."""

    def advance(self, epoch: int) -> dict[str, float]:
        """Train to ``epoch`` (1-based, >= the last one asked) and return every metric at
        that epoch, the study's objectives among them (by objective name)."""
        ...

    @property
    def cpu_s(self) -> float:
        """CPU seconds this runner has consumed so far."""
        ...


class MoashaEvent(TypedDict):
    """One finished trial, as `run_moasha` returns it."""

    config: dict[str, Any]
    #: True when the trial trained to ``max_epochs``.
    completed: bool
    #: Epochs trained: a rung level when MOASHA stopped it.
    epochs: int
    #: Objective values at its last epoch, in ``cfg.study.objectives`` order, as reported
    #: (maximized objectives are not negated here).
    values: list[float]
    #: Cumulative CPU seconds of the whole run after this trial.
    cpu_s: float
    #: Why it ended: trained to ``max_epochs``, stopped by MOASHA at a rung, or cut because
    #: the CPU budget ran out (not a scheduler decision, so a benchmark can tell them apart).
    reason: Literal["completed", "stopped", "budget"]


def syne_tune_space(cfg: StudyConfig) -> dict[str, Any]:
    """The study's searched parameters as a Syne Tune config space, sampling the same sets
    as nmhpo's Optuna suggestions (`nmhpo.space.suggest`) so both baselines search one space.

    Fixed parameters are left out: the caller adds them. Grid levels are ignored, as they are
    by every sampler but grid.
    """
    return {name: _domain(name, spec) for name, spec in cfg.searched().items()}


def _domain(name: str, spec: ParamSpec) -> Domain:
    if isinstance(spec, FloatParam):
        if spec.step is not None:
            # Optuna's suggest_float(step=...) draws low + k*step up to the last multiple that
            # fits under high; the same levels, counted in decimals so 0.1-steps do not lose
            # their last level to rounding.
            low, step = Decimal(str(spec.low)), Decimal(str(spec.step))
            n = int((Decimal(str(spec.high)) - low) // step)
            return finrange(spec.low, float(low + n * step), n + 1)
        return loguniform(spec.low, spec.high) if spec.log else uniform(spec.low, spec.high)
    if isinstance(spec, IntParam):
        if spec.step > 1:  # the config forbids log together with a step
            n = (spec.high - spec.low) // spec.step
            return finrange(spec.low, spec.low + n * spec.step, n + 1, cast_int=True)
        return lograndint(spec.low, spec.high) if spec.log else randint(spec.low, spec.high)
    if isinstance(spec, CategoricalParam):
        choices = list(spec.choices)
        kinds = {type(c) for c in choices}
        if len(kinds) == 1:
            return choice(choices)
        # Syne Tune's choice() asserts one type; a TOML list like [0.5, 1] mixes int and
        # float, which as floats is the same set of values.
        as_float = [float(c) for c in choices]
        if kinds <= {int, float} and len(set(as_float)) == len(as_float):
            return choice(as_float)
        raise ValueError(
            f"space parameter {name}: Syne Tune's choice() needs choices of one type; "
            f"got {sorted(k.__name__ for k in kinds)}"
        )
    raise TypeError(f"space parameter {name}: not a searched parameter ({type(spec).__name__})")


class NonDominatedRank(MOPriority):
    """MOASHA's non-dominated sort with epsilon-net tie-breaking, returned as each item's
    rank, which is what MOASHA's rung test reads.

    Syne Tune's own `NonDominatedPriority` returns the sorted order instead (item indices,
    best first), and ``Bracket.on_result`` then takes ``order[-1] / n``, the index of the
    worst item, for the new trial's rank: the decision turns on which recorded trial is
    worst, not on where the new one ranks. In 0.14.2, 0.16.0 and upstream master (June
    2026) a newcomer that dominates every trial recorded at the rung is stopped unless the
    worst of them happens to be among the first third recorded. Ranks make the test what
    the MOASHA paper means: stop unless in the best 1/reduction_factor of the rung.

    Built from Syne Tune's own `pareto_efficient` and `compute_epsilon_net` (which does
    return ranks), preferring objective ``dim`` first within a front as
    `NonDominatedPriority` does.
    """

    def __init__(self, dim: int = 0) -> None:
        super().__init__()
        self.dim = dim

    def priority_unsafe(self, objectives: np.ndarray) -> np.ndarray:
        ranks = np.empty(len(objectives), dtype=int)
        remaining = np.arange(len(objectives))
        placed = 0
        while remaining.size:
            on_front = pareto_efficient(objectives[remaining])
            front = remaining[on_front]
            ranks[front] = placed + compute_epsilon_net(objectives[front], dim=self.dim)
            placed += front.size
            remaining = remaining[~on_front]
        return ranks


@contextmanager
def _numpy_global_rng(state: np.random.RandomState) -> Iterator[None]:
    """Run scheduler code on our own seeded stream of numpy's global generator.

    MOASHA ignores its ``random_seed``: ``suggest`` samples each domain with
    ``random_state=None`` and ``on_trial_add`` picks a bracket with ``np.random.choice``,
    both from numpy's global generator. Swapping a private state in and out makes a run
    repeatable from ``seed`` whatever the runners do with ``np.random``, and leaves the
    caller's global stream as it was.
    """
    outer = np.random.get_state()
    np.random.set_state(state.get_state())
    try:
        yield
    finally:
        state.set_state(np.random.get_state())
        np.random.set_state(outer)


def run_moasha(
    cfg: StudyConfig,
    make_runner: Callable[[dict[str, Any]], Runner],
    *,
    max_epochs: int,
    grace_period: int = 1,
    reduction_factor: int = 3,
    seed: int = 0,
    cpu_budget_s: float | None = None,
    max_completed: int | None = None,
    stock_priority: bool = False,
) -> list[MoashaEvent]:
    """Search ``cfg``'s space with MOASHA until the CPU budget or the number of completed
    trials is reached; return one `MoashaEvent` per finished trial, in order.

    ``make_runner`` gets the searched values only (`syne_tune_space`); the caller adds the
    fixed ones. Every epoch is reported (``on_trial_result``, ``time_attr`` = epoch), as
    Syne Tune's Tuner would; MOASHA decides only at its rungs (grace_period *
    reduction_factor**k) and continues elsewhere. A trial that reaches ``max_epochs`` goes to
    ``on_trial_complete`` instead of ``on_trial_result``, whose answer at ``max_t`` is a
    plain STOP that records nothing (and would count as a stop). A stopped trial is removed
    from the scheduler (``on_trial_remove``), as the Tuner does.

    MOASHA has one direction for all metrics (``do_minimize``), so it is run minimizing and
    maximized objectives are reported negated. A trial with a non-finite objective (a
    diverged network) is reported as `WORST` on every objective: with NaN it would be
    incomparable, so never dominated, and it would survive every rung on its energy alone.

    Rungs rank trials with `NonDominatedRank`; ``stock_priority`` uses Syne Tune's default
    `NonDominatedPriority` instead, to reproduce MOASHA as shipped (see `NonDominatedRank`).

    The budget is checked after every epoch: a trial still running when cumulative CPU
    seconds exceed ``cpu_budget_s`` ends there (``reason`` "budget"), so a run overshoots by
    at most one epoch rather than one whole trial.
    """
    if cpu_budget_s is None and max_completed is None:
        raise ValueError("run_moasha needs cpu_budget_s or max_completed: MOASHA samples forever")
    if cpu_budget_s is not None and not cpu_budget_s > 0:
        raise ValueError(f"cpu_budget_s must be > 0; got {cpu_budget_s}")
    if max_completed is not None and max_completed < 1:
        raise ValueError(f"max_completed must be >= 1; got {max_completed}")
    if not 1 <= grace_period <= max_epochs:
        raise ValueError(f"need 1 <= grace_period <= max_epochs; got {grace_period}, {max_epochs}")
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor must be >= 2; got {reduction_factor}")

    names = [o.name for o in cfg.study.objectives]
    if TIME_ATTR in names:
        raise ValueError(f"an objective may not be named {TIME_ATTR!r} (MOASHA's time_attr)")
    signs = [1.0 if o.resolved_direction == "minimize" else -1.0 for o in cfg.study.objectives]
    scheduler = MOASHA(
        config_space=syne_tune_space(cfg),
        metrics=names,
        do_minimize=True,
        time_attr=TIME_ATTR,
        max_t=max_epochs,
        grace_period=grace_period,
        reduction_factor=reduction_factor,
        multiobjective_priority=None if stock_priority else NonDominatedRank(),
        random_seed=seed,  # kept in its metadata only; see _numpy_global_rng
    )
    rng = np.random.RandomState(seed)
    events: list[MoashaEvent] = []
    spent = 0.0
    completed = 0
    trial_id = 0

    def over_budget(cpu_s: float) -> bool:
        return cpu_budget_s is not None and cpu_s > cpu_budget_s

    while (max_completed is None or completed < max_completed) and not over_budget(spent):
        with _numpy_global_rng(rng):
            suggestion = scheduler.suggest()
            if suggestion is None:  # MOASHA never runs out; other schedulers may
                break
            trial = Trial(
                trial_id=trial_id, config=dict(suggestion.config), creation_time=datetime.now()
            )
            scheduler.on_trial_add(trial)
        trial_id += 1
        runner = make_runner(dict(trial.config))

        reason: Literal["completed", "stopped", "budget"] = "completed"
        for epoch in range(1, max_epochs + 1):
            metrics = runner.advance(epoch)
            missing = [n for n in names if n not in metrics]
            if missing:
                raise KeyError(
                    f"trial {trial.trial_id}: runner returned no {missing} at epoch {epoch}"
                )
            values = [float(metrics[n]) for n in names]
            result: dict[str, Any] = {TIME_ATTR: epoch, **_losses(names, values, signs)}
            if epoch == max_epochs:
                with _numpy_global_rng(rng):
                    scheduler.on_trial_complete(trial, result)
                break
            with _numpy_global_rng(rng):
                decision = scheduler.on_trial_result(trial, result)
            if decision != SchedulerDecision.CONTINUE:
                # MOASHA answers CONTINUE or STOP; this driver cannot resume a PAUSE.
                logger.debug("trial %d: %s at epoch %d", trial.trial_id, decision, epoch)
                reason = "stopped"
            elif over_budget(spent + runner.cpu_s):
                reason = "budget"
            else:
                continue
            with _numpy_global_rng(rng):
                scheduler.on_trial_remove(trial)
            break

        spent += runner.cpu_s
        if reason == "completed":
            completed += 1
        events.append(
            MoashaEvent(
                config=dict(trial.config),
                completed=reason == "completed",
                epochs=epoch,
                values=values,
                cpu_s=spent,
                reason=reason,
            )
        )
        logger.info(
            "trial %d: %s after %d epochs, values %s, run CPU %.2f s",
            trial.trial_id,
            reason,
            epoch,
            values,
            spent,
        )
        del runner  # free its model before the next trial builds one
    return events


def _losses(names: list[str], values: list[float], signs: list[float]) -> dict[str, float]:
    if all(math.isfinite(v) for v in values):
        return {n: s * v for n, s, v in zip(names, signs, values, strict=True)}
    logger.warning("non-finite objective values %s: reported to MOASHA as worst", values)
    return {n: WORST for n in names}
