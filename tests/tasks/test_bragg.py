from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import ndimage
from scipy.special import erf

from nmhpo.tasks._bragg import (
    BRAGG,
    BraggOptions,
    clean_patches,
    generate,
    render_peaks,
)

EIGHT = np.ones((3, 3), dtype=bool)


def _centroid(x: np.ndarray) -> np.ndarray:
    """Intensity centroid (col, row) in pixels of patches (n, p, p)."""
    grid = np.arange(x.shape[-1])
    total = x.sum(axis=(1, 2))
    return np.stack([x.sum(axis=1) @ grid / total, x.sum(axis=2) @ grid / total], axis=1)


def _one(value: float) -> np.ndarray:
    return np.array([value])


def test_generate_shapes_dtypes_and_ranges() -> None:
    x, y = generate(300, 0, BraggOptions())
    assert x.shape == (300, 1, 11, 11) and x.dtype == np.float32
    assert y.shape == (300, 2) and y.dtype == np.float32
    assert x.min() == 0.0
    np.testing.assert_array_equal(x.max(axis=(1, 2, 3)), 1.0)  # min-max normalised per patch
    assert (x == 0).mean() > 0.5  # thresholding leaves most pixels at exactly 0


def test_generate_is_deterministic_per_seed() -> None:
    options = BraggOptions()
    xa, ya = generate(200, 7, options)
    xb, yb = generate(200, 7, options)
    xc, yc = generate(200, 8, options)
    np.testing.assert_array_equal(xa, xb)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(xa, xc) and not np.array_equal(ya, yc)


def test_labels_follow_the_braggnn_crop_and_shift() -> None:
    _, y = generate(2000, 1, BraggOptions())
    assert y.min() >= np.float32(5 / 11) and y.max() < np.float32(6 / 11)
    # Sub-pixel positions are uniform: each tenth of the pixel holds about a tenth.
    counts = np.histogram(y[:, 0] * 11 - 5, bins=10, range=(0, 1))[0]
    assert counts.min() > 140
    _, shifted = generate(2000, 1, BraggOptions(shift=True))
    px = shifted * 11
    assert px.min() >= 4.0 and px.max() < 7.0
    assert (px < 5).any() and (px >= 6).any()
    np.testing.assert_allclose(px - np.floor(px), y * 11 - 5, atol=1e-5)  # only integer shifts


def test_noiseless_gaussian_label_is_the_intensity_centroid() -> None:
    options = BraggOptions(
        amplitude=(16000.0, 16000.0),
        fwhm_px=(1.5, 2.5),
        eta=(0.0, 0.0),
        background_slope=0.0,
        noise=False,
    )
    x, y = generate(200, 2, options)
    err = np.linalg.norm(_centroid(x[:, 0]) - y * 11, axis=1)
    assert err.max() < 0.05


def test_pixel_values_integrate_the_profile_over_the_pixel() -> None:
    sigma = 1.0 / np.sqrt(8 * np.log(2))  # FWHM 1 px, the sharpest default peak
    x0, y0 = 5.3, 4.8
    pixels = render_peaks(
        _one(x0), _one(y0), _one(1.0), _one(1.0), _one(0.0), _one(0.0), _one(1.0)
    )[0]
    edges = np.arange(12) - 0.5
    cols = np.diff(erf((edges - x0) / (sigma * np.sqrt(2)))) / 2 * sigma * np.sqrt(2 * np.pi)
    rows = np.diff(erf((edges - y0) / (sigma * np.sqrt(2)))) / 2 * sigma * np.sqrt(2 * np.pi)
    exact = np.outer(rows, cols)  # rows are y, columns are x
    np.testing.assert_allclose(pixels, exact, atol=0.01)
    grid = np.arange(11.0)
    sampled = np.exp(-(np.subtract.outer(grid, y0) ** 2)[:, None] / (2 * sigma**2)) * np.exp(
        -(np.subtract.outer(grid, x0) ** 2)[None, :] / (2 * sigma**2)
    )
    assert np.abs(sampled - exact).max() > 0.1  # point sampling is 17x further off


def test_peak_at_a_pixel_corner_spreads_over_four_pixels() -> None:
    args = (_one(1.5), _one(1.5), _one(0.0), _one(0.5), _one(1.0))
    at_centre = render_peaks(_one(5.0), _one(5.0), *args)[0]
    at_corner = render_peaks(_one(5.5), _one(5.5), *args)[0]
    assert at_centre.argmax() == 5 * 11 + 5
    assert (at_centre == at_centre.max()).sum() == 1
    corner = at_corner[5:7, 5:7]
    np.testing.assert_allclose(corner, corner[0, 0], rtol=1e-12)
    assert corner[0, 0] == pytest.approx(at_corner.max())
    assert at_corner.max() < 0.8 * at_centre.max()


def test_rotation_turns_the_long_axis() -> None:
    args = (_one(5.0), _one(5.0), _one(4.0), _one(1.0))
    along_x = render_peaks(*args, _one(0.0), _one(0.0), _one(1.0))[0]
    along_y = render_peaks(*args, _one(np.pi / 2), _one(0.0), _one(1.0))[0]
    assert along_x[5, 7] > 10 * along_x[7, 5]
    np.testing.assert_allclose(along_y, along_x.T, atol=1e-12)


def test_cleaning_keeps_the_component_with_the_maximum() -> None:
    signal = np.zeros((1, 11, 11))
    signal[0, 5, 5] = 100.0
    signal[0, 6, 6] = 50.0  # diagonal neighbour: 8-connected, kept
    signal[0, 4, 5] = 5.0  # touching but below threshold: dropped
    signal[0, 1, 1] = 80.0  # bright but detached: dropped
    signal[0, 9, 2] = -3.0
    out = clean_patches(signal, 10.0)[0]
    expected = np.zeros((11, 11))
    expected[5, 5], expected[6, 6] = 1.0, 0.5
    np.testing.assert_allclose(out, expected)


def test_cleaning_keeps_a_faint_maximum_and_zeroes_a_flat_patch() -> None:
    signal = np.zeros((2, 5, 5))
    signal[0, 2, 2], signal[0, 2, 3] = 4.0, 3.0  # both below threshold 10
    out = clean_patches(signal, np.array([10.0, 10.0]))
    assert out[0, 2, 2] == 1.0 and out[0].sum() == 1.0
    np.testing.assert_array_equal(out[1], 0.0)


def test_generated_patches_hold_one_component_containing_the_maximum() -> None:
    x, _ = generate(400, 3, BraggOptions(two_peak_fraction=0.5))
    for patch in x[:, 0]:
        labels, count = ndimage.label(patch > 0, structure=EIGHT)
        assert count == 1
        assert labels.flat[patch.argmax()] == 1


def test_brighter_peaks_light_more_pixels() -> None:
    def median_lit(amplitude: float) -> float:
        x, _ = generate(300, 4, BraggOptions(amplitude=(amplitude, amplitude)))
        return float(np.median((x > 0).sum(axis=(1, 2, 3))))

    faint, bright = median_lit(60.0), median_lit(10000.0)
    assert faint <= 6 and bright >= 20


def test_second_peak_changes_patches_not_labels() -> None:
    x1, y1 = generate(300, 5, BraggOptions())
    x2, y2 = generate(300, 5, BraggOptions(two_peak_fraction=1.0))
    np.testing.assert_array_equal(y1, y2)
    changed = np.any(x1 != x2, axis=(1, 2, 3)).mean()
    assert changed > 0.5


def test_noise_matters() -> None:
    quiet, _ = generate(200, 6, BraggOptions(noise=False))
    noisy, _ = generate(200, 6, BraggOptions())
    worst = np.abs(quiet - noisy).max(axis=(1, 2, 3))
    assert np.median(worst) > 0.02 and (worst > 0.2).mean() > 0.05  # faint peaks move most


def test_other_patch_sizes_centre_on_their_middle() -> None:
    x, y = generate(100, 0, BraggOptions(patch=15))
    assert x.shape == (100, 1, 15, 15)
    assert y.min() >= np.float32(7 / 15) and y.max() < np.float32(8 / 15)


@pytest.mark.parametrize(
    "bad",
    [
        {"patch": 12},
        {"amplitude": (100.0, 50.0)},
        {"amplitude": (0.0, 50.0)},
        {"amplitude": (50.0, float("inf"))},
        {"eta": (0.0, 1.5)},
        {"fwhm_px": (-1.0, 2.0)},
        {"n_train": 5},
        {"two_peak_fraction": 1.5},
        {"nosie": False},
    ],
)
def test_options_reject_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BraggOptions(**bad)


def test_score_known_offsets() -> None:
    y_true = np.full((5, 2), 5.5 / 11)
    one_px_x = y_true + np.array([1 / 11, 0.0])
    assert BRAGG.score(y_true, one_px_x, {}) == pytest.approx(
        {"px_err_mean": 1.0, "px_err_p50": 1.0, "px_err_p75": 1.0, "px_err_p95": 1.0}
    )
    steps = y_true + np.stack([np.arange(5) / 11, np.zeros(5)], axis=1)  # errors 0..4 px
    metrics = BRAGG.score(y_true, steps, {})
    assert metrics == pytest.approx(
        {"px_err_mean": 2.0, "px_err_p50": 2.0, "px_err_p75": 3.0, "px_err_p95": 3.8}
    )
    triangle = y_true + np.array([3 / 11, 4 / 11])  # a 3-4-5 triangle: Euclidean, not per axis
    assert BRAGG.score(y_true, triangle, {})["px_err_mean"] == pytest.approx(5.0)
    assert BRAGG.score(y_true, y_true + 1 / 15, {"patch": np.array(15)})[
        "px_err_mean"
    ] == pytest.approx(np.sqrt(2))


def test_build_sizes_meta_and_metric_names() -> None:
    options = BraggOptions(n_train=40, n_val=20, n_test=10)
    splits = BRAGG.build(options, 0)
    assert splits.x_train.shape == (40, 1, 11, 11) and splits.y_train.shape == (40, 2)
    assert len(splits.x_val) == 20 and len(splits.x_test) == 10
    assert not np.array_equal(splits.x_val[:10], splits.x_test)
    again = BRAGG.build(options.model_copy(update={"n_train": 80}), 0)
    np.testing.assert_array_equal(again.x_val, splits.x_val)  # val/test ignore n_train
    metrics = BRAGG.score(splits.y_val, splits.y_val, splits.meta)
    assert set(metrics) == set(BRAGG.metrics) and all(v == 0.0 for v in metrics.values())
    assert BRAGG.kind == "regression" and set(BRAGG.metrics.values()) == {"minimize"}
