"""Synthetic event-camera digits: scikit-learn's digits seen by a moving DVS, no download.

N-MNIST (Orchard et al. 2015) was recorded by moving an event camera in three saccades in front
of MNIST digits on a screen. This task does the same offline: each of the 1,797 8x8 digits is
upsampled (bilinear) onto a ``size`` x ``size`` canvas, moved along the three saccades of a
triangle, and turned into ON/OFF events by a log-intensity-change camera model with a contrast
threshold (`nmhpo.tasks._events.dvs_events`). A sample is the event counts on a fine grid of
``time_bins`` bins, ``(time_bins, 2, size, size)`` uint8; the study's ``num_steps`` frames are
summed from it at training time.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from nmhpo.tasks._base import Splits, TaskInfo, TaskOptions, stratified_split
from nmhpo.tasks._digits import accuracy, load
from nmhpo.tasks._events import bilinear_sample, dvs_events, saccade_offsets

#: Digits are generated in chunks of this many images: bounds the float64 intermediates.
_CHUNK = 256


class EventsDigitsOptions(TaskOptions):
    n_train: int | None = Field(default=None, ge=10)
    val_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=0.5)
    #: Canvas side in pixels; the digit is drawn at 2x (16x16) in its middle.
    size: int = Field(default=24, ge=16, le=64)
    #: Fine time bins per sample (the three saccades share them); num_steps <= time_bins.
    time_bins: int = Field(default=24, ge=3, le=240)
    #: Size of the saccade triangle in pixels.
    saccade_px: float = Field(default=4.0, gt=0.0, le=16.0)
    #: Contrast threshold in log-intensity units (a DVS's is typically 0.15-0.3).
    contrast_threshold: float = Field(default=0.25, gt=0.0, le=2.0)


def render(images: np.ndarray, size: int, offsets: np.ndarray, scale: float = 2.0) -> np.ndarray:
    """Images (n, h, w) in [0, 1], drawn ``scale`` times larger in the middle of a ``size``
    canvas and shifted by each of ``offsets`` (T, 2) pixels: (n, T, size, size)."""
    _, h, w = images.shape
    grid = np.arange(size, dtype=np.float64) + 0.5 - size / 2  # pixel centres about the middle
    rows = (grid[None, :, None] - offsets[:, 0, None, None]) / scale + h / 2 - 0.5
    cols = (grid[None, None, :] - offsets[:, 1, None, None]) / scale + w / 2 - 0.5
    rows, cols = np.broadcast_arrays(rows, cols)
    return bilinear_sample(images, rows, cols)


def record(images: np.ndarray, options: EventsDigitsOptions) -> np.ndarray:
    """The event counts of ``images`` (n, h, w) in [0, 1]: (n, time_bins, 2, size, size)."""
    offsets = saccade_offsets(options.time_bins, options.saccade_px)
    out = np.empty((len(images), options.time_bins, 2, options.size, options.size), dtype=np.uint8)
    for first in range(0, len(images), _CHUNK):
        scene = render(images[first : first + _CHUNK], options.size, offsets)
        out[first : first + _CHUNK] = dvs_events(scene, options.contrast_threshold)
    return out


def build(options: EventsDigitsOptions, seed: int) -> Splits:
    """The digits' events, split as the digits task splits its images (stratified, by seed).

    The camera model is deterministic: the seed decides the split only.
    """
    data, target = load()
    images = (data / 16.0).reshape(-1, 8, 8)
    x = record(images, options)
    return stratified_split(
        x,
        target.astype(np.int64),
        options.n_train,
        options.val_fraction,
        options.test_fraction,
        seed,
    )


EVENTS_DIGITS = TaskInfo(
    name="events-digits",
    description=(
        "scikit-learn's digits moved in three saccades before a simulated event camera "
        "(ON/OFF events, 2x24x24), no download"
    ),
    kind="classification",
    metrics={"accuracy": "maximize"},
    options=EventsDigitsOptions,
    build=build,
    score=accuracy,
    events=True,
)
