"""Event data: what the synthetic camera makes and what reading and binning cost.

Measures, with no training: the time to generate events-digits at its defaults (all 1,797
digits), its events per sample, ON/OFF balance, occupancy of the fine bins and size; the
input activity (fraction of the 2x24x24 inputs spiking per step) of its validation split for
several num_steps, as encoding "events" makes it; the time to bin one batch of 1,024
samples; and the time to decode and bin the real N-MNIST recording in
../shared/data/events (or $NMHPO_EVENT_DATA) when it is there.
Writes benchmarks/results/events.json.
Run: .venv/bin/python benchmarks/bench_events.py
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import write_result  # noqa: E402

from nmhpo.snn import encode  # noqa: E402
from nmhpo.tasks import get_task  # noqa: E402
from nmhpo.tasks._nmnist import NmnistOptions, frames, read_file  # noqa: E402

SAMPLE = (
    Path(
        os.environ.get(
            "NMHPO_EVENT_DATA",
            Path(__file__).resolve().parents[1].parent / "shared" / "data" / "events",
        )
    )
    / "tonic_sample_nmnist.bin"
)


def main() -> None:
    torch.set_num_threads(1)
    info = get_task("events-digits")
    options = info.options()
    start = time.perf_counter()
    splits = info.build(options, 0)
    generate_s = time.perf_counter() - start
    x = np.concatenate([splits.x_train, splits.x_val, splits.x_test])
    counts = x.sum(axis=(1, 2, 3, 4), dtype=np.int64)
    val = torch.from_numpy(splits.x_val)
    activity = {
        str(t): round(float(encode(val, "events", t, torch.Generator()).mean()), 4)
        for t in (3, 6, 8, 12, 24)
    }
    batch = torch.from_numpy(splits.x_train[:1024])
    bin_ms = timeit.timeit(lambda: encode(batch, "events", 8, torch.Generator()), number=5) / 5
    result = {
        "events_digits": {
            "options": options.model_dump(),
            "samples": int(len(x)),
            "generate_s": round(generate_s, 3),
            "sample_shape": list(x.shape[1:]),
            "bytes": int(x.nbytes),
            "events_per_sample_mean": round(float(counts.mean()), 1),
            "events_per_sample_min_max": [int(counts.min()), int(counts.max())],
            "on_off_ratio": round(
                float(x[:, :, 1].sum(dtype=np.int64) / x[:, :, 0].sum(dtype=np.int64)), 4
            ),
            "fine_bin_occupancy": round(float((x > 0).mean()), 4),
            "max_count_in_a_cell": int(x.max()),
            "input_activity_by_num_steps": activity,
            "bin_1024_samples_to_8_steps_ms": round(bin_ms * 1e3, 2),
        }
    }
    if SAMPLE.is_file():
        nmnist = NmnistOptions()
        per_file = timeit.timeit(lambda: frames(read_file(SAMPLE), nmnist), number=200) / 200
        result["nmnist_fixture"] = {
            "events": int(len(read_file(SAMPLE)["t"])),
            "decode_and_bin_ms": round(per_file * 1e3, 3),
        }
    path = write_result("events", result)
    print(path.read_text())


if __name__ == "__main__":
    main()
