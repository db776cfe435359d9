from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nmhpo.errors import TaskError
from nmhpo.tasks import TASKS, get_task, load_task, prepare


@pytest.mark.parametrize(
    "name", sorted(n for n, t in TASKS.items() if t.read_path is None and not t.needs_path)
)
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
        y_train=np.arange(20) % 10,
        x_val=rng.random((5, 64)),
        y_val=rng.integers(0, 10, 5),
    )
    data = prepare(get_task("digits"), get_task("digits").options(), 0, data_path=path)
    assert data.x_train.shape == (20, 64) and data.x_test.shape == (5, 64)
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=rng.random((2, 3)))
    with pytest.raises(TaskError, match="missing array 'y_train'"):
        prepare(get_task("digits"), get_task("digits").options(), 0, data_path=bad)


def _user_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "x_train": rng.random((20, 64)),
        "y_train": np.arange(20) % 10,  # every class in training
        "x_val": rng.random((5, 64)),
        "y_val": rng.integers(0, 10, 5),
    }


def _broken(a: np.ndarray, how: str) -> np.ndarray:
    if how == "nan":
        return np.where(np.arange(a.size).reshape(a.shape) == 3, np.nan, a)
    if how == "x16":
        return a * 16
    if how == "half":
        return a + 0.5
    if how == "negative":
        return a - 20
    if how == "narrow":
        return a[:, :32]
    if how == "text":
        return a.astype(str)
    if how == "stray":
        return np.where(np.arange(len(a)) == 0, 10, a)
    if how == "gap":
        return np.maximum(a, 1)
    if how == "one":
        return np.zeros_like(a)
    if how == "last":
        return a.reshape(len(a), 8, 8, 1)
    if how == "flat":
        return a[:, 0]
    if how == "no_channel":
        return a.reshape(len(a), 8, 8)
    if how == "test_only":
        return a[:3]
    assert how == "empty"
    return a[:0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"x_train": "nan"}, r"x_train: expected finite values"),
        ({"x_val": "x16"}, r"x_val: expected inputs scaled to \[0, 1\]; got values from"),
        ({"y_train": "half"}, r"y_train: expected class labels 0, 1, 2, \.\.\.; got \d+\.5"),
        ({"y_val": "negative"}, r"y_val: expected class labels 0, 1, 2, \.\.\.; got -"),
        ({"x_val": "narrow"}, r"x_val: expected samples of x_train's shape \(64,\); got \(32,\)"),
        ({"y_train": "text"}, r"y_train: expected numbers; got dtype <U"),
        ({"x_val": "empty", "y_val": "empty"}, r"x_val: expected at least one sample"),
        ({"y_val": "stray"}, r"y_val: class 10 does not occur in y_train"),
        ({"y_train": "gap"}, r"y_train: expected classes 0 to 9 with every one present; class 0"),
        ({"y_train": "one"}, r"y_train: expected at least 2 classes; got only \[0\]"),
        ({"x_train": "last", "x_val": "last"}, r"x_train: .*looks like channels last"),
        ({"x_test": "test_only"}, r"x_test without y_test; give both, or neither"),
        (
            {"x_train": "flat", "x_val": "flat"},
            r"x_train: expected inputs as \(n, features\) or \(n, channels, height, width\); "
            r"got shape \(20,\) \(for one feature per sample, add the axis: x\[:, None\]\)",
        ),
        (
            {"x_train": "no_channel", "x_val": "no_channel"},
            r"x_train: .*got shape \(20, 8, 8\) \(for one-channel images, add the axis",
        ),
    ],
)
def test_a_user_npz_that_breaks_the_rules_is_refused_in_one_line(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    """Found when the file is read (before a study is written), not as a shape error, an
    index error or a NaN loss inside every trial."""
    rng = np.random.default_rng(0)
    arrays = _user_arrays(rng)
    for key, how in change.items():
        arrays[key] = _broken(arrays.get(key, arrays["x_val"]), how)
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    info = get_task("digits")
    with pytest.raises(TaskError, match=rf"^{path}: {message}"):
        prepare(info, info.options(), 0, data_path=path)
    garbage = tmp_path / "garbage.npz"
    garbage.write_text("not an archive")
    with pytest.raises(TaskError, match=r"garbage\.npz: not an \.npz archive"):
        prepare(info, info.options(), 0, data_path=garbage)


def test_a_misspelt_array_is_refused_and_an_extra_one_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A misspelt x_test used to be ignored: the validation split silently became the test
    split. An array that resembles none of nmhpo's is the user's own, named as unused."""
    arrays = _user_arrays(np.random.default_rng(0))
    info = get_task("digits")
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays, x_tset=arrays["x_val"], y_test=arrays["y_val"])
    with pytest.raises(
        TaskError, match=rf"^{path}: unknown array 'x_tset' \(did you mean 'x_test'\?\)"
    ):
        prepare(info, info.options(), 0, data_path=path)
    renamed = {("X_Train" if k == "x_train" else k): v for k, v in arrays.items()}
    np.savez(path, **renamed)
    with pytest.raises(TaskError, match=r"unknown array 'X_Train' \(did you mean 'x_train'"):
        prepare(info, info.options(), 0, data_path=path)
    # beside the split it resembles, an array is the user's own (x_train_raw), not a typo
    extra = {"labels": np.array(["a", "b"]), "x_train_raw": arrays["x_train"] * 255}
    np.savez(path, **arrays, **extra, meta_source=np.array("lab"))
    with caplog.at_level("WARNING", logger="nmhpo"):
        data = prepare(info, info.options(), 0, data_path=path)
    assert data.y_val.shape == (5,)
    assert [r.getMessage() for r in caplog.records if "not used" in r.getMessage()] == [
        f"{path}: array(s) labels, x_train_raw not used: nmhpo reads x_train, y_train, x_val, "
        "y_val, x_test, y_test (name extra arrays meta_* to keep them with the data)"
    ]


def test_float_class_labels_with_whole_values_are_accepted(tmp_path: Path) -> None:
    arrays = _user_arrays(np.random.default_rng(0))
    arrays["y_train"] = arrays["y_train"].astype(float)
    path = tmp_path / "mine.npz"
    np.savez(path, **arrays)
    info = get_task("digits")
    data = prepare(info, info.options(), 0, data_path=path)
    assert data.y_train.dtype == np.int64


def test_a_task_specific_rule_of_a_user_npz_is_found_when_it_is_read(tmp_path: Path) -> None:
    """pbl's metrics go back to physical units with meta_y_mean and meta_y_std: a file
    without them used to fail in scoring, after every trial had trained."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((20, 16)),
        "y_train": rng.normal(size=(20, 68)),
        "x_val": rng.random((5, 16)),
        "y_val": rng.normal(size=(5, 68)),
    }
    path = tmp_path / "pbl.npz"
    np.savez(path, **arrays)
    info = get_task("pbl")
    with pytest.raises(TaskError, match=r"pbl\.npz: pbl metrics need meta y_mean and y_std"):
        prepare(info, info.options(), 0, data_path=path)
    np.savez(path, **arrays, meta_y_mean=np.zeros(68), meta_y_std=np.ones(68))
    assert prepare(info, info.options(), 0, data_path=path).y_val.shape == (5, 68)


def test_event_counts_and_regression_targets_follow_their_rules(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.3, (12, 6, 2, 8, 8)).astype(np.uint8)
    labels = np.arange(12) % 3
    events = get_task("events-digits")
    for x, message in (
        (rng.random((12, 64)), r"expected event counts as \(n, time_bins, 2, height, width\)"),
        (counts * 0.5, r"expected event counts \(whole numbers >= 0\)"),
    ):
        path = tmp_path / "events.npz"
        np.savez(path, x_train=x, y_train=labels, x_val=x, y_val=labels)
        with pytest.raises(TaskError, match=message):
            prepare(events, events.options(), 0, data_path=path)
    np.savez(path, x_train=counts, y_train=labels, x_val=counts, y_val=labels)
    assert prepare(events, events.options(), 0, data_path=path).time_bins == 6

    pbl = get_task("pbl")
    y = rng.normal(300.0, 50.0, (20, 68))
    path = tmp_path / "pbl.npz"
    meta = {"meta_y_mean": np.zeros(68), "meta_y_std": np.ones(68)}
    x = rng.random((20, 16))
    np.savez(path, x_train=x, y_train=y, x_val=x[:5], y_val=y[:5], **meta)
    with pytest.raises(TaskError, match=r"y_train: expected normalised targets"):
        prepare(pbl, pbl.options(), 0, data_path=path)


def test_a_dataset_folders_key_ignores_a_study_kept_inside_it(tmp_path: Path) -> None:
    """A study file beside its data (``path = "."``) writes its database and caches there:
    the dataset's key must not change with them, or every start reads it all again."""
    from nmhpo.tasks._base import cache_key

    info = get_task("mnist")
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"images")
    before = cache_key(info, info.options(), 0, tmp_path)
    (tmp_path / "nmhpo-studies.db").write_bytes(b"db")
    (tmp_path / "nmhpo-studies.db-wal").write_bytes(b"wal")
    (tmp_path / "nmhpo-cache" / "data").mkdir(parents=True)
    (tmp_path / "nmhpo-cache" / "data" / "mnist-x.npz").write_bytes(b"cache")
    (tmp_path / "study.toml").write_text("[study]")  # the user's own files beside the data
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "notes.ipynb").write_text("{}")
    (tmp_path / "slurm-123.out").write_text("worker log, growing")  # an array job's output
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "helpers.cpython-312.pyc").write_bytes(b"pyc")
    (tmp_path / "LICENSE").write_text("not read by the mnist reader")
    assert cache_key(info, info.options(), 0, tmp_path) == before
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"labels")
    assert cache_key(info, info.options(), 0, tmp_path) != before


def test_a_dataset_folders_summary_names_what_changed_file_by_file_or_per_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a study keeps of its dataset folder, so a refusal to resume can say what
    changed; a folder of many recordings (N-MNIST's 70,000) is summed per sub-folder."""
    import nmhpo.tasks._base as base

    for digit in range(3):
        (tmp_path / "Train" / str(digit)).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "Train" / str(digit) / f"{i}.bin").write_bytes(b"x" * (i + 1))
    patterns = ("Train/[0-9]/*.bin",)
    before = base.dataset_summary(tmp_path, patterns)
    assert before["Train/1/0.bin"] == 1 and len(before) == 6
    (tmp_path / "Train/1/0.bin").write_bytes(b"yy")
    (tmp_path / "Train/2/1.bin").unlink()
    (tmp_path / "Train/2/7.bin").write_bytes(b"z")
    after = base.dataset_summary(tmp_path, patterns)
    assert base.summary_changes(before, after) == (
        "added Train/2/7.bin; removed Train/2/1.bin; changed Train/1/0.bin"
    )
    monkeypatch.setattr(base, "_LISTED_FILES", 4)  # past it: per folder
    grouped = base.dataset_summary(tmp_path, patterns)
    assert grouped == {"Train/0/": [2, 3], "Train/1/": [2, 4], "Train/2/": [2, 2]}
    (tmp_path / "Train/0/2.bin").write_bytes(b"new")
    now = base.dataset_summary(tmp_path, patterns, per_folder=True)
    assert base.summary_changes(grouped, now) == "changed Train/0/"
    names = {f"f{i}": i for i in range(5)}
    assert base.summary_changes({}, names) == "added f0, f1, f2 and 2 more"
