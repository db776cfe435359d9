"""Dense spiking networks of snnTorch Leaky neurons with explicit state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn


def make_surrogate(name: str, slope: float) -> Callable[..., Any]:
    """snnTorch surrogate gradient by name.

    ``slope`` is the steepness for fast_sigmoid and sigmoid; for atan it is mapped to
    ``alpha = slope / 12.5`` so the shared default (25) gives snnTorch's own default (2.0).
    """
    if name == "fast_sigmoid":
        return surrogate.fast_sigmoid(slope=slope)
    if name == "sigmoid":
        return surrogate.sigmoid(slope=slope)
    if name == "atan":
        return surrogate.atan(alpha=slope / 12.5)
    raise ValueError(f"unknown surrogate {name!r}")


class SpikingMLP(nn.Module):
    """Linear layers, each followed by a Leaky neuron layer; the output is read from membranes.

    State is passed explicitly (``init_hidden=False``) so a short last batch never silently
    resets the membranes, and the forward pass also returns how many events entered each
    weight layer: the activity the crossbar model prices.
    """

    def __init__(
        self,
        sizes: list[int],
        *,
        beta: float,
        threshold: float,
        spike_grad: Callable[..., Any],
    ) -> None:
        super().__init__()
        self.sizes = list(sizes)
        self.fcs = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=False)
        )
        self.lifs = nn.ModuleList(
            snn.Leaky(beta=beta, threshold=threshold, spike_grad=spike_grad, init_hidden=False)
            for _ in sizes[1:]
        )

    def forward(self, x_seq: torch.Tensor, num_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``num_steps`` time steps.

        Args:
            x_seq: (T, B, F) encoded input, or (1, B, F) for direct encoding, where the same
                current enters every step.
            num_steps: T.

        Returns:
            The output membrane averaged over time, (B, n_classes), and the number of input
            events per weight layer summed over batch and time, (n_layers,).
        """
        batch = x_seq.shape[1]
        # The first layer has no recurrence: one matmul over all steps at once.
        first = self.fcs[0](x_seq.reshape(-1, x_seq.shape[-1])).reshape(x_seq.shape[0], batch, -1)
        repeat = num_steps if x_seq.shape[0] == 1 else 1
        events = [torch.count_nonzero(x_seq.detach()).to(torch.float64) * repeat]
        events += [torch.zeros((), dtype=torch.float64) for _ in self.fcs[1:]]
        mems = [x_seq.new_zeros(batch, n) for n in self.sizes[1:]]
        out_sum = x_seq.new_zeros(batch, self.sizes[-1])
        last = len(self.lifs) - 1
        for t in range(num_steps):
            cur = first[0 if repeat > 1 else t]
            for i, lif in enumerate(self.lifs):
                spk, mems[i] = lif(cur, mems[i])
                if i < last:
                    events[i + 1] = events[i + 1] + spk.detach().sum(dtype=torch.float64)
                    cur = self.fcs[i + 1](spk)
            out_sum = out_sum + mems[-1]
        return out_sum / num_steps, torch.stack(events)
