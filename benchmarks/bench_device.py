"""One trial of an MNIST-sized conv study on the CPU and, when torch sees one, on a GPU.

The trial: 28x28 inputs, two conv layers (8 and 16 channels, 3x3), one hidden layer of 128,
rate encoding over 8 steps, 5 epochs, batch 128, Adam; then float and crossbar-aware inference
on the validation split, as a study's trial does (`train` + `evaluate`, device given).

Data: MNIST IDX files from --mnist DIR when given (nothing is downloaded); otherwise a
synthetic 28x28 stand-in (sklearn's 8x8 digits upsampled 3x, padded to 28x28, shifted by up
to 2 pixels, with pixel noise), which has MNIST's shape, not its difficulty. The JSON says
which was used and how many training samples (--n-train; 60000 is MNIST's training set).

Trials per hour with one worker per GPU: GPUs x 3600 / GPU trial seconds; for the CPU, one
worker on these cores: 3600 / CPU trial seconds.

Writes benchmarks/results/device.json. Goal (the issue): a GPU trial >= 20x faster than on
2 CPU cores, accuracy within 1 point. Without a GPU the "gpu" entry is null: never estimated.
Run: .venv/bin/python benchmarks/bench_device.py [--n-train 60000] [--mnist DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.registry import SOFTWARE  # noqa: E402
from nmhpo.snn import HardwarePoint, evaluate, train  # noqa: E402
from nmhpo.tasks import Splits, TaskData, get_task  # noqa: E402

PARAMS = {
    "conv_layers": 2,
    "conv_channels": 8,
    "kernel_size": 3,
    "hidden_layers": 1,
    "hidden_size": 128,
    "encoding": "rate",
    "num_steps": 8,
    "epochs": 5,
    "batch_size": 128,
    "lr": 2e-3,
    "optimizer": "adam",
    "patience": 0,
}
HARDWARE = HardwarePoint(xbar_size=64, adc_bits=5, weight_bits=6, cell_bits=2)


def synthetic_mnist(n_train: int, n_val: int, seed: int = 0) -> Splits:
    """28x28 digits from sklearn's 8x8 ones: each upsampled 3x, padded, shifted, noised."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    base = np.kron(digits.images / 16.0, np.ones((3, 3)))  # (1797, 24, 24)
    base = np.pad(base, ((0, 0), (2, 2), (2, 2)))  # 28x28

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        pick = rng.integers(0, len(base), n)
        shifts = rng.integers(-2, 3, (n, 2))
        x = np.stack(
            [np.roll(base[i], tuple(s), axis=(0, 1)) for i, s in zip(pick, shifts, strict=True)]
        )
        x = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
        return x.reshape(n, 1, 28, 28), digits.target[pick].astype(np.int64)

    x_train, y_train = make(n_train)
    x_val, y_val = make(n_val)
    return Splits(x_train, y_train, x_val, y_val, x_val, y_val)


def mnist(folder: Path, n_train: int) -> Splits:
    from nmhpo.tasks._mnist import MnistOptions, read_folder

    splits = read_folder(folder, MnistOptions(n_train=n_train), 0)
    return Splits(
        splits.x_train.reshape(-1, 1, 28, 28),
        splits.y_train,
        splits.x_val.reshape(-1, 1, 28, 28),
        splits.y_val,
        splits.x_test.reshape(-1, 1, 28, 28),
        splits.y_test,
    )


def one_trial(data: TaskData, device: str) -> dict[str, Any]:
    params = {k: p.default for k, p in SOFTWARE.items()} | PARAMS
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    model = train(data, params, seed=0, device=device)
    scored = evaluate(model, data, device=device)
    crossbar = evaluate(model, data, HARDWARE, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {
        "trial_s": round(time.perf_counter() - start, 2),
        "train_s": round(model.train_time_s, 2),
        "accuracy": scored.metrics["accuracy"],
        "crossbar_accuracy": crossbar.metrics["accuracy"],
        "final_loss": model.final_loss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--n-val", type=int, default=2000)
    parser.add_argument("--mnist", type=Path, default=None, help="folder of MNIST IDX files")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())  # all cores of the machine, as stated
    if args.mnist is not None:
        splits, source = mnist(args.mnist, args.n_train), f"MNIST IDX files in {args.mnist}"
    else:
        splits = synthetic_mnist(args.n_train, args.n_val)
        source = "synthetic 28x28 stand-in (sklearn digits upsampled; no MNIST files here)"
    data = TaskData(info=get_task("mnist"), splits=splits)
    cpu = one_trial(data, "cpu")
    print(f"cpu: {cpu}", flush=True)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    gpu = None
    if n_gpus:
        gpu = one_trial(data, "cuda:0") | {"name": torch.cuda.get_device_name(0)}
        print(f"gpu: {gpu}", flush=True)
    result: dict[str, Any] = {
        "data": source,
        "n_train": len(splits.x_train),
        "n_val": len(splits.x_val),
        "params": PARAMS,
        "hardware": HARDWARE.__dict__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu,
        "cpu_trials_per_hour_1_worker": round(3600 / cpu["trial_s"], 1),
        "gpus": n_gpus,
        "gpu": gpu,
    }
    if gpu is not None:
        result["speedup_gpu_vs_cpu"] = round(cpu["trial_s"] / gpu["trial_s"], 1)
        result["accuracy_gap_points"] = round(100 * (gpu["accuracy"] - cpu["accuracy"]), 2)
        result["gpu_trials_per_hour_1_worker_per_gpu"] = round(n_gpus * 3600 / gpu["trial_s"], 1)
    else:
        result["note"] = (
            "no GPU was visible to torch in this run: the GPU trial, the speedup and the "
            "trials per hour per GPU are missing, not estimated"
        )
    print(write_result("device", result))


if __name__ == "__main__":
    main()
