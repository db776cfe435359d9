from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmhpo.errors import TaskError
from nmhpo.tasks import TASKS, get_task, load_task, prepare


@pytest.mark.parametrize("name", sorted(n for n, t in TASKS.items() if t.read_path is None))
def test_every_task_builds_deterministic_disjoint_splits(name: str) -> None:
    info = get_task(name)
    small = {k: 40 for k in ("n_train", "n_val", "n_test") if k in info.options.model_fields}
    a = load_task(name, seed=3, **small)
    b = load_task(name, seed=3, **small)
    for split in ("train", "val", "test"):
        xa, ya = getattr(a, f"x_{split}"), getattr(a, f"y_{split}")
        assert len(xa) == len(ya) > 0
        if info.events:  # event counts on a fine time grid (see nmhpo.tasks._events)
            assert xa.dtype == np.uint8 and xa.ndim == 5 and xa.shape[2] == 2
        else:
            assert xa.dtype == np.float32
            assert xa.min() >= 0.0 and xa.max() <= 1.0
        np.testing.assert_array_equal(xa, getattr(b, f"x_{split}"))
    assert set(info.metrics) <= set(a.metrics(a.y_val, a.y_val))


def test_digits_split_is_stratified_and_sized() -> None:
    data = load_task("digits", n_train=600)
    assert data.x_train.shape == (600, 64)
    assert data.n_classes == 10
    assert len(data.x_val) + len(data.x_test) + 600 <= 1797
    assert set(np.unique(data.y_val)) == set(range(10))
    assert data.metrics(data.y_val, data.y_val) == {"accuracy": 1.0}


def test_digits_are_scikit_learns_digits_without_importing_sklearn_datasets() -> None:
    from sklearn.datasets import load_digits

    from nmhpo.tasks._digits import load

    data, target = load()
    bunch = load_digits()
    np.testing.assert_array_equal(data, bunch.data)
    np.testing.assert_array_equal(target, bunch.target)


def test_data_is_generated_once_into_the_cache(tmp_path: Path) -> None:
    info = get_task("digits")
    options = info.options(n_train=100)
    first = prepare(info, options, 0, cache_dir=tmp_path)
    files = list(tmp_path.glob("digits-*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second = prepare(info, options, 0, cache_dir=tmp_path)
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    np.testing.assert_array_equal(first.x_train, second.x_train)
    prepare(info, info.options(n_train=200), 0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("digits-*.npz"))) == 2


def test_user_npz_replaces_generation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.random((20, 64)),
        y_train=rng.integers(0, 10, 20),
        x_val=rng.random((5, 64)),
        y_val=rng.integers(0, 10, 5),
    )
    data = prepare(get_task("digits"), get_task("digits").options(), 0, data_path=path)
    assert data.x_train.shape == (20, 64) and data.x_test.shape == (5, 64)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=rng.random((2, 3)))
    with pytest.raises(TaskError, match="missing array 'y_train'"):
        prepare(get_task("digits"), get_task("digits").options(), 0, data_path=bad)
