"""Do the ptycho task's synthetic frames look like real ones? Statistics side by side.

The real frames (shared/data/ptycho, inputs only, see its README) come from two experiments:
the PtychoNN scan 20191008_39 (4 frames, 256 x 256, ~1e7 counts) and pppc test235 (20 frames,
512 x 512, ~4.7e7 counts). Each is binned (summed) to the task's frame size over a fixed
detector area, as PtychoNN crops to 192 pixels and resizes to 64: the 192-pixel crop for
20191008_39, the whole frame for test235. The synthetic frames are the task's inputs decoded
back to counts, with the default options at each size.

Compared per frame, then averaged: total counts, peak pixel, fraction of zero pixels and of
pixels below 1e-6 / 1e-5 of the total, dynamic range (decades above one count), the radii
(fraction of the frame) enclosing 50 / 90 / 99 / 99.9 % of the counts about the intensity
centroid, the azimuthal profile, its power-law slope between 0.2 and 0.45 of the frame, and
the dip at the centre of the annular disc.

Writes benchmarks/results/ptycho_real_check.json.
Run: .venv/bin/python benchmarks/check_ptycho_real.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.tasks._ptycho import PtychoOptions, generate  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ptycho"
PTYCHONN = "ptychonn_20191008_39_diff_sample.npy"
TEST235 = "pppc_test235_truncated.npz"
SIZES = (32, 64)
N_SYNTHETIC = 2000  # about 56 objects: the statistics vary more between objects than frames
PROFILE_AT = np.round(np.arange(0.0, 0.5, 0.05), 2)


def bin_to(frames: np.ndarray, size: int) -> np.ndarray:
    """Sum-bin (n, h, h) frames to (n, size, size) over the largest centred multiple."""
    h = frames.shape[-1]
    k = h // size
    lo = (h - k * size) // 2
    crop = frames[:, lo : lo + k * size, lo : lo + k * size].astype(np.float64)
    return crop.reshape(len(frames), size, k, size, k).sum(axis=(2, 4))


def frame_stats(frames: np.ndarray) -> dict[str, Any]:
    """Statistics of (n, s, s) count frames: means over frames (and the spread of totals)."""
    n, s, _ = frames.shape
    totals = frames.sum(axis=(1, 2))
    peak = frames.max(axis=(1, 2))
    yy, xx = np.indices((s, s))
    radii, profiles, slopes, dips = [], [], [], []
    for im, total in zip(frames, totals, strict=True):
        cy, cx = (im * yy).sum() / total, (im * xx).sum() / total
        r = np.hypot(yy - cy, xx - cx).ravel()
        order = np.argsort(r)
        enclosed = np.cumsum(im.ravel()[order]) / total
        radii.append([r[order][np.searchsorted(enclosed, q)] / s for q in (0.5, 0.9, 0.99, 0.999)])
        ring = np.rint(r).astype(int)
        profile = np.bincount(ring, im.ravel()) / np.maximum(np.bincount(ring), 1) / total
        profiles.append(profile[np.rint(PROFILE_AT * s).astype(int)])
        k = np.arange(len(profile))
        tail = (k >= 0.2 * s) & (k <= 0.45 * s) & (profile > 0)
        slopes.append(np.polyfit(np.log(k[tail]), np.log(profile[tail]), 1)[0])
        dips.append(profile[: max(1, round(0.03 * s))].mean() / profile.max())
    return {
        "frames": n,
        "total_counts": float(totals.mean()),
        "total_counts_rel_std": float(totals.std() / totals.mean()),
        "peak_counts": float(peak.mean()),
        "peak_fraction_of_total": float((peak / totals).mean()),
        "dynamic_range_decades": float(np.log10(peak).mean()),
        "zero_fraction": float((frames == 0).mean()),
        "below_1e-6_total_fraction": float((frames < 1e-6 * totals[:, None, None]).mean()),
        "below_1e-5_total_fraction": float((frames < 1e-5 * totals[:, None, None]).mean()),
        "enclosed_radius_50_90_99_999": np.round(np.mean(radii, axis=0), 4).tolist(),
        "radial_profile_at": PROFILE_AT.tolist(),
        "radial_profile_per_pixel_of_total": np.mean(profiles, axis=0).tolist(),
        "tail_power_law_slope": float(np.mean(slopes)),
        "centre_dip_over_ring_peak": float(np.mean(dips)),
    }


def main() -> int:
    if not (DATA / PTYCHONN).is_file() or not (DATA / TEST235).is_file():
        sys.exit(f"real ptycho frames not found in {DATA} (expected {PTYCHONN}, {TEST235})")
    raw = np.load(DATA / PTYCHONN).reshape(-1, 256, 256)
    ptychonn = raw[:, 32:-32, 32:-32]
    with np.load(DATA / TEST235) as z:
        test235 = z["reciprocal"]

    # PtychoNN's own input pipeline (3 x 3 mean to 64, then x < 3 -> 0) zeroes this much.
    mean64 = ptychonn.astype(np.float64).reshape(-1, 64, 3, 64, 3).mean(axis=(2, 4))
    ptychonn_input_zero = float((mean64 < 3).mean())

    by_size: dict[str, Any] = {}
    for size in SIZES:
        options = PtychoOptions(size=size)
        x, _ = generate(N_SYNTHETIC, 0, options)
        counts = np.rint(np.expm1(x[:, 0].astype(np.float64) * np.log1p(options.photons)))
        by_size[str(size)] = {
            "real_ptychonn_20191008_39": frame_stats(bin_to(ptychonn, size)),
            "real_pppc_test235": frame_stats(bin_to(test235, size)),
            "synthetic_defaults": frame_stats(counts),
        }

    start = time.perf_counter()
    generate(3000, 0, PtychoOptions())
    seconds = time.perf_counter() - start

    path = write_result(
        "ptycho_real_check",
        {
            "description": __doc__.split("\n\n")[0],
            "options": PtychoOptions().model_dump(),
            "generate_3000_frames_size_32_s": round(seconds, 3),
            "ptychonn_preprocessed_64_zero_fraction": ptychonn_input_zero,
            "raw_zero_fraction": {
                "real_ptychonn_20191008_39_256px": float((raw == 0).mean()),
                "real_pppc_test235_512px": float((test235 == 0).mean()),
            },
            "by_size": by_size,
        },
    )
    sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
