from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage

from nmhpo.tasks import prepare
from nmhpo.tasks._ptycho import (
    PTYCHO,
    PtychoOptions,
    bin_pattern,
    build,
    detect,
    expected_counts,
    far_field,
    generate,
    probes,
    pupil,
    scale_input,
    score,
    ssim,
    window,
)

SMALL = PtychoOptions(n_train=64, n_val=32, n_test=32)


def _random_patches(
    rng: np.random.Generator, n: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    amp = rng.uniform(0.7, 1.0, (n, size, size))
    phase = rng.uniform(-np.pi / 2, np.pi, (n, size, size))
    shifts = rng.uniform(-0.5, 0.5, (n, 2))
    return amp, phase, shifts


# ----------------------------------------------------------------------------- data


@pytest.mark.parametrize("size", [16, 32, 64])
def test_generate_shapes_dtypes_and_ranges(size: int) -> None:
    x, y = generate(80, 0, PtychoOptions(size=size))
    assert x.shape == (80, 1, size, size) and x.dtype == np.float32
    assert y.shape == (80, 2 * size * size) and y.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert 0.0 <= y.min() and y.max() <= 1.0
    amp, phase = y[:, : size * size], y[:, size * size :]
    # Both maps use most of their range, and they are different images.
    for part in (amp, phase):
        assert part.min() < 0.1 and part.max() > 0.9
    assert not np.allclose(amp, phase, atol=0.05)
    # The bright disc of the probe sits at the centre of the frame.
    centre = x[:, 0, size // 2 - 1 : size // 2 + 2, size // 2 - 1 : size // 2 + 2]
    assert centre.mean() > 1.5 * x.mean()


def test_generate_is_deterministic_per_seed() -> None:
    a = generate(40, 7, SMALL)
    b = generate(40, 7, SMALL)
    c = generate(40, 8, SMALL)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[1], c[1])


def test_inputs_are_log_scaled_poisson_counts_of_the_incident_flux() -> None:
    options = PtychoOptions(photons=1e6)
    x, _ = generate(200, 1, options)
    counts = np.expm1(x.astype(np.float64) * np.log1p(options.photons))
    # Integers up to float32 rounding of x (a relative 1e-7, times log1p(photons)).
    assert np.all(np.abs(counts - np.rint(counts)) <= 1e-3 + 5e-6 * counts)
    totals = counts.sum(axis=(1, 2, 3))
    # Transmission |a|^2 lies in [0.49, 1], so a frame holds at most the incident photons
    # and at least half of them, and frames differ (the mean transmission is kept).
    sigma = math.sqrt(options.photons)
    assert totals.max() <= options.photons + 5 * sigma
    assert totals.min() >= options.amp_min**2 * options.photons - 5 * sigma
    assert totals.std() > 10 * sigma


def test_targets_are_the_object_under_the_probe() -> None:
    options = PtychoOptions(photons=1e6)
    s, w = options.size, window(options)
    x, y = generate(300, 1, options)
    totals = np.expm1(x[:, 0].astype(np.float64) * np.log1p(options.photons)).sum(axis=(1, 2))
    amp = options.amp_min + (options.amp_max - options.amp_min) * y[:, : s * s]
    weight = np.abs(probes(options, np.zeros((1, 2)))[0]) ** 2
    weight = weight[(w - s) // 2 : (w + s) // 2, (w - s) // 2 : (w + s) // 2].ravel()
    # The counts follow the transmission of the target patch where the probe is brightest.
    predicted = options.photons * (weight * amp**2).sum(axis=1) / weight.sum()
    assert np.corrcoef(totals, predicted)[0, 1] > 0.98
    np.testing.assert_allclose(totals / predicted, 1.0, atol=0.03)
    off_centre = np.roll(weight.reshape(s, s), (s // 2, s // 2), axis=(0, 1)).ravel()
    assert np.corrcoef(totals, (off_centre * amp**2).sum(axis=1))[0, 1] < 0.7


@pytest.mark.parametrize(("coupling", "low", "high"), [(1.0, -1.0, -0.8), (0.0, -0.4, 0.4)])
def test_coupling_ties_amplitude_to_phase(coupling: float, low: float, high: float) -> None:
    _, y = generate(100, 2, PtychoOptions(coupling=coupling))
    m = y.shape[1] // 2
    # Thicker parts absorb more and shift the phase more: amplitude falls as phase rises.
    assert low < np.corrcoef(y[:, :m].ravel(), y[:, m:].ravel())[0, 1] < high


def test_build_splits_meta_and_stable_validation_set() -> None:
    splits = build(SMALL, seed=3)
    assert splits.x_train.shape == (64, 1, 32, 32) and splits.y_test.shape == (32, 2048)
    np.testing.assert_allclose(splits.meta["amp_range"], [0.7, 1.0])
    np.testing.assert_allclose(splits.meta["phase_range"], [-np.pi / 2, np.pi])
    bigger = build(SMALL.model_copy(update={"n_train": 100}), seed=3)
    np.testing.assert_array_equal(splits.x_val, bigger.x_val)
    np.testing.assert_array_equal(splits.y_test, bigger.y_test)
    assert not np.array_equal(splits.x_train[:32], splits.x_val)


def test_cached_task_keeps_meta_and_metrics(tmp_path: Path) -> None:
    first = prepare(PTYCHO, SMALL, 0, cache_dir=tmp_path)
    again = prepare(PTYCHO, SMALL, 0, cache_dir=tmp_path)  # read back from the .npz
    np.testing.assert_allclose(again.splits.meta["phase_range"], first.splits.meta["phase_range"])
    shifted = np.clip(first.y_val + 0.05, 0, 1)
    assert again.metrics(again.y_val, shifted) == pytest.approx(
        first.metrics(first.y_val, shifted)
    )
    assert set(PTYCHO.metrics) == set(first.metrics(first.y_val, first.y_val))


def test_options_reject_bad_ranges_and_typos() -> None:
    with pytest.raises(ValidationError, match="amp_min"):
        PtychoOptions(amp_min=0.9, amp_max=0.8)
    with pytest.raises(ValidationError, match="wraps"):
        PtychoOptions(phase_min=-4.0, phase_max=4.0)
    with pytest.raises(ValidationError, match="extra"):
        PtychoOptions(photon=1e6)


# ----------------------------------------------------------------------------- physics


def test_far_field_keeps_parseval_and_centres_zero_frequency() -> None:
    rng = np.random.default_rng(0)
    n = 32
    wave = rng.standard_normal((3, n, n)) + 1j * rng.standard_normal((3, n, n))
    np.testing.assert_allclose(
        far_field(wave).sum(axis=(1, 2)), (np.abs(wave) ** 2).sum(axis=(1, 2))
    )
    flat = far_field(np.ones((n, n), dtype=complex))
    assert flat[n // 2, n // 2] == pytest.approx(n * n) and flat.sum() == pytest.approx(n * n)
    # A tilt of +3 cycles along the columns lands 3 pixels right of the centre.
    cols = np.arange(n)
    tilted = far_field(np.exp(2j * np.pi * 3 * cols / n)[None, :] * np.ones((n, 1)))
    assert np.unravel_index(tilted.argmax(), tilted.shape) == (n // 2, n // 2 + 3)


def test_binning_keeps_counts_and_the_centre() -> None:
    rng = np.random.default_rng(6)
    fine = rng.random((2, 64, 64))
    coarse = bin_pattern(fine)
    assert coarse.shape == (2, 32, 32)
    np.testing.assert_allclose(coarse.sum(axis=(1, 2)), fine.sum(axis=(1, 2)))
    spike = np.zeros((1, 64, 64))
    spike[0, 32, 32] = 1.0  # the zero frequency lands whole in the centre pixel
    assert bin_pattern(spike)[0, 16, 16] == 1.0
    spike[0, 32, 33] = 1.0  # its neighbour is shared with the next pixel
    np.testing.assert_allclose(bin_pattern(spike)[0, 16, 16:18], [1.5, 0.5])


def test_probe_is_unit_energy_centred_and_its_far_field_is_the_annular_pupil() -> None:
    options = PtychoOptions(defocus=0.0)
    n = window(options)
    assert n == 2 * options.size
    p = probes(options, np.array([[0.0, 0.0], [3.0, -2.0], [0.4, 0.3]]))
    np.testing.assert_allclose((np.abs(p) ** 2).sum(axis=(1, 2)), 1.0)
    assert np.unravel_index(np.abs(p[0]).argmax(), (n, n)) == (n // 2, n // 2)
    assert np.unravel_index(np.abs(p[1]).argmax(), (n, n)) == (n // 2 + 3, n // 2 - 2)
    # A sub-pixel shift changes the phase of the far field only.
    ring = far_field(p)
    np.testing.assert_allclose(ring[2], ring[0], atol=1e-12)
    expected = np.fft.fftshift(np.abs(pupil(options)) ** 2)
    np.testing.assert_allclose(ring[0], expected / expected.sum(), atol=1e-12)
    rho = np.hypot(*(np.indices((n, n)) - n // 2))
    r_out = options.pupil_radius * n
    dark = 1e-15 * ring[0].max()
    assert ring[0][n // 2, n // 2] < dark  # central stop
    assert ring[0][rho > r_out + 1].max() < dark  # nothing outside the pupil
    assert ring[0][(rho > 0.5 * r_out) & (rho < 0.9 * r_out)].min() > 0.0


def test_noiseless_pattern_holds_the_photons_for_a_pure_phase_object() -> None:
    rng = np.random.default_rng(1)
    options = PtychoOptions(photons=1e6)
    _, phase, shifts = _random_patches(rng, 5, window(options))
    counts = expected_counts(np.ones_like(phase), phase, probes(options, shifts), 1e6)
    assert counts.shape == (5, options.size, options.size)
    np.testing.assert_allclose(counts.sum(axis=(1, 2)), 1e6, rtol=1e-12)


def test_noiseless_pattern_holds_the_probe_weighted_transmission() -> None:
    rng = np.random.default_rng(2)
    options = PtychoOptions()
    amp, phase, shifts = _random_patches(rng, 5, window(options))
    probe = probes(options, shifts)
    counts = expected_counts(amp, phase, probe, 1e6)
    expected = 1e6 * (np.abs(probe) ** 2 * amp**2).sum(axis=(1, 2))
    np.testing.assert_allclose(counts.sum(axis=(1, 2)), expected, rtol=1e-12)
    assert (expected < 1e6).all()


def test_poisson_counts_scatter_around_the_expectation() -> None:
    rng = np.random.default_rng(3)
    photons = 1e5
    options = PtychoOptions(size=16)
    _, phase, shifts = _random_patches(rng, 200, window(options))
    expected = expected_counts(np.ones_like(phase), phase, probes(options, shifts), photons)
    counts = detect(expected, rng)
    assert (counts >= 0).all() and np.array_equal(counts, np.rint(counts))
    totals = counts.sum(axis=(1, 2))
    # Each total is Poisson(photons): within 5 sigma, with about the Poisson spread.
    assert np.abs(totals - photons).max() < 5 * math.sqrt(photons)
    assert totals.std() == pytest.approx(math.sqrt(photons), rel=0.25)
    assert not np.array_equal(counts, np.rint(expected))


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.3, -0.45)])
def test_real_exit_wave_gives_a_centro_symmetric_pattern(shift: tuple[float, float]) -> None:
    rng = np.random.default_rng(4)
    options = PtychoOptions(defocus=0.0)  # a real probe, so the exit wave is real
    amp, phase, _ = _random_patches(rng, 1, window(options))
    probe = probes(options, np.array([shift]))
    pattern = expected_counts(amp, np.zeros_like(phase), probe, 1e6)[0]
    inner = pattern[1:, 1:]  # row and column 0 hold -Nyquist, without a mirror partner
    np.testing.assert_allclose(inner, inner[::-1, ::-1], rtol=1e-8, atol=1e-9 * inner.max())
    # A phase object breaks the symmetry (Friedel's law needs a real wave).
    skewed = expected_counts(amp, phase, probe, 1e6)[0][1:, 1:]
    assert np.abs(skewed - skewed[::-1, ::-1]).max() > 1e-2 * skewed.max()


def test_scale_input_maps_zero_and_all_photons_to_the_ends() -> None:
    counts = np.array([0.0, 1.0, 10.0, 1e3, 1e6, 2e6])
    x = scale_input(counts, photons=1e6)
    assert x.dtype == np.float32
    assert x[0] == 0.0 and x[4] == pytest.approx(1.0) and x[5] == 1.0
    assert np.all(np.diff(x[:5]) > 0)


# ----------------------------------------------------------------------------- metrics


def test_score_of_a_perfect_prediction() -> None:
    splits = build(SMALL, seed=0)
    metrics = score(splits.y_val, splits.y_val.copy(), splits.meta)
    assert metrics == {
        "amp_mae": 0.0,
        "amp_mse": 0.0,
        "amp_ssim": pytest.approx(1.0),
        "phase_mae": 0.0,
        "phase_mse": 0.0,
        "phase_ssim": pytest.approx(1.0),
    }
    assert set(metrics) == set(PTYCHO.metrics)


def test_score_of_a_constant_offset_is_in_physical_units() -> None:
    splits = build(SMALL, seed=0)
    m = 32 * 32
    pred = splits.y_val.astype(np.float64)
    pred[:, :m] += 0.1  # amplitude: 0.1 of its 0.3 range
    pred[:, m:] -= 0.2  # phase: 0.2 of its 1.5 pi range
    metrics = score(splits.y_val, pred, splits.meta)
    assert metrics["amp_mae"] == pytest.approx(0.03, rel=1e-6)
    assert metrics["amp_mse"] == pytest.approx(0.03**2, rel=1e-5)
    assert metrics["phase_mae"] == pytest.approx(0.2 * 1.5 * np.pi, rel=1e-6)
    assert metrics["phase_mse"] == pytest.approx((0.3 * np.pi) ** 2, rel=1e-5)
    assert metrics["amp_ssim"] < 1.0 and metrics["phase_ssim"] < metrics["amp_ssim"]


def test_score_without_meta_takes_targets_as_physical() -> None:
    y = np.zeros((2, 2 * 16 * 16))
    pred = y + np.r_[np.full(256, 0.5), np.full(256, -1.0)]
    metrics = score(y, pred, {})
    assert metrics["amp_mae"] == pytest.approx(0.5)
    assert metrics["phase_mae"] == pytest.approx(1.0)


def test_ssim_matches_closed_forms_and_orders_degradations() -> None:
    # Flat images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 0.3, 0.6
    c1 = 0.01**2
    flat = ssim(np.full((1, 16, 16), a), np.full((1, 16, 16), b))
    assert flat[0] == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))
    rng = np.random.default_rng(5)
    field = ndimage.gaussian_filter(rng.standard_normal((4, 32, 32)), (0, 2, 2))
    img = 0.5 + 0.15 * field / field.std()
    np.testing.assert_allclose(ssim(img, img), 1.0)
    # The negative of an image about its mean: same luminance, structure -1.
    assert np.all(ssim(img, 1.0 - img) < -0.5)
    slight = ssim(img, img + 0.02 * rng.standard_normal(img.shape))
    strong = ssim(img, img + 0.2 * rng.standard_normal(img.shape))
    assert np.all(strong < slight) and np.all(slight < 1.0)
    np.testing.assert_allclose(ssim(img, img[::-1]), ssim(img[::-1], img))


def test_pixel_contrast_stretches_each_pixel_and_keeps_validation_stable() -> None:
    plain = build(SMALL.model_copy(update={"contrast": "none"}), seed=3)
    stretched = build(SMALL, seed=3)
    for split in ("train", "val", "test"):
        x = getattr(stretched, f"x_{split}")
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
        np.testing.assert_array_equal(
            getattr(stretched, f"y_{split}"), getattr(plain, f"y_{split}")
        )
    # a monotone map per pixel: the order of frames at every pixel is kept
    a, b = plain.x_val[:, 0, 10, 12], stretched.x_val[:, 0, 10, 12]
    assert np.all(np.diff(b[np.argsort(a, kind="stable")]) >= 0)
    # frame-to-frame variation per pixel, what a network learns from, grows several-fold
    assert stretched.x_train.std(axis=0).mean() > 3 * plain.x_train.std(axis=0).mean()
    bigger = build(SMALL.model_copy(update={"n_train": 100}), seed=3)
    np.testing.assert_array_equal(stretched.x_val, bigger.x_val)
