"""NeuroBench's metrics per trial: nmhpo's counts against NeuroBench's definitions.

The reference here is a re-implementation of neurobench 2.3.0's own procedure, not neurobench
itself: the network runs one step per call (`StepwiseNet`, what NeuroBench's SNNTorchModel
wraps), hooks record each weight layer's input and each snnTorch neuron's output and membrane
before and after its step, and synaptic operations are the sum of a binarized copy of the
layer (weights != 0 -> 1, bias 0; all ones for dense) applied to the binarized input
(``metrics/utils/layers/macs.py``), accumulates when a call's inputs are all in {-1, 0, 1}.
neurobench itself stays out of the dev extra: it requires torchaudio (built for another
torch), numba, librosa and tonic. benchmarks/check_neurobench.py runs neurobench's own
``Benchmark`` on the same inputs (results/neurobench_check.json: equal on every metric).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import optuna
import pytest
import snntorch as snn
import torch
from torch import nn

from nmhpo.config import load_config
from nmhpo.record import TrialRecord
from nmhpo.registry import METRICS, SOFTWARE
from nmhpo.snn import (
    WORKLOAD_METRICS,
    StepwiseNet,
    WorkloadCounter,
    encode,
    evaluate,
    static_metrics,
    train,
)
from nmhpo.snn._train import EVAL_BATCH, architecture, build_network
from nmhpo.study import run_study
from nmhpo.tasks import load_task
from tests.conftest import tiny_study_text

DATA = load_task("digits", n_train=600)
NEUROBENCH_METRICS = (
    *WORKLOAD_METRICS,
    "parameter_count",
    "footprint_bytes",
    "footprint_bytes_crossbar",
)


def _params(**kw: Any) -> dict[str, Any]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=1, batch_size=32, hidden_size=32, num_steps=3, lr=0.02)
    base.update(kw)
    return base


def _untrained(params: dict[str, Any], seed: int = 0) -> Any:
    torch.manual_seed(seed)
    net = build_network(architecture(DATA, params), params)
    with torch.no_grad():
        for layer in net.weights:
            layer.weight.mul_(3.0)  # enough current for every layer to spike now and then
        first = net.weights[0].weight
        first.view(first.shape[0], -1)[:, ::7] = 0.0  # pruned synapses: no effective operations
        net.weights[1].weight[2] = 0.0
    return net.eval()


def _binary(t: torch.Tensor, all_ones: bool) -> torch.Tensor:
    return torch.ones_like(t) if all_ones else (t != 0).to(t.dtype)


def _layer_ops(layer: nn.Module, x: torch.Tensor, all_ones: bool) -> float:
    binary = copy.deepcopy(layer)
    binary.weight.data = _binary(binary.weight.data, all_ones)
    binary.bias.data.zero_()  # a bias is not a synaptic operation
    with torch.no_grad():
        return float(binary(_binary(x, all_ones)).sum())


def _reference(net: Any, x_seq: torch.Tensor, num_steps: int) -> dict[str, float]:
    """NeuroBench's workload metrics of ``net`` on ``x_seq`` (T or 1, B, ...), per sample."""
    stepwise = StepwiseNet(net)
    inputs: list[tuple[nn.Module, torch.Tensor]] = []
    outputs: list[torch.Tensor] = []
    mems: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    handles = []
    for layer in net.weights:
        handles.append(layer.register_forward_pre_hook(lambda m, a: inputs.append((m, a[0]))))
    for i, neuron in enumerate(net.neurons):
        mems[i] = []

        def pre(m: nn.Module, a: Any, i: int = i) -> None:
            mems[i].append((m.mem, m.mem))

        def post(m: nn.Module, a: Any, out: Any, i: int = i) -> None:
            outputs.append(out[0])
            mems[i][-1] = (mems[i][-1][0], m.mem)

        handles += [neuron.register_forward_pre_hook(pre), neuron.register_forward_hook(post)]
    with torch.no_grad():
        stepwise.reset()
        for t in range(num_steps):
            stepwise(x_seq[min(t, len(x_seq) - 1)])
    for handle in handles:
        handle.remove()
    ac = mac = dense = 0.0
    for layer, x in inputs:
        ops = _layer_ops(layer, x, all_ones=False)
        spiking = bool(((x == 0) | (x == 1) | (x == -1)).all())
        ac, mac = (ac + ops, mac) if spiking else (ac, mac + ops)
        dense += _layer_ops(layer, x, all_ones=True)
    zeros = sum(int((o == 0).sum()) for o in outputs)
    total = sum(o.numel() for o in outputs)
    updates = 0
    for steps in mems.values():
        updates += steps[0][1].numel()
        updates += sum(int(torch.count_nonzero(pre - post)) for pre, post in steps[1:])
    batch = x_seq.shape[1]
    return {
        "syn_ops_dense": dense / batch,
        "syn_ops_effective_ac": ac / batch,
        "syn_ops_effective_mac": mac / batch,
        "activation_sparsity": zeros / total,
        "membrane_updates": updates / batch,
    }


def _counted(net: Any, x_seq: torch.Tensor, num_steps: int) -> dict[str, float]:
    counter = WorkloadCounter.for_network(net)
    with torch.inference_mode():
        net(x_seq, num_steps, counter=counter)
    return counter.metrics()


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"encoding": "direct"},
        {"encoding": "latency", "hidden_layers": 2, "reset": "zero"},
        {"neuron": "synaptic", "alpha": 0.7},
        {"readout": "spikes"},
        {"conv_layers": 1, "conv_channels": 4},
        {"conv_layers": 2, "conv_channels": 3, "encoding": "direct", "kernel_size": 5},
    ],
    ids=lambda e: "-".join(f"{k}={v}" for k, v in e.items()) or "dense-rate",
)
def test_counts_equal_neurobench_definitions(extra: dict[str, Any]) -> None:
    params = _params(num_steps=4, **extra)
    net = _untrained(params)
    x = torch.from_numpy(DATA.x_val[:40])
    x_seq = encode(x, params["encoding"], 4, torch.Generator().manual_seed(0))
    ours = _counted(net, x_seq, 4)
    expected = _reference(net, x_seq, 4)
    with torch.inference_mode():  # counting changes nothing the pass computes
        plain, counted = net(x_seq, 4), net(x_seq, 4, counter=WorkloadCounter.for_network(net))
    assert all(torch.equal(a, b) for a, b in zip(plain, counted, strict=True))
    assert ours == pytest.approx(expected, rel=1e-12, abs=0)
    assert 0.0 < ours["activation_sparsity"] < 1.0
    assert 0.0 < ours["syn_ops_effective_ac"] + ours["syn_ops_effective_mac"]
    assert ours["syn_ops_effective_ac"] + ours["syn_ops_effective_mac"] < ours["syn_ops_dense"]
    # Direct encoding feeds analog values to the first layer: multiply-accumulates.
    assert (ours["syn_ops_effective_mac"] > 0) == (params["encoding"] == "direct")


def test_dense_operations_by_hand() -> None:
    """64-32-10 over 3 steps, and a 3x3 'same' conv on 8x8 whose border windows reach fewer
    inputs: 4 output channels x 1 input channel x (taps inside the image) per step."""
    dense = _counted(_untrained(_params()), torch.zeros(3, 2, 64), 3)["syn_ops_dense"]
    assert dense == 3 * (64 * 32 + 32 * 10)
    taps = sum(
        (3 - (r in (0, 7))) * (3 - (c in (0, 7))) for r in range(8) for c in range(8)
    )  # 36 inner positions x 9 + 24 edges x 6 + 4 corners x 4 = 484
    conv = _params(conv_layers=1, conv_channels=4)
    flat = 4 * 4 * 4  # after 2x2 pooling
    counted = _counted(_untrained(conv), torch.zeros(3, 2, 64), 3)["syn_ops_dense"]
    assert counted == 3 * (4 * taps + flat * 32 + 32 * 10)


def test_evaluate_counts_in_its_scoring_pass() -> None:
    """A trained network: evaluate() stores the counts of the very pass that scores it (the
    encoding drawn from its generator), not of a second pass or of the calibration."""
    params = _params(epochs=1)
    model = train(DATA, params, seed=3)
    scored = evaluate(model, DATA)
    gen = torch.Generator().manual_seed(model.seed + 1)
    x = torch.from_numpy(DATA.x_val)
    assert len(x) <= EVAL_BATCH  # one batch: one reference run reproduces it
    x_seq = encode(x, "rate", 3, gen)
    net = model.network()
    assert scored.neurobench == pytest.approx(_reference(net, x_seq, 3), rel=1e-12, abs=0)
    # The events priced by the crossbar model are the same spikes: every input spike reaches
    # all 32 hidden neurons, every hidden spike all 10 outputs (no weight is exactly zero).
    per_layer = [a * fan_in * 3 for a, fan_in in zip(scored.activity, (64, 32), strict=True)]
    assert all((layer.weight != 0).all() for layer in net.weights)
    by_events = per_layer[0] * 32 + per_layer[1] * 10
    assert scored.neurobench["syn_ops_effective_ac"] == pytest.approx(by_events, rel=1e-9)
    from nmhpo.snn import HardwarePoint

    on_crossbar = evaluate(model, DATA, HardwarePoint(64, 4, 4, 2))
    assert on_crossbar.neurobench["syn_ops_dense"] == scored.neurobench["syn_ops_dense"]
    assert on_crossbar.neurobench["membrane_updates"] > 0


def test_static_metrics_by_hand() -> None:
    net = _untrained(_params())
    got = static_metrics(net, weight_bits=4)
    assert got["parameter_count"] == 64 * 32 + 32 + 32 * 10 + 10
    # NeuroBench's Footprint on a network as built: parameters and buffers (snnTorch's beta,
    # threshold, graded_spikes_factor, reset_mechanism_val; its `mem` buffer still empty).
    fresh = build_network(net.arch, _params())
    assert all(b.numel() > 0 or n.endswith("mem") for n, b in fresh.named_buffers())
    buffers = sum(b.numel() * b.element_size() for b in fresh.buffers())
    assert got["footprint_bytes"] == 4 * got["parameter_count"] + buffers
    weights = 64 * 32 + 32 * 10
    assert got["footprint_bytes_crossbar"] == got["footprint_bytes"] - weights * (4 - 0.5)
    # A network that has run the snnTorch path keeps its membranes; the footprint does not.
    synaptic = _untrained(_params(neuron="synaptic"))
    before = static_metrics(synaptic, 8)
    with torch.inference_mode():
        synaptic(torch.rand(1, 5, 64), 2)
    assert any(isinstance(n, snn.Synaptic) and n.mem.numel() for n in synaptic.neurons)
    assert static_metrics(synaptic, 8) == before


def test_metrics_are_registered_with_their_directions() -> None:
    assert METRICS["activation_sparsity"].direction == "maximize"
    for name in NEUROBENCH_METRICS:
        if name != "activation_sparsity":
            assert METRICS[name].direction == "minimize", name


@pytest.mark.slow
def test_a_study_optimizes_and_constrains_neurobench_metrics(tmp_path: Path) -> None:
    text = tiny_study_text(n_trials=1).replace(
        '{ name = "energy_uj", direction = "minimize" }',
        '{ name = "syn_ops_effective_ac" }, { name = "activation_sparsity" }',
    )
    text = text.replace("[task]", 'constraints = ["footprint_bytes <= 1e6"]\n\n[task]')
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    cfg = load_config(path)
    directions = [o.resolved_direction for o in cfg.study.objectives]
    assert directions == ["maximize", "minimize", "maximize"]
    run_study(cfg)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path}/nmhpo-studies.db")
    (trial,) = study.trials
    for name in NEUROBENCH_METRICS:
        assert isinstance(trial.user_attrs[name], float), name
    assert trial.values[1] == trial.user_attrs["syn_ops_effective_ac"] > 0
    assert 0 < trial.values[2] == trial.user_attrs["activation_sparsity"] < 1
    record = TrialRecord.from_trial(trial)
    assert record.feasible
    assert record.result is not None
    assert record.result.metrics["parameter_count"] == 64 * 32 + 32 + 32 * 10 + 10
