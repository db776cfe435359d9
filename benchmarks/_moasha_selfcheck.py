"""Self-check of benchmarks/_moasha.py on a synthetic objective: seconds, no training.

A synthetic runner stands in for nmhpo's training: accuracy follows a learning curve
acc(epoch) = a * (1 - exp(-epoch / tau)) whose ceiling ``a`` and speed ``tau`` depend on
the quickstart study's parameters, energy is a fixed cost of the point, and every epoch
costs 0.01 CPU seconds. Because the curves are known in closed form, the check can say
which of MOASHA's early stops were right (the point is dominated at full training anyway)
and which cut a point of the full-fidelity Pareto front.

Checks, each failing with a non-zero exit:
1. the quickstart space converts, and stepped / log-int / mixed int-float parameters sample
   only the values Optuna would;
2. Syne Tune's stock rung ranking stops a newcomer that dominates its rung, and
   `_moasha.NonDominatedRank` does not;
3. a run to 10 completed trials stops most trials at rungs 1, 3 and 9, mostly trials that
   are dominated at full training anyway, and completes some;
4. the same seed gives the same events, and the caller's numpy global generator is left
   untouched;
5. on equal CPU budgets the fixed ranking completes a better front than the stock one;
6. diverged (NaN) trials never pass the first rung;
7. a CPU budget ends the run within one epoch of it.

Needs benchmarks/requirements-bench.txt installed (with --no-deps). Takes ~6 s.
Run: .venv/bin/python benchmarks/_moasha_selfcheck.py
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import Counter
from decimal import Decimal
from typing import Any

import numpy as np
from _moasha import WORST, MoashaEvent, NonDominatedRank, _losses, run_moasha, syne_tune_space
from syne_tune.optimizer.schedulers.asha import Bracket
from syne_tune.optimizer.schedulers.multiobjective.multiobjective_priority import (
    NonDominatedPriority,
)

import nmhpo
from nmhpo._resources import data_dir
from nmhpo.config import StudyConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_EPOCHS = 27
CPU_PER_EPOCH = 0.01


def curve(config: dict[str, Any]) -> tuple[float, float, float]:
    """(accuracy ceiling a, time constant tau in epochs, energy in uJ) of a quickstart point:
    bigger, finer networks are more accurate and cost more energy; a learning rate far from
    1e-2 lowers the ceiling, a small one also learns slowly, so some curves cross."""
    lr, steps, hidden = config["lr"], config["num_steps"], config["hidden_size"]
    adc, wbits, xbar = config["adc_bits"], config["weight_bits"], config["xbar_size"]
    rate = config["encoding"] == "rate"
    a = (
        0.99
        * (1 - 0.3 * math.log10(lr / 1e-2) ** 2)
        * (1 - 0.25 * 32 / hidden)
        * (1 - 0.4 / steps)
        * (1 - 0.3 * 2.0 ** -(adc - 2))
        * (1.0 if wbits == 8 else 0.95)
        * (1.0 if rate else 0.96)
        * (1 - 0.2 * (config["beta"] - 0.9) ** 2)
    )
    tau = 2.0 * math.sqrt(1e-2 / lr)
    energy = 1e-3 * hidden * steps * (adc + wbits) / 8 * {32: 1.2, 64: 1.0, 128: 0.9}[xbar]
    return a, tau, energy * (1.5 if rate else 1.0)


def final_values(config: dict[str, Any]) -> tuple[float, float]:
    a, tau, energy = curve(config)
    return a * (1 - math.exp(-MAX_EPOCHS / tau)), energy


class SyntheticRunner:
    """`_moasha.Runner` on the closed-form curve."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.a, self.tau, self.energy = curve(config)
        self.epoch = 0
        self._cpu_s = 0.0

    def advance(self, epoch: int) -> dict[str, float]:
        assert epoch >= self.epoch, (epoch, self.epoch)
        self._cpu_s += CPU_PER_EPOCH * (epoch - self.epoch)
        self.epoch = epoch
        acc = self.a * (1 - math.exp(-epoch / self.tau))
        # An extra metric, as nmhpo reports more than the objectives.
        return {"accuracy": acc, "energy_uj": self.energy, "latency_us": 1.0}

    @property
    def cpu_s(self) -> float:
        return self._cpu_s


class DivergingRunner(SyntheticRunner):
    """Accuracy NaN whenever lr > 1e-2, as a diverged network reports it."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.diverges = config["lr"] > 1e-2

    def advance(self, epoch: int) -> dict[str, float]:
        out = super().advance(epoch)
        if self.diverges:
            out["accuracy"] = math.nan
        return out


def check(ok: bool, what: str) -> None:
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        sys.exit(1)


def dominated(p: tuple[float, float], by: tuple[float, float]) -> bool:
    """accuracy up, energy down."""
    return by[0] >= p[0] and by[1] <= p[1] and by != p


def hypervolume(points: list[tuple[float, float]]) -> float:
    """Area dominated by (accuracy, energy) points, up to accuracy 0 and energy 15 uJ (above
    the synthetic maximum, 14.7)."""
    area, best_acc = 0.0, 0.0
    for acc, energy in sorted(points, key=lambda p: p[1]):
        if acc > best_acc:
            area += (acc - best_acc) * (15.0 - energy)
            best_acc = acc
    return area


def check_priority() -> None:
    """One rung of 12 recorded trials and a newcomer, through Syne Tune's Bracket."""
    pts = np.random.RandomState(0).uniform(0, 1, size=(12, 2))
    for priority, want in (
        (NonDominatedPriority(), ("STOP", "STOP")),
        (NonDominatedRank(), ("CONTINUE", "STOP")),
    ):
        got = []
        for new in (-1.0, 2.0):  # dominates every recorded trial; dominated by all
            bracket = Bracket(1, MAX_EPOCHS, 3, 0, priority)
            for i, (x, y) in enumerate(pts):
                bracket.on_result(i, 1, {"a": x, "b": y})
            got.append(bracket.on_result(99, 1, {"a": new, "b": new}))
        name = type(priority).__name__
        check(
            tuple(got) == want,
            f"{name}: a newcomer dominating the rung -> {got[0]}, dominated -> {got[1]}",
        )


def check_space(cfg: StudyConfig) -> None:
    space = syne_tune_space(cfg)
    print("quickstart as a Syne Tune space:")
    for name, domain in space.items():
        print(f"  {name:12s} {domain}")
    check(set(space) == set(cfg.searched()), "every searched parameter, no fixed one (epochs)")

    raw = tomllib.loads((data_dir("studies") / "quickstart.toml").read_text(encoding="utf-8"))
    sw = raw["space"]["software"]
    sw["lr"] = {"type": "float", "low": 0.001, "high": 0.0305, "step": 0.001}
    sw["num_steps"] = {"type": "int", "low": 2, "high": 17, "step": 3}
    sw["hidden_size"] = {"type": "int", "low": 16, "high": 512, "log": True}
    sw["beta"] = {"type": "categorical", "choices": [0.5, 1]}
    space = syne_tune_space(StudyConfig.model_validate(raw))
    rs = np.random.RandomState(1)
    draws = [{k: d.sample(random_state=rs) for k, d in space.items()} for _ in range(500)]
    lr_levels = {round(0.001 * k, 12) for k in range(1, 31)}  # Optuna: high cut to 0.030
    check(
        {round(d["lr"], 12) for d in draws} <= lr_levels
        and len({round(d["lr"], 12) for d in draws}) > 20,
        "stepped float samples low + k*step only, the last level fitting under high",
    )
    check(
        {d["num_steps"] for d in draws} == {2, 5, 8, 11, 14, 17},
        "stepped int samples low + k*step, both ends included",
    )
    hidden = [d["hidden_size"] for d in draws]
    check(
        all(isinstance(h, int) and 16 <= h <= 512 for h in hidden)
        and float(np.median(hidden)) < 150,
        f"log int samples ints in range, log-spread (median {np.median(hidden):.0f})",
    )
    check({d["beta"] for d in draws} == {0.5, 1.0}, "mixed int/float choices become floats")
    check(
        Decimal("0.0305") - Decimal(str(max(d["lr"] for d in draws))) < Decimal("0.001"),
        "stepped float reaches its top level",
    )


def main() -> None:
    t0 = time.perf_counter()
    cfg = nmhpo.load_config("quickstart")
    check_space(cfg)
    check_priority()
    logging.disable(logging.WARNING)  # the warning this provokes on purpose
    losses = _losses(["accuracy", "energy_uj"], [math.nan, 0.1], [-1.0, 1.0])
    logging.disable(logging.NOTSET)
    check(
        losses == {"accuracy": WORST, "energy_uj": WORST},
        "a non-finite objective is reported as worst on every objective",
    )

    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    events = run_moasha(cfg, SyntheticRunner, max_epochs=MAX_EPOCHS, seed=0, max_completed=10)
    check(
        np.array_equal(np.random.get_state()[1], before),
        "the caller's numpy global generator is untouched",
    )
    by_epochs = Counter(e["epochs"] for e in events)
    n = len(events)
    cpu = events[-1]["cpu_s"]
    print(
        f"\nrun to 10 completed trials (max_epochs {MAX_EPOCHS}, grace 1, factor 3): "
        f"{n} trials, epochs reached {dict(sorted(by_epochs.items()))}, "
        f"CPU {cpu:.2f} s vs {n * MAX_EPOCHS * CPU_PER_EPOCH:.2f} s to train all fully"
    )
    check(sum(e["completed"] for e in events) == 10, "10 trials completed, then it stopped")
    check(
        all(e["epochs"] in (1, 3, 9) for e in events if e["reason"] == "stopped"),
        "every stop is at a rung (1, 3, 9)",
    )
    check(by_epochs[1] > n / 3, "most trials are stopped at the first rung")
    check(
        all(e["reason"] == "completed" for e in events if e["completed"])
        and all(e["epochs"] == MAX_EPOCHS for e in events if e["completed"]),
        "completed trials trained to max_epochs",
    )
    check(
        all(a["cpu_s"] < b["cpu_s"] for a, b in zip(events, events[1:], strict=False)),
        "cumulative CPU grows trial by trial",
    )

    # Judge the stops with the closed-form curves: the full-fidelity Pareto front of the
    # points MOASHA sampled, and which stopped points were dominated there anyway.
    final = [final_values(e["config"]) for e in events]
    front = {i for i, p in enumerate(final) if not any(dominated(p, q) for q in final)}
    stopped = [i for i, e in enumerate(events) if e["reason"] == "stopped"]
    for rung in (1, 3, 9):
        at = [i for i in stopped if events[i]["epochs"] == rung]
        right = sum(i not in front for i in at)
        print(
            f"  stopped at epoch {rung}: {len(at):3d}, of which dominated at full training "
            f"{right} ({right / max(len(at), 1):.0%})"
        )
    done = {i for i, e in enumerate(events) if e["completed"]}
    print(
        f"  full-fidelity front of the {n} sampled points: {len(front)} points, "
        f"{len(front & done)} of them completed, {len(front - done)} stopped early"
    )
    at_first = [i for i in stopped if events[i]["epochs"] == 1]
    right = sum(i not in front for i in at_first)
    check(right >= 0.8 * len(at_first), "at least 80% of first-rung stops were dominated anyway")

    again = run_moasha(cfg, SyntheticRunner, max_epochs=MAX_EPOCHS, seed=0, max_completed=10)
    check(again == events, "same seed, same events")
    other = run_moasha(cfg, SyntheticRunner, max_epochs=MAX_EPOCHS, seed=1, max_completed=10)
    check(other[0]["config"] != events[0]["config"], "another seed samples other points")

    print("\nstock vs fixed rung ranking, same seeds, 3.0 CPU-s each:")
    hv: dict[bool, list[float]] = {False: [], True: []}
    for stock in (True, False):
        for seed in range(3):
            run = run_moasha(
                cfg,
                SyntheticRunner,
                max_epochs=MAX_EPOCHS,
                seed=seed,
                cpu_budget_s=3.0,
                stock_priority=stock,
            )
            hv[stock].append(hypervolume([tuple(e["values"]) for e in run if e["completed"]]))
        print(
            f"  {'stock NonDominatedPriority' if stock else 'NonDominatedRank':27s} "
            f"hypervolume of completed trials per seed: {[round(h, 2) for h in hv[stock]]}"
        )
    check(
        all(f > s for f, s in zip(hv[False], hv[True], strict=True)),
        "ranking by NonDominatedRank finds the better front on every seed",
    )

    logging.disable(logging.WARNING)
    nan_run = run_moasha(cfg, DivergingRunner, max_epochs=MAX_EPOCHS, seed=0, max_completed=5)
    logging.disable(logging.NOTSET)
    diverged = [e for e in nan_run if e["config"]["lr"] > 1e-2]
    check(
        bool(diverged) and all(e["epochs"] == 1 for e in diverged),
        f"diverged (NaN) trials never pass the first rung ({len(diverged)} of {len(nan_run)})",
    )

    budget: list[MoashaEvent] = run_moasha(
        cfg, SyntheticRunner, max_epochs=MAX_EPOCHS, seed=0, cpu_budget_s=2.0
    )
    last = budget[-1]
    print(
        f"\nrun on a 2.0 CPU-s budget: {len(budget)} trials, "
        f"{sum(e['completed'] for e in budget)} completed, ends at {last['cpu_s']:.3f} s "
        f"({last['reason']} after {last['epochs']} epochs)"
    )
    check(
        2.0 < last["cpu_s"] <= 2.0 + CPU_PER_EPOCH + 1e-9
        and all(e["cpu_s"] <= 2.0 for e in budget[:-1]),
        "the budget ends the run within one epoch of it",
    )
    k = min(len(budget) - 1, len(events))
    check(budget[:k] == events[:k], "same seed, same trials whatever the stopping rule")
    print(f"\nself-check passed in {time.perf_counter() - t0:.1f} s wall")


if __name__ == "__main__":
    main()
