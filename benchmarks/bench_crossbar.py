"""Designs per second of the vectorized crossbar model against the scalar reference.

For VGG9 (the SpikeSim check network) and a 3-layer MLP, prices batches of 1, 10^3 and 10^5
random hardware designs (every knob varies) with one measured activity per layer, as a study
does for one trained network, and the same designs one at a time with the scalar reference
(on at most 2,000 of them; its cost per design does not depend on the batch). Also times the
harder case of one activity per design and layer, and the peak memory per design.

Writes benchmarks/results/crossbar.json. Goal: <= 0.4 us per design at 10^5 designs.
Run: .venv/bin/python benchmarks/bench_crossbar.py
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.crossbar import Network, dense_network, evaluate, load_preset, vgg9_cifar10  # noqa: E402
from nmhpo.crossbar._reference import evaluate_one  # noqa: E402

VGG9 = vgg9_cifar10()
MLP = dense_network([784, 256, 128, 10])
GOAL_US = 0.4


def random_designs(n: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    knobs = {
        "xbar_size": rng.choice([32, 64, 128, 256, 512], n),
        "pe_per_tile": rng.choice([4, 8, 16], n),
        "clock_mhz": rng.choice([100.0, 250.0, 500.0], n),
        "device": rng.choice(["rram", "sram"], n),
        "adc_bits": rng.integers(3, 9, n),
        "cols_per_adc": rng.choice([4, 8, 16], n),
        "weight_bits": rng.integers(2, 9, n),
        "cell_bits": rng.integers(1, 5, n),
        "tech_node": rng.choice([7.0, 14.0, 22.0, 32.0, 45.0, 65.0], n),
    }
    steps = rng.integers(1, 33, n)
    return knobs, steps


def best_time(fn: Any, min_seconds: float = 0.5, max_reps: int = 200) -> float:
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (time.perf_counter() - start < min_seconds or len(times) < 3):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def scalar_us_per_design(
    net: Network,
    preset: Any,
    knobs: dict[str, np.ndarray],
    steps: np.ndarray,
    activity: np.ndarray,
    limit: int = 2000,
) -> float:
    m = min(limit, len(steps))
    rows = [{k: v[i].item() for k, v in knobs.items()} for i in range(m)]
    act = activity.tolist()
    t0 = time.perf_counter()
    for i in range(m):
        evaluate_one(net, preset, rows[i], int(steps[i]), act)
    return (time.perf_counter() - t0) / m * 1e6


def trends(preset: Any) -> dict[str, Any]:
    """NeuroSim-like trends the default mode shows on VGG9 (T=5, activity 0.1)."""
    act = 0.1
    bits = np.arange(3, 9)
    by_bits = evaluate(VGG9, preset, {"adc_bits": bits}, num_steps=5, activity=act)
    adc = by_bits.energy_breakdown_pj["adc"]
    nodes = np.array([65.0, 45.0, 32.0, 22.0, 14.0, 7.0])
    by_node = evaluate(VGG9, preset, {"tech_node": nodes}, num_steps=5, activity=act)
    base = evaluate(VGG9, preset, num_steps=5, activity=act)
    return {
        "adc_energy_ratio_per_bit": [round(float(r), 4) for r in adc[1:] / adc[:-1]],
        "adc_share_of_energy_by_bits": {
            int(b): round(float(a / t), 4)
            for b, a, t in zip(bits, adc, by_bits.energy_pj, strict=True)
        },
        "energy_vs_65nm_by_node": {
            int(n): round(float(e / by_node.energy_pj[0]), 4)
            for n, e in zip(nodes, by_node.energy_pj, strict=True)
        },
        "area_vs_65nm_by_node": {
            int(n): round(float(a / by_node.area_um2[0]), 4)
            for n, a in zip(nodes, by_node.area_um2, strict=True)
        },
        "energy_at_activity_0.1_vs_dense": round(
            float(base.energy_pj[0] / evaluate(VGG9, preset, num_steps=5).energy_pj[0]), 4
        ),
    }


def main() -> None:
    preset = load_preset("spikesim-65nm")
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    for name, net in (("vgg9", VGG9), ("mlp_784_256_128_10", MLP)):
        activity = rng.uniform(0.02, 0.3, net.n_layers)
        per_net: dict[str, Any] = {}
        for n in (1, 1_000, 100_000):
            knobs, steps = random_designs(n, rng)
            seconds = best_time(
                lambda net=net, knobs=knobs, steps=steps, act=activity: evaluate(
                    net, preset, knobs, num_steps=steps, activity=act
                )
            )
            scalar = scalar_us_per_design(net, preset, knobs, steps, activity)
            per_design_act = rng.uniform(0.02, 0.3, (n, net.n_layers))
            seconds_2d = best_time(
                lambda net=net, knobs=knobs, steps=steps, act=per_design_act: evaluate(
                    net, preset, knobs, num_steps=steps, activity=act
                )
            )
            tracemalloc.start()
            evaluate(net, preset, knobs, num_steps=steps, activity=activity)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            us = seconds / n * 1e6
            per_net[str(n)] = {
                "us_per_design": round(us, 4),
                "designs_per_s": round(n / seconds),
                "scalar_us_per_design": round(scalar, 2),
                "speedup_over_scalar": round(scalar / us, 1),
                "us_per_design_activity_per_design": round(seconds_2d / n * 1e6, 4),
                "peak_bytes_per_design": round(peak / n, 1),
            }
            print(
                f"{name:>20} n={n:>6}: {us:9.4f} us/design ({n / seconds:12,.0f}/s), "
                f"scalar {scalar:8.2f} us, x{scalar / us:8.1f}; "
                f"activity per design {seconds_2d / n * 1e6:.4f} us; "
                f"peak {peak / n:,.0f} B/design"
            )
        results[name] = per_net
    worst = max(r["100000"]["us_per_design"] for r in results.values())
    path = write_result(
        "crossbar",
        {
            "goal_us_per_design_at_1e5": GOAL_US,
            "worst_us_per_design_at_1e5": worst,
            "meets_goal": worst <= GOAL_US,
            "note": (
                "activity: one value per layer (one trained network priced on many designs); "
                "us_per_design_activity_per_design: one activity per design and layer. "
                "Scalar reference timed on up to 2,000 designs of each batch."
            ),
            "networks": results,
            "trends_vgg9_event_mode": trends(preset),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
