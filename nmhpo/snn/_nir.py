"""A trained network as a NIR graph (Neuromorphic Intermediate Representation, ``nir``).

snnTorch's exporter (`snntorch.export_nir.export_to_nir`) traces a module's forward pass with
nirtorch and converts the snnTorch modules the trace meets. nmhpo's `SpikingNet` runs its Leaky
layers through a fused kernel over all time steps (`_fused.py`), so a trace never meets the
neurons; the graph is built here from the architecture and the trained weights instead, with the
neuron parameters mapped as snnTorch's exporter maps `snn.Leaky`::

    dt = 1e-4 (fixed in snnTorch's exporter and importer), tau = dt / (1 - beta),
    r = tau / dt, v_leak = 0, v_threshold = threshold, v_reset = 0

NIR's neurons are ODEs, tau dv/dt = (v_leak - v) + r I. One Euler step of dt gives
v_t = beta v_{t-1} + I_t, nmhpo's update, so one nmhpo time step is one dt.

Resets. NIR's LIF sets v to v_reset right after a spike: that is nmhpo's ``reset = "zero"``
(nmhpo, like snnTorch's default ``reset_delay``, zeroes the membrane at the step after a spike,
before adding that step's input: the same spikes). ``"none"`` and ``"subtract"`` have no NIR
neuron; they are written as a leaky integrator (LI) followed by a Threshold node, and
``"subtract"`` adds the recurrent edge Threshold -> Scale(-threshold) -> LI, which takes the
threshold off the membrane at the step after a spike, nmhpo's
v_t = beta v_{t-1} + I_t - threshold s_{t-1}. That reading needs one step of delay on a
recurrent edge, which is what a discrete-time simulator (nirtorch's interpreter) gives it.

Max pooling of spikes (0 or 1) is the OR of each window: SumPool2d, then Threshold(0.5).
The membrane readout (a non-spiking output layer) is an LI node; nmhpo's readout is its mean
over the time steps, which happens outside the graph, as does the input encoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo.errors import ExportError

if TYPE_CHECKING:
    import nir
    import snntorch as snn

    from nmhpo.snn._train import TrainedModel

#: Seconds per time step. snnTorch's exporter and importer both assume 1e-4 s
#: (snntorch/export_nir.py, import_nir.py); a different value would make them disagree.
DT = 1e-4
#: Threshold that turns a 2x2 sum of spikes into their maximum (any spike in the window).
_POOL_THRESHOLD = 0.5


def nir_problem(params: Mapping[str, Any]) -> str | None:
    """Why the network of a software point has no exact NIR graph, or None.

    Checked on the stored point before any network is loaded or retrained.
    """
    training = params.get("training", "bptt")
    if training != "bptt":
        return (
            f"training = {training!r} cannot be exported: a converted network's "
            "integrate-and-fire neurons (beta = 1) have no NIR time constant "
            "(tau = dt / (1 - beta) is infinite); only training = 'bptt' is exported"
        )
    if params["neuron"] != "leaky":
        return (
            f"neuron = {params['neuron']!r} cannot be exported: nmhpo's synaptic neurons "
            "(snnTorch's Synaptic) reset their membrane after a spike in ways NIR's CubaLIF "
            "does not describe; only neuron = 'leaky' is exported"
        )
    if int(params.get("decoder_layers", 0)) > 0:
        return (
            "decoder_layers > 0 cannot be exported: NIR has no upsampling node for the "
            "decoder's 2 x 2 spike repetition"
        )
    beta = float(params["beta"])
    if not 0.0 < beta < 1.0:
        return (
            f"beta = {beta:g} cannot be exported: NIR's time constant tau = dt / (1 - beta) "
            "is infinite without a leak; only beta < 1 is exported"
        )
    return None


class _Graph:
    """Nodes in order and the edges between them; ``chain`` appends after the last node."""

    def __init__(self) -> None:
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.last = ""

    def chain(self, name: str, node: nir.NIRNode) -> None:
        if self.last:
            self.edges.append((self.last, name))
        self.nodes[name] = node
        self.last = name


def _leaky(
    graph: _Graph, i: int, shape: tuple[int, ...], beta: float, thr: float, reset: str
) -> None:
    import nir

    tau = np.full(shape, DT / (1.0 - beta))
    r = tau / DT
    v_leak = np.zeros(shape)
    threshold = np.full(shape, thr)
    if reset == "zero":
        graph.chain(f"lif{i}", nir.LIF(tau=tau, r=r, v_leak=v_leak, v_threshold=threshold))
        return
    graph.chain(f"li{i}", nir.LI(tau=tau, r=r, v_leak=v_leak))
    graph.chain(f"spike{i}", nir.Threshold(threshold=threshold))
    if reset == "subtract":
        graph.nodes[f"reset{i}"] = nir.Scale(scale=np.full(shape, -thr))
        graph.edges += [(f"spike{i}", f"reset{i}"), (f"reset{i}", f"li{i}")]


def to_nir(model: TrainedModel, metadata: Mapping[str, Any] | None = None) -> nir.NIRGraph:
    """The float network of ``model`` as a NIR graph, one time step per NIR step of `DT`.

    Node names follow the weight layers' order i (the crossbar model's layers): ``conv<i>`` or
    ``fc<i>`` for the weights, then ``lif<i>`` (zero reset) or ``li<i>`` + ``spike<i>``
    (+ ``reset<i>`` for subtract), ``pool<i>`` + ``max<i>`` after a conv layer, ``flatten``
    after the last one, and ``readout`` (LI) for a membrane readout.

    Raises:
        ExportError: the network has no exact NIR graph (see `nir_problem`).
    """
    import nir
    from torch import nn

    params = model.params
    reason = nir_problem(params)
    if reason is not None:
        raise ExportError(reason)
    net = model.network("cpu")
    arch = model.arch
    reset = str(params["reset"])
    graph = _Graph()
    shape: tuple[int, ...] = arch.image_shape if arch.conv_channels else (arch.flat_size(),)
    graph.chain("input", nir.Input(input_type=np.array(shape)))
    for i, weights in enumerate(net.weights):
        # what SpikingNet builds (nn.ModuleList types its items as plain Modules)
        assert isinstance(weights, nn.Linear | nn.Conv2d) and weights.bias is not None
        w = weights.weight.detach().cpu().numpy()
        b = weights.bias.detach().cpu().numpy()
        if isinstance(weights, nn.Conv2d):
            k = arch.kernel_size
            graph.chain(
                f"conv{i}",
                nir.Conv2d(
                    input_shape=shape[1:],
                    weight=w,
                    stride=1,
                    padding=k // 2,
                    dilation=1,
                    groups=1,
                    bias=b,
                ),
            )
            shape = (w.shape[0], *shape[1:])
        else:
            graph.chain(f"fc{i}", nir.Affine(weight=w, bias=b))
            shape = (w.shape[0],)
        if i == len(net.neurons):  # membrane readout: a leaky integrator without spikes
            tau = np.full(shape, DT / (1.0 - float(params["beta"])))
            graph.chain("readout", nir.LI(tau=tau, r=tau / DT, v_leak=np.zeros(shape)))
            break
        neuron: snn.Leaky = net.neurons[i]  # (nir_problem admits leaky neurons only)
        beta, thr = float(neuron.beta.clamp(0, 1)), float(neuron.threshold)
        _leaky(graph, i, shape, beta, thr, reset)
        if i < net.n_conv:
            if shape[-1] >= 2:  # nmhpo pools 2x2 while the map is at least 2 wide
                two = np.array([2, 2])
                graph.chain(
                    f"pool{i}",
                    nir.SumPool2d(kernel_size=two, stride=two, padding=np.zeros(2, int)),
                )
                shape = (shape[0], shape[1] // 2, shape[2] // 2)
                graph.chain(f"max{i}", nir.Threshold(threshold=np.full(shape, _POOL_THRESHOLD)))
            if i == net.n_conv - 1:
                graph.chain(
                    "flatten", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
                )
                shape = (int(np.prod(shape)),)
    graph.chain("output", nir.Output(output_type=np.array(shape)))
    return nir.NIRGraph(
        nodes=graph.nodes, edges=graph.edges, metadata=dict(metadata or {}), type_check=True
    )
