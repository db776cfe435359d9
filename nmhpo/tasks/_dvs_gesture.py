"""IBM DVS Gesture from its native AEDAT 3.1 recordings in a folder the study gives.

Nothing is downloaded: ``[task] path`` holds the dataset as unpacked from DvsGesture.tar.gz
(Amir et al. 2017): ``userNN_<lighting>.aedat`` recordings, each with its
``userNN_<lighting>_labels.csv`` (``class,startTime_usec,endTime_usec``: one row per gesture,
classes 1-11), and ``trials_to_train.txt`` / ``trials_to_test.txt`` naming the recordings of each
split (without them every recording is split three ways). Each labelled gesture is one sample:
its events from ``startTime_usec`` on, counted into ``time_bins`` fine bins over ``duration_ms``,
on the 128x128 sensor reduced ``downsample`` times per side, ``(time_bins, 2, 128 / d, 128 / d)``
uint8.

An AEDAT 3.1 file is ``#`` header lines, then packets: a 28-byte little-endian header (event
type, source, size, timestamp offset, timestamp overflow, capacity, number, valid) and its
events; a polarity event (type 1) is 8 bytes, a 32-bit address (bit 0 valid, bit 1 polarity,
bits 2-16 y, bits 17-31 x) and a 32-bit timestamp in us (inivation's AEDAT 3.1 format, as
tonic's ``read_dvs_ibm`` reads it; packets of other types are skipped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from nmhpo.errors import TaskError
from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split
from nmhpo.tasks._digits import accuracy
from nmhpo.tasks._events import bin_events

SENSOR = 128
_HEADER = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
_POLARITY_EVENT = 1


class DvsGestureOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)  # only without the trial lists
    #: Fine time bins per gesture; num_steps frames are summed from them.
    time_bins: int = Field(default=60, ge=1, le=1000)
    #: Window binned from each gesture's start (gestures last about 6 s).
    duration_ms: float = Field(default=6000.0, gt=0.0)
    #: Sensor pixels merged per side: 4 gives 32x32 frames (128 / 4).
    downsample: int = Field(default=4, ge=1, le=128)


def _data_start(raw: bytes) -> int:
    """Offset of the first packet: after the ``#`` header lines."""
    pos = 0
    while raw.startswith(b"#", pos):
        end = raw.find(b"\n", pos)
        if end < 0:
            return len(raw)
        pos = end + 1
    return pos


def decode(raw: bytes) -> dict[str, np.ndarray]:
    """Polarity events of an AEDAT 3.1 file's bytes: x, y, p (0/1) and t (us, int64).

    A loop over packets (hundreds per recording) finds them; each packet's events are
    decoded with NumPy, vectorized.
    """
    pos, parts = _data_start(raw), []
    while pos + _HEADER.itemsize <= len(raw):
        head = np.frombuffer(raw, _HEADER, count=1, offset=pos)[0]
        size, capacity = int(head["size"]), int(head["capacity"])
        if size <= 0 or capacity < 0:
            raise ValueError(f"bad packet header at byte {pos}")
        body = pos + _HEADER.itemsize
        end = body + size * capacity
        if end > len(raw):
            raise ValueError(f"packet at byte {pos} runs past the end of the file")
        if int(head["type"]) == _POLARITY_EVENT and size == 8:
            ev = np.frombuffer(raw, "<u4", count=2 * capacity, offset=body).reshape(-1, 2)
            ev = ev[: int(head["number"])]
            overflow = np.int64(int(head["ts_overflow"])) << 31
            parts.append((ev[:, 0], ev[:, 1].astype(np.int64) + overflow))
        pos = end
    if not parts:
        empty = np.zeros(0, np.int64)
        return {"x": empty, "y": empty, "p": empty, "t": empty}
    addr = np.concatenate([a for a, _ in parts]).astype(np.int64)
    t = np.concatenate([b for _, b in parts])
    valid = (addr & 1) == 1
    addr, t = addr[valid], t[valid]
    return {
        "x": (addr >> 17) & 0x7FFF,
        "y": (addr >> 2) & 0x7FFF,
        "p": (addr >> 1) & 1,
        "t": t,
    }


def read_labels(path: Path) -> np.ndarray:
    """(n, 3) int64 rows of class (1-11), start and end time (us) from a labels CSV."""
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise TaskError(f"{path}: cannot read as DVS Gesture labels: {exc}") from None
    if table.shape[1] != 3:
        raise TaskError(f"{path}: expected class,startTime_usec,endTime_usec")
    return table


def read_recording(path: Path, options: DvsGestureOptions) -> tuple[np.ndarray, np.ndarray]:
    """A recording's gestures as (n, time_bins, 2, side, side) counts and labels 0-10."""
    labels = read_labels(path.with_name(f"{path.stem}_labels.csv"))
    try:
        ev = decode(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise TaskError(f"{path}: cannot read as an AEDAT 3.1 recording: {exc}") from None
    side = SENSOR // options.downsample
    x = np.empty((len(labels), options.time_bins, 2, side, side), dtype=np.uint8)
    for i, (_, start, _end) in enumerate(labels):  # a dozen gestures per recording
        x[i] = bin_events(
            ev["x"] // options.downsample,
            ev["y"] // options.downsample,
            ev["t"],
            ev["p"],
            time_bins=options.time_bins,
            height=side,
            width=side,
            t_start=float(start),
            t_end=float(start) + options.duration_ms * 1000.0,
        )
    return x, labels[:, 0] - 1


def _read_list(
    folder: Path, names: list[str], options: DvsGestureOptions
) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_recording(folder / name, options) for name in names]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _trial_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_folder(folder: Path, options: DvsGestureOptions, seed: int) -> Splits:
    if not folder.is_dir():
        raise TaskError(f"{folder}: expected a folder holding DVS Gesture's .aedat files")
    train_list, test_list = folder / "trials_to_train.txt", folder / "trials_to_test.txt"
    if train_list.is_file() and test_list.is_file():
        x, y = _read_list(folder, _trial_list(train_list), options)
        split = stratified_split(x, y, options.n_train, options.val_fraction, 0.0001, seed)
        x_test, y_test = _read_list(folder, _trial_list(test_list), options)
        return Splits(split.x_train, split.y_train, split.x_val, split.y_val, x_test, y_test)
    names = sorted(p.name for p in folder.glob("*.aedat"))
    if not names:
        raise TaskError(f"{folder}: no .aedat recordings (expected userNN_<lighting>.aedat)")
    x, y = _read_list(folder, names, options)
    return stratified_split(
        x, y, options.n_train, options.val_fraction, options.test_fraction, seed
    )


def _no_generator(options: DvsGestureOptions, seed: int) -> Splits:
    raise TaskError(
        "the dvs-gesture task reads DVS Gesture's .aedat files: set [task] path to their folder"
    )


DVS_GESTURE = TaskInfo(
    name="dvs-gesture",
    description="IBM DVS Gesture (11 classes, 2x32x32 by default) from [task] path's .aedat",
    kind="classification",
    metrics={"accuracy": "maximize"},
    options=DvsGestureOptions,
    build=_no_generator,
    score=accuracy,
    read_path=read_folder,
    data_files=("*.aedat", "*_labels.csv", "trials_to_train.txt", "trials_to_test.txt"),
    events=True,
)
