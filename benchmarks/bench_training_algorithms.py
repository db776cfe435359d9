"""Accuracy against time steps for the three training algorithms: bptt, conversion, hybrid.

For each task (digits; MNIST from --mnist DIR, the t10k files split into train/validation/test)
and input encoding, and each num_steps in STEPS, the validation accuracy (float inference) of:

* bptt: trained with surrogate gradients at that num_steps (one training per num_steps);
* conversion: one ReLU network, converted once and run for that num_steps;
* hybrid: the same ReLU network (resumed from its checkpoint after the ReLU epochs, as a
  multi-fidelity study would), fine-tuned for FINETUNE_EPOCHS epochs at that num_steps.

Each row gives the mean accuracy over SEEDS training seeds (and each seed's), the median
training seconds (`train_time_s`, what a study would minimise; a hybrid row counts its ReLU
epochs too) and the mean spikes per inference; `relu_accuracy` is the ReLU network's own
accuracy before conversion. The machine is a busy 2-core one, so times are rough. Writes
benchmarks/results/training_algorithms.json.

Run: nice -n 19 .venv/bin/python benchmarks/bench_training_algorithms.py --mnist DIR
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.registry import SOFTWARE  # noqa: E402
from nmhpo.snn import TrainedModel, Training, evaluate, train  # noqa: E402
from nmhpo.tasks import TaskData, get_task, load_task, prepare  # noqa: E402

STEPS = (2, 4, 8, 16, 32)
EPOCHS = 5  # bptt's epochs, and the ReLU network's under conversion and hybrid
FINETUNE_EPOCHS = 2
SEEDS = (0, 1, 2)
COMMON = {"epochs": EPOCHS, "lr": 5e-3, "batch_size": 64, "finetune_epochs": FINETUNE_EPOCHS}
TASKS: dict[str, dict[str, Any]] = {
    "digits": {"hidden_size": 64, "encodings": ("direct", "rate")},
    "mnist": {"hidden_size": 128, "encodings": ("direct", "rate")},
}


def _params(task: str, **kw: Any) -> dict[str, Any]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(COMMON, hidden_size=TASKS[task]["hidden_size"])
    base.update(kw)
    return base


def _row(model: TrainedModel, data: TaskData, steps: int) -> dict[str, Any]:
    at = replace(model, params={**model.params, "num_steps": steps}, _net=None)
    scored = evaluate(at, data)
    return {
        "num_steps": steps,
        "accuracy": round(scored.metrics["accuracy"], 4),
        "train_time_s": round(model.train_time_s, 3),
        "spikes_per_inference": round(scored.spikes_per_inference, 1),
        "epochs_run": model.epochs_run,
    }


def _relu_accuracy(training: Training, data: TaskData) -> float:
    with torch.inference_mode():
        out, _ = training.net.relu_forward(torch.from_numpy(data.x_val))
    return float((out.argmax(dim=1).numpy() == data.y_val).mean())


def _one_seed(task: str, data: TaskData, encoding: str, seed: int) -> dict[str, Any]:
    rows: dict[str, Any] = {"bptt": [], "conversion": [], "hybrid": []}
    for steps in STEPS:
        p = _params(task, training="bptt", encoding=encoding, num_steps=steps)
        rows["bptt"].append(_row(train(data, p, seed), data, steps))
    converted = train(data, _params(task, training="conversion", encoding=encoding), seed)
    rows["conversion"] = [_row(converted, data, steps) for steps in STEPS]
    relu = Training(data, _params(task, training="hybrid", encoding=encoding), seed)
    relu.advance(EPOCHS)
    rows["relu_accuracy"] = _relu_accuracy(relu, data)
    checkpoint = relu.checkpoint()
    for steps in STEPS:
        p = _params(task, training="hybrid", encoding=encoding, num_steps=steps)
        tuning = Training(data, p, seed, checkpoint=checkpoint)
        tuning.advance(tuning.epochs)
        rows["hybrid"].append(_row(tuning.model(), data, steps))
    return rows


def run_task(task: str, data: TaskData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for encoding in TASKS[task]["encodings"]:
        seeds = [_one_seed(task, data, encoding, seed) for seed in SEEDS]
        summary: dict[str, Any] = {
            "relu_accuracy": round(statistics.mean(r["relu_accuracy"] for r in seeds), 4),
            "relu_accuracy_seeds": [round(r["relu_accuracy"], 4) for r in seeds],
        }
        for algorithm in ("bptt", "conversion", "hybrid"):
            summary[algorithm] = []
            for i, steps in enumerate(STEPS):
                at = [r[algorithm][i] for r in seeds]
                accuracy = [row["accuracy"] for row in at]
                summary[algorithm].append(
                    {
                        "num_steps": steps,
                        "accuracy": round(statistics.mean(accuracy), 4),
                        "accuracy_seeds": accuracy,
                        "train_time_s": round(statistics.median(r["train_time_s"] for r in at), 3),
                        "spikes_per_inference": round(
                            statistics.mean(r["spikes_per_inference"] for r in at), 1
                        ),
                        "epochs_run": at[0]["epochs_run"],
                    }
                )
                print(task, encoding, algorithm, summary[algorithm][-1], flush=True)
        out[encoding] = summary
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", type=Path, help="folder of MNIST IDX files (t10k is enough)")
    parser.add_argument("--mnist-n-train", type=int, default=3000)
    args = parser.parse_args()
    start = time.perf_counter()
    # Warm-up: torch's first trainings in a process are slower (allocator, kernels).
    warm = load_task("digits", n_train=200)
    train(warm, {**_params("digits"), "epochs": 1, "num_steps": 4}, 0)
    results: dict[str, Any] = {}
    tasks: dict[str, dict[str, Any]] = {}
    digits = load_task("digits")
    tasks["digits"] = {"n_train": len(digits.x_train), "n_val": len(digits.x_val)}
    results["digits"] = run_task("digits", digits)
    if args.mnist is not None:
        info = get_task("mnist")
        options = info.options(n_train=args.mnist_n_train)
        mnist = prepare(info, options, 0, data_path=args.mnist)
        tasks["mnist"] = {
            "n_train": len(mnist.x_train),
            "n_val": len(mnist.x_val),
            "files": sorted(p.name for p in args.mnist.iterdir() if "idx" in p.name),
        }
        results["mnist"] = run_task("mnist", mnist)
    path = write_result(
        "training_algorithms",
        {
            "settings": {
                **COMMON,
                "steps": list(STEPS),
                "seeds": list(SEEDS),
                "networks": {
                    k: f"dense, one hidden layer of {v['hidden_size']}" for k, v in TASKS.items()
                },
                "inference": "float (no crossbar)",
                "finetune_lr": "lr * 0.1 (FINETUNE_LR_SCALE)",
                "conversion_percentile": SOFTWARE["conversion_percentile"].default,
            },
            "tasks": tasks,
            "results": results,
            "wall_s": round(time.perf_counter() - start, 1),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
