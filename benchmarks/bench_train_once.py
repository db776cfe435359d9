"""Train once, score many hardware points: a study with several hardware points per software
point, run with the trained-model cache and without it (retraining every trial).

The study: digits, 2 software points (encoding rate/direct; 256 hidden neurons, 8 steps, 10
epochs) x 6 hardware points (crossbar size x ADC bits) = a 12-point grid, crossbar-aware
inference. Both timed runs use fresh storage and caches, after one untimed warm-up run.
Writes benchmarks/results/train_once.json (wall seconds, trials trained, speedup).
Run: .venv/bin/python benchmarks/bench_train_once.py
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.config import load_config  # noqa: E402
from nmhpo.study import load_existing, run_study  # noqa: E402

STUDY = """
[study]
name = "train-once"
sampler = "grid"
n_trials = 12
reuse_models = {reuse}
objectives = [{{ name = "accuracy" }}, {{ name = "energy_uj" }}]

[task]
name = "digits"

[hardware]
preset = "rram-32nm"

[space.software]
epochs = 10
hidden_size = 256
num_steps = 8
lr = 0.01
encoding = {{ type = "categorical", choices = ["rate", "direct"] }}

[space.hardware]
xbar_size = {{ type = "categorical", choices = [32, 64, 128] }}
adc_bits = {{ type = "categorical", choices = [3, 6] }}
"""


def run(reuse: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.toml"
        path.write_text(STUDY.format(reuse=str(reuse).lower()))
        cfg = load_config(path)
        start = time.perf_counter()
        run_study(cfg)
        seconds = time.perf_counter() - start
        trials = load_existing(cfg).trials
        return {
            "wall_s": round(seconds, 2),
            "trials": len(trials),
            "trained": sum(bool(t.user_attrs["run.trained"]) for t in trials),
            "mean_trial_s": round(seconds / len(trials), 3),
        }


def main() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("nmhpo").setLevel(logging.WARNING)
    run(reuse=True)  # warm-up: imports, first-call costs, so neither timed run pays them
    retrain = run(reuse=False)
    cached = run(reuse=True)
    speedup = retrain["wall_s"] / cached["wall_s"]
    print(f"with cache: {cached}\nretraining: {retrain}\nspeedup {speedup:.2f}x")
    path = write_result(
        "train_once",
        {
            "study": "digits, 2 software x 6 hardware points (grid), crossbar-aware inference",
            "with_cache": cached,
            "retrain_every_trial": retrain,
            "speedup": round(speedup, 2),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
