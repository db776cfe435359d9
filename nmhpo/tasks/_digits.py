"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no download."""

from __future__ import annotations

import numpy as np

from nmhpo.tasks._base import TaskData, stratified_split


def load_digits_task(n_train: int | None, val_fraction: float, seed: int) -> TaskData:
    """1,797 images of 64 pixels scaled to [0, 1] (so they can be rate-encoded), 10 classes.

    The split is stratified and depends only on ``seed``, so every trial and worker of a study
    sees the same validation set.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    return stratified_split("digits", x, y, n_train, val_fraction, seed)
