"""N-MNIST from the native binary files in a folder the study gives (`[task] path`).

Nothing is downloaded: the folder holds N-MNIST's own layout, ``Train/<digit>/*.bin`` and
``Test/<digit>/*.bin`` (Orchard et al. 2015; as unpacked from Train.zip and Test.zip). Each file
is decoded with NumPy and counted into ``time_bins`` fine bins over the first ``duration_ms``
of the recording, ``(time_bins, 2, 34, 34)`` uint8. Without Test/, the Train/ recordings are
split into train/validation/test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from nmhpo.errors import TaskError
from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split
from nmhpo.tasks._digits import accuracy
from nmhpo.tasks._events import bin_events

#: The ATIS sensor's pixels used by N-MNIST.
SENSOR = (34, 34)
#: A y byte of 240 marks a timestamp-overflow record, not an event (Orchard's event-Python).
_OVERFLOW_Y = 240
#: What each overflow record adds to later timestamps, in us. NOTE: tonic (io.read_mnist_file)
#: and Orchard's eventvision.py add 2**13, not 2**23; followed here so timestamps match theirs.
_OVERFLOW_US = 2**13


class NmnistOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)  # only without Test/
    #: Fine time bins per recording; num_steps frames are summed from them.
    time_bins: int = Field(default=30, ge=1, le=1000)
    #: Window binned from each recording's start; N-MNIST's three saccades take ~310 ms.
    duration_ms: float = Field(default=320.0, gt=0.0)


def decode(raw: bytes | np.ndarray) -> dict[str, np.ndarray]:
    """Events of one N-MNIST file's bytes: x, y (uint8), t (us, int64), p (0 OFF, 1 ON).

    Each event is 5 bytes: x, y, then 1 polarity bit and a 23-bit timestamp, big-endian
    (tonic's ``read_mnist_file``, vectorized: overflow records shift later timestamps
    through a cumulative sum instead of a loop).
    """
    data = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, bytes) else raw
    if data.size % 5:
        raise ValueError(f"{data.size} bytes is not a whole number of 5-byte events")
    rec = data.reshape(-1, 5).astype(np.int64)
    x, y = rec[:, 0], rec[:, 1]
    p = rec[:, 2] >> 7
    t = ((rec[:, 2] & 127) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    overflow = y == _OVERFLOW_Y
    t = t + np.cumsum(overflow) * _OVERFLOW_US
    keep = ~overflow
    return {
        "x": x[keep].astype(np.uint8),
        "y": y[keep].astype(np.uint8),
        "t": t[keep],
        "p": p[keep].astype(np.uint8),
    }


def read_file(path: Path) -> dict[str, np.ndarray]:
    """The events of one N-MNIST ``.bin`` file (see `decode`)."""
    try:
        return decode(np.fromfile(path, dtype=np.uint8))
    except (OSError, ValueError) as exc:
        raise TaskError(f"{path}: cannot read as an N-MNIST recording: {exc}") from None


def frames(events: dict[str, np.ndarray], options: NmnistOptions) -> np.ndarray:
    """One recording's events as (time_bins, 2, 34, 34) counts over its first duration_ms."""
    return bin_events(
        events["x"],
        events["y"],
        events["t"],
        events["p"],
        time_bins=options.time_bins,
        height=SENSOR[0],
        width=SENSOR[1],
        t_start=0.0,
        t_end=options.duration_ms * 1000.0,
    )


def _read_split(folder: Path, options: NmnistOptions) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(folder.glob("[0-9]/*.bin"))
    if not files:
        raise TaskError(f"{folder}: no recordings; expected <digit>/*.bin files (0/ to 9/)")
    x = np.empty((len(files), options.time_bins, 2, *SENSOR), dtype=np.uint8)
    for i, path in enumerate(files):  # one file at a time: the decoding itself is vectorized
        x[i] = frames(read_file(path), options)
    y = np.array([int(f.parent.name) for f in files], dtype=np.int64)
    return x, y


def read_folder(folder: Path, options: NmnistOptions, seed: int) -> Splits:
    if not folder.is_dir():
        raise TaskError(f"{folder}: expected a folder holding N-MNIST's Train/ and Test/")
    train, test = folder / "Train", folder / "Test"
    if not train.is_dir():
        raise TaskError(f"{folder}: no Train/ folder; expected Train/<digit>/*.bin (and Test/)")
    x, y = _read_split(train, options)
    if not test.is_dir():
        return stratified_split(
            x, y, options.n_train, options.val_fraction, options.test_fraction, seed
        )
    split = stratified_split(x, y, options.n_train, options.val_fraction, 0.0001, seed)
    x_test, y_test = _read_split(test, options)
    return Splits(split.x_train, split.y_train, split.x_val, split.y_val, x_test, y_test)


def _no_generator(options: NmnistOptions, seed: int) -> Splits:
    raise TaskError("the nmnist task reads N-MNIST's .bin files: set [task] path to their folder")


NMNIST = TaskInfo(
    name="nmnist",
    description="N-MNIST event recordings (2x34x34) from [task] path's Train/ and Test/ folders",
    kind="classification",
    metrics={"accuracy": "maximize"},
    options=NmnistOptions,
    build=_no_generator,
    score=accuracy,
    read_path=read_folder,
    data_files=("Train/[0-9]/*.bin", "Test/[0-9]/*.bin"),
    events=True,
)
