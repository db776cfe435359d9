from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from nmhpo.config import load_config
from nmhpo.errors import ConfigError, TaskError
from nmhpo.tasks import get_task, prepare
from nmhpo.tasks._mnist import read_idx
from tests.conftest import tiny_study_text


def _write_idx(path: Path, array: np.ndarray, magic: int, compress: bool) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)


def _fake_mnist(folder: Path, prefix: str, n: int, compress: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28))
    labels = np.arange(n) % 10
    suffix = ".gz" if compress else ""
    _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, 2051, compress)
    _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, 2049, compress)
    return images


@pytest.mark.parametrize("compress", [True, False])
def test_reads_idx_files_raw_or_gzip(tmp_path: Path, compress: bool) -> None:
    images = _fake_mnist(tmp_path, "t10k", 50, compress)
    suffix = ".gz" if compress else ""
    np.testing.assert_array_equal(read_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}"), images)


def test_t10k_only_is_split_into_train_val_test(tmp_path: Path) -> None:
    images = _fake_mnist(tmp_path, "t10k", 200, compress=True)
    info = get_task("mnist")
    data = prepare(info, info.options(), 0, data_path=tmp_path)
    assert data.input_shape == (1, 28, 28) and data.n_classes == 10
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 200
    assert data.x_train.max() <= 1.0 and data.x_train.dtype == np.float32
    all_x = np.concatenate([data.x_train, data.x_val, data.x_test])[:, 0]
    assert sorted(map(bytes, (all_x * 255).round().astype(np.uint8))) == sorted(
        map(bytes, images.astype(np.uint8))
    )


def test_training_files_give_train_and_val_t10k_gives_test(tmp_path: Path) -> None:
    _fake_mnist(tmp_path, "train", 300, compress=False, seed=1)
    _fake_mnist(tmp_path, "t10k", 40, compress=True, seed=2)
    info = get_task("mnist")
    data = prepare(info, info.options(n_train=100), 0, data_path=tmp_path)
    assert len(data.x_train) == 100 and len(data.x_test) == 40


def test_bad_folder_and_missing_path_are_clear(tmp_path: Path) -> None:
    info = get_task("mnist")
    with pytest.raises(TaskError, match="no MNIST files"):
        prepare(info, info.options(), 0, data_path=tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x00\x07rubbish")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(TaskError, match="not an MNIST IDX file"):
        prepare(info, info.options(), 0, data_path=tmp_path)
    _fake_mnist(tmp_path, "train", 20, compress=True)
    gz = tmp_path / "train-labels-idx1-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:-3])  # a download cut short
    with pytest.raises(TaskError, match=r"train-labels-idx1-ubyte.gz: cannot read: Compressed"):
        prepare(info, info.options(), 0, data_path=tmp_path)
    gz.unlink()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00")
    with pytest.raises(TaskError, match=r"train-labels-idx1-ubyte: cut short inside its header"):
        prepare(info, info.options(), 0, data_path=tmp_path)
    study = tmp_path / "s.toml"
    study.write_text(
        tiny_study_text()
        .replace('name = "digits"', 'name = "mnist"')
        .replace("n_train = 600", "n_train = 100")
    )
    with pytest.raises(ConfigError, match="task.path: the mnist task reads your data files"):
        load_config(study)


def test_the_real_mnist_test_set_when_this_machine_has_it(tmp_path: Path) -> None:
    """Reads the canonical t10k files from shared/data if present, else a written copy."""
    real = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist_t10k"
    folder = real if (real / "t10k-labels-idx1-ubyte.gz").is_file() else tmp_path
    if folder is tmp_path:
        _fake_mnist(tmp_path, "t10k", 1000, compress=True)
    info = get_task("mnist")
    data = prepare(info, info.options(), 0, data_path=folder)
    counts = np.bincount(np.concatenate([data.y_train, data.y_val, data.y_test]), minlength=10)
    assert counts.sum() in (10000, 1000)
    if counts.sum() == 10000:  # the canonical class counts of MNIST's test set
        assert counts.tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_the_files_mnist_reads_are_its_dataset_files(tmp_path: Path) -> None:
    """What the cache key and the study's fingerprint follow: the raw file when there is
    one (a .gz kept beside it, as torchvision keeps both, is not read), and no hidden copy."""
    from nmhpo.tasks._base import dataset_files

    _fake_mnist(tmp_path, "t10k", 20, compress=False)
    _fake_mnist(tmp_path, "t10k", 20, compress=True)
    (tmp_path / "._t10k-images-idx3-ubyte").write_bytes(b"macOS fork")
    (tmp_path / "t10k-images-idx3-ubyte.gz.1").write_bytes(b"a second download")
    names = [row[0] for row in dataset_files(tmp_path, get_task("mnist").data_files)]
    assert names == ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
