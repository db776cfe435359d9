"""Training by ANN-to-SNN conversion and hybrid fine-tuning (`training` = conversion, hybrid)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from nmhpo.registry import SOFTWARE
from nmhpo.snn import ModelStore, TrainedModel, Training, evaluate, train
from nmhpo.tasks import load_task

DATA = load_task("digits", n_train=600)


def _params(**kw: object) -> dict[str, object]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=3, batch_size=32, hidden_size=32, num_steps=2, lr=0.02)
    base.update(encoding="direct", finetune_epochs=2)
    base.update(kw)
    return base


def _accuracy(model: TrainedModel, num_steps: int) -> float:
    """The same trained network run for another number of time steps."""
    at = replace(model, params={**model.params, "num_steps": num_steps}, _net=None)
    return evaluate(at, DATA).metrics["accuracy"]


@pytest.mark.parametrize("encoding", ["direct", "rate"])
def test_conversion_is_accurate_with_enough_steps_and_better_with_more(encoding: str) -> None:
    model = train(DATA, _params(training="conversion", encoding=encoding), seed=1)
    few, many = _accuracy(model, 2), _accuracy(model, 32)
    assert many > 0.8  # chance is 0.1; bptt's tests ask 0.5 of 2 epochs
    assert many > few + 0.05


def test_the_converted_network_reproduces_the_relu_network_it_came_from() -> None:
    """Integrate-and-fire rates approximate the ReLU activations: over many steps the
    membrane readout (the mean output current) approaches the ReLU network's output."""
    params = _params(training="conversion")
    training = Training(DATA, params, seed=1)
    training.advance(3)
    x = torch.from_numpy(DATA.x_val)
    with torch.inference_mode():
        relu, _ = training.net.relu_forward(x)
    model = training.model()
    net = model.network()
    assert {float(n.beta) for n in net.neurons} == {1.0}
    assert {float(n.threshold) for n in net.neurons} == {1.0}
    with torch.inference_mode():
        out, _ = net(x.unsqueeze(0), 256)
    agree = (out.argmax(dim=1) == relu.argmax(dim=1)).float().mean()
    assert agree > 0.95
    assert torch.corrcoef(torch.stack([out.flatten(), relu.flatten()]))[0, 1] > 0.98


def test_hybrid_fine_tuning_improves_on_conversion_at_few_steps() -> None:
    converted = train(DATA, _params(training="conversion"), seed=1)
    hybrid = train(DATA, _params(training="hybrid"), seed=1)
    assert hybrid.epochs_run == 3 + 2  # epochs counts the ReLU epochs, then the fine-tuning
    assert converted.epochs_run == 3
    assert _accuracy(hybrid, 2) > _accuracy(converted, 2) + 0.05


def test_a_converted_conv_network_classifies() -> None:
    params = _params(training="conversion", conv_layers=1, conv_channels=4, epochs=2)
    assert _accuracy(train(DATA, params, seed=1), 16) > 0.6


def test_relu_epochs_ignore_patience_and_fine_tuning_epochs_use_it() -> None:
    conversion = train(DATA, _params(training="conversion", patience=1), seed=1)
    assert conversion.epochs_run == 3 and conversion.history == []
    hybrid = train(DATA, _params(training="hybrid", patience=1, finetune_epochs=2), seed=1)
    assert len(hybrid.history) == hybrid.epochs_run - 3 >= 1


@pytest.mark.parametrize(
    ("training", "rung"),
    [("conversion", 2), ("hybrid", 2), ("hybrid", 3), ("hybrid", 4)],
    ids=["conversion-relu", "hybrid-relu", "hybrid-at-conversion", "hybrid-fine-tuning"],
)
def test_a_training_resumed_from_a_checkpoint_ends_bit_identical(
    tmp_path: Path, training: str, rung: int
) -> None:
    params = _params(training=training, encoding="rate")
    straight = train(DATA, params, seed=3)

    first = Training(DATA, params, seed=3)
    first.advance(rung)
    evaluate(first.model(), DATA)  # scoring at a rung must not disturb the training's streams
    store = ModelStore(tmp_path)
    store.save_checkpoint("k", rung, first.checkpoint())
    resumed = Training(DATA, params, seed=3, checkpoint=store.load_checkpoint("k", rung))
    assert resumed.epoch == rung
    resumed.advance(resumed.epochs)
    model = resumed.model()
    assert model.epochs_run == straight.epochs_run
    assert model.final_loss == straight.final_loss
    for name, tensor in straight.state.items():
        assert torch.equal(model.state[name], tensor), name
