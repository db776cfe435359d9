"""Tasks: datasets and their metrics, returned as NumPy arrays (no torch here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from nmhpo.errors import TaskError
from nmhpo.tasks._base import TaskData
from nmhpo.tasks._digits import load_digits_task


@dataclass(frozen=True)
class TaskInfo:
    """What a task offers: its metrics (objective names) and how to load it."""

    description: str
    metrics: tuple[str, ...]
    loader: Callable[[int | None, float, int], TaskData]


TASKS: dict[str, TaskInfo] = {
    "digits": TaskInfo(
        "scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download",
        ("accuracy",),
        load_digits_task,
    ),
}


@lru_cache(maxsize=8)
def load_task(name: str, n_train: int | None, val_fraction: float, seed: int) -> TaskData:
    """Task data, generated once per process for a given (name, size, split seed)."""
    if name not in TASKS:
        raise TaskError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name].loader(n_train, val_fraction, seed)


__all__ = ["TASKS", "TaskData", "TaskInfo", "load_task"]
