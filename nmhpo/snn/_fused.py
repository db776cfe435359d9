"""Leaky integrate-and-fire over all time steps of one layer, as one autograd node.

A feedforward SNN can run layer by layer: every step's input current of a layer is known once
the previous layer has run, so only the membrane recurrence stays a loop over time. Running it
inside one `torch.autograd.Function`, with the backward pass through time written out, removes
the per-step autograd graph and Python module calls that dominate small networks.

It reproduces `snntorch.Leaky` (reset from the previous step's membrane, detached; "subtract",
"zero" and "none" resets; Heaviside spikes with snnTorch's fast-sigmoid, sigmoid or atan
surrogate gradients): tests/snn/test_fused.py checks spikes and gradients against snnTorch.
"""

from __future__ import annotations

import math
from typing import Any

import torch

SURROGATES = {"fast_sigmoid": 0, "sigmoid": 1, "atan": 2}
RESETS = {"subtract": 0, "zero": 1, "none": 2}


def surrogate_grad(kind: int, x: torch.Tensor, slope: float) -> torch.Tensor:
    """d spike / d membrane as snnTorch's surrogates define it (x = mem - threshold)."""
    if kind == 0:
        return 1.0 / (slope * x.abs() + 1.0) ** 2
    if kind == 1:
        # NOTE: snnTorch writes this as slope e^(-kx) / (e^(-kx) + 1)^2, which overflows to
        # inf/inf = NaN for kx < -88 (a membrane far below threshold); this form is stable.
        s = torch.sigmoid(slope * x)
        return slope * s * (1.0 - s)
    alpha = slope / 12.5  # nmhpo maps the shared slope to atan's alpha this way
    return alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


def _membranes(cur: torch.Tensor, beta: float, threshold: float, reset: int) -> torch.Tensor:
    """Membrane after each step's input, (T, B, ...): what snnTorch's ``Leaky`` returns as mem."""
    mems = torch.empty_like(cur)
    mem = torch.zeros_like(cur[0])
    for t in range(cur.shape[0]):
        # The reset of step t comes from the previous membrane (snnTorch's reset_delay).
        if reset == 0:
            fired = (mem > threshold).to(cur.dtype)
            mem = torch.add(cur[t], mem, alpha=beta).sub_(fired, alpha=threshold)
        elif reset == 1:
            kept = (mem <= threshold).to(cur.dtype)
            mem = torch.addcmul(cur[t], kept, mem, value=beta)
        else:
            mem = torch.add(cur[t], mem, alpha=beta)
        mems[t] = mem
    return mems


class _LeakyOverTime(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        cur: torch.Tensor,
        beta: float,
        threshold: float,
        reset: int,
        surrogate: int,
        slope: float,
    ) -> torch.Tensor:
        mems = _membranes(cur, beta, threshold, reset)
        ctx.save_for_backward(mems)
        ctx.params = (beta, threshold, reset, surrogate, slope)
        return (mems > threshold).to(cur.dtype)

    @staticmethod
    def backward(ctx: Any, grad_spk: torch.Tensor) -> tuple[Any, ...]:  # type: ignore[override]
        (mems,) = ctx.saved_tensors
        beta, threshold, reset, surrogate, slope = ctx.params
        # d loss / d mem_t before the carry from later steps, for all steps at once.
        grad = grad_spk * surrogate_grad(surrogate, mems - threshold, slope)
        if reset == 1:  # mem_t = beta (1 - fired_t) mem_{t-1} + cur_t, fired detached
            factor = (mems[:-1] <= threshold).to(grad.dtype) * beta
            for t in range(mems.shape[0] - 2, -1, -1):
                grad[t].addcmul_(grad[t + 1], factor[t])
        else:
            for t in range(mems.shape[0] - 2, -1, -1):
                grad[t].add_(grad[t + 1], alpha=beta)
        return grad, None, None, None, None, None


def leaky_over_time(
    cur: torch.Tensor, *, beta: float, threshold: float, reset: str, surrogate: str, slope: float
) -> torch.Tensor:
    """Spikes (T, B, ...) of a Leaky layer driven by currents ``cur`` (T, B, ...)."""
    return _LeakyOverTime.apply(
        cur, float(beta), float(threshold), RESETS[reset], SURROGATES[surrogate], float(slope)
    )


def leaky_membranes_over_time(
    cur: torch.Tensor, *, beta: float, threshold: float, reset: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spikes and membranes (both (T, B, ...)) of a Leaky layer, for inference only (no
    autograd node): the same loop as `leaky_over_time`, so the spikes are identical, with the
    membranes kept for counting their updates."""
    mems = _membranes(cur, float(beta), float(threshold), RESETS[reset])
    return (mems > threshold).to(cur.dtype), mems


def integrate_mean(cur: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over time of a non-spiking leaky integrator m_t = beta m_{t-1} + cur_t, as one
    weighted sum: m's mean is sum_t c_t cur_t with c_t = sum_{s>=t} beta^(s-t) / T."""
    steps = cur.shape[0]
    remaining = torch.arange(steps, 0, -1, dtype=cur.dtype, device=cur.device)  # T - t
    if beta < 1.0:
        weights = (1 - beta**remaining) / ((1 - beta) * steps)
    else:
        weights = remaining / steps
    return torch.einsum("t...,t->...", cur, weights)
