"""Seconds per crossbar-aware scoring pass (`nmhpo.snn.evaluate` with a hardware point).

A trial scores its network on crossbars at its end and, under the pruner, at every rung, so
this pass is part of every trial's cost. Three networks, trained one epoch (the weights do
not change the pass's cost), each scored on its validation split with ADC calibration:

* ``digits``: the quickstart's 64-128-10, rate encoding, 10 steps, 360 samples;
* ``ptycho``: studies/ptycho.toml's best kind, 256-512-512, direct encoding, 3 steps, 500
  frames, 64-row crossbars (the most groups);
* ``mnist_conv``: a two-conv-layer network (8, 16 channels) on 28x28 inputs, 4 steps, 500
  images of digits upscaled (the shape, not the data, sets the cost).

Writes benchmarks/results/crossbar_inference.json under a label (``--label before`` was run
at commit dd6945f, the layout before the partial sums were reduced in place;
``before_grouped_conv`` at 4172dca, the last code whose conv partial sums went through an
im2col copy and a row-major product; ``after`` is the current code). Run:
.venv/bin/python benchmarks/bench_crossbar_inference.py --label after
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, environment  # noqa: E402

from nmhpo.registry import SOFTWARE  # noqa: E402
from nmhpo.snn import HardwarePoint, evaluate, train  # noqa: E402
from nmhpo.tasks import load_task  # noqa: E402
from nmhpo.tasks._base import Splits, TaskData  # noqa: E402

REPEATS = 5


def _upscaled_digits() -> TaskData:
    """The digits at 28 x 28 (nearest), for a conv network of MNIST's size."""
    small = load_task("digits", n_train=600)
    s = small.splits

    def up(x: np.ndarray) -> np.ndarray:
        img = x.reshape(-1, 1, 8, 8).repeat(4, axis=2).repeat(4, axis=3)  # 32 x 32
        return np.ascontiguousarray(img[:, :, 2:30, 2:30])

    splits = Splits(up(s.x_train), s.y_train, up(s.x_val), s.y_val, up(s.x_test), s.y_test)
    return TaskData(info=small.info, splits=splits)


CASES: dict[str, dict[str, Any]] = {
    "digits": {
        "data": lambda: load_task("digits"),
        "params": {"hidden_size": 128, "num_steps": 10, "encoding": "rate"},
        "hw": HardwarePoint(xbar_size=128, adc_bits=6, weight_bits=8, cell_bits=2),
    },
    "ptycho": {
        "data": lambda: load_task("ptycho", size=16, n_train=2000, n_val=500, n_test=500),
        "params": {"hidden_size": 512, "num_steps": 3, "encoding": "direct"},
        "hw": HardwarePoint(xbar_size=64, adc_bits=7, weight_bits=8, cell_bits=2),
    },
    "mnist_conv": {
        "data": _upscaled_digits,
        "params": {
            "hidden_size": 128,
            "num_steps": 4,
            "encoding": "rate",
            "conv_layers": 2,
            "conv_channels": 8,
        },
        "hw": HardwarePoint(xbar_size=64, adc_bits=6, weight_bits=8, cell_bits=2),
    },
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", default="after")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    for name, case in CASES.items():
        data = case["data"]()
        params = {k: p.default for k, p in SOFTWARE.items()}
        params.update(epochs=1, batch_size=64, lr=2e-3, **case["params"])
        model = train(data, params, 0)
        start = time.perf_counter()
        evaluate(model, data, case["hw"])  # warm-up
        # Short passes (digits: ~50 ms) are repeated for about 3 s: 5 of them vary by 20%.
        repeats = min(60, max(REPEATS, int(3.0 / (time.perf_counter() - start))))
        times, metrics = [], None
        for _ in range(repeats):
            start = time.perf_counter()
            result = evaluate(model, data, case["hw"])
            times.append(time.perf_counter() - start)
            metrics = result.metrics
        out[name] = {
            "seconds_per_pass_median": round(statistics.median(times), 4),
            "samples": len(data.y_val),
            "repeats": repeats,
            "metrics": {k: round(v, 6) for k, v in (metrics or {}).items()},
        }
        print(args.label, name, out[name], flush=True)
    path = RESULTS / "crossbar_inference.json"
    payload = json.loads(path.read_text()) if path.is_file() else {}
    payload[args.label] = {"environment": environment(), "cases": out}
    for before, key in (("before", "speedup"), ("before_grouped_conv", "speedup_grouped_conv")):
        if before in payload and "after" in payload:
            payload[key] = {
                name: round(
                    payload[before]["cases"][name]["seconds_per_pass_median"]
                    / payload["after"]["cases"][name]["seconds_per_pass_median"],
                    2,
                )
                for name in payload["after"]["cases"]
                if name in payload[before]["cases"]
            }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
