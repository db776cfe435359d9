"""Does a rung rank trials as their end does? Rank agreement of each rung with the last epoch
over random trials that all train to the end, on bench_multifidelity.py's three tasks.

Each task's study (20 epochs, as in bench_multifidelity.py) runs 30 trials with the random
sampler and the pruner on but unable to stop anything (``min_trials = 100000``): every trial is
scored at rungs 1, 3 and 9 and at epoch 20, and none is selected by a pruner or a model-based
sampler, so the figures are those of the search space itself. Reported per task, rung and
objective: the Spearman correlation `nmhpo report` prints (`PruningSummary.rung_agreement`).
Set beside bench_multifidelity's first-rung comparison (``asha`` against ``asha-first3``), it
says whether a low first-rung figure predicts that a later first rung pays.

Writes benchmarks/results/rung_agreement.json. Run:
    .venv/bin/python benchmarks/bench_rung_agreement.py [--tasks pbl bragg digits20] [--trials 30]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import run_nmhpo_cli, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TASKS = {
    "pbl": ("studies/pbl.toml", None),
    "bragg": ("studies/bragg.toml", None),
    "digits20": ("studies/quickstart.toml", 20),
}


def study_text(task: str, n_trials: int) -> str:
    source, epochs = TASKS[task]
    text = (ROOT / source).read_text()
    text = re.sub(
        r"^sampler = .*$", 'sampler = "random"\npruner = "asha"', text, count=1, flags=re.M
    )
    text = re.sub(r"^n_trials = \d+", f"n_trials = {n_trials}", text, count=1, flags=re.M)
    text = re.sub(r"^seed = \d+", "seed = 0", text, count=1, flags=re.M)
    if epochs is not None:
        text = re.sub(r"^epochs = \d+", f"epochs = {epochs}", text, count=1, flags=re.M)
    # one torch thread a run, two runs at a time on this 2-core machine
    text = text.replace("\n[study]\n", "\n[study]\ntorch_threads = 1\n", 1)
    if "\n[task]\n" not in text:
        raise ValueError(f"{source}: no [task] table to put [study.pruning] before")
    return text.replace("\n[task]\n", "\n[study.pruning]\nmin_trials = 100000\n\n[task]\n", 1)


def run_task(task: str, n_trials: int) -> dict[str, Any]:
    from nmhpo.analysis import pruning_summary
    from nmhpo.api import open_study

    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "study.toml"
        study.write_text(study_text(task, n_trials))
        wall = run_nmhpo_cli("run", str(study))
        opened = open_study(study)
        summary = pruning_summary(opened.optuna_study)
        n_complete = len(opened.trials(["COMPLETE"]))
    if summary is None:
        raise RuntimeError(f"{task}: no trial was scored at a rung")
    return {
        "study": TASKS[task][0],
        "epochs": TASKS[task][1] or "as in the study",
        "trials_complete": n_complete,
        "trials_stopped": summary.n_stopped,
        "wall_s": round(wall, 1),
        "rung_agreement": {
            str(epoch): {k: None if v is None else round(v, 3) for k, v in row.items()}
            for epoch, row in summary.rung_agreement.items()
        },
        "rung_agreement_n": {str(k): v for k, v in summary.rung_agreement_n.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {t: pool.submit(run_task, t, args.trials) for t in args.tasks}
        results = {t: f.result() for t, f in futures.items()}
    for task, result in results.items():
        print(task, result["rung_agreement"], f"{result['wall_s']} s")
    path = write_result(
        "rung_agreement",
        {
            "what": "Spearman rank correlation of each rung's objective values with the last "
            "epoch's, over random trials all trained to the end (the pruner cannot stop any)",
            "sampler": "random (seed 0)",
            "tasks": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
