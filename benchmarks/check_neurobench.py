"""nmhpo's NeuroBench metrics against neurobench itself, and what counting them costs.

For small networks on the `digits` task (dense and conv; rate, direct, latency encoding;
Leaky and Synaptic neurons; membrane and spike readout), trains one network each, scores it
with `nmhpo.snn.evaluate` (the counts a trial stores) and runs neurobench 2.3.0's own
`Benchmark` (SynapticOperations, ActivationSparsity, MembraneUpdates, Footprint,
ParameterCount, ClassificationAccuracy) on `nmhpo.snn.StepwiseNet` over the same encoded
validation inputs (the same generator as `evaluate`). Then times the scoring pass with and
without the counter. Writes benchmarks/results/neurobench_check.json.

Needs neurobench, installed without its dependencies (see requirements-bench.txt):
    .venv/bin/pip install --no-deps -r benchmarks/requirements-bench.txt
Run: .venv/bin/python benchmarks/check_neurobench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.registry import SOFTWARE  # noqa: E402
from nmhpo.snn import StepwiseNet, encode, evaluate, static_metrics, train  # noqa: E402
from nmhpo.snn._train import EVAL_BATCH, _run, build_network  # noqa: E402
from nmhpo.tasks import load_task  # noqa: E402

CASES: dict[str, dict[str, Any]] = {
    "dense-rate": {},
    "dense-direct": {"encoding": "direct"},
    "dense-latency-2hidden": {"encoding": "latency", "hidden_layers": 2},
    "dense-synaptic-zero-reset": {"neuron": "synaptic", "alpha": 0.7, "reset": "zero"},
    "dense-spike-readout": {"readout": "spikes"},
    "conv-rate": {"conv_layers": 1, "conv_channels": 4},
    "conv2-direct": {"conv_layers": 2, "conv_channels": 4, "encoding": "direct"},
}
#: nmhpo's metric name -> neurobench's result key (and sub-key).
NAMES = {
    "syn_ops_dense": ("SynapticOperations", "Dense"),
    "syn_ops_effective_ac": ("SynapticOperations", "Effective_ACs"),
    "syn_ops_effective_mac": ("SynapticOperations", "Effective_MACs"),
    "activation_sparsity": ("ActivationSparsity", None),
    "membrane_updates": ("MembraneUpdates", None),
    "parameter_count": ("ParameterCount", None),
    "footprint_bytes": ("Footprint", None),
    "accuracy": ("ClassificationAccuracy", None),
}


def _params(**extra: Any) -> dict[str, Any]:
    params = {k: p.default for k, p in SOFTWARE.items()}
    params.update(epochs=2, batch_size=32, hidden_size=32, num_steps=4, lr=0.02)
    params.update(extra)
    return params


def _neurobench(model: Any, x_seq: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import Footprint, ParameterCount
    from neurobench.metrics.workload import (
        ActivationSparsity,
        ClassificationAccuracy,
        MembraneUpdates,
        SynapticOperations,
    )
    from neurobench.models import SNNTorchModel

    net = build_network(model.arch, model.params)  # as built: snnTorch's state buffers empty
    net.load_state_dict(model.state)
    wrapped = SNNTorchModel(StepwiseNet(net))
    # NeuroBench data is (batch, steps, ...); the readout is the mean over steps, the class
    # its largest entry.
    data = torch.utils.data.TensorDataset(x_seq.transpose(0, 1), y)
    loader = torch.utils.data.DataLoader(data, batch_size=128, shuffle=False)
    metrics = [
        [Footprint, ParameterCount],
        [SynapticOperations, ActivationSparsity, MembraneUpdates, ClassificationAccuracy],
    ]
    bench = Benchmark(wrapped, loader, [], [lambda out: out.mean(dim=1).argmax(dim=1)], metrics)
    return bench.run(quiet=True)


def check(name: str, extra: dict[str, Any], data: Any) -> dict[str, Any]:
    params = _params(**extra)
    model = train(data, params, seed=0)
    scored = evaluate(model, data)
    ours = {
        **scored.neurobench,
        **static_metrics(model.network(), weight_bits=8),
        **scored.metrics,
    }
    # The same encoded inputs evaluate() drew: its generator, its batches.
    gen = torch.Generator().manual_seed(model.seed + 1)
    x = torch.from_numpy(data.x_val)
    steps = int(params["num_steps"])
    parts = [
        encode(x[i : i + EVAL_BATCH], params["encoding"], steps, gen)
        for i in range(0, len(x), EVAL_BATCH)
    ]
    x_seq = torch.cat([p.expand(steps, *p.shape[1:]) for p in parts], dim=1)
    theirs_raw = _neurobench(model, x_seq, torch.from_numpy(data.y_val))
    theirs = {}
    for ours_name, (key, sub) in NAMES.items():
        value = theirs_raw[key]
        theirs[ours_name] = float(value[sub] if sub else value)
    rel = {k: abs(ours[k] - theirs[k]) / max(abs(theirs[k]), 1e-12) for k in NAMES if k in ours}
    print(f"{name}: max relative difference {max(rel.values()):.2e}")
    for k in NAMES:
        print(f"  {k:24s} nmhpo {ours[k]:14.6f}  neurobench {theirs[k]:14.6f}")
    return {
        "params": {k: params[k] for k in ("encoding", "num_steps", "hidden_size", *extra)},
        "nmhpo": {k: ours[k] for k in NAMES},
        "neurobench": theirs,
        "relative_difference": rel,
    }


def cost(data: Any, repeats: int = 9) -> dict[str, Any]:
    """Seconds of the scoring pass over the validation split with and without the counter,
    best of ``repeats``, in float and crossbar-aware inference (rram-32nm's knobs), on
    networks larger than the checks' (8 steps); and a trial's training time for scale."""
    from nmhpo.crossbar import load_preset
    from nmhpo.snn import HardwarePoint, WorkloadCounter, crossbar_synapses

    point = HardwarePoint.from_knobs(load_preset("rram-32nm").knobs)
    out: dict[str, Any] = {}
    for name, extra in {
        "dense-256-rate": {"hidden_size": 256, "num_steps": 8},
        "conv-8ch-rate": {"conv_layers": 1, "conv_channels": 8, "num_steps": 8},
    }.items():
        params = _params(**extra)
        model = train(data, params, seed=0)
        net = model.network()
        x = torch.from_numpy(data.x_val)
        synapses = crossbar_synapses(net.weights, point)
        for s in synapses:
            s.start_calibration()
        _run(net, x[:256], params, torch.Generator().manual_seed(0), synapses)
        for s in synapses:
            s.finish_calibration()
        for inference, syn in (("float", None), ("crossbar", synapses)):
            times: dict[str, list[float]] = {"without": [], "with": []}
            for _ in range(repeats):
                for mode in ("without", "with"):
                    gen = torch.Generator().manual_seed(1)
                    start = time.perf_counter()
                    counter = WorkloadCounter.for_network(net) if mode == "with" else None
                    _run(net, x, params, gen, syn, counter)
                    if counter is not None:
                        counter.metrics()
                    times[mode].append(time.perf_counter() - start)
            best = {k: min(v) for k, v in times.items()}
            out[f"{name}-{inference}"] = {
                "samples": len(x),
                "seconds_without": best["without"],
                "seconds_with": best["with"],
                "extra_s": best["with"] - best["without"],
                "extra_fraction": best["with"] / best["without"] - 1,
                "train_time_s": model.train_time_s,
                "epochs": params["epochs"],
            }
            print(
                f"cost {name} {inference}: {best['without']:.4f} s -> {best['with']:.4f} s "
                f"(training: {model.train_time_s:.2f} s)"
            )
    return out


def main() -> None:
    import neurobench

    torch.set_num_threads(1)
    data = load_task("digits", n_train=600)
    checks = {name: check(name, extra, data) for name, extra in CASES.items()}
    worst = max(
        d for c in checks.values() for k, d in c["relative_difference"].items() if k != "accuracy"
    )
    path = write_result(
        "neurobench_check",
        {
            "neurobench": neurobench.__version__,
            "torch": torch.__version__,
            # ClassificationAccuracy is a float32 mean per batch: ~1e-8 apart, not counted here.
            "max_relative_difference": worst,
            "checks": checks,
            "cost": cost(data),
        },
    )
    print(f"max relative difference of the NeuroBench metrics: {worst:.2e}; wrote {path}")


if __name__ == "__main__":
    main()
