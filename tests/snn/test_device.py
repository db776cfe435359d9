"""Training and crossbar-aware inference on an explicit torch device.

Every device-generic path runs here with device="cpu" (CI has no GPU); the tests that need a
GPU are skipped without one.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from nmhpo.config import load_config
from nmhpo.objective import evaluate_point
from nmhpo.registry import SOFTWARE
from nmhpo.snn import HardwarePoint, ModelStore, encode, evaluate, model_key, train
from nmhpo.snn._optim import FusedAdam, FusedSGD
from nmhpo.tasks import load_task
from tests.conftest import tiny_study_text

DATA = load_task("digits", n_train=400)
HW = HardwarePoint(
    xbar_size=32, adc_bits=4, weight_bits=4, cell_bits=2, conductance_sigma=0.05, seed=3
)
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def _params(**kw: object) -> dict[str, object]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=2, batch_size=32, hidden_size=32, num_steps=3, lr=0.02)
    base.update(kw)
    return base


VARIANTS = [
    {},
    {"encoding": "latency", "patience": 1},
    {"encoding": "delta", "neuron": "synaptic", "readout": "spikes"},
    {"conv_layers": 1, "conv_channels": 4, "optimizer": "sgd", "lr": 0.1},
]


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("extra", VARIANTS, ids=lambda e: ",".join(e) or "default")
def test_explicit_cpu_device_is_the_default_path(extra: dict[str, object]) -> None:
    default = train(DATA, _params(**extra), seed=3)
    explicit = train(DATA, _params(**extra), seed=3, device="cpu")
    assert _same_state(default.state, explicit.state)
    assert default.final_loss == explicit.final_loss and default.history == explicit.history
    for hw in (None, HW):
        a, b = evaluate(default, DATA, hw), evaluate(explicit, DATA, hw, device="cpu")
        assert a.metrics == b.metrics and a.activity_per_step == b.activity_per_step


def test_trained_state_is_on_the_cpu() -> None:
    model = train(DATA, _params(), seed=1, device="cpu")
    assert {v.device.type for v in model.state.values()} == {"cpu"}
    assert {p.device.type for p in model.network("cpu").parameters()} == {"cpu"}


def test_model_cache_stores_cpu_tensors_and_loads_onto_the_device(tmp_path: Path) -> None:
    model = train(DATA, _params(conv_layers=1, conv_channels=4), seed=5, device="cpu")
    key = model_key({"name": "digits"}, model.params, 5)
    store = ModelStore(tmp_path)
    store.save(key, model)
    blob = torch.load(store.path(key), weights_only=True)  # no map_location: as written
    assert {v.device.type for v in blob["state"].values()} == {"cpu"}
    fresh = ModelStore(tmp_path).load(key)
    assert fresh is not None
    net = fresh.network("cpu")
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    assert evaluate(fresh, DATA, HW, device="cpu").metrics == evaluate(model, DATA, HW).metrics


def test_objective_records_the_device_and_matches_the_default(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text().replace("seed = 0\n", 'seed = 0\ndevice = "cpu"\n'))
    cfg = load_config(path)
    software, hardware = cfg.fixed_software(), cfg.fixed_hardware()
    software.update(lr=0.02, num_steps=2, encoding="rate")
    hardware.update(xbar_size=32, adc_bits=4)
    by_config = evaluate_point(cfg, software, hardware)
    explicit = evaluate_point(cfg, software, hardware, device="cpu")
    assert by_config.run.device == explicit.run.device == "cpu"
    timing = {"train_time_s"}
    assert {k: v for k, v in by_config.metrics.items() if k not in timing} == {
        k: v for k, v in explicit.metrics.items() if k not in timing
    }
    assert explicit.to_user_attrs()["run.device"] == "cpu"


def test_encodings_follow_the_input_device() -> None:
    x = torch.rand(5, 4, device="cpu")
    gen = torch.Generator(device="cpu").manual_seed(0)
    for encoding in ("rate", "latency", "delta", "direct"):
        assert encode(x, encoding, 3, gen).device == x.device


# ------------------------------------------------------------------ GPU only


@needs_gpu
def test_gpu_training_is_close_to_cpu_and_its_state_is_on_the_cpu() -> None:
    params = _params(epochs=4, conv_layers=1, conv_channels=4)
    cpu = train(DATA, params, seed=2, device="cpu")
    gpu = train(DATA, params, seed=2, device="cuda")
    assert {v.device.type for v in gpu.state.values()} == {"cpu"}
    a = evaluate(cpu, DATA, device="cpu").metrics["accuracy"]
    b = evaluate(gpu, DATA, device="cuda").metrics["accuracy"]
    assert abs(a - b) <= 0.05
    again = train(DATA, params, seed=2, device="cuda")
    assert evaluate(again, DATA, device="cuda").metrics["accuracy"] == b


@needs_gpu
def test_model_trained_on_gpu_is_reused_on_cpu_and_back(tmp_path: Path) -> None:
    model = train(DATA, _params(), seed=4, device="cuda")
    key = model_key({"name": "digits"}, model.params, 4)
    ModelStore(tmp_path).save(key, model)
    fresh = ModelStore(tmp_path).load(key)
    assert fresh is not None
    on_cpu = evaluate(fresh, DATA, HW, device="cpu")
    on_gpu = evaluate(fresh, DATA, HW, device="cuda")
    assert abs(on_cpu.metrics["accuracy"] - on_gpu.metrics["accuracy"]) <= 0.02


@needs_gpu
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_fused_optimizers_step_on_cuda_like_torch_optim(kind: str) -> None:
    torch.manual_seed(0)
    params = [torch.randn(7, 3, device="cuda", requires_grad=True) for _ in range(2)]
    twins = [p.detach().clone().requires_grad_(True) for p in params]
    ours = FusedAdam(params, lr=0.01) if kind == "adam" else FusedSGD(params, lr=0.01)
    theirs = (
        torch.optim.Adam(twins, lr=0.01, fused=True)
        if kind == "adam"
        else torch.optim.SGD(twins, lr=0.01, momentum=0.9, fused=True)
    )
    for _ in range(3):
        for group in (params, twins):
            sum((p**2).sum() for p in group).backward()  # type: ignore[union-attr]
        ours.step()
        theirs.step()
        ours.zero_grad()
        theirs.zero_grad()
    for p, q in zip(params, twins, strict=True):
        assert torch.equal(p, q)


@needs_gpu
def test_no_host_sync_per_batch_on_gpu() -> None:
    """One more epoch adds a few syncs (the epoch's loss), not one per batch."""
    params = _params(batch_size=16)
    train(DATA, params, seed=0, device="cuda")  # data moved, kernels loaded

    def syncs(epochs: int) -> int:
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train(DATA, {**params, "epochs": epochs}, seed=0, device="cuda")
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return len(caught)

    batches_per_epoch = -(-len(DATA.x_train) // 16)
    assert syncs(3) - syncs(2) < batches_per_epoch // 2
