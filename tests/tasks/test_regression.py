"""The generic regression task: a user's raw arrays in, errors in the user's units out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmhpo.errors import TaskError
from nmhpo.tasks import get_task, prepare

INFO = get_task("regression")


def _raw(rng: np.random.Generator, n: int, outputs: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Features in their own units (kelvin, pascal, a fraction) and targets around 300 +- 50:
    what a user's file holds before anyone scaled it."""
    x = np.column_stack([rng.normal(280, 10, n), rng.normal(1e5, 500, n), rng.random(n)])
    y = 300 + 50 * np.column_stack([np.tanh(x[:, 0] - 280) + x[:, 2] * k for k in range(outputs)])
    return x, y


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _file(tmp_path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    (xt, yt), (xv, yv), (xs, ys) = (_raw(rng, n) for n in (200, 50, 60))
    return _write(
        tmp_path / "mine.npz", x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys
    )


def test_raw_arrays_are_scaled_from_the_training_split_alone(tmp_path: Path) -> None:
    path = _file(tmp_path)
    with np.load(path) as z:
        raw = {k: z[k] for k in z.files}
    data = prepare(INFO, INFO.options(), 0, data_path=path)
    # inputs: each feature's training range onto [0, 1]; other splits clipped to it
    low, high = raw["x_train"].min(axis=0), raw["x_train"].max(axis=0)
    np.testing.assert_allclose(data.x_train, (raw["x_train"] - low) / (high - low), atol=1e-6)
    assert data.x_train.min(axis=0).tolist() == [0, 0, 0]
    assert data.x_train.max(axis=0).tolist() == [1, 1, 1]
    expected_val = np.clip((raw["x_val"] - low) / (high - low), 0, 1)
    np.testing.assert_allclose(data.x_val, expected_val, atol=1e-6)
    # targets: standardised with the training mean and std, which the metrics undo
    mean, std = raw["y_train"].mean(axis=0), raw["y_train"].std(axis=0)
    np.testing.assert_allclose(data.splits.meta["y_mean"], mean)
    np.testing.assert_allclose(data.y_test, (raw["y_test"] - mean) / std, rtol=1e-5, atol=1e-5)
    assert abs(data.y_train.mean()) < 1e-5 and data.y_train.std() == pytest.approx(1, abs=1e-5)


def test_errors_are_reported_in_the_files_units(tmp_path: Path) -> None:
    data = prepare(INFO, INFO.options(), 0, data_path=_file(tmp_path))
    perfect = data.metrics(data.y_val, data.y_val)
    assert perfect["r2"] == pytest.approx(1) and perfect["rmse"] == pytest.approx(0, abs=1e-9)
    with np.load(tmp_path / "mine.npz") as z:
        raw_val, raw_train = z["y_val"], z["y_train"]
    # predicting the training mean everywhere: its errors in kelvin-like units, not in stds
    guess = np.zeros_like(data.y_val)
    metrics = data.metrics(data.y_val, guess)
    err = raw_train.mean(axis=0) - raw_val
    assert metrics["rmse"] == pytest.approx(float(np.sqrt((err**2).mean())), rel=1e-5)
    assert metrics["mae"] == pytest.approx(float(np.abs(err).mean()), rel=1e-5)
    assert metrics["r2"] < 0.05
    assert metrics["rmse"] > 5  # the targets' spread is tens of units: not standardised units


def test_images_are_scaled_as_one_range_not_pixel_by_pixel(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4096, (30, 1, 6, 6)).astype(np.float64)  # 12-bit camera counts
    x[:, :, 0, 0] = 0  # a dead pixel, constant: scaled alone it would divide by zero
    y = x.mean(axis=(1, 2, 3))[:, None]
    path = _write(tmp_path / "img.npz", x_train=x[:20], y_train=y[:20], x_val=x[20:], y_val=y[20:])
    data = prepare(INFO, INFO.options(), 0, data_path=path)
    low, high = x[:20].min(), x[:20].max()
    np.testing.assert_allclose(data.x_train, (x[:20] - low) / (high - low), atol=1e-6)
    assert data.input_shape == (1, 6, 6)


def test_the_files_own_scaling_is_kept_when_asked(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.random((40, 3)), rng.normal(0, 1, (40, 1))
    mean, std = np.array([300.0]), np.array([50.0])
    path = _write(
        tmp_path / "scaled.npz",
        x_train=x[:30],
        y_train=y[:30],
        x_val=x[30:],
        y_val=y[30:],
        meta_y_mean=mean,
        meta_y_std=std,
    )
    options = INFO.options(scale_inputs=False, standardize_targets=False)
    data = prepare(INFO, options, 0, data_path=path)
    np.testing.assert_array_equal(data.x_val, x[30:].astype(np.float32))
    metrics = data.metrics(data.y_val, data.y_val + 0.1)
    assert metrics["mae"] == pytest.approx(5.0, rel=1e-5)  # 0.1 std of 50 units
    # the default standardises itself, so a file's own scale would be applied twice
    with pytest.raises(TaskError, match="meta_y_mean/meta_y_std given and standardize_targets"):
        prepare(INFO, INFO.options(), 0, data_path=path)


@pytest.mark.parametrize(
    ("options", "arrays", "message"),
    [
        (
            {"scale_inputs": False},
            {"x_train": np.full((10, 2), 5.0)},
            "x_train: expected inputs scaled to [0, 1]",
        ),
        (
            {"standardize_targets": False},
            {"y_train": np.linspace(250.0, 350.0, 10).reshape(10, 1)},
            "y_train: expected normalised targets",
        ),
        ({}, {"y_val": np.zeros((4, 3))}, "y_val: expected 1 target values per sample"),
        ({}, {"x_val": np.full((4, 2), np.nan)}, "x_val: expected finite values"),
        # found before the scaling, in the file's own terms (broadcasting hid the first)
        ({}, {"x_val": np.zeros((4, 1))}, "x_val: expected samples of x_train's shape (2,)"),
        ({}, {"x_val": np.zeros((4, 3))}, "x_val: expected samples of x_train's shape (2,)"),
        ({}, {"y_train": np.float64(3.0)}, "y_train: expected at least one sample"),
        ({}, {"x_train": np.zeros((10, 0))}, "x_train: expected at least one value per sample"),
        (
            {},
            {"y_train": np.linspace(-1e300, 1e300, 10).reshape(10, 1)},
            "y_train: values up to 1e+300 are too large",
        ),
        # nothing to learn: every trial fits the constant (R^2 -3.9 on a varying validation)
        (
            {},
            {"y_train": np.full((10, 1), 7.0)},
            "y_train: expected targets that vary; every one is [7.0]",
        ),
        (
            {},
            {"x_train": np.zeros(10), "x_val": np.zeros(4)},
            "x_train: expected inputs as (n, features)",
        ),
        ({}, {"x_val": np.zeros((1, 2)), "y_val": np.zeros((1, 1))}, "R^2 needs at least 2"),
        (
            {"standardize_targets": False},
            {"meta_y_mean": np.zeros(1), "meta_y_std": np.zeros(1)},
            "meta_y_mean/meta_y_std: expected finite values and a std above 0",
        ),
        (
            {"standardize_targets": False},
            {"meta_y_mean": np.full(1, np.nan), "meta_y_std": np.ones(1)},
            "meta_y_mean/meta_y_std: expected finite values and a std above 0",
        ),
        (
            {"standardize_targets": False},
            {"meta_y_mean": np.ones(1)},
            "meta_y_mean and meta_y_std: give both, or neither",
        ),
    ],
)
def test_a_file_that_breaks_the_rules_is_refused_in_one_line(
    tmp_path: Path, options: dict[str, bool], arrays: dict[str, np.ndarray], message: str
) -> None:
    rng = np.random.default_rng(3)
    good = {
        "x_train": rng.random((10, 2)),
        "y_train": rng.normal(0, 1, (10, 1)),
        "x_val": rng.random((4, 2)),
        "y_val": rng.normal(0, 1, (4, 1)),
    }
    path = _write(tmp_path / "bad.npz", **(good | arrays))
    with pytest.raises(TaskError) as err:
        prepare(INFO, INFO.options(**options), 0, data_path=path)
    assert str(err.value).startswith(f"{path}: {message}"), err.value


def test_without_a_file_there_is_nothing_to_train_on() -> None:
    with pytest.raises(TaskError, match=r"set \[task\] path to an .npz file"):
        prepare(INFO, INFO.options(), 0)


def test_a_file_edited_between_two_studies_in_one_process_is_read_again(tmp_path: Path) -> None:
    """A notebook edits its .npz between two studies: the second must train on the new
    arrays (the data was cached in the process by path alone, and the second study's
    network then stored under the new file's key)."""
    import os

    from nmhpo.config import StudyConfig
    from nmhpo.objective import task_data

    path = _file(tmp_path)
    cfg = StudyConfig.model_validate(
        {
            "study": {"name": "a", "n_trials": 1, "objectives": [{"name": "rmse"}]},
            "task": {"name": "regression", "path": str(path)},
            "hardware": {"preset": "rram-32nm"},
            "space": {"software": {"lr": {"type": "float", "low": 0.001, "high": 0.01}}},
        }
    )
    before = task_data(cfg).y_val.copy()
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(path, **{**arrays, "y_val": -arrays["y_val"]})
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    after = task_data(cfg).y_val
    assert not np.allclose(after, before)
