"""Crossbar-aware inference: a trained layer's product computed as the crossbars compute it.

Weights are quantized to ``weight_bits`` (sign by a differential pair of arrays, magnitude over
``ceil(log2(levels + 1) / cell_bits)`` cells of ``cell_bits`` each), the input rows are split
into crossbar-sized groups (``xbar_size`` input channels x k^2 kernel positions, the rows of one
PE), and every partial sum (per group, cell slice and sign) goes through an ``adc_bits`` ADC
whose range is calibrated on training inputs. Optional conductance variation multiplies each
programmed cell by (1 + sigma N(0, 1)), fixed per device by a seed. The digital periphery then
shifts and adds the slices and sums the groups, as in NeuroSim-style CIM macros.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nmhpo.crossbar import HARDWARE_KNOBS

#: Rows of partial sums handled per chunk, bounding memory on large first layers.
_CHUNK_ROWS = 1 << 14


def _same_size_conv(layer: nn.Conv2d) -> bool:
    """The convolutions the crossbar mapping assumes (every one nmhpo builds): square odd
    kernel, stride 1, no dilation or channel groups, zero padding that keeps the map's size."""
    k = layer.kernel_size[0]
    return (
        layer.kernel_size == (k, k)
        and k % 2 == 1
        and layer.stride == (1, 1)
        and layer.dilation == (1, 1)
        and layer.groups == 1
        and layer.padding == (k // 2, k // 2)
        and layer.padding_mode == "zeros"
    )


@contextmanager
def _ieee_conv(device: torch.device) -> Iterator[None]:
    """cuDNN convolutions in full float32 for the partial sums.

    NOTE: cuDNN convolves float32 in TF32 by default on Ampere and later GPUs (10-bit
    mantissa), which would move analog sums (direct-encoded inputs, conductance variation)
    across ADC code boundaries and make conv layers differ from linear ones (matmuls are full
    float32 by default) and from the CPU. The flag is put back at once: reading the legacy
    ``cudnn.allow_tf32`` while conv and RNN flags differ raises.
    """
    if device.type != "cuda":
        yield
        return
    # (set by torch's module-replacement trick, so absent from the module torch's stubs see)
    conv = torch.backends.cudnn.conv  # type: ignore[attr-defined]
    saved = conv.fp32_precision
    conv.fp32_precision = "ieee"
    try:
        yield
    finally:
        conv.fp32_precision = saved


@dataclass(frozen=True)
class HardwarePoint:
    """The knobs that change what a crossbar computes (not what it costs).

    Its fields are the knob table's inference knobs plus the device seed; a test keeps the
    two in step.
    """

    xbar_size: int
    adc_bits: int
    weight_bits: int
    cell_bits: int
    conductance_sigma: float = 0.0
    seed: int = 0

    @classmethod
    def from_knobs(cls, knobs: Mapping[str, Any], seed: int = 0) -> HardwarePoint:
        """The point of a full hardware design (preset knobs with a trial's values over them).

        Reads every knob the knob table marks as an inference knob, so the objective does not
        list them a second time; one no preset sets (conductance_sigma) falls back to the
        table's default. Priced-only knobs (clock, tech node, ...) are the cost model's.
        """
        values: dict[str, Any] = {}
        for knob in HARDWARE_KNOBS:
            if knob.inference:
                value = knobs.get(knob.name, knob.default)
                values[knob.name] = int(value) if knob.kind == "int" else float(value)
        return cls(**values, seed=seed)


class CrossbarSynapse:
    """A ``nn.Linear`` or ``nn.Conv2d`` evaluated on crossbars; call it like the layer.

    Its tensors live on the layer's device, so quantization, bit slicing, the ADC and the
    variation all run there; building it reads the largest weight once (one sync per layer).
    """

    def __init__(self, layer: nn.Module, hw: HardwarePoint, gen: torch.Generator) -> None:
        if not isinstance(layer, nn.Linear | nn.Conv2d):
            raise TypeError(f"crossbar inference maps Linear and Conv2d layers, not {layer}")
        weight = layer.weight.detach()
        self.conv = isinstance(layer, nn.Conv2d)
        self.kernel = 1
        if isinstance(layer, nn.Conv2d):
            if not _same_size_conv(layer):
                raise ValueError(f"crossbar inference maps 'same' convolutions only, not {layer}")
            self.kernel = layer.kernel_size[0]
        self.out_features = weight.shape[0]
        self.bias = None if layer.bias is None else layer.bias.detach()
        matrix = weight.reshape(self.out_features, -1)  # rows: c_in x k x k, channel-major
        rows = matrix.shape[1]
        self.n_groups = math.ceil(rows / (hw.xbar_size * self.kernel**2))
        # NOTE: a layer that fits one crossbar group (a first conv layer: 8 channels x 3x3 = 72
        # rows against 64 x 9 = 576) is not padded to the group's size: the zero rows add
        # nothing to a partial sum and cost 8x the work (measured: 0.74 s -> 0.1 s per 200
        # 28x28 images of such a layer).
        self.group = min(hw.xbar_size * self.kernel**2, rows)
        self.rows = rows
        w_max = float(matrix.abs().max()) or 1.0
        levels = max(1, 2 ** (hw.weight_bits - 1) - 1)
        q = torch.round(matrix / w_max * levels)
        n_slices = max(1, math.ceil(math.log2(levels + 1) / hw.cell_bits))
        base = 2**hw.cell_bits
        magnitude = torch.stack([q.clamp(min=0), (-q).clamp(min=0)])  # (2, O, rows)
        cells = torch.stack(
            [
                torch.remainder(torch.div(magnitude, base**j, rounding_mode="floor"), base)
                for j in range(n_slices)
            ],
            dim=1,
        )  # (2, S, O, rows) integer cell levels
        if hw.conductance_sigma > 0:
            # NOTE: drawn from a CPU generator and moved: the same seed programs the same
            # device on every machine (a CUDA generator would draw other numbers), and this
            # runs once per synapse, not per batch.
            noise = torch.randn(cells.shape, generator=gen, dtype=cells.dtype).to(cells.device)
            cells = (cells * (1.0 + hw.conductance_sigma * noise)).clamp(min=0.0)
        pad = self.n_groups * self.group - rows
        cells = F.pad(cells, (0, pad))
        self.n_slices = n_slices
        if self.conv:
            # A group's rows are whole input channels (channel-major rows, xbar_size channels
            # x k^2 per group), so the partial sums are a grouped convolution: one kernel per
            # (group, sign, slice, output), no im2col copy of the input, and the sums come out
            # channel-first as the layer's output is laid out.
            k = self.kernel
            self.group_channels = self.group // k**2
            self.in_channels = weight.shape[1]
            self.kernels = (
                cells.reshape(
                    2, n_slices, self.out_features, self.n_groups, self.group_channels, k, k
                )
                .permute(3, 0, 1, 2, 4, 5, 6)
                .reshape(-1, self.group_channels, k, k)
                .contiguous()
            )
        else:
            # (sign, slice, out, group, row) -> (group, row, sign*slice*out): one matmul per
            # group
            self.cells = (
                cells.reshape(2, n_slices, self.out_features, self.n_groups, self.group)
                .permute(3, 4, 0, 1, 2)
                .reshape(self.n_groups, self.group, 2 * n_slices * self.out_features)
                .contiguous()
            )
        device = weight.device
        self.slice_weight = torch.tensor(
            [float(base**j) for j in range(n_slices)], dtype=weight.dtype, device=device
        )
        self.scale = w_max / levels
        self.adc_levels = 2**hw.adc_bits - 1
        self.adc_range: torch.Tensor | None = None  # (2, S) after calibration
        self.calibrating = False
        self._seen = torch.zeros(2, n_slices, dtype=weight.dtype, device=device)

    def start_calibration(self) -> None:
        self.calibrating = True
        self._seen.zero_()

    def finish_calibration(self) -> None:
        """Fix each (sign, slice) ADC's full scale to the largest partial sum seen."""
        self.calibrating = False
        self.adc_range = torch.where(self._seen > 0, self._seen, torch.ones_like(self._seen))

    def _partial_sums(self, x: torch.Tensor) -> torch.Tensor:
        """The analog column currents, (G, N, 2 * S, O) for rows x (N, rows) of a linear
        layer, (N, G, 2 * S, O * H * W) for images x (N, C, H, W) of a conv layer: the layouts
        the products leave (no copy into another)."""
        if self.conv:
            pad = self.n_groups * self.group_channels - self.in_channels
            if pad:
                x = F.pad(x, (0, 0, 0, 0, 0, pad))
            with _ieee_conv(x.device):
                psum = F.conv2d(x, self.kernels, padding=self.kernel // 2, groups=self.n_groups)
            return psum.reshape(x.shape[0], self.n_groups, 2 * self.n_slices, -1)
        pad = self.n_groups * self.group - self.rows
        if pad:
            x = F.pad(x, (0, pad))
        xg = x.reshape(x.shape[0], self.n_groups, self.group).transpose(0, 1)  # (G, N, r)
        psum = torch.bmm(xg, self.cells)  # (G, N, 2*S*O)
        return psum.view(self.n_groups, x.shape[0], 2 * self.n_slices, self.out_features)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        psum = self._partial_sums(x)  # the (sign, slice) axis is 2 in both layouts
        # Each (sign, slice) column's digital weight: +-base^j, times the ADC's step.
        weight = torch.stack([self.slice_weight, -self.slice_weight]).view(-1)  # (2S,)
        if self.calibrating:
            # Over the leading axes, then along the contiguous last one: 10-20x faster than
            # one amax over all but the (sign, slice) axis when there are few outputs.
            seen = psum.amax(dim=(0, 1)).amax(dim=1).view(2, self.n_slices)
            self._seen = torch.maximum(self._seen, seen)
        elif self.adc_range is not None:
            # NOTE: in place on the fresh product, one pass each: at N x G x 2S x O elements
            # this is most of a scoring pass's time (ptycho, 512 wide: 3x faster in place, see
            # benchmarks/results/crossbar_inference.json), and inference needs no autograd.
            full = self.adc_range.view(1, 1, 2 * self.n_slices, 1)
            psum.div_(full).clamp_(0.0, 1.0).mul_(self.adc_levels).round_()
            weight = weight * (self.adc_range / self.adc_levels).view(-1)
        # Shift-and-add over slices and signs, then the sum over groups: one batched
        # vector-matrix product reads the codes once (per (group, row) of a linear layer, per
        # (image, group) over every output pixel of a conv layer).
        shifted = torch.matmul(weight.view(1, 1, 1, -1), psum).squeeze(2)
        if self.conv:  # (N, G, O*H*W) -> (N, O, H, W)
            batch, _, height, width = x.shape
            out = (shifted.sum(dim=1) * self.scale).view(batch, self.out_features, height, width)
            return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)
        out = shifted.sum(dim=0) * self.scale  # (N, O)
        return out if self.bias is None else out + self.bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        # Chunks of whole images (conv) or rows bound the partial sums' memory.
        per_item = x.shape[2] * x.shape[3] if self.conv else 1
        chunk = max(1, _CHUNK_ROWS // per_item)
        if x.shape[0] <= chunk:
            return self._forward(x)
        return torch.cat([self._forward(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])


def crossbar_synapses(weights: nn.ModuleList, hw: HardwarePoint) -> list[CrossbarSynapse]:
    """One crossbar synapse per weight layer, with the same device seed for a given point.

    The generator stays on the CPU whatever the layers' device (see the variation's note).
    """
    gen = torch.Generator().manual_seed(hw.seed)
    return [CrossbarSynapse(layer, hw, gen) for layer in weights]
