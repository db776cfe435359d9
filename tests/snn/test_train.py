from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch

from nmhpo.errors import TrialFailedError
from nmhpo.objective import training_seed
from nmhpo.registry import SOFTWARE
from nmhpo.snn import ModelStore, encode, evaluate, model_key, train
from nmhpo.tasks import load_task

DATA = load_task("digits", n_train=600)


def _params(**kw: object) -> dict[str, object]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=2, batch_size=32, hidden_size=32, num_steps=3, lr=0.02)
    base.update(kw)
    return base


def test_encodings_shapes_and_meaning() -> None:
    x = torch.tensor([[0.0, 0.25, 0.5, 1.0]])
    gen = torch.Generator().manual_seed(0)
    rate = encode(x.expand(2000, 4), "rate", 4, gen)
    assert rate.shape == (4, 2000, 4)
    assert set(rate.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(rate.mean(dim=(0, 1)).numpy(), [0, 0.25, 0.5, 1.0], atol=0.02)
    latency = encode(x, "latency", 5, gen)
    assert latency.sum(dim=0).tolist() == [[0.0, 1.0, 1.0, 1.0]]  # one spike, none for 0
    assert latency[:, 0].argmax(dim=0)[1:].tolist() == [3, 2, 0]  # larger value, earlier
    delta = encode(x, "delta", 8, gen)
    assert delta.sum(dim=0).tolist() == [[0.0, 2.0, 4.0, 8.0]]  # deterministic rate x * T
    assert encode(x, "direct", 8, gen).shape == (1, 1, 4)


@pytest.mark.parametrize("encoding", ["rate", "latency", "delta", "direct"])
def test_training_learns_and_measures_activity(encoding: str) -> None:
    model = train(DATA, _params(encoding=encoding), seed=1)
    result = evaluate(model, DATA)
    assert result.metrics["accuracy"] > 0.5  # chance is 0.1
    assert model.arch.crossbar_layers() == [(64, 32, 1, 1, 1), (32, 10, 1, 1, 1)]
    assert len(result.activity) == 2
    assert all(0.0 < a < 1.0 for a in result.activity)
    assert np.array(result.activity_per_step).shape == (3, 2)
    assert result.spikes_per_inference > 0


@pytest.mark.parametrize(
    "extra",
    [
        {"neuron": "synaptic", "alpha": 0.7},
        {"readout": "spikes", "epochs": 3},
        {"reset": "zero"},
        {"optimizer": "sgd", "lr": 0.1},
        {"conv_layers": 1, "conv_channels": 4},
        {"hidden_layers": 2, "surrogate": "atan"},
    ],
    ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()),
)
def test_model_variants_train(extra: dict[str, object]) -> None:
    model = train(DATA, _params(**extra), seed=2)
    assert evaluate(model, DATA).metrics["accuracy"] > 0.3


def test_training_reduces_the_loss_and_early_stopping_stops() -> None:
    one = train(DATA, _params(epochs=1), seed=4)
    more = train(DATA, _params(epochs=4), seed=4)
    assert more.final_loss < one.final_loss
    stopped = train(DATA, _params(epochs=40, patience=1, lr=0.05), seed=4)
    assert stopped.epochs_run < 40
    assert len(stopped.history) == stopped.epochs_run


def test_same_seed_same_network_and_no_neuron_leak() -> None:
    a = evaluate(train(DATA, _params(), seed=7), DATA)
    b = evaluate(train(DATA, _params(), seed=7), DATA)
    assert a.metrics == b.metrics and a.activity == b.activity
    assert snn.SpikingNeuron.instances == []  # snntorch#328: cleared after each trial


def test_more_time_steps_mean_more_input_events() -> None:
    few = evaluate(train(DATA, _params(num_steps=2), seed=3), DATA)
    many = evaluate(train(DATA, _params(num_steps=8), seed=3), DATA)
    assert many.spikes_per_inference > few.spikes_per_inference


def test_diverging_run_fails_with_its_reason() -> None:
    with pytest.raises(TrialFailedError, match="training diverged"):
        train(DATA, _params(lr=1e20), seed=0)


def test_training_seed_depends_on_the_software_point_only() -> None:
    p = _params()
    assert training_seed(0, p) == training_seed(0, dict(p))
    assert training_seed(0, p) != training_seed(1, p)
    assert training_seed(0, p) != training_seed(0, {**p, "lr": 0.5})


def test_model_store_round_trip(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    model = train(DATA, _params(conv_layers=1, conv_channels=4), seed=5)
    key = model_key({"name": "digits"}, model.params, 5)
    assert store.load(key) is None
    store.save(key, model)
    fresh = ModelStore(tmp_path).load(key)  # another process: from disk
    assert fresh is not None and fresh.arch == model.arch
    assert evaluate(fresh, DATA).metrics == evaluate(model, DATA).metrics
    assert list(tmp_path.glob("*.tmp")) == []


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"optimizer": "sgd", "lr": 0.1},
        {"patience": 1, "encoding": "rate"},  # early stopping's state and the encoding's draws
    ],
)
def test_a_training_resumed_from_a_checkpoint_ends_bit_identical(
    tmp_path: Path, extra: dict[str, object]
) -> None:
    from nmhpo.snn import Training

    params = _params(epochs=5, **extra)
    straight = train(DATA, params, seed=3)

    first = Training(DATA, params, seed=3)
    first.advance(2)
    evaluate(first.model(), DATA)  # scoring at a rung must not disturb the training's streams
    store = ModelStore(tmp_path)
    store.save_checkpoint("k", 2, first.checkpoint())
    assert store.checkpoint_epochs("k") == [2]
    resumed = Training(DATA, params, seed=3, checkpoint=store.load_checkpoint("k", 2))
    assert resumed.epoch == 2
    resumed.advance(5)
    model = resumed.model()
    assert model.epochs_run == straight.epochs_run
    assert model.history == straight.history
    for name, tensor in straight.state.items():
        assert torch.equal(model.state[name], tensor), name
    store.drop_checkpoints("k")
    assert store.checkpoint_epochs("k") == []
