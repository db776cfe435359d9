"""How hard GP's acquisition search needs to work: evaluations to the grid's front and CPU per
suggestion for Optuna's GPSampler with smaller acquisition-search budgets.

Optuna's GPSampler searches its acquisition function from 2048 quasi-random points and 10 local
searches (continuous L-BFGS-B alternating with exhaustive line searches over every discrete
parameter). On nmhpo's cheap trials that search is the largest cost of a study: 0.49 s per
suggestion against a 0.49 s quickstart trial (results/scale.json). Here each variant runs on
bench_search.py's tabulated 240-point grid (an evaluation is a lookup), with the same seeds, so
the only difference is the acquisition search; reported per variant: evaluations to 99% of the
grid's hypervolume (median over seeds, a seed that never gets there counts as not reached), the
median hypervolume ratio after 16, 24 and 48 evaluations, and CPU ms per suggestion (torch on
one thread, as nmhpo's workers run it).

The table is all-discrete; ``--digits20`` also runs the real search the budget would serve:
bench_multifidelity.py's digits20 task with the default pruner (GP, 20 epochs, stopped trials
shown to GP, 90 CPU s a run, 5 seeds) per variant, scored against that benchmark's reference
(its log-energy hypervolume in results/multifidelity.json).

Writes benchmarks/results/gp_acquisition.json (variants already there are kept, so variants
can be run separately). Run:
    .venv/bin/python benchmarks/bench_gp_acquisition.py [--seeds 20] [--variants 10x2048 4x512]
    .venv/bin/python benchmarks/bench_gp_acquisition.py --digits20 --variants 10x2048 4x512
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import RESULTS, write_result  # noqa: E402

#: Variants as "<local searches>x<preliminary samples>"; 10x2048 is Optuna 5's own setting.
VARIANTS = ("10x2048", "4x2048", "4x512", "2x256")
EVALS = 72
AT = (16, 24, 48)


def _parse(variant: str) -> tuple[int, int]:
    local, pre = variant.split("x")
    return int(local), int(pre)


def _with_budget(sampler: Any, variant: str) -> Any:
    """``sampler`` (a GPSampler) searching its acquisition with ``variant``'s budget, set in
    the attributes Optuna 5 keeps it in."""
    sampler._n_local_search, sampler._n_preliminary_samples = _parse(variant)
    return sampler


def _write(path: Path, **update: Any) -> None:
    """gp_acquisition.json with ``update`` over what is there (the two parts run apart)."""
    previous = json.loads(path.read_text()) if path.is_file() else {}
    previous.pop("environment", None)
    write_result("gp_acquisition", {**previous, **update})


def run_variant(variant: str, seeds: int) -> dict[str, Any]:
    import bench_search as search
    import optuna
    import torch

    from nmhpo.analysis import hypervolume, reference_point
    from nmhpo.config import load_config
    from nmhpo.space import grid_levels

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    levels = grid_levels(load_config(search.STUDY))
    table = search.load_table(levels)
    values = np.array(list(table.values()))
    directions = ["maximize", "minimize"]
    reference = reference_point([values], directions)
    grid_hv = hypervolume(values, directions, reference)
    per_seed: list[int | None] = []
    ratios_at: dict[int, list[float]] = {k: [] for k in AT}
    ms: list[float] = []
    for seed in range(seeds):
        sampler = _with_budget(
            optuna.samplers.GPSampler(seed=seed, n_startup_trials=8, deterministic_objective=True),
            variant,
        )
        study = optuna.create_study(directions=directions, sampler=sampler)
        points: list[tuple[float, float]] = []
        ratios: list[float] = []
        cpu = 0.0
        for _ in range(EVALS):
            start = time.process_time()
            trial = study.ask()
            key = []
            for param, options in levels.items():
                if param in search.NOMINAL:
                    key.append(trial.suggest_categorical(param, options))
                else:
                    key.append(options[trial.suggest_int(param, 0, len(options) - 1)])
            cpu += time.process_time() - start
            value = table[tuple(key)]
            study.tell(trial, value)
            points.append(value)
            ratios.append(hypervolume(np.array(points), directions, reference) / grid_hv)
        per_seed.append(next((i + 1 for i, r in enumerate(ratios) if r >= 0.99 - 1e-12), None))
        for k in AT:
            ratios_at[k].append(ratios[k - 1])
        ms.append(1e3 * cpu / EVALS)
    finite = sorted(r if r is not None else np.inf for r in per_seed)
    median = statistics.median(finite)
    n_local, n_pre = _parse(variant)
    return {
        "n_local_search": n_local,
        "n_preliminary_samples": n_pre,
        "seeds": seeds,
        "evals_to_99_median": None if not np.isfinite(median) else float(median),
        "evals_to_99_per_seed": per_seed,
        "seeds_reaching_99": sum(r is not None for r in per_seed),
        **{f"hv_ratio_at_{k}_median": round(statistics.median(ratios_at[k]), 4) for k in AT},
        **{f"hv_ratio_at_{k}_mean": round(statistics.fmean(ratios_at[k]), 4) for k in AT},
        "cpu_ms_per_suggestion_median": round(statistics.median(ms), 1),
    }


_NMHPO_GP: dict[str, Any] = {}


def run_digits20(variant: str, seed: int) -> dict[str, Any]:
    """One bench_multifidelity digits20 run with the pruner, GP searching with ``variant``."""
    import bench_multifidelity as mf

    import nmhpo.samplers

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as bench_multifidelity.one_run
    # workers run several variants in turn: wrap nmhpo's own sampler, not the last wrapper
    make_gp = _NMHPO_GP.setdefault("make", nmhpo.samplers._gp_sampler)

    def gp_with_budget(**kwargs: Any) -> Any:
        return _with_budget(make_gp(**kwargs), variant)

    nmhpo.samplers._gp_sampler = gp_with_budget  # type: ignore[assignment]
    run = mf.run_nmhpo("digits20", "asha", seed, mf.TASKS["digits20"]["budget_s"])
    run.update(variant=variant, seed=seed)
    return run


def summarise_digits20(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant: CPU s to 95% of the multifidelity benchmark's log-energy reference, final
    hypervolume ratio, trials run and completed."""
    import bench_multifidelity as mf

    reference = json.loads((RESULTS / "multifidelity.json").read_text())["tasks"]["digits20"]
    log = reference["log"]
    ref_point, ref_hv = np.array(log["reference_point"]), log["reference_hv"]
    cols = [reference["objectives"].index(n) for n in reference["log10_objectives"]]
    directions = ["maximize", "minimize"]
    out: dict[str, Any] = {}
    for variant in sorted({r["variant"] for r in runs}):
        mine = sorted((r for r in runs if r["variant"] == variant), key=lambda r: r["seed"])
        to95, final, n_run, n_complete, cpu = [], [], [], [], []
        for run in mine:
            trajectory = mf._trajectory(mf._transform(run, cols), directions, ref_point)
            to95.append(mf._time_to(trajectory, 0.95 * ref_hv))
            final.append(trajectory[-1][1] / ref_hv if trajectory else 0.0)
            n_run.append(len(run["events"]))
            cpu.append(round(run["cpu_s"], 1))
            n_complete.append(sum(e["state"] == "COMPLETE" for e in run["events"]))
        out[variant] = {
            "seeds": [r["seed"] for r in mine],
            "cpu_s_to_95_per_seed": [None if t is None else round(t, 1) for t in to95],
            "seeds_reaching_95": sum(t is not None for t in to95),
            "cpu_s_to_95_median": mf._median(to95),
            "final_hv_ratio_per_seed": [round(f, 4) for f in final],
            "final_hv_ratio_median": round(statistics.median(final), 4),
            "trials_run_per_seed": n_run,
            "trials_completed_per_seed": n_complete,
            "cpu_s_per_seed": cpu,
        }
    return out


def main_digits20(args: argparse.Namespace, path: Path) -> None:
    variants = [v for v in args.variants for _ in range(args.seeds)]
    seeds = [seed for _ in args.variants for seed in range(args.seeds)]
    # as bench_multifidelity.py runs them (forked workers, each running several runs)
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(run_digits20, variants, seeds))
    summary = summarise_digits20(runs)
    for variant, result in summary.items():
        print(variant, result)
    _write(
        path,
        digits20_with_pruner={
            "what": "bench_multifidelity.py's digits20 task, pruner asha, 90 CPU s a run; "
            "hypervolume in log10 energy against results/multifidelity.json's reference",
            "variants": summary,
        },
    )
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, help="20 on the table, 5 with --digits20")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--digits20", action="store_true", help="the real-task check (5 seeds)")
    args = parser.parse_args()
    path = RESULTS / "gp_acquisition.json"
    if args.digits20:
        args.seeds = args.seeds or 5
        main_digits20(args, path)
        return
    args.seeds = args.seeds or 20
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {v: pool.submit(run_variant, v, args.seeds) for v in args.variants}
        results = {v: f.result() for v, f in futures.items()}
    for variant, result in results.items():
        print(variant, {k: v for k, v in result.items() if k != "evals_to_99_per_seed"})
    old = json.loads(path.read_text()).get("variants", {}) if path.is_file() else {}
    _write(
        path,
        table="benchmarks/data/grid_vs_search.csv (bench_search.py)",
        evals_per_seed=EVALS,
        optuna_default="10x2048",
        variants={**old, **results},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
