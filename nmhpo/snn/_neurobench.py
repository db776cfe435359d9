"""NeuroBench's complexity metrics of a network and of one inference pass over a split.

The workload counts are accumulated on the device inside the pass that scores a trial
(`SpikingNet.forward` hands each weight layer's input and each spiking layer's spikes and
membranes to a `WorkloadCounter`) and read back once at its end. Definitions follow neurobench
2.3.0 (``neurobench/metrics/workload/{synaptic_operations,activation_sparsity,
membrane_updates}.py``, ``metrics/utils/layers/macs.py``, ``metrics/static/*.py``) applied to
the network run step by step, as `StepwiseNet` runs it for NeuroBench; every count is per
inference (per sample):

* ``syn_ops_dense``: every weight times every input of each weight layer (``Linear``,
  ``Conv2d``) at every time step, zero or not. Biases are not synaptic operations, and a
  convolution counts only the kernel taps that land inside its zero-padded input.
* ``syn_ops_effective_ac`` / ``syn_ops_effective_mac``: the same over the pairs of a nonzero
  input and a nonzero weight. One layer call (one time step of one batch) whose inputs all lie
  in {-1, 0, 1} counts as accumulates, any other as multiply-accumulates: that is the first
  layer under direct encoding, whose analog input enters at every step.
* ``activation_sparsity``: zero outputs over all outputs of the spiking neuron layers, over
  layers, steps and samples. snnTorch neurons are NeuroBench's activation layers; a membrane
  readout is a non-spiking integrator, not one of them, so it counts in neither this nor
  ``membrane_updates``.
* ``membrane_updates``: per spiking layer, every neuron at the first step, then each neuron
  whose membrane differs from the step before.
* ``parameter_count``: the network's parameters (beta and the threshold are fixed buffers).
* ``footprint_bytes``: parameters and buffers at the precision they are stored in (float32).
  snnTorch's state buffers (``mem``, ``syn``) are empty in a network as built, which is what
  NeuroBench measures before its workload runs, so only the state dict counts.
* ``footprint_bytes_crossbar``: the same with the weight matrices at the hardware point's
  ``weight_bits`` (biases and neuron constants stay float32): the network as programmed.

The weights are the trained network's: under crossbar-aware inference a weight that
quantizes to zero still counts, since a crossbar reads every cell of its rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

if TYPE_CHECKING:
    from nmhpo.snn._model import SpikingNet

#: The workload metrics, in the order `WorkloadCounter.metrics` returns them.
WORKLOAD_METRICS = (
    "syn_ops_dense",
    "syn_ops_effective_ac",
    "syn_ops_effective_mac",
    "activation_sparsity",
    "membrane_updates",
)


def _reach(layer: nn.Module, input_shape: tuple[int, ...], dense: bool) -> torch.Tensor:
    """How many synaptic operations one active input element causes, per input element
    (flattened as the layer reads it), in float64.

    For a dense layer, the nonzero weights in the input's column; for a convolution, the
    nonzero weights over every output position whose kernel window covers the input element,
    which is the transposed convolution of an all-ones output (so the image border, where
    fewer windows reach, comes out right). ``dense`` counts every weight, zero or not.
    """
    # what SpikingNet builds (nn.ModuleList types its items as plain Modules)
    assert isinstance(layer, nn.Linear | nn.Conv2d)
    weight = layer.weight.detach().to(torch.float64)
    mask = torch.ones_like(weight) if dense else (weight != 0).to(torch.float64)
    if isinstance(layer, nn.Conv2d):
        _, height, width = input_shape
        ones = torch.ones(1, weight.shape[0], height, width, dtype=torch.float64)
        # numeric: SpikingNet pads by k // 2, never by name ("same" has no transposed form)
        padding = cast(tuple[int, ...], layer.padding)
        reach = F.conv_transpose2d(
            ones.to(weight.device), mask, stride=layer.stride, padding=padding
        )
        return reach.reshape(-1)
    return mask.sum(dim=0)


class WorkloadCounter:
    """NeuroBench's workload counts of one inference pass, accumulated over its batches on
    the network's device; nothing is read back to the host until `metrics`.

    Build it with `for_network`, pass it to `SpikingNet.forward` (``counter=``) for every
    batch of the pass, then read `metrics`.
    """

    def __init__(self, reach: list[torch.Tensor], dense_per_step: float) -> None:
        self.reach = reach
        self.dense_per_step = dense_per_step
        device = reach[0].device
        self.ac = torch.zeros((), dtype=torch.float64, device=device)
        self.mac = torch.zeros((), dtype=torch.float64, device=device)
        self.spikes = torch.zeros((), dtype=torch.float64, device=device)
        self.changed = torch.zeros((), dtype=torch.float64, device=device)
        self.activations = 0  # outputs of the spiking layers, known from shapes
        self.first_updates = 0  # neurons updated at the first step, known from shapes
        self.samples = 0
        self.num_steps = 0

    @classmethod
    def for_network(cls, net: SpikingNet) -> WorkloadCounter:
        """A counter for ``net``'s weight layers, on their device."""
        arch = net.arch
        shapes = arch.layer_inputs()
        layers = list(net.weights)
        reach = [_reach(w, shape, dense=False) for w, shape in zip(layers, shapes, strict=True)]
        dense = sum(
            float(_reach(w, shape, dense=True).sum())
            for w, shape in zip(layers, shapes, strict=True)
        )
        return cls(reach, dense)

    def connection(self, layer: int, h: torch.Tensor, batch: int, num_steps: int) -> None:
        """Count the synaptic operations of weight layer ``layer`` on its input ``h``:
        (steps_in * batch, ...), where steps_in is ``num_steps``, or 1 for a direct input
        that enters at every step (counted ``num_steps`` times, as NeuroBench calls the
        layer at every step)."""
        steps_in = h.shape[0] // batch
        if layer == 0:
            self.samples += batch
            self.num_steps = num_steps
        # NOTE: summed over the batch in the input's dtype (exact: at most `batch` per
        # element) and only then widened; float64 sums of the whole input cost a full copy.
        nonzero = h if layer > 0 else (h != 0).to(h.dtype)
        active = nonzero.reshape(steps_in, batch, -1).sum(dim=1)
        ops = active.to(torch.float64) @ self.reach[layer]  # (steps_in,)
        repeat = num_steps // steps_in
        if layer == 0:
            # NeuroBench's test of a spiking input, per layer call; later layers are fed the
            # spikes of Heaviside neurons (max-pooled after a conv layer), in {0, 1} by
            # construction.
            spiking = ((h == 0) | (h == 1) | (h == -1)).reshape(steps_in, -1).all(dim=1)
            self.ac += (ops * spiking).sum() * repeat
            self.mac += (ops * ~spiking).sum() * repeat
        else:
            self.ac += ops.sum() * repeat

    def neurons(self, spikes: torch.Tensor, mems: torch.Tensor) -> None:
        """Count a spiking layer's outputs and membrane updates; both (T, B, ...), the
        spikes before any pooling."""
        per_row = spikes.reshape(-1, spikes[0, 0].numel()).sum(dim=1)  # exact in float32
        self.spikes += per_row.sum(dtype=torch.float64)
        self.activations += spikes.numel()
        self.first_updates += mems[0].numel()
        if mems.shape[0] > 1:
            self.changed += torch.count_nonzero(mems[1:] != mems[:-1])

    def metrics(self) -> dict[str, float]:
        """The workload metrics per sample (`WORKLOAD_METRICS`); reads the device once."""
        ac, mac, spikes, changed = torch.stack(
            [self.ac, self.mac, self.spikes, self.changed]
        ).tolist()
        samples = max(self.samples, 1)
        sparsity = 0.0
        if self.activations:
            sparsity = (self.activations - spikes) / self.activations
        return {
            "syn_ops_dense": self.dense_per_step * self.num_steps,
            "syn_ops_effective_ac": ac / samples,
            "syn_ops_effective_mac": mac / samples,
            "activation_sparsity": sparsity,
            "membrane_updates": (self.first_updates + changed) / samples,
        }


def static_metrics(net: nn.Module, weight_bits: int) -> dict[str, float]:
    """``parameter_count``, ``footprint_bytes`` and ``footprint_bytes_crossbar`` of ``net``
    (see the module docstring); ``weight_bits`` is the crossbar's weight precision."""
    state = net.state_dict()
    weights = {f"{name}.weight" for name, m in net.named_modules() if _is_connection(m)}
    footprint = sum(t.numel() * t.element_size() for t in state.values())
    on_crossbar = sum(
        t.numel() * weight_bits / 8 if k in weights else t.numel() * t.element_size()
        for k, t in state.items()
    )
    return {
        "parameter_count": float(sum(p.numel() for p in net.parameters())),
        "footprint_bytes": float(footprint),
        "footprint_bytes_crossbar": float(on_crossbar),
    }


def _is_connection(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv2d))


class StepwiseNet(nn.Module):
    """``net`` run one time step per call, with its own weight layers and snnTorch neurons:
    the form NeuroBench's ``SNNTorchModel`` wraps (``spikes, _ = net(x_t)`` per step, after
    ``net.reset()``), so NeuroBench's hooks see each layer's input and each neuron's
    membrane. The membrane readout is a plain leaky integrator here as in ``net``.

    Its output averaged over the steps equals ``net``'s readout; it exists to check nmhpo's
    counts against NeuroBench (benchmarks/check_neurobench.py) and costs one Python call
    per layer and step, so it is not what trials use.
    """

    def __init__(self, net: SpikingNet) -> None:
        super().__init__()
        self.net = net
        self.states: list[tuple[torch.Tensor, ...] | None] = []
        self.readout: torch.Tensor | None = None

    def reset(self) -> None:
        self.states = [None] * len(self.net.neurons)
        self.readout = None

    def forward(self, x_t: torch.Tensor) -> tuple[torch.Tensor, None]:
        net = self.net
        if not self.states:
            self.reset()
        h = net._shape_input(x_t)
        for i, layer in enumerate(net.weights):
            cur = layer(h)
            if i == len(net.neurons):
                prev = self.readout if self.readout is not None else torch.zeros_like(cur)
                self.readout = net.beta * prev + cur
                return self.readout.flatten(1), None
            spk, self.states[i] = net._step(net.neurons[i], cur, self.states[i])
            h = net._after_neuron(i, spk)
        return spk.flatten(1), None
