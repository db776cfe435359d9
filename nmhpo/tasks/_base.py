"""Task data as plain NumPy arrays, so tasks stay independent of torch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmhpo.errors import TaskError


@dataclass(frozen=True)
class TaskData:
    """Train and validation arrays of a classification task; features are in [0, 1]."""

    name: str
    x_train: np.ndarray  # (n_train, n_features) float32
    y_train: np.ndarray  # (n_train,) int64
    x_val: np.ndarray
    y_val: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def stratified_split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    n_train: int | None,
    val_fraction: float,
    seed: int,
) -> TaskData:
    """Per-class shuffled split; ``n_train`` then keeps a class-balanced subset of the rest."""
    rng = np.random.default_rng(seed)
    val_idx: list[np.ndarray] = []
    train_idx: list[np.ndarray] = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = max(1, round(len(idx) * val_fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    train = rng.permutation(np.concatenate(train_idx))
    val = np.sort(np.concatenate(val_idx))
    if n_train is not None:
        if n_train > len(train):
            raise TaskError(
                f"task {name}: n_train = {n_train} but only {len(train)} training samples exist"
            )
        train = train[:n_train]
    return TaskData(
        name=name,
        x_train=x[train],
        y_train=y[train],
        x_val=x[val],
        y_val=y[val],
        n_classes=int(y.max()) + 1,
    )
