"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no download."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split


class DigitsOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)


def build(options: DigitsOptions, seed: int) -> Splits:
    """1,797 images of 64 pixels scaled to [0, 1] (so they can be rate-encoded), 10 classes;
    the split is stratified and depends only on the seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
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
