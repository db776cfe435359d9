"""The real BraggNN patches scored by an SNN trained on synthetic patches only.

Trains one nmhpo network on the `bragg` task's synthetic data (the recipe of
shared/data/bragg/README.md), then localises the 10 real BraggNN validation patches in
shared/data/bragg/braggnn_real_patches_psz11.npz, in float and by crossbar-aware inference on
rram-32nm's knobs. Ten patches are a realism check, not a benchmark: the published figures
(75% < 0.29 px, 95% < 0.57 px) are over 13,799 patches. Writes
benchmarks/results/bragg_real_model.json.
Run: .venv/bin/python benchmarks/check_bragg_model.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.crossbar import load_preset  # noqa: E402
from nmhpo.registry import SOFTWARE  # noqa: E402
from nmhpo.snn import HardwarePoint, evaluate, train  # noqa: E402
from nmhpo.tasks import Splits, TaskData, load_task  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bragg"


def main() -> None:
    real_file = DATA / "braggnn_real_patches_psz11.npz"
    if not real_file.is_file():
        sys.exit(f"{real_file} is missing; this check needs the real BraggNN patches")
    torch.set_num_threads(1)
    synthetic = load_task("bragg", seed=0, n_train=8000)
    params = {k: p.default for k, p in SOFTWARE.items()}
    params.update(
        encoding="direct",
        num_steps=4,
        epochs=30,
        lr=3e-3,
        hidden_size=128,
        conv_layers=1,
        conv_channels=16,
        batch_size=64,
    )
    model = train(synthetic, params, seed=0)
    with np.load(real_file) as z:
        x_real = z["patches"].astype(np.float32)[:, None]
        y_real = z["center_norm"].astype(np.float32)
    real = TaskData(
        synthetic.info,
        Splits(
            synthetic.x_train,
            synthetic.y_train,
            x_real,
            y_real,
            x_real,
            y_real,
            meta=synthetic.splits.meta,
        ),
    )
    knobs = load_preset("rram-32nm").knobs
    hw = HardwarePoint(
        xbar_size=knobs["xbar_size"],
        adc_bits=knobs["adc_bits"],
        weight_bits=knobs["weight_bits"],
        cell_bits=knobs["cell_bits"],
    )
    result = {
        "model": {
            k: params[k]
            for k in (
                "encoding",
                "num_steps",
                "epochs",
                "lr",
                "hidden_size",
                "conv_layers",
                "conv_channels",
            )
        },
        "n_train_synthetic": len(synthetic.x_train),
        "synthetic_val_float": evaluate(model, synthetic).metrics,
        "real_10_float": evaluate(model, real).metrics,
        "real_10_crossbar_rram32": evaluate(model, real, hw).metrics,
        "published_braggnn": {"px_err_p75": 0.29, "px_err_p95": 0.57},
    }
    for key in ("synthetic_val_float", "real_10_float", "real_10_crossbar_rram32"):
        print(key, {k: round(v, 3) for k, v in result[key].items()})
    print(f"wrote {write_result('bragg_real_model', result)}")


if __name__ == "__main__":
    main()
