"""A user's own regression data: any inputs, any number of outputs, from one .npz.

The science tasks read a file only in their own layout (pbl's 68 outputs, ptycho's two
images, bragg's peak position). A user with another regression problem has raw arrays in
their own units: this task scales them the way the networks need (inputs in [0, 1], targets
standardised) from the training split alone, so validation and test data never leak into
the scaling, and reports errors back in the user's units.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from nmhpo.errors import TaskError
from nmhpo.tasks._base import SPLITS, Splits, TaskInfo, TaskOptions, r2_per_output


class RegressionOptions(TaskOptions):
    """Attributes:
    scale_inputs: map the training split's input range onto [0, 1], per feature for flat
        inputs (columns of different units) and over all pixels for images (a pixel scaled
        on its own would distort the picture); validation and test values outside that
        range are clipped. Off, the file's inputs must already lie in [0, 1].
    standardize_targets: train on each output minus its training mean, over its training
        standard deviation; errors are reported in the file's units all the same. Off, the
        file's targets must be about unit scale already (with ``meta_y_mean`` and
        ``meta_y_std`` when errors should be reported in other units).
    """

    scale_inputs: bool = True
    standardize_targets: bool = True


def scale(arrays: dict[str, np.ndarray], options: Any) -> dict[str, np.ndarray]:
    """The file's arrays as the network takes them, with the targets' scale in ``meta_*``.
    Called on arrays whose structure was checked (numbers, finite, shapes that agree)."""
    out = dict(arrays)
    if options.scale_inputs:
        x = arrays["x_train"].astype(np.float64)
        axis = 0 if x.ndim == 2 else None
        low, high = x.min(axis=axis), x.max(axis=axis)
        with np.errstate(over="ignore"):
            span = high - low
        if not np.isfinite(span).all():
            raise TaskError(
                f"x_train: values from {x.min():.4g} to {x.max():.4g} are too far apart to "
                "scale; rescale them to a smaller range"
            )
        span = np.where(span > 0, span, 1.0)  # a constant feature: all zeros
        for split in SPLITS:
            scaled = (arrays[f"x_{split}"].astype(np.float64) - low) / span
            out[f"x_{split}"] = np.clip(scaled, 0.0, 1.0).astype(np.float32)
        # kept for whoever deploys the network (nmhpo export): raw inputs need the same
        out["meta_x_low"], out["meta_x_span"] = np.asarray(low), np.asarray(span)
    if options.standardize_targets:
        if "meta_y_mean" in arrays or "meta_y_std" in arrays:
            raise TaskError(
                "meta_y_mean/meta_y_std given and standardize_targets = true: the regression "
                "task standardises raw targets itself; give raw targets, or set "
                "standardize_targets = false to keep the file's own scaling"
            )
        y = arrays["y_train"].astype(np.float64).reshape(len(arrays["y_train"]), -1)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = y.mean(axis=0), y.std(axis=0)
        if not (np.isfinite(mean).all() and np.isfinite(std).all()):
            raise TaskError(
                f"y_train: values up to {np.abs(y).max():.4g} are too large to standardise; "
                "rescale them to a smaller range"
            )
        std = np.where(std > 0, std, 1.0)  # a constant output: trained on as zeros
        for split in SPLITS:
            target = arrays[f"y_{split}"].astype(np.float64)
            out[f"y_{split}"] = ((target.reshape(len(target), -1) - mean) / std).astype(np.float32)
        out["meta_y_mean"] = mean
        out["meta_y_std"] = std
    return out


def score(
    y_true: np.ndarray, y_pred: np.ndarray, meta: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """R^2 (scikit-learn's uniform average over outputs: it does not change under the
    standardisation), and RMSE and MAE in the file's units, pooled over outputs; with a
    single output, that output's own."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(len(y_pred), -1)
    if y_pred.shape != y_true.shape:
        raise TaskError(f"predictions {y_pred.shape} do not match targets {y_true.shape}")
    if len(y_true) < 2:
        raise TaskError(f"R^2 needs at least 2 validation samples; got {len(y_true)}")
    if ("y_mean" in meta) != ("y_std" in meta):
        raise TaskError("meta_y_mean and meta_y_std: give both, or neither")
    mean = np.asarray(meta.get("y_mean", 0.0), dtype=np.float64).reshape(-1)
    std = np.asarray(meta.get("y_std", 1.0), dtype=np.float64).reshape(-1)
    if mean.size not in (1, y_true.shape[1]) or std.size not in (1, y_true.shape[1]):
        raise TaskError(
            f"meta_y_mean/meta_y_std: expected {y_true.shape[1]} values (one per output); "
            f"got {mean.size} and {std.size}"
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise TaskError("meta_y_mean/meta_y_std: expected finite values and a std above 0")
    true_units, pred_units = y_true * std + mean, y_pred * std + mean
    err = pred_units - true_units
    return {
        "r2": float(r2_per_output(true_units, pred_units).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "mae": float(np.abs(err).mean()),
    }


def _needs_file(options: RegressionOptions, seed: int) -> Splits:
    raise TaskError("the regression task reads your data: set [task] path to an .npz file")


REGRESSION = TaskInfo(
    name="regression",
    description=(
        "your own regression data from one .npz ([task] path): any inputs, any outputs, "
        "scaled from the training split; R^2, RMSE and MAE in your units"
    ),
    kind="regression",
    metrics={"r2": "maximize", "rmse": "minimize", "mae": "minimize"},
    options=RegressionOptions,
    build=_needs_file,
    score=score,
    adapt=scale,
    needs_path=True,
)
