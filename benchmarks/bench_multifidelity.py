"""Multi-fidelity search: CPU seconds to 95% and 99% of a reference hypervolume, with and
without nmhpo's pruner, and with Syne Tune's MOASHA driving the same objective.

Methods (each run gets the same CPU budget, a fresh model cache and its own SQLite file):

- ``none``: nmhpo as it runs by default (every trial trains to its last epoch);
- ``asha``: nmhpo with ``pruner = "asha"`` (stopped trials shown to the sampler);
- ``asha-first3``: the same pruner with its first rung at epoch 3 (``min_epochs = 3``:
  rungs 3 and 9 of 20) instead of 1. Rank agreement with the end (Spearman, 30 random
  trials trained to the end), epoch 1 against 3: pbl 0.66/0.95, bragg 0.55/0.79, digits20
  0.31/0.56;
- ``asha-blind``: the same pruner, the sampler seeing completed trials only (what stopped
  trials teach the sampler is the difference);
- ``none-hw4``, ``asha-hw4``: ``none`` and ``asha`` with ``hardware_variants = 4``: each
  network a trial trains is also scored at 4 other random points of the hardware space, each
  a trial of its own (no training: the network is cached); ``variant_pick = "random"``;
- ``none-hw4f``, ``asha-hw4f``: the same with the variants picked along the front
  (``variant_pick = "front"``, the default);
- ``moasha``: Syne Tune's MOASHA (random configurations, rungs at the same epochs as nmhpo's
  pruner, rank fixed as in benchmarks/_moasha.py) on nmhpo's own trial: the same training,
  crossbar-aware scoring and pricing, scored at rungs only.

The pruner's methods are measured against the union of their own runs; ``with_variants`` in
each task's entry measures every method, the variants' too, against the union front of all
runs, inside the pruner's runs' reference box (reference point and log columns): a variant
run's far-off trial would otherwise move every method's box (see the README).

CPU seconds are the benchmark process's own (``time.process_time``: training, scoring,
sampler, storage), summed over the run; the reference hypervolume is that of the union of
the completed trials of every run of a task, with one reference point per task
(`nmhpo.analysis.reference_point`). Runs go two at a time (one per core, torch on one
thread each) and each one's trajectory is written as soon as it ends, so an interrupted
benchmark resumes where it stopped.

A run given more than its task's budget (``--budget-scale`` above 1, e.g. no pruning on
bragg, which never reached 95% in log units within 360 s) is kept apart, in
``multifidelity-runs/longer``, and judged in ``past_budget``: where it reaches 95% when let
run on, against the in-budget reference and against one that also holds the longer runs'
later trials; speedups there are taken among the longer runs only.

    python benchmarks/bench_multifidelity.py                      # everything (hours)
    python benchmarks/bench_multifidelity.py --tasks digits20 --seeds 2 --budget-scale 0.2
    python benchmarks/bench_multifidelity.py --tasks bragg --methods none --redo --budget-scale 3
    python benchmarks/bench_multifidelity.py --aggregate-only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, environment, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = RESULTS / "multifidelity-runs"
#: Runs given more than their task's budget (``--budget-scale`` above 1), kept apart.
LONGER = RUNS / "longer"
METHODS = (
    "none",
    "asha",
    "asha-first3",
    "asha-blind",
    "moasha",
    "none-hw4",
    "asha-hw4",
    "none-hw4f",
    "asha-hw4f",
)

#: Tasks: a study file, overrides of [space.software] epochs, and a CPU budget per run.
TASKS: dict[str, dict[str, Any]] = {
    # studies/bragg.toml as shipped: 20 epochs, TPE, pixel error and energy.
    "bragg": {"study": "studies/bragg.toml", "epochs": None, "budget_s": 360.0},
    # The quickstart's space trained for 20 epochs (GP, accuracy and energy).
    "digits20": {"study": "studies/quickstart.toml", "epochs": 20, "budget_s": 90.0},
    # studies/pbl.toml as shipped: 20 epochs, TPE, R^2 and energy; about 4 CPU s a trial,
    # nearly all of it training (TPE samples in milliseconds, unlike digits20's GP).
    "pbl": {"study": "studies/pbl.toml", "epochs": None, "budget_s": 240.0},
    # studies/events.toml (event-camera digits, GP, accuracy and energy) trained for 20
    # epochs instead of 4: about 5 CPU s a trial, 24 time bins of 2x24x24 events.
    "events20": {"study": "studies/events.toml", "epochs": 20, "budget_s": 240.0},
}


def _config(task: str, method: str, seed: int, folder: Path) -> Any:
    from nmhpo.config import StudyConfig, load_config

    spec = TASKS[task]
    base = load_config(ROOT / spec["study"])
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["study"].update(
        name=f"{task}-{method}-{seed}",
        seed=seed,
        n_trials=100_000,
        storage=f"sqlite:///{folder / 'study.db'}",
        torch_threads=1,
        device="cpu",
        pruner="none" if method.startswith("none") else "asha",
        hardware_variants=_variants(method)[0],
        variant_pick=_variants(method)[1],
    )
    data["study"]["pruning"] = {"learn_from_stopped": method != "asha-blind"}
    if method == "asha-first3":
        data["study"]["pruning"]["min_epochs"] = 3
    if spec["epochs"] is not None:
        data["space"]["software"]["epochs"] = spec["epochs"]
    cfg = StudyConfig.model_validate({**data, "path": base.path})
    return cfg


def _variants(method: str) -> tuple[int, str]:
    """``<method>-hw<K>``: the method with ``hardware_variants = K`` drawn at random (as
    first measured); ``<method>-hw<K>f``: picked along the front (the default since)."""
    _, _, k = method.partition("-hw")
    if not k:
        return 0, "front"
    return (int(k[:-1]), "front") if k.endswith("f") else (int(k), "random")


def _max_epochs(cfg: Any) -> int:
    if "epochs" in cfg.searched():
        raise ValueError("the benchmark needs a fixed number of epochs")
    return int(cfg.fixed_software()["epochs"])


def run_nmhpo(task: str, method: str, seed: int, budget_s: float) -> dict[str, Any]:
    """One nmhpo run: Optuna's loop with nmhpo's objective, sampler and storage (what
    `nmhpo run` does in one worker), stopped when the process has used ``budget_s`` of CPU."""
    import optuna
    import torch

    from nmhpo.database import create_or_load, open_storage
    from nmhpo.multifidelity import wrap_sampler
    from nmhpo.objective import Objective
    from nmhpo.samplers import make_sampler
    from nmhpo.snn import ModelStore
    from nmhpo.study import quiet_optuna

    quiet_optuna()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = _config(task, method, seed, folder)
        storage = open_storage(cfg.storage_url(), heartbeat_s=cfg.study.heartbeat_s)
        study = create_or_load(cfg, storage)
        study.sampler = wrap_sampler(make_sampler(cfg), cfg)
        objective = Objective(cfg, ModelStore(folder / "models"), flush=storage.flush)
        start = time.process_time()
        events: list[dict[str, Any]] = []

        def record(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            cpu = time.process_time() - start
            events.append(
                {
                    "number": trial.number,
                    "state": trial.state.name,
                    "values": trial.values,
                    "epochs": trial.user_attrs.get(
                        "run.epochs_run", trial.user_attrs.get("pruned.epoch")
                    ),
                    "cpu_s": cpu,
                }
            )
            if cpu >= budget_s:
                study.stop()

        study.optimize(objective, callbacks=[record], catch=(Exception,))
    return {"events": events, "cpu_s": time.process_time() - start}


class _Runner:
    """nmhpo's trial for MOASHA: the same training, scoring and pricing as `Objective`,
    scored at MOASHA's rungs and at the last epoch only (MOASHA reads nothing between)."""

    def __init__(self, cfg: Any, config: dict[str, Any], store: Any, rungs: set[int]) -> None:
        from nmhpo.objective import _Repeat
        from nmhpo.registry import SOFTWARE

        self.cfg = cfg
        self.software = {**cfg.fixed_software()}
        self.hardware = {**cfg.fixed_hardware()}
        for name, value in config.items():
            (self.software if name in SOFTWARE else self.hardware)[name] = value
        self.rep = _Repeat(cfg, self.software, store, 0, "cpu")
        self.rungs = rungs
        self.epochs = int(self.software["epochs"])
        self.metrics: dict[str, float] = {}
        self._cpu = 0.0

    def advance(self, epoch: int) -> dict[str, float]:
        from nmhpo.objective import _score

        start = time.process_time()
        try:
            if epoch >= self.epochs:
                model = self.rep.finish()
            else:
                self.rep.advance(epoch)
                model = self.rep.current() if epoch in self.rungs else None
            if model is not None:
                self.metrics = dict(
                    _score(self.cfg, self.rep, model, self.hardware, "cpu").metrics
                )
        except Exception:  # a diverged network: MOASHA sees it as the worst
            self.metrics = {o.name: math.nan for o in self.cfg.study.objectives}
        self._cpu += time.process_time() - start
        return self.metrics

    @property
    def cpu_s(self) -> float:
        return self._cpu


def run_moasha_task(task: str, seed: int, budget_s: float) -> dict[str, Any]:
    import torch
    from _moasha import run_moasha

    from nmhpo.multifidelity import rung_epochs
    from nmhpo.snn import ModelStore

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cfg = _config(task, "moasha", seed, folder)
        epochs = _max_epochs(cfg)
        rungs = set(rung_epochs(cfg.study.pruning, epochs))
        store = ModelStore(folder / "models")
        start = time.process_time()
        out = run_moasha(
            cfg,
            lambda config: _Runner(cfg, config, store, rungs),
            max_epochs=epochs,
            grace_period=cfg.study.pruning.min_epochs,
            reduction_factor=int(cfg.study.pruning.reduction_factor),
            seed=seed,
            cpu_budget_s=budget_s,
        )
    events = [
        {
            "number": i,
            "state": "COMPLETE" if e["completed"] else "PRUNED",
            "values": e["values"] if e["completed"] else None,
            "epochs": e["epochs"],
            "cpu_s": e["cpu_s"],
        }
        for i, e in enumerate(out)
    ]
    return {"events": events, "cpu_s": time.process_time() - start}


def _run_path(task: str, method: str, seed: int, budget_s: float) -> Path:
    """Where a run is kept: a run past its task's budget in ``longer`` (one longer budget per
    task: `_past_budget` refuses to compare runs of two)."""
    folder = LONGER if budget_s > TASKS[task]["budget_s"] else RUNS
    return folder / f"{task}-{method}-{seed}.json"


def one_run(task: str, method: str, seed: int, budget_s: float) -> Path:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    wall = time.perf_counter()
    if method == "moasha":
        result = run_moasha_task(task, seed, budget_s)
    else:
        result = run_nmhpo(task, method, seed, budget_s)
    # The code that ran: runs are kept and re-aggregated across commits (--aggregate-only).
    result.update(task=task, method=method, seed=seed, budget_s=budget_s)
    result["commit"] = environment()["commit"]
    result["wall_s"] = time.perf_counter() - wall
    path = _run_path(task, method, seed, budget_s)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)
    return path


# --- aggregation ------------------------------------------------------------------------------


def _trajectory(run: dict[str, Any], directions: list[str], ref: np.ndarray) -> list[list[float]]:
    """(cpu_s, hypervolume of the completed trials so far) at each completed trial."""
    from nmhpo.analysis import hypervolume

    points, out = [], []
    for e in run["events"]:
        if e["state"] != "COMPLETE" or e["values"] is None:
            continue
        if not all(math.isfinite(v) for v in e["values"]):
            continue
        points.append(e["values"])
        out.append([e["cpu_s"], hypervolume(np.array(points), directions, ref)])
    return out


def _time_to(traj: list[list[float]], target: float) -> float | None:
    for cpu, hv in traj:
        if hv >= target * (1 - 1e-9):
            return cpu
    return None


def _median(values: list[float | None]) -> float | None:
    """Median with runs that never reached the mark counted as infinitely slow; None when
    the median itself did not reach it."""
    filled = sorted(math.inf if v is None else v for v in values)
    if not filled:
        return None
    m = float(np.median(filled))
    return m if math.isfinite(m) else None


def _log_columns(points: np.ndarray) -> list[int]:
    """Objectives measured in log10: positive and spanning more than 30x, the rule by which
    nmhpo's plots draw an axis in log scale (energy here spans three to four decades)."""
    cols = []
    for j in range(points.shape[1]):
        col = points[:, j]
        if (col > 0).all() and col.max() / col.min() > 30:
            cols.append(j)
    return cols


def _transform(run: dict[str, Any], cols: list[int]) -> dict[str, Any]:
    events = []
    for e in run["events"]:
        values = e["values"]
        if values is not None and all(math.isfinite(v) for v in values):
            values = [math.log10(v) if j in cols and v > 0 else v for j, v in enumerate(values)]
        events.append({**e, "values": values})
    return {**run, "events": events}


def _spent_until(run: dict[str, Any], cpu_s: float | None) -> dict[str, Any]:
    """Where a run's CPU went until it reached a mark at ``cpu_s``: how many trials it had
    completed, and the seconds those completed trials cost (each trial's cost is the
    difference between consecutive events' CPU: one worker runs them one after another, and
    a trial's cost includes its sampler step). A method cannot reach the mark faster than its
    completed trials alone took there, however cheap its stopped trials become: that bounds
    the speedup a pruner can show with this sampler's sequence of points."""
    if cpu_s is None:
        return {"n_complete_at_95": None, "cpu_s_to_95_in_completed": None}
    previous, n, spent = 0.0, 0, 0.0
    for e in run["events"]:
        if e["cpu_s"] > cpu_s:
            break
        if e["state"] == "COMPLETE":
            n += 1
            spent += e["cpu_s"] - previous
        previous = e["cpu_s"]
    return {"n_complete_at_95": n, "cpu_s_to_95_in_completed": spent}


def _methods(
    runs: list[dict[str, Any]], directions: list[str], ref: np.ndarray, ref_hv: float
) -> dict[str, Any]:
    methods: dict[str, Any] = {}
    for method in METHODS:
        mine = [r for r in runs if r["method"] == method]
        if not mine:
            continue
        per_seed = []
        for r in sorted(mine, key=lambda r: r["seed"]):
            traj = _trajectory(r, directions, ref)
            states = [e["state"] for e in r["events"]]
            to_95 = _time_to(traj, 0.95 * ref_hv)
            per_seed.append(
                {
                    "seed": r["seed"],
                    "cpu_s": r["cpu_s"],
                    "n_complete": states.count("COMPLETE"),
                    "n_stopped": states.count("PRUNED"),
                    "n_failed": states.count("FAIL"),
                    "epochs_trained": int(sum(e["epochs"] or 0 for e in r["events"])),
                    "final_hv_ratio": (traj[-1][1] / ref_hv) if traj else 0.0,
                    "cpu_s_to_95": to_95,
                    "cpu_s_to_99": _time_to(traj, 0.99 * ref_hv),
                    **_spent_until(r, to_95),
                    "hv_ratio_by_n_complete": [h / ref_hv for _, h in traj],
                    "trajectory": [[c, h / ref_hv] for c, h in traj],
                }
            )
        methods[method] = {
            "seeds": per_seed,
            "reached_95": sum(s["cpu_s_to_95"] is not None for s in per_seed),
            "cpu_s_to_95_median": _median([s["cpu_s_to_95"] for s in per_seed]),
            "n_complete_at_95_median": _median([s["n_complete_at_95"] for s in per_seed]),
            "cpu_s_to_95_in_completed_median": _median(
                [s["cpu_s_to_95_in_completed"] for s in per_seed]
            ),
            "cpu_s_to_99_median": _median([s["cpu_s_to_99"] for s in per_seed]),
            "final_hv_ratio_median": float(np.median([s["final_hv_ratio"] for s in per_seed])),
            "budget_s": mine[0]["budget_s"],
        }
    # The front at equal completed trials: the hypervolume after k completed trials,
    # k = the fewest any run of the task completed.
    k = min(len(s["hv_ratio_by_n_complete"]) for m in methods.values() for s in m["seeds"])
    none = methods.get("none", {})
    for m in methods.values():
        at_k = [s["hv_ratio_by_n_complete"][k - 1] for s in m["seeds"]] if k else []
        m["hv_ratio_at_equal_completed_median"] = float(np.median(at_k)) if at_k else None
        mine95 = m["cpu_s_to_95_median"]
        base = none.get("cpu_s_to_95_median")
        m["speedup_to_95_vs_no_pruning"] = (
            base / mine95 if base is not None and mine95 is not None else None
        )
        # No pruning never reached 95% within its budget (median): the speedup is at least
        # budget / this method's time.
        m["speedup_to_95_at_least"] = (
            none["budget_s"] / mine95
            if base is None and none and mine95 is not None
            else m["speedup_to_95_vs_no_pruning"]
        )
    # Matched quality: CPU seconds each method needs to reach the hypervolume that no
    # pruning reached with its whole budget (same seed), against the seconds no pruning
    # needed for it. Defined even when no pruning never reaches 95% of the reference.
    if none:
        base_runs = {s["seed"]: s for s in none["seeds"]}
        for m in methods.values():
            ratios = []
            for s in m["seeds"]:
                base = base_runs.get(s["seed"])
                if base is None or not base["hv_ratio_by_n_complete"]:
                    continue
                goal = base["hv_ratio_by_n_complete"][-1]
                t_base = _time_to(base["trajectory"], goal)
                t_mine = _time_to(s["trajectory"], goal)
                ratios.append(None if t_mine is None or t_base is None else t_base / t_mine)
            m["speedup_to_no_pruning_final_hv"] = ratios
            known = sorted(0.0 if r is None else r for r in ratios)
            m["speedup_to_no_pruning_final_hv_median"] = float(np.median(known)) if known else None
    for m in methods.values():
        for s in m["seeds"]:
            del s["trajectory"]
    return {"equal_completed_k": k, "methods": methods}


#: The pruner's comparison: its runs alone set the reference, so that adding runs of another
#: feature (hardware variants, whose random hardware points reach energies far above any the
#: sampler proposes) does not move the pruner's figures; those runs are judged in their own
#: group, ``with_variants``, against the union front of every run in the pruner's box.
PRUNER_METHODS = tuple(m for m in METHODS if "-hw" not in m)


def aggregate(tasks: list[str]) -> dict[str, Any]:
    """Per task, two measures of the same runs: ``log`` (the headline: objectives spanning
    more than 30x in log10) and ``linear`` (nmhpo compare's own units). In linear units the
    reference box reaches the costliest trial's energy, three to four decades above the front,
    so one early low-energy point already holds most of it and "95%" says more about the first
    trials' luck than about the search. The pruner's methods are measured against their own
    runs' union; ``with_variants`` measures every method against the union front of all runs
    inside the pruner's runs' box."""
    out: dict[str, Any] = {"tasks": {}}
    for task in tasks:
        runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob(f"{task}-*.json"))]
        if not runs:
            continue
        longer = [json.loads(p.read_text()) for p in sorted(LONGER.glob(f"{task}-*.json"))]
        pruner = [r for r in runs if r["method"] in PRUNER_METHODS]
        entry = _aggregate_group(
            task, pruner, longer=[r for r in longer if r["method"] in PRUNER_METHODS]
        )
        if any(r["method"] not in PRUNER_METHODS for r in runs):
            every = _aggregate_group(task, runs, box=pruner, longer=longer)
            keys = ("reference_rule", "runs", "log", "linear")
            entry["with_variants"] = {k: every[k] for k in keys}
        out["tasks"][task] = entry
    return out


def _past_budget(
    runs: list[dict[str, Any]],
    longer: list[dict[str, Any]],
    directions: list[str],
    ref: np.ndarray,
    ref_hv: float,
) -> dict[str, Any]:
    """Where the methods run past the common budget (``longer``) reach 95% when let run on:
    a baseline that never reached it within the budget gives the others' speedups only a
    lower bound. Speedups are taken among those runs only (run with the same code on the
    same day; the in-budget runs may be older). Two references: the in-budget one (the
    tails only timed), and the union with the tails' trials too, against which every method
    is judged again, by its longer runs where it has them (the runs that stopped at the
    budget cannot gain from the tails, so this reference is the harsher one for them)."""
    from nmhpo.analysis import hypervolume

    past = _methods(longer, directions, ref, ref_hv)["methods"]
    seeds = {m: sorted(s["seed"] for s in v["seeds"]) for m, v in past.items()}
    budgets = {r["budget_s"] for r in longer}
    if len({tuple(v) for v in seeds.values()}) > 1 or len(budgets) > 1:
        raise SystemExit(
            f"the longer runs must share their seeds and budget to be compared: {seeds}, "
            f"budgets {sorted(budgets)}"
        )
    base = past.get("none", {}).get("cpu_s_to_95_median")
    out: dict[str, Any] = {
        "methods_run_longer": {
            m: {
                "budget_s": v["budget_s"],
                "reached_95": v["reached_95"],
                "cpu_s_to_95_median": v["cpu_s_to_95_median"],
                "cpu_s_to_95_per_seed": {str(s["seed"]): s["cpu_s_to_95"] for s in v["seeds"]},
                "cpu_s_to_99_median": v["cpu_s_to_99_median"],
                "final_hv_ratio_median": v["final_hv_ratio_median"],
                "speedup_to_95_vs_no_pruning": (
                    base / v["cpu_s_to_95_median"]
                    if base is not None and v["cpu_s_to_95_median"] is not None
                    else None
                ),
            }
            for m, v in past.items()
        }
    }
    for v in out["methods_run_longer"].values():
        # As in the budget: the speedup, or where no pruning never reached 95% even let run
        # on, the bound its budget gives.
        mine = v["cpu_s_to_95_median"]
        v["speedup_to_95_at_least"] = (
            past["none"]["budget_s"] / mine
            if base is None and "none" in past and mine is not None
            else v["speedup_to_95_vs_no_pruning"]
        )
    mixed = longer + [r for r in runs if r["method"] not in past]
    tails_hv = float(hypervolume(_completed_values(runs + longer), directions, ref))
    again = _methods(mixed, directions, ref, tails_hv)["methods"]
    out["tails_in_reference"] = {
        "reference_hv": tails_hv,
        "methods": {
            m: {
                "reached_95": v["reached_95"],
                "cpu_s_to_95_median": v["cpu_s_to_95_median"],
                "final_hv_ratio_median": v["final_hv_ratio_median"],
                "budget_s": v["budget_s"],
                "speedup_to_95_vs_no_pruning": v["speedup_to_95_vs_no_pruning"],
                "speedup_to_95_at_least": v["speedup_to_95_at_least"],
            }
            for m, v in again.items()
        },
    }
    return out


def _completed_values(runs: list[dict[str, Any]]) -> np.ndarray:
    return np.array(
        [
            e["values"]
            for r in runs
            for e in r["events"]
            if e["state"] == "COMPLETE" and e["values"] and all(map(math.isfinite, e["values"]))
        ],
        dtype=float,
    )


def _aggregate_group(
    task: str,
    runs: list[dict[str, Any]],
    box: list[dict[str, Any]] | None = None,
    longer: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The group's figures against the union front of ``runs``, inside the box (reference
    point and log columns) of ``box``'s runs, by default ``runs`` themselves. A fixed box
    keeps runs added to the group from moving the reference point: a variant run's trial at
    an energy or error far worse than any other widened every method's box and moved every
    figure (bragg's with-variants front pick: 0.985 of the reference, then 0.949)."""
    from nmhpo.analysis import direction_names, hypervolume, reference_point
    from nmhpo.config import load_config

    cfg = load_config(ROOT / TASKS[task]["study"])
    directions = direction_names([o.resolved_direction for o in cfg.study.objectives])
    pts = _completed_values(runs)
    box_pts = pts if box is None else _completed_values(box)
    cols = _log_columns(box_pts)
    entry: dict[str, Any] = {
        "study": TASKS[task]["study"],
        "objectives": [o.name for o in cfg.study.objectives],
        "log10_objectives": [cfg.study.objectives[j].name for j in cols],
        "reference_rule": "nmhpo.analysis.REFERENCE_RULE over the completed trials of "
        + ("every run of the task" if box is None else "the pruner's methods' runs")
        + "; the reference hypervolume is that of the union of every run of the group "
        "inside it",
        "runs": len(runs),
    }
    for scale, scaled_runs in (
        ("log", [_transform(r, cols) for r in runs]),
        ("linear", runs),
    ):
        points, box_points = pts.copy(), box_pts.copy()
        if scale == "log":
            points[:, cols] = np.log10(points[:, cols])
            box_points[:, cols] = np.log10(box_points[:, cols])
        ref = reference_point([box_points], directions)
        ref_hv = hypervolume(points, directions, ref)
        entry[scale] = {
            "reference_point": [float(r) for r in ref],
            "reference_hv": ref_hv,
            **_methods(scaled_runs, directions, ref, ref_hv),
        }
        if longer:
            scaled_longer = [_transform(r, cols) for r in longer] if scale == "log" else longer
            entry[scale]["past_budget"] = _past_budget(
                scaled_runs, scaled_longer, directions, ref, ref_hv
            )
    # The headline keys (the issue's): the log measure.
    entry["methods"] = {
        m: {k: v for k, v in d.items() if k != "seeds"} for m, d in entry["log"]["methods"].items()
    }
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", type=int, default=5, help="run seeds first-seed..seeds-1")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget-scale", type=float, default=1.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("--redo", action="store_true", help="run again runs already stored")
    args = parser.parse_args()
    if not args.aggregate_only and not 0 <= args.first_seed < args.seeds:
        parser.error(f"--first-seed {args.first_seed} runs no seed below --seeds {args.seeds}")

    if not args.aggregate_only:
        todo = []
        # Seeds outermost: a cut-short benchmark is balanced.
        for seed in range(args.first_seed, args.seeds):
            for task in args.tasks:
                for method in args.methods:
                    budget = TASKS[task]["budget_s"] * args.budget_scale
                    if _run_path(task, method, seed, budget).exists() and not args.redo:
                        continue
                    todo.append((task, method, seed, budget))
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = {pool.submit(one_run, *job): job for job in todo}
            for fut in as_completed(futures):
                print("done", futures[fut], fut.result(), flush=True)
    result = aggregate(list(TASKS))  # every task with stored runs, not only those just run
    result["run_commits"] = {
        task: sorted(
            {
                json.loads(path.read_text()).get("commit", "not recorded")
                for folder in (RUNS, LONGER)
                for path in folder.glob(f"{task}-*.json")
            }
        )
        for task in TASKS
    }
    result["goal"] = ">= 3x less CPU time to 95% of the reference hypervolume than without pruning"
    path = write_result("multifidelity", result)
    for task, t in result["tasks"].items():
        for scale in ("log", "linear"):
            for method, m in t[scale]["methods"].items():
                print(
                    f"{task:9s} {scale:6s} {method:10s} to95 {m['cpu_s_to_95_median']} "
                    f"({m['reached_95']} seeds) to99 {m['cpu_s_to_99_median']} "
                    f"final {m['final_hv_ratio_median']:.3f} "
                    f"at-k {m['hv_ratio_at_equal_completed_median']:.3f} "
                    f"speedup {m['speedup_to_95_vs_no_pruning']} "
                    f"(>= {m['speedup_to_95_at_least']})"
                )
    print(path)


if __name__ == "__main__":
    main()
