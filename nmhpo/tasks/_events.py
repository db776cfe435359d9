"""Event data shared by the event tasks: events to a fine time grid, and a DVS camera model.

An event task stores each sample as event counts on a fine time grid, ``(time_bins, 2, H, W)``
uint8 (channel 0: OFF events, 1: ON events, as tonic orders polarity 0/1), so that a study's
``num_steps`` (a searched knob) can be chosen freely: `nmhpo.snn` sums the fine bins into
``num_steps`` frames at training and inference time (encoding "events"). Counts above 255 in
one fine bin are clipped (never seen at the grids used here).
"""

from __future__ import annotations

import numpy as np

#: Channels of an event frame: OFF (polarity 0) then ON (polarity 1).
POLARITIES = 2
_MAX_COUNT = np.iinfo(np.uint8).max


def bin_events(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    p: np.ndarray,
    *,
    time_bins: int,
    height: int,
    width: int,
    t_start: float,
    t_end: float,
) -> np.ndarray:
    """Count events into ``(time_bins, 2, height, width)`` frames over ``[t_start, t_end)``.

    Bin ``k`` holds the events with ``t_start + k * dt <= t < t_start + (k + 1) * dt``,
    ``dt = (t_end - t_start) / time_bins``; events outside the window or the sensor are
    dropped, so the counts sum to the number of events inside. One ``np.bincount`` over a flat
    index, no loop over events. ``p`` is 0 (OFF) or 1 (ON); any nonzero value counts as ON.
    """
    t = np.asarray(t, dtype=np.float64)
    xi, yi = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    pi = (np.asarray(p) != 0).astype(np.int64)
    span = float(t_end) - float(t_start)
    k = np.floor((t - t_start) * (time_bins / span)).astype(np.int64) if span > 0 else 0 * xi
    keep = (k >= 0) & (k < time_bins) & (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
    flat = ((k * POLARITIES + pi) * height + yi) * width + xi
    size = time_bins * POLARITIES * height * width
    counts = np.bincount(flat[keep], minlength=size)
    return (
        np.minimum(counts, _MAX_COUNT)
        .astype(np.uint8)
        .reshape(time_bins, POLARITIES, height, width)
    )


def dvs_events(intensity: np.ndarray, threshold: float, dark: float = 0.1) -> np.ndarray:
    """ON/OFF event counts of a log-intensity-change camera watching ``intensity``.

    Args:
        intensity: (..., T + 1, H, W) frames in [0, 1], the scene at T + 1 instants.
        threshold: contrast threshold C, in log-intensity units: a pixel emits one event each
            time its log intensity crosses a level ``n * C`` (the reference level of a DVS
            pixel moves by C per event, so n crossings make n events).
        dark: added to the intensity before the log (a sensor's dark current): a black pixel
            has a finite log intensity.

    Returns:
        (..., T, 2, H, W) uint8 counts: OFF events in channel 0, ON in channel 1. A static
        scene gives none; a moving edge gives events where the intensity changes.
    """
    levels = np.floor(np.log(np.asarray(intensity, dtype=np.float64) + dark) / threshold)
    change = np.diff(levels, axis=-3)
    off = np.clip(-change, 0, _MAX_COUNT)
    on = np.clip(change, 0, _MAX_COUNT)
    return np.stack([off, on], axis=-3).astype(np.uint8)


def bilinear_sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``images`` (n, h, w) read at real coordinates ``rows``/``cols`` (any shape S), with
    bilinear interpolation and zeros outside; returns (n, *S). Vectorized over all of it."""
    n, h, w = images.shape
    padded = np.zeros((n, h + 2, w + 2), dtype=np.float64)
    padded[:, 1:-1, 1:-1] = images
    r = np.clip(rows + 1.0, 0.0, h + 1.0)  # outside the image reads the zero border
    c = np.clip(cols + 1.0, 0.0, w + 1.0)
    r0 = np.minimum(np.floor(r).astype(np.int64), h)
    c0 = np.minimum(np.floor(c).astype(np.int64), w)
    fr, fc = r - r0, c - c0
    top = padded[:, r0, c0] * (1 - fc) + padded[:, r0, c0 + 1] * fc
    bottom = padded[:, r0 + 1, c0] * (1 - fc) + padded[:, r0 + 1, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def saccade_offsets(time_bins: int, amplitude: float) -> np.ndarray:
    """(time_bins + 1, 2) (row, column) offsets in pixels of three straight saccades along a
    triangle, as N-MNIST's sensor moves (Orchard et al. 2015): up-right, left, back to start.
    Each saccade takes a third of the bins (the last takes the remainder)."""
    a = float(amplitude)
    corners = np.array([[a / 2, -a / 2], [-a / 2, 0.0], [a / 2, a / 2], [a / 2, -a / 2]])
    # Position along the closed path at time_bins + 1 instants, uniform in time.
    s = np.linspace(0.0, 3.0, time_bins + 1)
    leg = np.minimum(np.floor(s).astype(np.int64), 2)
    frac = (s - leg)[:, None]
    return corners[leg] * (1 - frac) + corners[leg + 1] * frac
