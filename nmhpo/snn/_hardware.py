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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from nmhpo.crossbar import HARDWARE_KNOBS

#: Rows of partial sums handled per chunk, bounding memory on large first layers.
_CHUNK_ROWS = 1 << 14


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
        weight = layer.weight.detach()
        self.conv = isinstance(layer, nn.Conv2d)
        self.kernel = layer.kernel_size[0] if self.conv else 1
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
        # (sign, slice, out, group, row) -> (group, row, sign*slice*out) for one matmul per group
        self.cells = (
            cells.reshape(2, n_slices, self.out_features, self.n_groups, self.group)
            .permute(3, 4, 0, 1, 2)
            .reshape(self.n_groups, self.group, 2 * n_slices * self.out_features)
            .contiguous()
        )
        self.n_slices = n_slices
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
        """x (N, rows) -> the analog column currents (G, N, 2 * S, O): groups first, as the
        batched product leaves them (no copy into another layout)."""
        pad = self.n_groups * self.group - self.rows
        if pad:
            x = F.pad(x, (0, pad))
        xg = x.reshape(x.shape[0], self.n_groups, self.group).transpose(0, 1)  # (G, N, r)
        psum = torch.bmm(xg, self.cells)  # (G, N, 2*S*O)
        return psum.view(self.n_groups, x.shape[0], 2 * self.n_slices, self.out_features)

    def _rows_forward(self, x: torch.Tensor) -> torch.Tensor:
        psum = self._partial_sums(x)
        # Each (sign, slice) column's digital weight: +-base^j, times the ADC's step.
        weight = torch.stack([self.slice_weight, -self.slice_weight])  # (2, S)
        if self.calibrating:
            # Over rows first (whole columns at a time), then outputs: 10-20x faster than one
            # amax over both when there are few outputs (conv layers), no slower otherwise.
            per_column = psum.view(-1, psum.shape[2] * psum.shape[3]).amax(dim=0)
            seen = per_column.view(2, self.n_slices, self.out_features).amax(dim=2)
            self._seen = torch.maximum(self._seen, seen)
        elif self.adc_range is not None:
            # NOTE: in place on the fresh product, one pass each: at N x G x 2S x O elements
            # this is most of a scoring pass's time (ptycho, 512 wide: 3x faster in place, see
            # benchmarks/results/crossbar_inference.json), and inference needs no autograd.
            full = self.adc_range.view(1, 1, 2 * self.n_slices, 1)
            psum.div_(full).clamp_(0.0, 1.0).mul_(self.adc_levels).round_()
            weight = weight * (self.adc_range / self.adc_levels)
        # Shift-and-add over slices and signs, then the sum over groups: one batched
        # matrix-vector product per (group, row) reads the codes once.
        out = torch.matmul(weight.view(1, 1, 1, -1), psum).sum(dim=0).squeeze(1) * self.scale
        return out if self.bias is None else out + self.bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv:
            batch, _, height, width = x.shape
            cols = F.unfold(x, self.kernel, padding=self.kernel // 2)  # (B, rows, L)
            flat = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        else:
            flat = x
        out = torch.cat(
            [
                self._rows_forward(flat[i : i + _CHUNK_ROWS])
                for i in range(0, flat.shape[0], _CHUNK_ROWS)
            ]
        )
        if self.conv:
            return (
                out.reshape(batch, height * width, -1)
                .transpose(1, 2)
                .reshape(batch, -1, height, width)
            )
        return out


def crossbar_synapses(weights: nn.ModuleList, hw: HardwarePoint) -> list[CrossbarSynapse]:
    """One crossbar synapse per weight layer, with the same device seed for a given point.

    The generator stays on the CPU whatever the layers' device (see the variation's note).
    """
    gen = torch.Generator().manual_seed(hw.seed)
    return [CrossbarSynapse(layer, hw, gen) for layer in weights]
