"""Input encodings: static inputs in [0, 1] to time-first spike trains (or currents), and an
event task's fine-grid event counts to num_steps spike frames."""

from __future__ import annotations

import torch


def encode(x: torch.Tensor, encoding: str, num_steps: int, gen: torch.Generator) -> torch.Tensor:
    """Time-first input for ``num_steps`` steps.

    * rate: Bernoulli spikes with probability x each step, (T, B, ...).
    * latency: one spike per input, earlier for larger values: step floor((1 - x)(T - 1));
      an input of 0 never spikes. (T, B, ...).
    * delta: sigma-delta modulation, a deterministic rate code: x is accumulated each step and
      a spike is emitted (and 1 subtracted) whenever the sum reaches 1. (T, B, ...).
    * direct: the analog value as a constant current, (1, B, ...), reused every step.
    * events: ``x`` is already spikes, event counts on a fine time grid (B, T_fine, ...) (an
      event task's samples): the fine bins are summed into ``num_steps`` frames
      (`bin_time`), and a frame is a spike wherever it holds at least one event (a binary
      frame: several events of one pixel and polarity in one step are one spike). (T, B, ...).

    Everything is made on ``x``'s device; ``gen`` must live there too (rate draws from it).
    """
    if encoding == "rate":
        draws = torch.rand((num_steps, *x.shape), generator=gen, dtype=x.dtype, device=x.device)
        return (draws < x).to(x.dtype)
    if encoding == "latency":
        when = torch.floor((1.0 - x) * (num_steps - 1)).long()
        steps = torch.arange(num_steps, device=x.device).view(-1, *([1] * x.dim()))
        return ((steps == when.unsqueeze(0)) & (x.unsqueeze(0) > 0)).to(x.dtype)
    if encoding == "delta":
        # Spike count by step t is floor((t + 1) x); its increments are the spikes.
        t = torch.arange(1, num_steps + 1, dtype=x.dtype, device=x.device).view(
            -1, *([1] * x.dim())
        )
        counts = torch.floor(t * x.unsqueeze(0) + 1e-6)
        return torch.diff(counts, dim=0, prepend=torch.zeros_like(counts[:1]))
    if encoding == "direct":
        return x.unsqueeze(0)
    if encoding == "events":
        return (bin_time(x, num_steps) > 0).to(torch.float32)
    raise ValueError(f"unknown encoding {encoding!r}")


def bin_time(x: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Event counts (B, T_fine, ...) summed into ``num_steps`` frames, time first (T, B, ...).

    Frame ``j`` sums fine bins ``floor(j T_fine / T)`` to ``floor((j + 1) T_fine / T) - 1``:
    every fine bin lands in exactly one frame, so the counts are preserved. With ``num_steps``
    above ``T_fine`` some frames are empty. Vectorized: one cumulative sum over time, read at
    the frame boundaries.
    """
    fine = x.shape[1]
    cum = torch.cumsum(x, dim=1, dtype=torch.int32)  # int32: half the memory of int64
    cum = torch.cat([torch.zeros_like(cum[:, :1]), cum], dim=1)
    bounds = (torch.arange(num_steps + 1, device=x.device) * fine) // num_steps
    frames = cum[:, bounds[1:]] - cum[:, bounds[:-1]]
    return frames.transpose(0, 1)
