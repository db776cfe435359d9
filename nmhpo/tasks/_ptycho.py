"""Ptychographic amplitude and phase reconstruction from single far-field diffraction patterns.

The task PtychoNN solves (Cherukara et al., "AI-enabled high-resolution scanning coherent
diffraction imaging", Appl. Phys. Lett. 117, 044103 (2020); github.com/mcherukara/PtychoNN):
from one diffraction frame, predict the amplitude and the phase of the object patch under the
probe. PtychoNN's measured targets (iterative reconstructions of a tungsten test pattern) are
not available as a small file, so the data is simulated with the forward model of the recipe in
``shared/data/ptycho/README.md``:

1. **Object** ``O = a * exp(i * phi)`` on a field of view a little larger than one raster scan:
   random disks and bars (sharp features, as in a lithographic test pattern) plus a smooth
   texture, blurred by ``blur`` pixels, each map scaled to its full range
   ``a in [amp_min, amp_max]`` and ``phi in [phase_min, phase_max]`` (default 0.7-1.0 and
   -pi/2-pi, the README's "weak-to-moderate phase object"). Thick parts absorb more and shift
   the phase more; ``coupling`` sets how much the amplitude follows the phase's structure
   (1: one material; 0: unrelated images, as in PtychoNN's own simulation).
2. **Probe**: a focused beam from an annular zone-plate pupil (outer radius ``pupil_radius``
   of the detector, central stop ``central_stop``) with a defocus phase
   ``defocus * (q / q_max)^2`` radians. Its far field is the bright annular disc of the real
   PtychoNN frames. With the defaults the defocused probe holds half its energy within a
   radius of 9 px and 90 % within 16 px, so it covers a 32-pixel target patch (the README's
   Gaussian probes of sigma 6-12 px hold half theirs within 7-14 px).
3. **Scan**: a ``scan_points`` x ``scan_points`` raster with a step of ``scan_step`` pixels
   per object, plus uniform jitter of up to ``jitter`` pixels (on a 1/8-pixel grid) applied
   as a sub-pixel shift of the probe; frames are shuffled. Each split has its own objects.
4. **Measurement**: exit wave ``psi = P * O[window]`` over a window twice the frame size
   around the probe, far field ``I = photons * |fftshift(fft2(psi, norm="ortho"))|^2`` with
   ``sum |P|^2 = 1``, binned 2 x 2 to ``size`` x ``size`` detector pixels, then Poisson
   counts. ``photons`` is the incident flux per exposure, so the expected pattern holds
   exactly ``photons`` counts for a pure-phase object and ``photons * sum(|P|^2 a^2)`` in
   general. Normalising every pattern to ``photons`` (the README's step 4) would erase the
   mean transmission, which real frames carry (their totals differ by a few per cent
   between scan positions).
5. **Target**: the central ``size`` x ``size`` of the window, under the probe.

``size`` is the detector binned to ``size`` x ``size`` pixels over a fixed angular range, as
PtychoNN bins its 192-pixel crop to 64: the real-space pixel stays the same, so lengths
(``feature_size``, ``blur``, ``scan_step``, ``jitter``) are in pixels, the pupil is a fraction
of the detector, ``size`` sets the field of view, and the frames' statistics hardly depend on
it (benchmarks/check_ptycho_real.py compares them with real frames at 32 and 64).

Inputs are ``log1p(counts) / log1p(photons)``, float32 (n, 1, size, size) in [0, 1]: the
logarithm compresses six decades of dynamic range, and the fixed divisor (the most counts one
pixel could hold) keeps the absolute intensity that a per-pattern maximum would discard. With
``contrast = "pixel"`` (the default) each pixel is then stretched linearly from its range over
512 reference frames (their own objects and seed) to [0, 1], clipped: see ``stretch_pixels``;
``contrast = "none"`` keeps the plain log scale. Targets
are float32 (n, 2 * size * size): the amplitude patch, then the phase patch, each mapped
linearly from ``[amp_min, amp_max]`` / ``[phase_min, phase_max]`` to [0, 1];
``meta["amp_range"]`` and ``meta["phase_range"]`` keep the ranges so the metrics are in
physical units. Not modelled: beamstop, detector saturation, background counts, and the
PtychoNN preprocessing's zeroing of counts below 3.

Users with real PtychoNN data can pass an .npz with arrays x_train, y_train, x_val, y_val and
optionally x_test, y_test (x: (n, 1, s, s), y: (n, 2 * s * s), amplitude then phase) and
``meta_amp_range`` / ``meta_phase_range`` giving the [low, high] that 0 and 1 stand for;
without them the targets are taken to be in physical units already. Their inputs are used as
given (``contrast`` applies to generated frames): scale them to [0, 1] the same way.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from scipy import ndimage

from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, generated_splits

# Weight of the smooth random texture against the sharp shapes in each thickness map.
_TEXTURE = 0.3
# Shapes per pixel of object: four per 32 x 32 frame, so most frames see an edge.
_SHAPES_PER_PIXEL = 4.0 / 32**2
# Width of the pupil's edge (fraction of the detector): a linear ramp rather than a step, as
# the detector pixels integrate the disc's edge; it also shortens the probe's Airy tails.
_PUPIL_EDGE = 0.03
# The real-space window simulated per frame, in frame sizes. Each detector pixel of the
# frame bins 2 x 2 finer ones, so the probe's sidelobes and the object around the target
# patch scatter as they do onto a binned detector (PtychoNN bins 192 pixels to 64), rather
# than wrapping round an FFT window the size of the frame.
_OVERSAMPLE = 2
# Window pixels simulated at once: bounds each complex work array to 64 MB at any size.
_CHUNK_PIXELS = 2**22
# SSIM constants of Wang et al. (2004), as scikit-image's gaussian_weights=True mode uses.
_SSIM_SIGMA, _SSIM_TRUNCATE, _SSIM_K1, _SSIM_K2 = 1.5, 3.5, 0.01, 0.03


class PtychoOptions(TaskOptions):
    """Defaults are sized for search trials on 2 CPU cores (3,000 frames in ~1.5 s).

    ``blur`` (1 px) makes the synthetic frames' radial fall-off match the real PtychoNN
    frames binned to the same size (the radii holding 50/90/99/99.9 % of the counts agree
    within 0.04 of the frame; benchmarks/check_ptycho_real.py); ``photons`` is their ~1e7
    counts per frame; ``pupil_radius`` and ``central_stop`` are their disc's.
    """

    size: int = Field(default=32, ge=16, le=128, multiple_of=2)
    n_train: int = Field(default=2000, ge=1)
    n_val: int = Field(default=500, ge=1)
    n_test: int = Field(default=500, ge=1)
    photons: float = Field(default=1e7, ge=1.0, le=1e10)
    pupil_radius: float = Field(default=0.1, gt=0.0, lt=0.5)
    central_stop: float = Field(default=0.3, ge=0.0, lt=1.0)
    defocus: float = Field(default=4.0, ge=0.0, le=50.0)
    scan_step: float = Field(default=3.0, gt=0.0, le=64.0)
    scan_points: int = Field(default=6, ge=1, le=64)
    jitter: float = Field(default=0.5, ge=0.0, le=2.0)
    amp_min: float = Field(default=0.7, ge=0.0, le=1.0)
    amp_max: float = Field(default=1.0, ge=0.0, le=1.0)
    phase_min: float = Field(default=-math.pi / 2)
    phase_max: float = Field(default=math.pi)
    feature_size: float = Field(default=5.0, gt=0.0, le=64.0)
    blur: float = Field(default=1.0, ge=0.0, le=16.0)
    coupling: float = Field(default=0.5, ge=0.0, le=1.0)
    contrast: Literal["pixel", "none"] = "pixel"

    @model_validator(mode="after")
    def _ranges(self) -> PtychoOptions:
        if not self.amp_min < self.amp_max:
            raise ValueError(f"amp_min must be < amp_max; got {self.amp_min}, {self.amp_max}")
        if not 0.0 < self.phase_max - self.phase_min <= 2 * math.pi:
            raise ValueError(
                "phase_max - phase_min must be in (0, 2 pi] so the phase never wraps; "
                f"got {self.phase_min}, {self.phase_max}"
            )
        return self


# ----------------------------------------------------------------------------- physics


def window(options: PtychoOptions) -> int:
    """Side of the simulated real-space window, in pixels: ``_OVERSAMPLE * size``."""
    return _OVERSAMPLE * options.size


def pupil(options: PtychoOptions) -> np.ndarray:
    """The probe's far field in unshifted FFT order, (window, window) complex128.

    An annulus (zone plate with central stop) times a defocus phase quadratic in the radius.
    """
    n = window(options)
    q = np.fft.fftfreq(n) * n  # detector pixels from the zero frequency
    rho = np.hypot(q[:, None], q[None, :])
    r_out = options.pupil_radius * n
    edge = _PUPIL_EDGE * n
    aperture = np.clip((r_out - rho) / edge + 0.5, 0.0, 1.0) * np.clip(
        (rho - options.central_stop * r_out) / edge + 0.5, 0.0, 1.0
    )
    return aperture * np.exp(1j * options.defocus * (rho / r_out) ** 2)


def probes(options: PtychoOptions, shifts: np.ndarray) -> np.ndarray:
    """Probes centred at ``window // 2 + shifts`` pixels, (n, window, window), sum |P|^2 = 1.

    Sub-pixel shifts are phase ramps on the pupil, so every probe has the same energy.
    ``shifts`` is (n, 2): rows then columns.
    """
    n = window(options)
    q = np.fft.fftfreq(n)
    d = n // 2 + np.asarray(shifts, dtype=np.float64)
    ramp_rows = np.exp(-2j * np.pi * d[:, 0, None] * q)
    ramp_cols = np.exp(-2j * np.pi * d[:, 1, None] * q)
    ramp = ramp_rows[:, :, None] * ramp_cols[:, None, :]
    p = np.fft.ifft2(pupil(options) * ramp, norm="ortho")
    return p / np.sqrt(np.sum(np.abs(p[0]) ** 2))


def far_field(wave: np.ndarray) -> np.ndarray:
    """``|fftshift(fft2(wave))|^2`` over the last two axes, zero frequency at ``n // 2``.

    The unitary ("ortho") FFT keeps Parseval exact: the pattern holds ``sum |wave|^2``.
    """
    spectrum = np.fft.fftshift(np.fft.fft2(wave, norm="ortho"), axes=(-2, -1))
    return spectrum.real**2 + spectrum.imag**2


def expected_counts(
    amp: np.ndarray, phase: np.ndarray, probe: np.ndarray, photons: float
) -> np.ndarray:
    """Noiseless diffraction patterns (n, size, size) of object patches (n, window, window).

    ``probe`` is (n, window, window) or one probe for all, from `probes`. The incident probe
    carries ``photons``, so a pattern holds ``photons * sum(|P|^2 * amp^2)``: exactly
    ``photons`` for a pure-phase object.
    """
    return bin_pattern(photons * far_field(probe * (amp * np.exp(1j * phase))))


def bin_pattern(fine: np.ndarray) -> np.ndarray:
    """A (n, 2s, 2s) pattern binned to (n, s, s) with weights 1/2, 1, 1/2 per axis.

    Each fine pixel's counts are kept (split between two pixels at odd offsets), and the
    zero frequency (fine pixel s) stays the centre of pixel s // 2, so binning keeps the
    pattern's symmetry about it; plain 2 x 2 sums would shift it by a quarter pixel.
    """
    for axis in (-2, -1):
        even = np.take(fine, np.arange(0, fine.shape[axis], 2), axis=axis)
        odd = np.take(fine, np.arange(1, fine.shape[axis], 2), axis=axis)
        fine = even + 0.5 * (odd + np.roll(odd, 1, axis=axis))
    return fine


def detect(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photon-counting detector: Poisson counts around the expected pattern."""
    return rng.poisson(counts).astype(np.float64)


def scale_input(counts: np.ndarray, photons: float) -> np.ndarray:
    """Counts to [0, 1]: log1p over the most counts one pixel can hold (all of them)."""
    return np.clip(np.log1p(counts) / np.log1p(photons), 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- objects


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """White noise low-passed by a Gaussian of ``sigma`` pixels, zero mean and unit std."""
    f = [np.fft.fftfreq(s) for s in shape[-2:]]
    gain = np.exp(-2 * (np.pi * sigma) ** 2 * (f[0][:, None] ** 2 + f[1][None, :] ** 2))
    field = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * gain).real
    field -= field.mean(axis=(-2, -1), keepdims=True)
    return field / (field.std(axis=(-2, -1), keepdims=True) + 1e-12)


def _shapes(rng: np.random.Generator, n_obj: int, fov: int, scale: float) -> np.ndarray:
    """Sums of random disks and bars of random heights, (n_obj, fov, fov), before blurring.

    One shape per loop step (disks and bars alternate), vectorized over objects, so memory
    stays (n_obj, fov, fov); coordinates broadcast from a row and a column.
    """
    k = max(2, round(_SHAPES_PER_PIXEL * fov**2))
    grid = np.arange(fov, dtype=np.float32)
    out = np.zeros((n_obj, fov, fov), dtype=np.float32)
    for i in range(k):
        cy, cx, height = (
            rng.uniform(lo, hi, (n_obj, 1, 1)).astype(np.float32)
            for lo, hi in ((0, fov), (0, fov), (0.3, 1.0))
        )
        dy, dx = grid[:, None] - cy, grid[None, :] - cx
        if i % 2 == 0:
            radius = rng.uniform(0.3 * scale, 1.5 * scale, (n_obj, 1, 1))
            shape = dy**2 + dx**2 <= radius**2
        else:
            theta = rng.uniform(0, np.pi, (n_obj, 1, 1)).astype(np.float32)
            half_len = rng.uniform(1.0 * scale, 4.0 * scale, (n_obj, 1, 1))
            half_width = rng.uniform(0.1 * scale, 0.4 * scale, (n_obj, 1, 1))
            cos, sin = np.cos(theta), np.sin(theta)
            u = dx * cos + dy * sin
            v = dy * cos - dx * sin
            shape = (np.abs(u) <= half_len) & (np.abs(v) <= half_width)
        out += shape * height
    return out.astype(np.float64)


def _unit_range(t: np.ndarray) -> np.ndarray:
    lo = t.min(axis=(-2, -1), keepdims=True)
    hi = t.max(axis=(-2, -1), keepdims=True)
    return (t - lo) / np.maximum(hi - lo, 1e-12)


def objects(
    rng: np.random.Generator, n_obj: int, fov: int, options: PtychoOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and phase maps (n_obj, fov, fov), each spanning its full range per object."""
    maps = []
    for _ in range(2):
        shapes = _shapes(rng, n_obj, fov, options.feature_size)
        shapes = ndimage.gaussian_filter(shapes, (0, options.blur, options.blur), mode="wrap")
        maps.append(shapes / (shapes.std(axis=(-2, -1), keepdims=True) + 1e-12))
    texture = [_smooth_noise(rng, (n_obj, fov, fov), options.feature_size / 2) for _ in range(2)]
    t_phase = _unit_range(maps[0] + _TEXTURE * texture[0])
    c = options.coupling
    t_amp = _unit_range(c * maps[0] + (1 - c) * maps[1] + _TEXTURE * texture[1])
    phase = options.phase_min + (options.phase_max - options.phase_min) * t_phase
    amp = options.amp_max - (options.amp_max - options.amp_min) * t_amp
    return amp, phase


def scan(
    rng: np.random.Generator, n: int, options: PtychoOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Raster positions for ``n`` frames over as many objects as needed, shuffled.

    Returns the object index (n,), the patch corner (n, 2), the probe's sub-pixel offset from
    the patch centre (n, 2), and the objects' field of view in pixels.
    """
    g, step = options.scan_points, options.scan_step
    margin = math.ceil(options.jitter) + 1
    fov = math.ceil(2 * margin + (g - 1) * step) + window(options) + 1
    n_obj = -(-n // (g * g))
    grid = np.stack(np.meshgrid(np.arange(g), np.arange(g), indexing="ij"), -1).reshape(-1, 2)
    obj, cell = np.divmod(rng.permutation(n_obj * g * g)[:n], g * g)
    pos = margin + grid[cell] * step + rng.uniform(-options.jitter, options.jitter, (n, 2))
    corner = np.rint(pos).astype(np.int64)
    return obj, corner, pos - corner, fov


def _patches(
    amp_map: np.ndarray, phase_map: np.ndarray, obj: np.ndarray, corner: np.ndarray, side: int
) -> tuple[np.ndarray, np.ndarray]:
    rows = corner[:, 0, None, None] + np.arange(side)[:, None]
    cols = corner[:, 1, None, None] + np.arange(side)[None, :]
    return amp_map[obj[:, None, None], rows, cols], phase_map[obj[:, None, None], rows, cols]


def generate(n: int, seed: int, options: PtychoOptions) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy diffraction frames and their object patches; see the module docstring.

    Returns x float32 (n, 1, size, size) in [0, 1] and y float32 (n, 2 * size * size) in
    [0, 1]: amplitude then phase, mapped from their ranges in ``options``.
    """
    rng = np.random.default_rng(seed)
    s, w = options.size, window(options)
    obj, corner, offset, fov = scan(rng, n, options)
    amp_map, phase_map = objects(rng, int(obj.max()) + 1, fov, options)
    x = np.empty((n, 1, s, s), dtype=np.float32)
    # Jitter on a 1/8-pixel grid, so a few dozen probes serve every frame.
    offset, which = np.unique(np.rint(offset * 8) / 8, axis=0, return_inverse=True)
    probe, which = probes(options, offset), which.reshape(-1)
    chunk = max(1, _CHUNK_PIXELS // (w * w))
    for i in range(0, n, chunk):
        part = slice(i, i + chunk)
        amp, phase = _patches(amp_map, phase_map, obj[part], corner[part], w)
        counts = detect(expected_counts(amp, phase, probe[which[part]], options.photons), rng)
        x[part, 0] = scale_input(counts, options.photons)
    # The targets: the central size x size of each window, where the probe is.
    amp, phase = _patches(amp_map, phase_map, obj, corner + (w - s) // 2, s)
    y_amp = (amp - options.amp_min) / (options.amp_max - options.amp_min)
    y_phase = (phase - options.phase_min) / (options.phase_max - options.phase_min)
    y = np.concatenate([y_amp.reshape(n, -1), y_phase.reshape(n, -1)], axis=1)
    return x, np.clip(y, 0.0, 1.0).astype(np.float32)


def build(options: PtychoOptions, seed: int) -> Splits:
    """Train, validation and test frames, each split from its own objects and seed."""
    splits = generated_splits(
        lambda n, s: generate(n, s, options),
        options.n_train,
        options.n_val,
        options.n_test,
        seed,
    )
    meta = {
        "amp_range": np.array([options.amp_min, options.amp_max]),
        "phase_range": np.array([options.phase_min, options.phase_max]),
    }
    if options.contrast == "pixel":
        # Ranges from frames of their own objects and seed: the validation and test inputs
        # stay the same when n_train changes.
        seed_calibration = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
        reference, _ = generate(_CALIBRATION_FRAMES, seed_calibration, options)
        splits = stretch_pixels(splits, reference)
    return dataclasses.replace(splits, meta=meta)


#: Frames whose per-pixel ranges set the contrast stretch.
_CALIBRATION_FRAMES = 512


def stretch_pixels(splits: Splits, reference: np.ndarray) -> Splits:
    """Each detector pixel mapped linearly from its range over ``reference`` frames to [0, 1].

    The log-scaled frames vary little from frame to frame at any one pixel (a standard
    deviation of 0.06 on a mean of 0.36 at 16 x 16) next to the differences between pixels,
    so a network sees mostly the mean pattern. Stretching each pixel's range gives every
    network that information. Measured at 16 x 16 with 2,000 training frames: an SNN's phase
    error (512 hidden neurons, direct encoding, 4 steps, float inference) drops from 0.60 rad,
    no better than predicting the training mean (0.61), to 0.52 rad, its phase SSIM from 0.2
    to 0.4; a float MLP's from 0.63 to 0.49 rad with ranges from the training frames (ridge
    regression on the plain inputs: 0.47). The wider float MLP of benchmarks/bench_ptycho.py
    (1024-1024, stretched inputs) reaches 0.445 rad at 2,000 frames and 0.384 at 16,000.
    """
    lo = reference.min(axis=0)
    span = np.maximum(reference.max(axis=0) - lo, 1e-6)

    def stretch(x: np.ndarray) -> np.ndarray:
        return np.clip((x - lo) / span, 0.0, 1.0).astype(np.float32)

    return dataclasses.replace(
        splits,
        x_train=stretch(splits.x_train),
        x_val=stretch(splits.x_val),
        x_test=stretch(splits.x_test),
    )


# ----------------------------------------------------------------------------- metrics


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Mean SSIM of each pair of images in two (n, h, w) stacks (Wang et al., 2004).

    Gaussian window of sigma 1.5 truncated at 3.5 sigma (11 x 11), K1 = 0.01, K2 = 0.03,
    sample covariances, reflected borders, and the mean over the map less the window's
    half-width at each border: scikit-image's ``structural_similarity(gaussian_weights=True,
    use_sample_covariance=True)``, so figures compare with published ones.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sigma = (0, _SSIM_SIGMA, _SSIM_SIGMA)

    def mean(t: np.ndarray) -> np.ndarray:
        return ndimage.gaussian_filter(t, sigma, mode="reflect", truncate=_SSIM_TRUNCATE)

    pad = int(_SSIM_TRUNCATE * _SSIM_SIGMA + 0.5)
    n_win = (2 * pad + 1) ** 2
    unbias = n_win / (n_win - 1)
    mu_a, mu_b = mean(a), mean(b)
    var_a = unbias * (mean(a * a) - mu_a**2)
    var_b = unbias * (mean(b * b) - mu_b**2)
    cov_ab = unbias * (mean(a * b) - mu_a * mu_b)
    c1 = (_SSIM_K1 * data_range) ** 2
    c2 = (_SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov_ab + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    h, w = a.shape[-2:]
    if h > 2 * pad and w > 2 * pad:
        ssim_map = ssim_map[:, pad:-pad, pad:-pad]
    return ssim_map.mean(axis=(-2, -1))


def _range(meta: Mapping[str, np.ndarray], key: str) -> tuple[float, float]:
    lo, hi = np.asarray(meta.get(key, (0.0, 1.0)), dtype=np.float64).ravel()[:2]
    return float(lo), float(hi)


def score(
    y_true: np.ndarray, y_pred: np.ndarray, meta: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """MAE and MSE of amplitude and phase (radians) in physical units, and mean SSIM.

    ``y_*`` are (n, 2 * s * s) normalised targets, amplitude then phase. SSIM is taken on the
    normalised images with data range 1 (each quantity's full physical range): its luminance
    term is not shift-invariant and would misbehave on negative phases.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    n, m = y_true.shape
    s = math.isqrt(m // 2)
    true = y_true.reshape(n, 2, s, s)
    pred = y_pred.reshape(n, 2, s, s)
    out: dict[str, float] = {}
    for i, name in enumerate(("amp", "phase")):
        lo, hi = _range(meta, f"{name}_range")
        err = (pred[:, i] - true[:, i]) * (hi - lo)
        out[f"{name}_mae"] = float(np.mean(np.abs(err)))
        out[f"{name}_mse"] = float(np.mean(err**2))
        out[f"{name}_ssim"] = float(np.mean(ssim(true[:, i], pred[:, i])))
    return out


PTYCHO = TaskInfo(
    name="ptycho",
    description=(
        "PtychoNN-style ptychography: amplitude and phase patches from single simulated "
        "far-field diffraction frames (zone-plate probe, raster scan, Poisson noise)"
    ),
    kind="regression",
    metrics={
        "amp_mae": "minimize",
        "phase_mae": "minimize",
        "amp_mse": "minimize",
        "phase_mse": "minimize",
        "amp_ssim": "maximize",
        "phase_ssim": "maximize",
    },
    options=PtychoOptions,
    build=build,
    score=score,
    image_outputs=True,
)
