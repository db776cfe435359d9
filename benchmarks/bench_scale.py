"""Study-manager overhead per trial, and throughput with 1 and 2 workers.

(a) Overhead: 1,000 trials (200 for GP, whose cost grows with the trials) of an objective that
    suggests the quickstart's 8 parameters, stores 4 user attrs like a real trial and returns at
    once, per sampler and per storage: SQLite as nmhpo opens it (WAL, heartbeats, batched trial
    writes: nmhpo/storage.py), SQLite with Optuna's defaults (rollback journal, no heartbeats,
    a commit per parameter and attribute), Optuna's journal file storage (no heartbeat crash
    recovery), and PostgreSQL as nmhpo opens it (a local server started here).
(c) The stored record's layout: storage cost per trial and database size of nmhpo.record's
    layout (scalar user attrs, detail as a system attr) against nmhpo 0.1's four dictionaries.
(b) Throughput: completed trials per minute of quickstart-sized studies (60 trials, fresh
    storage and caches) with --workers 1 and --workers 2: over the whole command (process
    start, imports and the first data preparation included), and in steady state: from the
    moment every worker has finished two trials (imports, data and lazy initialisation behind
    it; trials say which worker ran them) to the last completion; three pairs of runs, the
    median speedups reported. Three studies:
    "grid", the same 60 trainings in both runs (a software grid at the quickstart's sizes), so
    the ratio is the parallel efficiency of nmhpo's workers; "gp" and "tpe", the quickstart as
    users run it, where a second worker changes which trials are run (different sizes, so
    different costs) and GP switches to its costlier batch acquisition (qLogEHVI) as soon as
    another trial is running.

Writes benchmarks/results/scale.json. Goals: overhead <= 2% of a quickstart trial's wall time;
2 workers >= 1.8x one. Run: .venv/bin/python benchmarks/bench_scale.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment, write_result  # noqa: E402

from nmhpo._pgserver import postgres_server  # noqa: E402
from nmhpo.study import open_storage  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLERS = ("random", "tpe", "nsga2", "nsga3", "qmc", "gp")


def sampler(name: str) -> optuna.samplers.BaseSampler:
    s = optuna.samplers
    return {
        "random": lambda: s.RandomSampler(seed=0),
        "tpe": lambda: s.TPESampler(seed=0, n_startup_trials=10),
        "nsga2": lambda: s.NSGAIISampler(seed=0, population_size=20),
        "nsga3": lambda: s.NSGAIIISampler(seed=0, population_size=20),
        "qmc": lambda: s.QMCSampler(seed=0, scramble=True, warn_independent_sampling=False),
        "gp": lambda: s.GPSampler(seed=0, n_startup_trials=10),
    }[name]()


def _quickstart_record() -> Any:
    """A quickstart trial's result, at its real sizes (13 metrics, 10 energy and 9 area
    components, 20 software and 9 hardware knobs, 2 layers, 4 time steps)."""
    from nmhpo.record import Breakdown, Point, RunInfo, TrialResult

    metrics = {
        k: 1.0 + i
        for i, k in enumerate(
            "accuracy area_mm2 area_um2 edp_pj_ns energy_pj energy_uj latency_ns latency_us "
            "n_pe n_tiles num_steps spikes_per_inference train_time_s".split()
        )
    }
    energy = {c: 1.5 for c in "xbar adc mux sub tmpbuf neuron htree fetch tilebuf leakage".split()}
    area = {c: 2.5 for c in "xbar adc mux sub tmpbuf tilebuf htree input_mem membrane_mem".split()}
    software = {f"knob_{i}": 0.1 * i for i in range(20)}
    hardware = {f"hw_{i}": i for i in range(9)}
    return TrialResult(
        metrics=metrics,
        breakdown=Breakdown(energy, area, (5862.4, 2175.8)),
        point=Point(
            software,
            hardware,
            "crossbar",
            ((64, 256, 1, 1, 1), (256, 10, 1, 1, 1)),
            (0.51, 0.36),
            ((0.51, 0.21), (0.51, 0.43), (0.51, 0.38), (0.51, 0.41)),
        ),
        run=RunInfo(
            True,
            "325ca94a58c6316e9203c329",
            246433589,
            1.06,
            6,
            0.057,
            0.08,
            0.0057,
            cpu_s=0.59,
            worker="vm:10926",
        ),
    )


def objective_for(storage: Any, layout: str = "record") -> Any:
    """The near-free objective; like nmhpo's, it flushes a batching storage after suggesting
    and stores a quickstart trial's result: as nmhpo.record stores it ("record": one scalar
    user attr per metric, run field and breakdown component, the detail as a system attr), or
    as nmhpo 0.1 did ("legacy": four dictionaries)."""
    from nmhpo.record import DETAIL_KEY

    flush = getattr(storage, "flush", None)
    result = _quickstart_record()
    attrs = result.to_user_attrs()
    detail = result.detail()
    legacy = {
        "metrics": dict(result.metrics),
        "breakdown": {
            "energy_pj": dict(result.breakdown.energy_pj),
            "area_um2": dict(result.breakdown.area_um2),
            "energy_by_layer_pj": detail["energy_by_layer_pj"],
        },
        "point": {k: v for k, v in detail.items() if k not in ("energy_by_layer_pj", "repeats")},
        "run": {k[len("run.") :]: v for k, v in attrs.items() if k.startswith("run.")},
    }

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        lr = trial.suggest_float("lr", 1e-3, 3e-2, log=True)
        beta = trial.suggest_float("beta", 0.5, 0.99)
        steps = trial.suggest_int("num_steps", 2, 16)
        trial.suggest_categorical("encoding", ["rate", "direct"])
        hidden = trial.suggest_categorical("hidden_size", [32, 64, 128, 256])
        xbar = trial.suggest_categorical("xbar_size", [32, 64, 128])
        bits = trial.suggest_int("adc_bits", 2, 8)
        trial.suggest_categorical("weight_bits", [4, 8])
        if flush is not None:
            flush()
        if layout == "record":
            for key, value in attrs.items():
                trial.set_user_attr(key, value)
            trial.storage.set_trial_system_attr(trial._trial_id, DETAIL_KEY, detail)
        else:
            for key, value in legacy.items():
                trial.set_user_attr(key, value)
        return beta - lr * steps, hidden * xbar * 2.0**bits * 1e-6

    return objective


def record_layout(n_trials: int) -> dict[str, Any]:
    """Storage cost per trial of the stored record's layout (random sampler, so the storage
    is all there is), on SQLite as nmhpo opens it, and the size of the database."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("record", "legacy"):
            path = Path(tmp) / f"{layout}.db"
            storage = open_storage(f"sqlite:///{path}", heartbeat_s=60)
            study = optuna.create_study(
                study_name=layout,
                storage=storage,
                directions=["maximize", "minimize"],
                sampler=sampler("random"),
            )
            start = time.perf_counter()
            study.optimize(objective_for(storage, layout), n_trials=n_trials)
            ms = (time.perf_counter() - start) / n_trials * 1e3
            start = time.perf_counter()
            optuna.load_study(study_name=layout, storage=f"sqlite:///{path}").get_trials()
            read_ms = (time.perf_counter() - start) / n_trials * 1e3
            out[layout] = {
                "ms_per_trial": round(ms, 2),
                "cold_read_ms_per_trial": round(read_ms, 3),
                "db_kb_per_trial": round(path.stat().st_size / 1024 / n_trials, 2),
            }
            print(f"layout {layout:>7}: {json.dumps(out[layout])}")
    out["trials"] = n_trials
    return out


def storages(tmp: Path, pg_url: str | None) -> dict[str, Any]:
    from optuna.storages.journal import JournalFileBackend

    out: dict[str, Any] = {
        "sqlite_nmhpo": lambda name: open_storage(f"sqlite:///{tmp / name}.db", heartbeat_s=60),
        "sqlite_optuna_default": lambda name: optuna.storages.RDBStorage(
            f"sqlite:///{tmp / name}-plain.db"
        ),
        "journal_file": lambda name: optuna.storages.JournalStorage(
            JournalFileBackend(str(tmp / f"{name}.log"))
        ),
    }
    if pg_url is not None:
        out["postgresql"] = lambda name: open_storage(pg_url, heartbeat_s=60)
    return out


def overhead(n_trials: int, pg_url: str | None) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for storage_name, make in storages(Path(tmp), pg_url).items():
            results[storage_name] = {}
            for name in SAMPLERS:
                n = n_trials if name != "gp" else min(n_trials, 200)
                storage = make(f"{name}")
                study = optuna.create_study(
                    study_name=f"{name}-{storage_name}",
                    storage=storage,
                    directions=["maximize", "minimize"],
                    sampler=sampler(name),
                )
                start = time.perf_counter()
                study.optimize(objective_for(storage), n_trials=n)
                ms = (time.perf_counter() - start) / n * 1e3
                results[storage_name][name] = round(ms, 2)
                print(f"{storage_name:>22} {name:>6}: {ms:8.2f} ms/trial ({n} trials)")
    return results


#: The same 60 trainings in both runs: the quickstart's task and network sizes on a software
#: grid (every point trains), one hardware point.
GRID_SPACE = """
[space.software]
epochs = 6
hidden_size = 64
lr = { type = "float", low = 1e-3, high = 3e-2, log = true, grid = [0.003, 0.01, 0.03] }
beta = { type = "float", low = 0.5, high = 0.99, grid = [0.7, 0.9] }
num_steps = { type = "int", low = 2, high = 10, grid = [2, 4, 6, 8, 10] }
encoding = { type = "categorical", choices = ["rate", "direct"] }

[space.hardware]
xbar_size = 64
adc_bits = 5
weight_bits = 8
"""


def study_text(sampler_name: str, n_trials: int) -> str:
    text = (ROOT / "studies" / "quickstart.toml").read_text()
    text = re.sub(r'^sampler = "gp".*$', f'sampler = "{sampler_name}"', text, flags=re.M)
    if sampler_name == "grid":
        return text[: text.index("[space.software]")].replace("n_trials = 20", "n_trials = 60") + (
            GRID_SPACE
        )
    return text.replace("n_trials = 20", f"n_trials = {n_trials}")


def throughput(workers: int, sampler_name: str, n_trials: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "quickstart.toml"
        study.write_text(study_text(sampler_name, n_trials))
        cmd = [sys.executable, "-m", "nmhpo", "--quiet", "run", str(study)]
        start = time.perf_counter()
        subprocess.run([*cmd, "--workers", str(workers)], check=True, capture_output=True)
        seconds = time.perf_counter() - start
        storage = f"sqlite:///{Path(tmp) / 'nmhpo-studies.db'}"
        trials = optuna.load_study(study_name="quickstart", storage=storage).trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    by_worker: dict[str, list[Any]] = {}
    for t in sorted(complete, key=lambda t: t.datetime_start):
        by_worker.setdefault(t.user_attrs["run.worker"], []).append(t)
    # Steady state: after every worker has finished two trials.
    warm = max(ts[min(1, len(ts) - 1)].datetime_complete for ts in by_worker.values())
    end = max(t.datetime_complete for t in complete)
    in_window = [t for t in complete if t.datetime_complete > warm]
    window_s = (end - warm).total_seconds()
    trial_s = sorted(t.duration.total_seconds() for t in complete if t.duration)
    return {
        "wall_s": round(seconds, 2),
        "complete": len(complete),
        "trials_per_worker": sorted(len(ts) for ts in by_worker.values()),
        "trials_per_min": round(len(complete) / seconds * 60, 1),
        "steady_window_s": round(window_s, 2),
        "steady_trials": len(in_window),
        "steady_trials_per_min": round(len(in_window) / window_s * 60, 1),
        "median_trial_s": round(trial_s[len(trial_s) // 2], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="100 trials instead of 1,000")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument(
        "--throughput-only", action="store_true", help="redo (b), keep (a) from the last run"
    )
    parser.add_argument("--throughput-trials", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3, help="1- and 2-worker run pairs")
    parser.add_argument(
        "--layout-only", action="store_true", help="measure (c) only, keep the rest"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    logging.getLogger("nmhpo").setLevel(logging.WARNING)
    n = 100 if args.quick else args.trials
    results = Path(__file__).parent / "results" / "scale.json"
    if args.layout_only:
        previous = json.loads(results.read_text())
        # (a) and (b) keep the environment they were measured in; (c) records its own.
        previous["record_layout"] = {"environment": environment(), **record_layout(n)}
        print(f"wrote {write_result('scale', previous)}")
        return

    scaling: dict[str, Any] = {}
    for name in ("grid", "gp", "tpe"):
        runs = []
        for _ in range(args.repeats):
            one = throughput(1, name, args.throughput_trials)
            two = throughput(2, name, args.throughput_trials)
            runs.append(
                {
                    "workers_1": one,
                    "workers_2": two,
                    "speedup_whole_command": round(one["wall_s"] / two["wall_s"], 2),
                    "speedup_steady_state": round(
                        two["steady_trials_per_min"] / one["steady_trials_per_min"], 2
                    ),
                }
            )
            print(f"quickstart ({name}): {json.dumps(runs[-1])}")
        scaling[name] = {
            "median_speedup_whole_command": statistics.median(
                r["speedup_whole_command"] for r in runs
            ),
            "median_speedup_steady_state": statistics.median(
                r["speedup_steady_state"] for r in runs
            ),
            "runs": runs,
        }
    if args.throughput_only:
        previous = json.loads((Path(__file__).parent / "results" / "scale.json").read_text())
        per_trial = previous["overhead_ms_per_trial"]
        n = previous["overhead_trials"]["others"]
    else:
        with postgres_server() as pg_url:
            per_trial = overhead(n, pg_url)
    trial_ms = (
        statistics.median(r["workers_1"]["median_trial_s"] for r in scaling["gp"]["runs"]) * 1e3
    )
    path = write_result(
        "scale",
        {
            "overhead_ms_per_trial": per_trial,
            "overhead_trials": {"gp": min(n, 200), "others": n},
            "quickstart_median_trial_s": trial_ms / 1e3,
            "overhead_share_of_quickstart_trial": {
                f"sqlite_nmhpo_{name}": round(ms / trial_ms, 4)
                for name, ms in per_trial["sqlite_nmhpo"].items()
            },
            "goal_overhead_share": 0.02,
            "throughput_trials": args.throughput_trials,
            "throughput": scaling,
            "goal_speedup_2_workers": 1.8,
            "record_layout": record_layout(n),
            "cpus": os.cpu_count(),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
