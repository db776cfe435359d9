"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no download."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import Field

from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split


class DigitsOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)


def load() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 images (pixel values 0-16) and labels, as ``sklearn.datasets.load_digits``.

    Read from the CSV file scikit-learn ships rather than through ``sklearn.datasets``, whose
    import costs 0.7 s: paid by every worker process at its first trial.
    """
    spec = importlib.util.find_spec("sklearn")
    locations = spec.submodule_search_locations if spec is not None else None
    path = Path(locations[0]) / "datasets" / "data" / "digits.csv.gz" if locations else None
    if path is None or not path.is_file():
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.data, bunch.target
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1], table[:, -1].astype(np.int64)


def build(options: DigitsOptions, seed: int) -> Splits:
    """1,797 images of 64 pixels scaled to [0, 1] (so they can be rate-encoded), 10 classes;
    the split is stratified and depends only on the seed."""
    data, target = load()
    x = (data / 16.0).astype(np.float32)
    y = target.astype(np.int64)
    return stratified_split(
        x, y, options.n_train, options.val_fraction, options.test_fraction, seed
    )


def accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, meta: Mapping[str, np.ndarray]
) -> dict[str, float]:
    return {"accuracy": float(np.mean(y_true == y_pred))}


DIGITS = TaskInfo(
    name="digits",
    description="scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download",
    kind="classification",
    metrics={"accuracy": "maximize"},
    options=DigitsOptions,
    build=build,
    score=accuracy,
)
