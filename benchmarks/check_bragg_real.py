"""How close the synthetic Bragg patches are to the 10 real BraggNN patches we have.

Compares, for the real patches and for synthetic ones (the task's defaults and the README's
original recipe, FWHM U[1, 4] px and eta U[0, 1]): non-zero pixels per patch, the fraction of
zero pixels, the smallest non-zero value (how far above the threshold the peak rises), and the
error of a plain intensity-centroid estimator against the labels, overall and for bright
(>= 23 non-zero px) and faint (<= 6 px) patches. A two-sample KS test and the chance that all
10 real patches stay within the real maximum of non-zero pixels sum up the size comparison.
Needs no training. Also times generating 6,000 patches.

Writes benchmarks/results/bragg_real_check.json.
Run: .venv/bin/python benchmarks/check_bragg_real.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.tasks._bragg import BraggOptions, generate  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bragg"
REAL = DATA / "braggnn_real_patches_psz11.npz"
N_SYNTHETIC = 6000
BRIGHT, FAINT = 23, 6  # non-zero pixel counts splitting bright and faint patches (README)


def centroid_px(x: np.ndarray) -> np.ndarray:
    """Intensity centroid (col, row) in pixels of patches (n, p, p)."""
    grid = np.arange(x.shape[-1])
    total = x.sum(axis=(1, 2))
    return np.stack([x.sum(axis=1) @ grid / total, x.sum(axis=2) @ grid / total], axis=1)


def quantiles(values: np.ndarray) -> dict[str, float]:
    q = np.percentile(values, [0, 10, 25, 50, 75, 90, 100])
    names = ("min", "p10", "p25", "p50", "p75", "p90", "max")
    return {k: round(float(v), 4) for k, v in zip(names, q, strict=True)}


def describe(x: np.ndarray, centre_px: np.ndarray) -> dict[str, Any]:
    """Statistics of patches (n, p, p) in [0, 1] with label centres (n, 2) in pixels."""
    lit = (x > 0).sum(axis=(1, 2))
    smallest = np.where(x > 0, x, np.inf).min(axis=(1, 2))
    err = np.linalg.norm(centroid_px(x) - centre_px, axis=1)
    bright, faint = lit >= BRIGHT, lit <= FAINT
    return {
        "n": len(x),
        "nonzero_px": quantiles(lit) | {"mean": round(float(lit.mean()), 2)},
        "zero_pixel_fraction": round(float((x == 0).mean()), 4),
        "fraction_with_at_most_2_px": round(float((lit <= 2).mean()), 4),
        "smallest_nonzero_value_p50": round(float(np.median(smallest)), 4),
        "centroid_err_px": quantiles(err) | {"mean": round(float(err.mean()), 4)},
        "centroid_err_px_bright": {
            "n": int(bright.sum()),
            "p50": round(float(np.median(err[bright])), 4) if bright.any() else None,
            "max": round(float(err[bright].max()), 4) if bright.any() else None,
        },
        "centroid_err_px_faint": {
            "n": int(faint.sum()),
            "p50": round(float(np.median(err[faint])), 4) if faint.any() else None,
        },
    }


def compare(real_lit: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """How likely the real non-zero counts are under a synthetic distribution."""
    lit = (x > 0).sum(axis=(1, 2))
    above = float((lit > real_lit.max()).mean())
    return {
        "ks_pvalue_nonzero_px": round(float(stats.ks_2samp(real_lit, lit).pvalue), 4),
        "fraction_above_real_max": round(above, 4),
        "chance_all_real_within_real_max": round((1.0 - above) ** len(real_lit), 4),
    }


def main() -> None:
    if not REAL.is_file():
        raise SystemExit(f"real BraggNN patches not found at {REAL}; nothing to compare against")
    with np.load(REAL) as z:
        real_x = z["patches"].astype(np.float64)
        real_centre = z["center_pixel"].astype(np.float64)
    real_lit = (real_x > 0).sum(axis=(1, 2))
    real_err = np.linalg.norm(centroid_px(real_x) - real_centre, axis=1)

    variants = {
        "synthetic_defaults": BraggOptions(),
        "synthetic_readme_recipe": BraggOptions(fwhm_px=(1.0, 4.0), eta=(0.0, 1.0)),
    }
    synthetic: dict[str, Any] = {}
    for name, options in variants.items():
        x, y = generate(N_SYNTHETIC, 0, options)
        synthetic[name] = {
            "options": options.model_dump(mode="json", include={"fwhm_px", "eta", "amplitude"}),
            **describe(x[:, 0].astype(np.float64), y.astype(np.float64) * 11),
            "vs_real": compare(real_lit, x[:, 0]),
        }

    times = []
    for seed in range(3):
        start = time.perf_counter()
        generate(N_SYNTHETIC, seed, BraggOptions())
        times.append(time.perf_counter() - start)

    payload = {
        "real": {
            **describe(real_x, real_centre),
            "per_patch": [
                {"nonzero_px": int(n), "centroid_err_px": round(float(e), 4)}
                for n, e in zip(real_lit, real_err, strict=True)
            ],
        },
        **synthetic,
        "generate_6000_s": {"median": round(float(np.median(times)), 3), "runs": len(times)},
    }
    path = write_result("bragg_real_check", payload)
    for name in ("real", *synthetic):
        part = payload[name]
        print(
            f"{name:24s} non-zero px p50 {part['nonzero_px']['p50']:5.1f} "
            f"max {part['nonzero_px']['max']:5.0f}  zero frac {part['zero_pixel_fraction']:.2f}  "
            f"centroid err p50 {part['centroid_err_px']['p50']:.3f} px "
            f"(bright {part['centroid_err_px_bright']['p50']}, "
            f"faint {part['centroid_err_px_faint']['p50']})"
        )
    print(f"generate 6000 patches: {payload['generate_6000_s']['median']} s; wrote {path}")


if __name__ == "__main__":
    main()
