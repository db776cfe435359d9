"""`nmhpo export`: the NIR graph read back by other tools computes nmhpo's float network.

Two readers run the written ``network.nir`` (after ``nir.read``) on the same encoded input as
nmhpo's float inference (`SpikingNet.forward`):

* snnTorch's own importer (``snntorch.import_nir.import_from_nir``), for graphs of Affine and
  LIF nodes only (``reset = "zero"`` with a spike readout): it has no LI, Threshold, Scale or
  SumPool2d node;
* nirtorch's interpreter (the engine under snnTorch's importer) with each node mapped to NIR's
  own equations, written below from the nir 1.0 node docstrings: this reads every graph nmhpo
  writes (subtract and no reset, membrane readout, conv layers with max pooling).

Tolerances: spike counts must agree exactly (a flipped spike changes a count by 1/T). A
membrane readout agrees within rtol = atol = 1e-5: both are float32, but NIR's Euler step
v + dt/tau (v_leak - v + r I) rounds differently from nmhpo's beta v + I, and nmhpo takes the
mean over time as one weighted sum; measured differences are about 1e-6.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from typer.testing import CliRunner

import nmhpo
from nmhpo.cli import app
from nmhpo.errors import ExportError
from nmhpo.snn import NIR_DT, ModelStore, TrainedModel, encode, nir_problem

runner = CliRunner()

STUDY = """
[study]
name = "exp"
sampler = "random"
n_trials = 1
seed = 0
objectives = [
  {{ name = "accuracy", direction = "maximize" }},
  {{ name = "energy_uj", direction = "minimize" }},
]

[task]
name = "digits"
n_train = 600

[hardware]
preset = "rram-32nm"

[space.software]
epochs = 2
batch_size = 32
hidden_size = 32
lr = 0.01
num_steps = 4
{software}

[space.hardware]
xbar_size = {{ type = "categorical", choices = [32, 64] }}
"""


def _study(tmp_path: Path, software: str) -> nmhpo.Study:
    path = tmp_path / "exp.toml"
    path.write_text(STUDY.format(software=software))
    return nmhpo.run_study(path, progress=False)


def _model(study: nmhpo.Study, trial: int = 0) -> TrainedModel:
    record = study.trials()[trial]
    assert record.result is not None
    model = ModelStore(study.config.cache_dir / "models").load(record.result.run.model_key)
    assert model is not None
    return model


def _inputs(study: nmhpo.Study, model: TrainedModel, n: int = 128) -> torch.Tensor:
    """A validation batch, encoded once: (T or 1, B, features)."""
    from nmhpo.objective import task_data

    x = torch.from_numpy(task_data(study.config).x_val[:n])
    steps = int(model.params["num_steps"])
    return encode(x, model.params["encoding"], steps, torch.Generator().manual_seed(7))


def _nmhpo_float(model: TrainedModel, x_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        return model.network()(x_seq, int(model.params["num_steps"]))


def _run_graph(module: Any, model: TrainedModel, x_seq: torch.Tensor) -> torch.Tensor:
    """A NIR module stepped through time on the same input; the mean of its output (the
    readout nmhpo takes outside the graph)."""
    steps = int(model.params["num_steps"])
    x_seq = x_seq.expand(steps, *x_seq.shape[1:])  # direct encoding: the same input each step
    if model.arch.conv_channels:
        x_seq = x_seq.reshape(steps, x_seq.shape[1], *model.arch.image_shape)
    outs, state = [], None
    with torch.inference_mode():
        for t in range(steps):
            out, state = module(x_seq[t], state)
            outs.append(out)
    return torch.stack(outs).mean(dim=0)


# --- NIR's node equations (nir 1.0 docstrings), one Euler step of dt per time step ---------


class _Leaky(torch.nn.Module):
    """LI (no threshold) or LIF: tau dv/dt = (v_leak - v) + r I; LIF spikes when v > v_thr
    and sets v to v_reset."""

    def __init__(self, node: nir.LI | nir.LIF) -> None:
        super().__init__()
        f32 = lambda a: torch.from_numpy(np.asarray(a)).float()  # noqa: E731
        self.tau, self.r, self.v_leak = f32(node.tau), f32(node.r), f32(node.v_leak)
        self.spiking = isinstance(node, nir.LIF)
        if isinstance(node, nir.LIF):
            self.v_threshold, self.v_reset = f32(node.v_threshold), f32(node.v_reset)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.zeros_like(x) if state is None else state
        v = v + NIR_DT / self.tau * (self.v_leak - v + self.r * x)
        if not self.spiking:
            return v, v
        z = (v > self.v_threshold).to(x.dtype)
        return z, torch.where(z > 0, self.v_reset, v)


class _Fn(torch.nn.Module):
    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _affine(node: nir.Affine) -> torch.nn.Module:
    w, b = torch.from_numpy(node.weight), torch.from_numpy(node.bias)
    return _Fn(lambda x: F.linear(x, w, b))


def _conv2d(node: nir.Conv2d) -> torch.nn.Module:
    w, b = torch.from_numpy(node.weight), torch.from_numpy(node.bias)
    stride, padding = tuple(node.stride), tuple(int(p) for p in node.padding)
    return _Fn(lambda x: F.conv2d(x, w, b, stride=stride, padding=padding))


def _sumpool(node: nir.SumPool2d) -> torch.nn.Module:
    k, s = tuple(int(v) for v in node.kernel_size), tuple(int(v) for v in node.stride)
    return _Fn(lambda x: F.avg_pool2d(x, k, s, divisor_override=1))


def _threshold(node: nir.Threshold) -> torch.nn.Module:
    thr = torch.from_numpy(np.asarray(node.threshold)).float()
    return _Fn(lambda x: (x > thr).to(x.dtype))


def _scale(node: nir.Scale) -> torch.nn.Module:
    s = torch.from_numpy(np.asarray(node.scale)).float()
    return _Fn(lambda x: x * s)


def _flatten(node: nir.Flatten) -> torch.nn.Module:
    # NIR's dims exclude the batch: dim d of a NIR shape is dim d + 1 of a batch.
    end = node.end_dim if node.end_dim < 0 else node.end_dim + 1
    return _Fn(lambda x: x.flatten(node.start_dim + 1, end))


NIR_EQUATIONS = {
    nir.Affine: _affine,
    nir.Conv2d: _conv2d,
    nir.LI: _Leaky,
    nir.LIF: _Leaky,
    nir.Threshold: _threshold,
    nir.Scale: _scale,
    nir.SumPool2d: _sumpool,
    nir.Flatten: _flatten,
}


# --- the tests ----------------------------------------------------------------------------


@pytest.mark.slow
def test_export_is_read_back_by_snntorch_with_the_same_spike_counts(tmp_path: Path) -> None:
    from snntorch.import_nir import import_from_nir

    study = _study(tmp_path, 'reset = "zero"\nreadout = "spikes"\nencoding = "rate"')
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", str(study.config.path), "--trial", "0", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "network from the model cache" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["hardware.json", "network.nir"]

    graph = nir.read(out / "network.nir")
    assert sorted(graph.nodes) == ["fc0", "fc1", "input", "lif0", "lif1", "output"]
    assert graph.metadata["dt"] == NIR_DT and graph.metadata["num_steps"] == 4
    model = _model(study)
    x_seq = _inputs(study, model)
    expected, events = _nmhpo_float(model, x_seq)
    got = _run_graph(import_from_nir(graph), model, x_seq)
    assert events[:, 1].sum() > 0 and expected.sum() > 0  # hidden and output layers spike
    assert torch.equal(got, expected)  # spike counts, exactly


@pytest.mark.slow
@pytest.mark.parametrize(
    "software",
    [
        'encoding = "direct"',  # defaults: leaky, reset subtract, membrane readout
        'encoding = "rate"\nreset = "none"\nreadout = "spikes"\nthreshold = 0.5',
        'encoding = "rate"\nconv_layers = 1\nconv_channels = 4',
        'encoding = "rate"\nconv_layers = 2\nconv_channels = 4\nreset = "zero"',
    ],
    ids=["dense-subtract-membrane", "dense-none-spikes", "conv-subtract", "conv2-zero"],
)
def test_export_runs_in_nirtorch_as_nmhpo_runs_it(tmp_path: Path, software: str) -> None:
    import nirtorch

    study = _study(tmp_path, software)
    result = study.export(0, tmp_path / "out")
    assert result.network_source == "cache"
    graph = nir.read(tmp_path / "out" / "network.nir")
    model = _model(study)
    x_seq = _inputs(study, model)
    expected, events = _nmhpo_float(model, x_seq)
    got = _run_graph(nirtorch.nir_to_torch(graph, NIR_EQUATIONS), model, x_seq)
    assert (events[:, 1:].sum(dim=0) > 0).all()  # every layer after the first gets spikes
    assert expected.abs().sum() > 0
    if model.params["readout"] == "spikes":
        assert torch.equal(got, expected)
    else:
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_hardware_json_holds_the_trials_design(tmp_path: Path) -> None:
    study = _study(tmp_path, 'encoding = "rate"\nconv_layers = 1\nconv_channels = 4')
    result = study.export(0)
    assert result.out_dir == tmp_path / "nmhpo-export" / "exp" / "trial-0"
    design = json.loads((result.out_dir / "hardware.json").read_text())
    record = study.trials()[0]
    assert record.result is not None
    metrics = record.result.metrics
    assert [o["value"] for o in design["objectives"]] == list(record.values or ())
    assert design["hardware"]["knobs"] == dict(record.result.point.hardware)
    assert design["hardware"]["knobs"]["xbar_size"] == record.params["xbar_size"]
    layers = design["layers"]
    assert [x["nir_node"] for x in layers] == ["conv0", "fc1", "fc2"]
    assert set(design["network"]["nir_nodes"]) >= {x["nir_node"] for x in layers}
    assert sum(x["pes"] for x in layers) == design["chip"]["n_pe"] == metrics["n_pe"]
    assert design["chip"]["n_tiles"] == metrics["n_tiles"]
    assert design["chip"]["weight_slices"] == 2  # rram-32nm: 8-bit weights on 4-bit cells
    assert layers[0]["crossbars"] == layers[0]["pes"] * 9 * 2  # 3x3 kernel, 2 slices
    assert design["energy_pj"]["total"] == pytest.approx(metrics["energy_pj"])
    assert sum(design["energy_pj"]["by_component"].values()) == pytest.approx(metrics["energy_pj"])
    assert sum(x["energy_pj"] for x in layers) == pytest.approx(metrics["energy_pj"])
    assert sum(design["area_um2"]["by_component"].values()) == pytest.approx(metrics["area_um2"])
    limits = " ".join(design["limits"])
    for words in ("weight_bits=8", "cell_bits=4", "adc_bits=", "conductance_sigma", "mean"):
        assert words in limits
    assert "SumPool2d" in limits and "subtraction" in limits


@pytest.mark.slow
def test_a_missing_network_is_trained_again_identically(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    study = _study(tmp_path, 'encoding = "rate"')
    before = _model(study)
    record = study.trials()[0]
    assert record.result is not None
    cached = study.config.cache_dir / "models" / f"{record.result.run.model_key}.pt"
    cached.unlink()

    with caplog.at_level(logging.INFO, logger="nmhpo"):
        result = study.export(0, tmp_path / "out")
    assert result.network_source == "retrained"
    assert any("training it again" in r.getMessage() for r in caplog.records)
    assert cached.is_file()  # stored again under the trial's key
    after = _model(study)
    assert before.state.keys() == after.state.keys()
    assert all(torch.equal(before.state[k], after.state[k]) for k in before.state)
    graph = nir.read(tmp_path / "out" / "network.nir")
    assert np.array_equal(graph.nodes["fc0"].weight, before.state["weights.0.weight"].numpy())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test's own ask()
def test_bad_exports_are_one_line_exit_2_and_write_nothing(tmp_path: Path) -> None:
    import optuna

    study = _study(tmp_path, 'encoding = "rate"')
    path = str(study.config.path)
    failed = study.optuna_study.ask()
    study.optuna_study.tell(failed, state=optuna.trial.TrialState.FAIL)
    running = study.optuna_study.ask()
    foreign = optuna.create_study(study_name="foreign", storage=study.config.storage_url())
    foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    out = tmp_path / "out"
    cases = {
        ("--trial", "7"): "error: trial: expected a trial number of study 'exp' (0-2); got 7",
        ("--trial", str(failed.number)): (
            f"error: trial {failed.number} of study 'exp' is FAIL; only a COMPLETE trial has "
            "a trained network and a priced design"
        ),
        ("--trial", str(running.number)): (
            f"error: trial {running.number} of study 'exp' is RUNNING; only a COMPLETE trial "
            "has a trained network and a priced design"
        ),
        ("--trial", "0", "--study-name", "foreign"): (
            f"error: study 'foreign' in {study.storage_url} was not created by nmhpo; only "
            "nmhpo's trials have a trained network and a hardware design to export"
        ),
        ("--trial", "-1"): (
            "error: --trial: Input should be greater than or equal to 0; got '-1' "
            "(see root export --help)"
        ),
        (): "error: missing option '--trial'. (see root export --help)",
    }
    for args, line in cases.items():
        result = runner.invoke(app, ["export", path, *args, "--out", str(out)])
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.strip().splitlines() == [line], args
        assert not out.exists()


@pytest.mark.slow
def test_synaptic_neurons_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    study = _study(tmp_path, 'encoding = "rate"\nneuron = "synaptic"')
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["export", str(study.config.path), "--trial", "0", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: trial 0: neuron = 'synaptic' cannot be exported: nmhpo's synaptic neurons "
        "(snnTorch's Synaptic) reset their membrane after a spike in ways NIR's CubaLIF does "
        "not describe; only neuron = 'leaky' is exported"
    ]
    assert not out.exists()


def test_points_without_an_exact_nir_graph_are_named() -> None:
    leaky = {"neuron": "leaky", "beta": 0.9}
    assert nir_problem(leaky) is None
    assert "only neuron = 'leaky'" in str(nir_problem({**leaky, "neuron": "synaptic"}))
    assert "beta = 1 cannot be exported" in str(nir_problem({**leaky, "beta": 1.0}))
    assert nir_problem({**leaky, "training": "bptt"}) is None
    for training in ("conversion", "hybrid"):
        problem = str(nir_problem({**leaky, "training": training}))
        assert f"training = '{training}' cannot be exported" in problem


def test_export_without_nir_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nmhpo.export import export_trial

    monkeypatch.setitem(__import__("sys").modules, "nir", None)
    with pytest.raises(ExportError, match=r'pip install "nmhpo\[export\]"'):
        export_trial(None, 0, tmp_path / "out")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_export_has_help() -> None:
    result = runner.invoke(app, ["export", "--help"])
    assert result.exit_code == 0
    assert "--trial" in result.output and "NIR" in result.output


def test_a_regression_export_holds_the_scaling_raw_data_needs(tmp_path: Path) -> None:
    """The generic regression task trains on scaled inputs and standardised targets: the
    exported design says how, or the network is of no use on the user's raw data."""
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(280, 10, 120), rng.normal(1e5, 500, 120)])
    y = np.column_stack([x[:, 0] * 2, x[:, 1] / 100])
    np.savez(tmp_path / "raw.npz", x_train=x[:90], y_train=y[:90], x_val=x[90:], y_val=y[90:])
    text = STUDY.format(software="").replace(
        'name = "digits"\nn_train = 600', 'name = "regression"\npath = "raw.npz"'
    )
    text = text.replace('"accuracy", direction = "maximize"', '"rmse", direction = "minimize"')
    path = tmp_path / "exp.toml"
    path.write_text(text)
    study = nmhpo.run_study(path, progress=False)
    design = json.loads((study.export(0).out_dir / "hardware.json").read_text())
    scaling = design["data"]["scaling"]
    assert design["data"]["task"] == "regression"
    np.testing.assert_allclose(scaling["x_low"], x[:90].min(axis=0))
    np.testing.assert_allclose(scaling["x_span"], np.ptp(x[:90], axis=0))
    np.testing.assert_allclose(scaling["y_mean"], y[:90].mean(axis=0))
    np.testing.assert_allclose(scaling["y_std"], y[:90].std(axis=0))
    # what the network was scored on is the raw data scaled as the design says
    from nmhpo.objective import task_data

    low, span = np.array(scaling["x_low"]), np.array(scaling["x_span"])
    np.testing.assert_allclose(
        task_data(study.config).x_val, np.clip((x[90:] - low) / span, 0, 1), atol=1e-6
    )
    limits = " ".join(design["limits"])
    assert "(x - x_low) / x_span" in limits and "output * y_std + y_mean" in limits
    # another file under the same name: its scaling is not the trial's
    np.savez(tmp_path / "raw.npz", x_train=x[30:], y_train=y[30:], x_val=x[:30], y_val=y[:30])
    with pytest.raises(ExportError, match=r"its data \(.*raw\.npz\) changed since it began"):
        study.export(0, tmp_path / "again")
    assert not (tmp_path / "again").exists()
