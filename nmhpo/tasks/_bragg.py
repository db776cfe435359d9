"""Bragg-peak localisation (BraggNN): a peak's centre to sub-pixel accuracy from an 11x11 patch.

The task of Liu et al., "BraggNN: fast X-ray Bragg peak analysis using deep learning", IUCrJ
9(1):104-113 (2022), arXiv:2008.08198. Its training frames (~24 GB) are not bundled, so the
patches are synthetic, made the way the beamline makes them (recipe in
shared/data/bragg/README.md, checked against 10 real BraggNN patches by
benchmarks/check_bragg_real.py):

1. Centre ``(x0, y0) = patch // 2 + U[0, 1)`` each, as BraggNN crops around ``int(peak)``;
   ``shift`` adds BraggNN's augmentation, an integer shift in {-1, 0, 1} per axis.
2. A rotated 2-D pseudo-Voigt (the model BraggNN's labels were fitted with),
   ``A * [eta * L + (1 - eta) * G]`` with FWHM ``U[1, 2.5]`` px per axis, angle ``U[0, pi)``,
   ``eta ~ U[0, 0.3]``, averaged over each pixel on a 4x4 grid of sub-samples: sub-pixel
   accuracy depends on the integration, not on the value at the pixel centre. The README's
   wider FWHM ``U[1, 4]`` and ``eta ~ U[0, 1]`` fill far more of the patch than the real
   peaks do (median 47 non-zero pixels of 121, real 3-37), so the defaults keep the narrow,
   mostly Gaussian peaks the real patches show; both ranges are options.
3. Counts: ``A`` log-uniform in [50, 16 000] above a dark level of 100 counts plus a small
   linear slope; detector noise ``Poisson(I) + N(0, sigma_read^2)``, ``sigma_read ~ U[2, 10]``.
4. Beamline cleaning: subtract the dark level, zero pixels below 3 noise sigmas, keep the
   8-connected component holding the maximum (BraggNN ``clean_patch``; scikit-image's default
   connectivity), min-max normalise to [0, 1].
5. Target ``(x0, y0) / patch``, column (x) first; metrics are Euclidean errors in pixels.

``two_peak_fraction`` adds a second, weaker overlapping peak to that fraction of the patches
(BraggNN drops such patches from training; useful as a robustness split); the target stays the
first peak. Published reference on real data: 75 % of peaks within 0.29 px, 95 % within 0.57 px.

Users with real BraggNN data pass their own .npz (the task's ``data`` path) with arrays
``x_train, y_train, x_val, y_val`` and optionally ``x_test, y_test``: x is (n, 1, 11, 11) in
[0, 1], y is (n, 2) = centre / 11, column then row. A ``meta_patch`` array sets another patch
size for the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator
from scipy import ndimage

from nmhpo.errors import TaskError
from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, generated_splits

_FOUR_LN2 = 4.0 * np.log(2.0)
_SUBSAMPLES = 4  # per pixel and axis; 4x4 keeps the integration error below ~1.5 % at 1 px FWHM
_CHUNK = 1024  # samples rendered at once: bounds the sub-sample grid to ~16 MB
# 8-connectivity inside each patch, none across the sample axis.
_IN_PATCH = np.ones((1, 3, 3), dtype=bool)
# (lowest allowed low, highest allowed high, whether low may equal the bound) per range option.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "amplitude": (0.0, np.inf, False),
    "fwhm_px": (0.0, np.inf, False),
    "eta": (0.0, 1.0, True),
    "read_noise": (0.0, np.inf, True),
}


class BraggOptions(TaskOptions):
    """Sizes default to hyperparameter-search trials (BraggNN itself: 55.5 k / 13.8 k).

    Counts are detector counts per pixel; ranges are (low, high) and drawn uniformly per
    sample, except ``amplitude``, which is log-uniform as peak intensities span decades.
    """

    n_train: int = Field(default=4000, ge=10)
    n_val: int = Field(default=1000, ge=1)
    n_test: int = Field(default=1000, ge=1)
    patch: int = Field(default=11, ge=5, le=31)
    shift: bool = False
    two_peak_fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    amplitude: tuple[float, float] = (50.0, 16000.0)
    fwhm_px: tuple[float, float] = (1.0, 2.5)
    eta: tuple[float, float] = (0.0, 0.3)
    read_noise: tuple[float, float] = (2.0, 10.0)
    dark_counts: float = Field(default=100.0, ge=0.0)
    background_slope: float = Field(default=1.0, ge=0.0)  # max |counts per px| per axis
    threshold_sigma: float = Field(default=3.0, ge=0.0)
    noise: bool = True  # False: expected counts, for tests and ablations

    @field_validator("patch")
    @classmethod
    def _odd_patch(cls, value: int) -> int:
        # An odd patch has a centre pixel, as BraggNN's crop int(peak) -/+ patch // 2 assumes.
        if value % 2 == 0:
            raise ValueError(f"patch must be odd; got {value}")
        return value

    @field_validator("amplitude", "fwhm_px", "eta", "read_noise", mode="before")
    @classmethod
    def _list_as_range(cls, value: Any) -> Any:
        # TOML and JSON have arrays, not tuples: strict options take [low, high] as the pair.
        return tuple(value) if isinstance(value, list) else value

    @field_validator("amplitude", "fwhm_px", "eta", "read_noise")
    @classmethod
    def _ordered_range(
        cls, value: tuple[float, float], info: ValidationInfo
    ) -> tuple[float, float]:
        name = str(info.field_name)
        lowest, highest, closed = _RANGES[name]
        low, high = value
        above = low >= lowest if closed else low > lowest
        if not (above and low <= high <= highest and np.isfinite(high)):
            bound = ">=" if closed else ">"
            top = f" <= {highest:g}" if np.isfinite(highest) else ", both finite"
            raise ValueError(
                f"{name} must be (low, high) with low {bound} {lowest:g} and low <= high{top}; "
                f"got ({low:g}, {high:g})"
            )
        return value


def render_peaks(
    x0: np.ndarray,
    y0: np.ndarray,
    fwhm_x: np.ndarray,
    fwhm_y: np.ndarray,
    angle: np.ndarray,
    eta: np.ndarray,
    amplitude: np.ndarray,
    *,
    patch: int = 11,
    subsamples: int = _SUBSAMPLES,
) -> np.ndarray:
    """Expected counts of rotated 2-D pseudo-Voigt peaks, averaged over each pixel.

    Every argument is (n,); centres are in pixels with pixel centres at integer indices (x is
    the column, y the row), ``angle`` in radians rotates the x-width axis, ``amplitude`` is the
    peak height. Returns (n, patch, patch) float64. Each pixel is the mean of a
    ``subsamples`` x ``subsamples`` midpoint grid, because a detector pixel integrates the
    intensity over its area and the sub-pixel centre is encoded in exactly that.
    """
    n = len(x0)
    s = subsamples
    fine = (np.arange(patch * s) + 0.5) / s - 0.5  # sub-sample centres; pixel i is [i-0.5, i+0.5)
    dx = fine[None, None, :] - np.asarray(x0, dtype=float)[:, None, None]
    dy = fine[None, :, None] - np.asarray(y0, dtype=float)[:, None, None]
    cos, sin = np.cos(angle), np.sin(angle)
    ix2, iy2 = 1.0 / np.square(fwhm_x), 1.0 / np.square(fwhm_y)
    # (u/Gx)^2 + (v/Gy)^2 with u = dx cos + dy sin, v = -dx sin + dy cos, as a quadratic form.
    a = (cos**2 * ix2 + sin**2 * iy2)[:, None, None]
    b = (cos * sin * (ix2 - iy2))[:, None, None]
    c = (sin**2 * ix2 + cos**2 * iy2)[:, None, None]
    r2 = a * dx**2 + 2.0 * b * dx * dy + c * dy**2
    mix = np.asarray(eta, dtype=float)[:, None, None]
    profile = mix / (1.0 + 4.0 * r2) + (1.0 - mix) * np.exp(-_FOUR_LN2 * r2)
    pixels = profile.reshape(n, patch, s, patch, s).mean(axis=(2, 4))
    return np.asarray(amplitude, dtype=float)[:, None, None] * pixels


def clean_patches(signal: np.ndarray, threshold: np.ndarray | float) -> np.ndarray:
    """BraggNN's input from background-subtracted counts (n, p, p): values in [0, 1].

    Pixels at or below ``threshold`` (scalar or (n,)) become 0, then only the 8-connected
    component containing each patch's maximum is kept (the maximum pixel itself is kept even
    below the threshold, so every patch has a peak), and the patch is min-max normalised.
    A patch whose maximum is not positive comes out all zero.
    """
    n, rows, cols = signal.shape
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), (n,))[:, None, None]
    seed = np.zeros((n, rows * cols), dtype=bool)
    seed[np.arange(n), signal.reshape(n, -1).argmax(axis=1)] = True
    seed = seed.reshape(n, rows, cols)
    keep = ndimage.binary_propagation(seed, structure=_IN_PATCH, mask=(signal > thr) | seed)
    kept = np.where(keep, np.maximum(signal, 0.0), 0.0)
    low = kept.min(axis=(1, 2), keepdims=True)
    span = kept.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (kept - low) / np.where(span > 0, span, 1.0), 0.0)


def generate(n: int, seed: int, options: BraggOptions) -> tuple[np.ndarray, np.ndarray]:
    """``n`` cleaned patches, x float32 (n, 1, p, p) in [0, 1], and their targets, y float32
    (n, 2) = (x0, y0) / p, column first.

    Every random quantity is drawn for all samples whatever the options, so switching
    ``shift``, ``two_peak_fraction`` or ``noise`` changes only what they control.
    """
    rng = np.random.default_rng(seed)
    p = options.patch
    half = p // 2
    # --- draws, in a fixed order
    frac = rng.random((2, n))
    shifts = rng.integers(-1, 2, size=(2, n))
    fwhm = rng.uniform(*options.fwhm_px, size=(2, n))
    angle = rng.uniform(0.0, np.pi, n)
    eta = rng.uniform(*options.eta, n)
    log_lo, log_hi = np.log(options.amplitude)
    amp = np.exp(rng.uniform(log_lo, log_hi, n))
    read_sigma = rng.uniform(*options.read_noise, n)
    slope = rng.uniform(-options.background_slope, options.background_slope, (2, n))
    second_ratio = rng.uniform(0.1, 0.5, n)
    second_dist = rng.uniform(1.5, 3.0, n)
    second_dir = rng.uniform(0.0, 2.0 * np.pi, n)
    second_fwhm = rng.uniform(*options.fwhm_px, size=(2, n))
    second_angle = rng.uniform(0.0, np.pi, n)
    second_eta = rng.uniform(*options.eta, n)
    two = rng.random(n) < options.two_peak_fraction

    centre = half + frac + (shifts if options.shift else 0)
    counts = np.empty((n, p, p))
    for start in range(0, n, _CHUNK):
        part = slice(start, start + _CHUNK)
        counts[part] = render_peaks(
            centre[0, part], centre[1, part], fwhm[0, part], fwhm[1, part],
            angle[part], eta[part], amp[part], patch=p,
        )  # fmt: skip
    idx = np.flatnonzero(two)
    for start in range(0, len(idx), _CHUNK):
        sel = idx[start : start + _CHUNK]
        counts[sel] += render_peaks(
            centre[0, sel] + second_dist[sel] * np.cos(second_dir[sel]),
            centre[1, sel] + second_dist[sel] * np.sin(second_dir[sel]),
            second_fwhm[0, sel], second_fwhm[1, sel], second_angle[sel], second_eta[sel],
            second_ratio[sel] * amp[sel], patch=p,
        )  # fmt: skip
    grid = np.arange(p) - half
    background = (
        options.dark_counts
        + slope[0][:, None, None] * grid[None, None, :]
        + slope[1][:, None, None] * grid[None, :, None]
    )
    expected = np.maximum(counts + background, 0.0)
    raw = expected
    if options.noise:
        read = rng.standard_normal(expected.shape) * read_sigma[:, None, None]
        raw = rng.poisson(expected) + read
    # The dark level is known from dark frames; the slope (diffuse scatter) is not removed.
    sigma = np.sqrt(options.dark_counts + read_sigma**2)
    x = clean_patches(raw - options.dark_counts, options.threshold_sigma * sigma)
    y = (centre / p).T
    return x[:, None].astype(np.float32), y.astype(np.float32)


def build(options: BraggOptions, seed: int) -> Splits:
    """Train/validation/test patches, each split from its own seed (see `generated_splits`)."""
    splits = generated_splits(
        lambda n, s: generate(n, s, options), options.n_train, options.n_val, options.n_test, seed
    )
    return Splits(
        splits.x_train,
        splits.y_train,
        splits.x_val,
        splits.y_val,
        splits.x_test,
        splits.y_test,
        meta={"patch": np.array(options.patch)},
    )


def score(
    y_true: np.ndarray, y_pred: np.ndarray, meta: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Euclidean centre error in pixels (targets are centre / patch; patch 11 unless
    ``meta["patch"]`` says otherwise): mean and the 50/75/95th percentiles BraggNN reports."""
    scale = float(meta["patch"]) if "patch" in meta else 11.0
    if np.asarray(y_true).reshape(len(y_true), -1).shape[1] != 2:
        raise TaskError(
            "bragg targets must be (n, 2): the peak's (row, column) as fractions of the patch "
            f"side; got {np.asarray(y_true).shape[1:]} per sample"
        )
    diff = np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)
    err = scale * np.linalg.norm(diff.reshape(len(diff), -1), axis=1)
    p50, p75, p95 = np.percentile(err, [50, 75, 95])
    return {
        "px_err_mean": float(err.mean()),
        "px_err_p50": float(p50),
        "px_err_p75": float(p75),
        "px_err_p95": float(p95),
    }


BRAGG = TaskInfo(
    name="bragg",
    description=(
        "BraggNN Bragg-peak localisation: sub-pixel centre of a synthetic pseudo-Voigt peak "
        "in a cleaned 11x11 detector patch (error in pixels)"
    ),
    kind="regression",
    metrics={
        "px_err_mean": "minimize",
        "px_err_p75": "minimize",
        "px_err_p95": "minimize",
        "px_err_p50": "minimize",
    },
    options=BraggOptions,
    build=build,
    score=score,
)
