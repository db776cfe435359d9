"""Part (a) of bench_scale.py alone: per-trial storage cost, random sampler, a few storages.

bench_scale.py measures every sampler and storage and the 1- and 2-worker throughput (most
of an hour on two cores); after a change to nmhpo/storage.py only the storage part needs a
new figure. Same objective (quickstart's 8 parameters, 4 user attrs, flush after
suggesting), same storages as bench_scale: SQLite as nmhpo opens it, SQLite with Optuna's
defaults, optionally PostgreSQL as nmhpo opens it; and nmhpo's SQLite settings on Optuna's own
RDBStorage (``sqlite_nmhpo_unbatched``), which tells what the batching itself saves. Each
storage runs ``--repeats`` fresh studies; the median ms/trial is reported.

Writes benchmarks/results/storage_overhead.json under ``--label`` (other labels kept;
scale.json is left alone). To measure another commit's storage, run from a folder holding
its ``nmhpo`` package (``git archive REV nmhpo | tar -x -C DIR``) with PYTHONPATH=DIR.
Run: .venv/bin/python benchmarks/bench_storage_overhead.py [--trials 1000] [--postgres]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment  # noqa: E402
from bench_scale import objective_for, sampler, storages  # noqa: E402

from nmhpo._pgserver import postgres_server  # noqa: E402


def unbatched(url: str) -> optuna.storages.RDBStorage:
    """nmhpo's SQLite settings (WAL, lock timeout, heartbeats with retry) on Optuna's own
    RDBStorage: what nmhpo would cost without BatchedRDBStorage."""
    from nmhpo.study import GRACE_INTERVALS, _tune_sqlite

    storage = optuna.storages.RDBStorage(
        url,
        engine_kwargs={"connect_args": {"timeout": 60}},
        heartbeat_interval=60,
        grace_period=GRACE_INTERVALS * 60,
        heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(3),
    )
    _tune_sqlite(storage.engine)
    return storage


def measure(make: Any, name: str, sampler_name: str, n: int) -> float:
    storage = make(name)
    study = optuna.create_study(
        study_name=name,
        storage=storage,
        directions=["maximize", "minimize"],
        sampler=sampler(sampler_name),
    )
    start = time.perf_counter()
    study.optimize(objective_for(storage), n_trials=n)
    return (time.perf_counter() - start) / n * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sampler", default="random")
    parser.add_argument("--postgres", action="store_true", help="also a local PostgreSQL")
    parser.add_argument("--label", default="after", help="run name in the JSON")
    parser.add_argument(
        "--storages",
        nargs="+",
        default=["sqlite_nmhpo", "sqlite_nmhpo_unbatched", "sqlite_optuna_default"],
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    logging.getLogger("nmhpo").setLevel(logging.WARNING)

    results: dict[str, Any] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        pg_url = stack.enter_context(postgres_server()) if args.postgres else None
        makers = storages(Path(tmp), pg_url)
        makers["sqlite_nmhpo_unbatched"] = lambda name: unbatched(f"sqlite:///{tmp}/{name}.db")
        wanted = args.storages + (["postgresql"] if args.postgres else [])
        for storage_name in wanted:
            runs = [
                measure(makers[storage_name], f"{storage_name}-{i}", args.sampler, args.trials)
                for i in range(args.repeats)
            ]
            results[storage_name] = {
                "median_ms_per_trial": round(statistics.median(runs), 2),
                "runs_ms_per_trial": [round(r, 2) for r in runs],
            }
            print(f"{storage_name:>22} {args.sampler}: {results[storage_name]}")
    import nmhpo.storage

    path = RESULTS / "storage_overhead.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    runs = previous.get("runs", {})
    runs[args.label] = {
        "environment": environment(),
        "nmhpo_storage": str(Path(nmhpo.storage.__file__).resolve()),
        "sampler": args.sampler,
        "trials": args.trials,
        "repeats": args.repeats,
        "ms_per_trial": results,
    }
    payload = {
        "what": "bench_scale.py part (a) alone: ms per trial of a near-free objective "
        "(benchmarks/bench_storage_overhead.py)",
        "scale_json_reference_ms_per_trial": {
            "sqlite_nmhpo": 7.39,
            "sqlite_optuna_default": 33.72,
            "postgresql": 11.03,
            "commit": "f3732f6",
            "trials": 1000,
        },
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
