"""MNIST from the standard IDX files in a folder the study gives (`[task] path = "mnist/"`).

Nothing is downloaded: the user points at the files (raw or .gz). With the training files
present, validation comes from the training set and the test set is t10k; with only the t10k
files (the 10,000 test digits), those are split into train/validation/test.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
from pydantic import Field

from nmhpo.errors import TaskError
from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split
from nmhpo.tasks._digits import accuracy

_MAGIC = {2049: 1, 2051: 3}  # labels (1 dim), images (3 dims)
_KINDS = (("images", 3), ("labels", 1))


class MnistOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)  # only when t10k is all there is


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (raw or gzip) as a uint8 array, checking its header."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt download
        raise TaskError(f"{path}: cannot read: {exc}") from None
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise TaskError(f"{path}: not an MNIST IDX file (magic number {magic})")
    header = 4 + 4 * _MAGIC[magic]
    if len(raw) < header:
        raise TaskError(f"{path}: cut short inside its header ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(_MAGIC[magic])]
    data = np.frombuffer(raw, np.uint8, offset=header)
    if data.size != int(np.prod(dims)):
        raise TaskError(f"{path}: expected {dims} values, found {data.size}")
    return data.reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, f"{stem}.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _pair(folder: Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    images = _find(folder, f"{prefix}-images-idx3-ubyte")
    labels = _find(folder, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    x = (read_idx(images).astype(np.float32) / 255.0)[:, None]
    y = read_idx(labels).astype(np.int64)
    if len(x) != len(y):
        raise TaskError(f"{folder}: {len(x)} {prefix} images but {len(y)} labels")
    return x, y


def data_files(folder: Path) -> list[Path]:
    """The IDX files `read_folder` reads (raw, else .gz): a .gz kept beside its raw file,
    or a second download, is not read and does not count."""
    stems = (f"{p}-{k}-idx{d}-ubyte" for p in ("train", "t10k") for k, d in _KINDS)
    return [path for stem in stems if (path := _find(folder, stem)) is not None]


def read_folder(folder: Path, options: MnistOptions, seed: int) -> Splits:
    if not folder.is_dir():
        raise TaskError(f"{folder}: expected a folder holding MNIST's IDX files")
    train, test = _pair(folder, "train"), _pair(folder, "t10k")
    if train is None and test is None:
        raise TaskError(
            f"{folder}: no MNIST files; expected train-images-idx3-ubyte[.gz] and "
            "train-labels-idx1-ubyte[.gz] and/or the t10k-* pair"
        )
    if train is None:
        assert test is not None
        return stratified_split(
            *test, options.n_train, options.val_fraction, options.test_fraction, seed
        )
    split = stratified_split(*train, options.n_train, options.val_fraction, 0.0001, seed)
    x_test, y_test = test if test is not None else (split.x_val, split.y_val)
    return Splits(split.x_train, split.y_train, split.x_val, split.y_val, x_test, y_test)


def _no_generator(options: MnistOptions, seed: int) -> Splits:
    raise TaskError("the mnist task reads IDX files: set [task] path to their folder")


MNIST = TaskInfo(
    name="mnist",
    description="MNIST 28x28 digits from IDX files in [task] path (a folder; nothing downloaded)",
    kind="classification",
    metrics={"accuracy": "maximize"},
    options=MnistOptions,
    build=_no_generator,
    score=accuracy,
    read_path=read_folder,
    data_files=data_files,
)
