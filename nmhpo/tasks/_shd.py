"""Spiking Heidelberg Digits (SHD) from its HDF5 files in a folder the study gives.

Nothing is downloaded: ``[task] path`` holds ``shd_train.h5`` and optionally ``shd_test.h5``
(Cramer et al. 2020, as unpacked from the .h5.gz downloads). Each file has ``spikes/times``
(seconds) and ``spikes/units`` (0-699, the cochlea model's channels), one variable-length
array per recording, and ``labels`` (20 classes: digits 0-9 in English and German), as tonic's
SHD dataset reads them. A recording is counted into ``time_bins`` fine bins over its first
``duration_ms``: ``(time_bins, 700)`` uint8; there is no polarity and no image, so only dense
networks apply (``conv_layers = 0``). Without ``shd_test.h5``, the training file is split in
three. h5py is imported only here (it comes with the ``export`` extra).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from nmhpo.errors import TaskError
from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split
from nmhpo.tasks._digits import accuracy

#: Input channels of SHD's cochlea model.
CHANNELS = 700
_MAX_COUNT = np.iinfo(np.uint8).max


class ShdOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)  # only without shd_test.h5
    #: Fine time bins per recording; num_steps frames are summed from them.
    time_bins: int = Field(default=50, ge=1, le=1000)
    #: Window binned from each recording's start; SHD's recordings last up to about 1.4 s.
    duration_ms: float = Field(default=1400.0, gt=0.0)


def bin_recordings(
    times: list[np.ndarray], units: list[np.ndarray], options: ShdOptions
) -> np.ndarray:
    """Recordings' spikes (times in s, units) as (n, time_bins, 700) counts: all recordings
    at once, one ``np.bincount`` over (recording, bin, unit)."""
    n = len(times)
    lengths = np.array([len(t) for t in times], dtype=np.int64)
    t = np.concatenate(times).astype(np.float64) if n else np.zeros(0)
    u = np.concatenate(units).astype(np.int64) if n else np.zeros(0, np.int64)
    rec = np.repeat(np.arange(n), lengths)
    k = np.floor(t * (1000.0 * options.time_bins / options.duration_ms)).astype(np.int64)
    keep = (k >= 0) & (k < options.time_bins) & (u >= 0) & (u < CHANNELS)
    flat = (rec * options.time_bins + k) * CHANNELS + u
    counts = np.bincount(flat[keep], minlength=n * options.time_bins * CHANNELS)
    return np.minimum(counts, _MAX_COUNT).astype(np.uint8).reshape(n, options.time_bins, CHANNELS)


def read_file(path: Path, options: ShdOptions) -> tuple[np.ndarray, np.ndarray]:
    """One SHD file as (n, time_bins, 700) counts and int64 labels."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            times = list(f["spikes"]["times"][:])
            units = list(f["spikes"]["units"][:])
            labels = np.asarray(f["labels"][:], dtype=np.int64)
    except (OSError, KeyError) as exc:
        raise TaskError(f"{path}: cannot read as an SHD file: {exc}") from None
    if not len(times) == len(units) == len(labels):
        raise TaskError(
            f"{path}: {len(times)} spike times, {len(units)} unit arrays, {len(labels)} labels"
        )
    return bin_recordings(times, units, options), labels


def read_folder(folder: Path, options: ShdOptions, seed: int) -> Splits:
    if not folder.is_dir():
        raise TaskError(f"{folder}: expected a folder holding shd_train.h5 (and shd_test.h5)")
    train, test = folder / "shd_train.h5", folder / "shd_test.h5"
    if not train.is_file():
        raise TaskError(f"{folder}: no shd_train.h5 (unpack shd_train.h5.gz there)")
    x, y = read_file(train, options)
    if not test.is_file():
        return stratified_split(
            x, y, options.n_train, options.val_fraction, options.test_fraction, seed
        )
    split = stratified_split(x, y, options.n_train, options.val_fraction, 0.0001, seed)
    x_test, y_test = read_file(test, options)
    return Splits(split.x_train, split.y_train, split.x_val, split.y_val, x_test, y_test)


def _no_generator(options: ShdOptions, seed: int) -> Splits:
    raise TaskError("the shd task reads SHD's .h5 files: set [task] path to their folder")


SHD = TaskInfo(
    name="shd",
    description="Spiking Heidelberg Digits (700 channels, 20 classes) from [task] path (.h5)",
    kind="classification",
    metrics={"accuracy": "maximize"},
    options=ShdOptions,
    build=_no_generator,
    score=accuracy,
    read_path=read_folder,
    data_files=("shd_train.h5", "shd_test.h5"),
    events=True,
    image=False,
)
