"""Tasks: datasets and their metrics, returned as NumPy arrays (no torch here)."""

from __future__ import annotations

from nmhpo.errors import TaskError
from nmhpo.tasks._base import (
    Splits,
    TaskData,
    TaskInfo,
    TaskOptions,
    generated_splits,
    prepare,
    read_npz,
    stratified_split,
)
from nmhpo.tasks._bragg import BRAGG
from nmhpo.tasks._digits import DIGITS
from nmhpo.tasks._dvs_gesture import DVS_GESTURE
from nmhpo.tasks._events import bin_events, dvs_events
from nmhpo.tasks._events_digits import EVENTS_DIGITS
from nmhpo.tasks._mnist import MNIST
from nmhpo.tasks._nmnist import NMNIST
from nmhpo.tasks._pbl import PBL
from nmhpo.tasks._ptycho import PTYCHO
from nmhpo.tasks._regression import REGRESSION
from nmhpo.tasks._shd import SHD

TASKS: dict[str, TaskInfo] = {
    t.name: t
    for t in (
        DIGITS,
        MNIST,
        BRAGG,
        PTYCHO,
        PBL,
        REGRESSION,
        EVENTS_DIGITS,
        NMNIST,
        SHD,
        DVS_GESTURE,
    )
}


def get_task(name: str) -> TaskInfo:
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def load_task(name: str, seed: int = 0, **options: object) -> TaskData:
    """A task's data in memory, without the disk cache (tests, notebooks)."""
    info = get_task(name)
    return prepare(info, info.options(**options), seed)


__all__ = [
    "TASKS",
    "Splits",
    "TaskData",
    "TaskInfo",
    "TaskOptions",
    "bin_events",
    "dvs_events",
    "generated_splits",
    "get_task",
    "load_task",
    "prepare",
    "read_npz",
    "stratified_split",
]
