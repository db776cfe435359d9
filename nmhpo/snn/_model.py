"""Spiking networks of snnTorch neurons with explicit state: dense and small convolutional."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn
from torch.nn import functional as F  # noqa: N812

from nmhpo.snn._fused import (
    SURROGATES,
    integrate_mean,
    leaky_membranes_over_time,
    leaky_over_time,
)

if TYPE_CHECKING:
    from nmhpo.snn._neurobench import WorkloadCounter

#: A weight layer's forward: input (B, ...) -> synaptic current (B, ...).
Synapse = Callable[[torch.Tensor], torch.Tensor]


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


@dataclass(frozen=True)
class Architecture:
    """Layer shapes, enough to rebuild the network and to map it onto crossbars.

    The weight layers run in this order: the conv encoder (each conv followed by 2x2 max
    pooling), the dense layers, then the conv decoder when ``decoder_channels`` is set. A
    decoder turns the last dense layer's spikes into a (``decoder_channels[0]``, side / 2^D,
    side / 2^D) map and, D times, doubles its size (nearest neighbour: each spike repeated
    2 x 2) and convolves it, so the output is an image of the input's size: what an
    image-to-image task (ptychography) predicts, with the output channels
    ``n_outputs / (height * width)``. The dense bottleneck stays because a diffraction pattern
    is global: every detector pixel depends on the whole object patch, which a conv encoder's
    local windows do not see (measured on ptycho at 2,000 frames: a float conv
    encoder-decoder without it, 0.565 rad of phase error, against 0.445 for a dense network
    and 0.615 for the training mean; benchmarks/results/ptycho.json).
    """

    input_shape: tuple[int, ...]  # (features,) or (channels, height, width)
    conv_channels: tuple[int, ...]  # output channels of each conv layer (may be empty)
    kernel_size: int
    hidden: tuple[int, ...]  # widths of the hidden dense layers
    n_outputs: int
    decoder_channels: tuple[int, ...] = ()  # input channels of each decoder conv layer

    def __post_init__(self) -> None:
        if self.decoder_channels:
            c, h, w = self.image_shape
            depth = len(self.decoder_channels)
            if h != w or h % 2**depth:
                raise ValueError(
                    f"{depth} decoder layers need a square image input whose side divides by "
                    f"{2**depth}; got {h} x {w}"
                )
            if self.n_outputs % (h * w):
                raise ValueError(
                    f"a decoder predicts an image of the input's size ({h} x {w}); "
                    f"{self.n_outputs} outputs are not a whole number of such images"
                )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The input as (C, H, W); a flat input of square size is read as one channel."""
        if len(self.input_shape) == 3:
            c, h, w = self.input_shape
            return c, h, w
        n = int(math.prod(self.input_shape))
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"a conv layer needs an image input; got shape {self.input_shape}")
        return 1, side, side

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The readout's shape per sample: (n_outputs,), or (C, H, W) after a decoder."""
        if not self.decoder_channels:
            return (self.n_outputs,)
        _, h, w = self.image_shape
        return self.n_outputs // (h * w), h, w

    def conv_shapes(self) -> list[tuple[int, int, int, int]]:
        """(c_in, c_out, side_in, side_out) of each conv layer; each is followed by 2x2
        max pooling while the feature map is at least 2 wide."""
        if not self.conv_channels:
            return []  # a dense network: any input shape (SHD's 700 channels are no image)
        shapes = []
        c, side, _ = self.image_shape
        for c_out in self.conv_channels:
            shapes.append((c, c_out, side, side))  # "same" padding: the conv keeps the size
            c, side = c_out, side // 2 if side >= 2 else side
        return shapes

    def decoder_shapes(self) -> list[tuple[int, int, int]]:
        """(c_in, c_out, side) of each decoder conv layer, at its (doubled) input's side."""
        if not self.decoder_channels:
            return []
        c_out, side, _ = self.output_shape
        depth = len(self.decoder_channels)
        outs = [*self.decoder_channels[1:], c_out]
        return [
            (c_in, c, side // 2 ** (depth - 1 - j))
            for j, (c_in, c) in enumerate(zip(self.decoder_channels, outs, strict=True))
        ]

    def decoder_input(self) -> tuple[int, int, int]:
        """The map the last dense layer's spikes form for the decoder, before doubling."""
        c_in, _, side = self.decoder_shapes()[0]
        return c_in, side // 2, side // 2

    def flat_size(self) -> int:
        if not self.conv_channels:
            return int(math.prod(self.input_shape))
        c_in, c_out, side_in, side_out = self.conv_shapes()[-1]
        pooled = side_out // 2 if side_out >= 2 else side_out
        return c_out * pooled * pooled

    def dense_sizes(self) -> list[int]:
        last = math.prod(self.decoder_input()) if self.decoder_channels else self.n_outputs
        return [self.flat_size(), *self.hidden, last]

    def layer_inputs(self) -> list[tuple[int, ...]]:
        """Each weight layer's input per sample and step: (C, H, W) for a conv layer."""
        shapes: list[tuple[int, ...]] = [(ci, s, s) for ci, _, s, _ in self.conv_shapes()]
        shapes += [(n,) for n in self.dense_sizes()[:-1]]
        shapes += [(ci, s, s) for ci, _, s in self.decoder_shapes()]
        return shapes

    def crossbar_layers(self) -> list[tuple[int, int, int, int, int]]:
        """(c_in, c_out, k, d_in, d_out) per weight layer, for the crossbar model. A conv
        layer computes every output position at full resolution before pooling; a decoder
        layer reads the doubled map, so each spike it receives counts four times, as the
        crossbar's input rows see it."""
        k = self.kernel_size
        out = [(ci, co, k, si, so) for ci, co, si, so in self.conv_shapes()]
        sizes = self.dense_sizes()
        out += [(a, b, 1, 1, 1) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        out += [(ci, co, k, s, s) for ci, co, s in self.decoder_shapes()]
        return out


def make_neuron(
    kind: str, *, beta: float, alpha: float, threshold: float, reset: str, spike_grad: Any
) -> snn.Leaky | snn.Synaptic:
    if kind == "leaky":
        return snn.Leaky(
            beta=beta, threshold=threshold, spike_grad=spike_grad, reset_mechanism=reset
        )
    if kind == "synaptic":
        return snn.Synaptic(
            alpha=alpha,
            beta=beta,
            threshold=threshold,
            spike_grad=spike_grad,
            reset_mechanism=reset,
        )
    raise ValueError(f"unknown neuron {kind!r}")


class SpikingNet(nn.Module):
    """Conv and dense weight layers, each followed by snnTorch neurons; the output layer is a
    non-spiking leaky integrator (membrane readout) or spiking neurons (spike-count readout).

    State is passed explicitly (``init_hidden=False``) so a short last batch never silently
    resets the membranes. The forward pass also counts the events that enter each weight
    layer: the activity the crossbar model prices.
    """

    def __init__(
        self,
        arch: Architecture,
        *,
        neuron: str,
        beta: float,
        alpha: float,
        threshold: float,
        reset: str,
        spike_grad: Any,
        readout: str,
        surrogate: str = "",
        slope: float = 25.0,
        readout_beta: float | None = None,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.surrogate = surrogate  # name, for the fused Leaky path ("" = not fused)
        self.slope = slope
        self.readout = readout
        self.beta = beta
        #: The membrane readout's leak (default: ``beta``). A converted network reads the
        #: mean of its output currents (0), the ReLU network's output in expectation.
        self.readout_beta = beta if readout_beta is None else readout_beta
        k = arch.kernel_size
        weights: list[nn.Module] = [
            nn.Conv2d(ci, co, k, padding=k // 2) for ci, co, _, _ in arch.conv_shapes()
        ]
        sizes = arch.dense_sizes()
        weights += [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        weights += [nn.Conv2d(ci, co, k, padding=k // 2) for ci, co, _ in arch.decoder_shapes()]
        self.weights = nn.ModuleList(weights)
        n_spiking = len(weights) - (1 if readout == "membrane" else 0)
        neurons = [
            make_neuron(
                neuron,
                beta=beta,
                alpha=alpha,
                threshold=threshold,
                reset=reset,
                spike_grad=spike_grad,
            )
            for _ in range(n_spiking)
        ]
        self.neurons = nn.ModuleList(neurons)
        self.n_conv = len(arch.conv_channels)
        #: The weight layer whose spikes become the decoder's first map (-1: no decoder).
        self.to_decoder = (
            len(weights) - len(arch.decoder_channels) - 1 if arch.decoder_channels else -1
        )
        self.pool = nn.MaxPool2d(2)
        # NOTE: the fused path needs beta and the threshold as Python numbers. Read once here
        # (the buffers are fixed: neither is learnt), not from the buffers in every forward,
        # where float() on a CUDA buffer would wait for the GPU once per layer and batch.
        self._leaky_constants = [(float(n.beta.clamp(0, 1)), float(n.threshold)) for n in neurons]

    @property
    def n_layers(self) -> int:
        return len(self.weights)

    def _shape_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_conv:
            c, h, w = self.arch.image_shape
            return x.reshape(x.shape[0], c, h, w)
        return x.reshape(x.shape[0], -1)

    def _after_neuron(self, i: int, spk: torch.Tensor) -> torch.Tensor:
        """Layer ``i``'s spikes (or ReLU activations) as layer ``i + 1`` reads them."""
        if i < self.n_conv:
            if spk.shape[-1] >= 2:
                spk = self.pool(spk)
            if i == self.n_conv - 1:
                spk = spk.flatten(1)
        if 0 <= self.to_decoder <= i < self.n_layers - 1:
            if i == self.to_decoder:
                spk = spk.reshape(spk.shape[0], *self.arch.decoder_input())
            spk = F.interpolate(spk, scale_factor=2, mode="nearest")
        return spk

    def forward(
        self,
        x_seq: torch.Tensor,
        num_steps: int,
        synapses: Sequence[Synapse] | None = None,
        counter: WorkloadCounter | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``num_steps`` time steps, layer by layer.

        A feedforward network needs no step-by-step interleaving of layers: each weight layer
        is applied to all steps at once, and only the neuron recurrence loops over time (fused
        into one autograd node for Leaky neurons, snnTorch's own modules otherwise).

        Args:
            x_seq: (T, B, ...) encoded input, or (1, B, ...) for direct encoding, where the
                same current enters every step.
            num_steps: T.
            synapses: replacements for the weight layers' forward (crossbar-aware inference);
                default: the float layers themselves.
            counter: accumulates NeuroBench's workload counts of this batch (inference
                only): each weight layer's input, each spiking layer's spikes and membranes.

        Returns:
            The readout (B, n_outputs): output membrane averaged over time, or spike counts
            per step; and the input events per weight layer and step, (T, n_layers).
        """
        syn = list(synapses) if synapses is not None else list(self.weights)
        steps_in, batch = x_seq.shape[0], x_seq.shape[1]
        # Counted on the input's device and read by the caller once per pass: no GPU sync.
        events = torch.zeros(num_steps, self.n_layers, dtype=torch.float64, device=x_seq.device)
        nz = (x_seq != 0).reshape(steps_in, -1).sum(dim=1).to(torch.float64)
        events[:, 0] = nz if steps_in > 1 else nz[0]
        h = self._shape_input(x_seq.reshape(steps_in * batch, *x_seq.shape[2:]))
        for i in range(self.n_layers):
            if counter is not None:
                counter.connection(i, h, batch, num_steps)
            cur = syn[i](h)
            cur = cur.reshape(-1, batch, *cur.shape[1:])
            if cur.shape[0] != num_steps:  # direct encoding: the same current every step
                cur = cur.expand(num_steps, *cur.shape[1:])
            if i == len(self.neurons):  # non-spiking output integrator
                return integrate_mean(cur, self.readout_beta).flatten(1), events
            spk = self._neuron_over_time(i, cur, counter)
            spk = self._after_neuron(i, spk.reshape(num_steps * batch, *spk.shape[2:]))
            if i + 1 < self.n_layers:
                events[:, i + 1] = (
                    spk.detach().reshape(num_steps, -1).sum(dim=1, dtype=torch.float64)
                )
            h = spk
        return spk.reshape(num_steps, batch, -1).mean(dim=0), events

    def relu_forward(
        self, x: torch.Tensor, *, keep: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The ReLU network of the same weight layers and max pooling, on analog input
        (B, ...): what conversion trains, then turns into this spiking network.

        Returns:
            The output (B, n_outputs), and with ``keep`` each weight layer's activation where
            its neurons sit (before pooling): ReLU'd for the spiking layers, raw for the
            output layer.
        """
        h = self._shape_input(x)
        acts: list[torch.Tensor] = []
        for i, layer in enumerate(self.weights):
            h = layer(h)
            if i == self.n_layers - 1:
                h = h.flatten(1)
                break
            h = torch.relu(h)
            if keep:
                acts.append(h)
            h = self._after_neuron(i, h)
        if keep:
            acts.append(h)
        return h, acts

    def _neuron_over_time(
        self, i: int, cur: torch.Tensor, counter: WorkloadCounter | None = None
    ) -> torch.Tensor:
        # (nn.ModuleList gives a plain Module; this is the snnTorch neuron make_neuron made)
        neuron: snn.Leaky | snn.Synaptic = self.neurons[i]
        if type(neuron) is snn.Leaky and self.surrogate in SURROGATES:
            beta, threshold = self._leaky_constants[i]
            if counter is not None:  # inference: the same loop, membranes kept
                spk, mems = leaky_membranes_over_time(
                    cur, beta=beta, threshold=threshold, reset=neuron.reset_mechanism
                )
                counter.neurons(spk, mems)
                return spk
            return leaky_over_time(
                cur,
                beta=beta,
                threshold=threshold,
                reset=neuron.reset_mechanism,
                surrogate=self.surrogate,
                slope=self.slope,
            )
        states: tuple[torch.Tensor, ...] | None = None
        out: list[torch.Tensor] = []
        mem_steps: list[torch.Tensor] = []
        for t in range(cur.shape[0]):
            spk, states = self._step(neuron, cur[t], states)
            out.append(spk)
            mem_steps.append(states[-1])  # the membrane is the last state (after syn)
        spikes = torch.stack(out)
        if counter is not None:
            counter.neurons(spikes, torch.stack(mem_steps))
        return spikes

    @staticmethod
    def _step(
        neuron: nn.Module, cur: torch.Tensor, state: tuple[torch.Tensor, ...] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        if isinstance(neuron, snn.Synaptic):
            syn, mem = state if state is not None else (torch.zeros_like(cur),) * 2
            spk, syn, mem = neuron(cur, syn, mem)
            return spk, (syn, mem)
        mem = state[0] if state is not None else torch.zeros_like(cur)
        spk, mem = neuron(cur, mem)
        return spk, (mem,)
