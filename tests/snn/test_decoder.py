"""Encoder-decoder spiking networks for image-to-image tasks (ptycho): shapes, the doubled
maps the decoder's crossbars read, training, NeuroBench's counts and a priced study."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional as F  # noqa: N812

import nmhpo
from nmhpo.config import load_config
from nmhpo.errors import ConfigError
from nmhpo.registry import SOFTWARE
from nmhpo.snn import Architecture, HardwarePoint, evaluate, nir_problem, train
from nmhpo.snn._train import architecture, build_network
from nmhpo.tasks import load_task
from tests.test_neurobench import _counted, _reference

_STUDY = """
[study]
name = "ptycho-decoder"
sampler = "random"
n_trials = 2
seed = 0
pruner = "none"
objectives = [
  { name = "phase_mae", direction = "minimize" },
  { name = "energy_uj", direction = "minimize" },
]

[task]
name = "ptycho"
size = 16
n_train = 128
n_val = 32
n_test = 32

[hardware]
preset = "rram-32nm"

[space.software]
epochs = 1
batch_size = 32
hidden_size = 32
num_steps = 2
encoding = "direct"
conv_channels = 4
decoder_layers = { type = "int", low = 1, high = 2 }
"""

DATA = load_task("ptycho", size=16, n_train=256, n_val=64, n_test=64)


def _params(**kw: Any) -> dict[str, Any]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=3, batch_size=32, hidden_size=64, num_steps=3, lr=0.005)
    base.update(encoding="direct", decoder_layers=2, conv_channels=4)
    base.update(kw)
    return base


def test_shapes_of_an_encoder_decoder() -> None:
    arch = Architecture(
        input_shape=(1, 16, 16),
        conv_channels=(4,),
        kernel_size=3,
        hidden=(64,),
        n_outputs=2 * 16 * 16,
        decoder_channels=(8, 4),
    )
    assert arch.output_shape == (2, 16, 16)
    # conv 16x16 -> pool 8x8 -> dense 256 -> 64 -> 8 x 4 x 4 -> up 8x8 conv -> up 16x16 conv
    assert arch.dense_sizes() == [4 * 8 * 8, 64, 8 * 4 * 4]
    assert arch.decoder_shapes() == [(8, 4, 8), (4, 2, 16)]
    assert arch.layer_inputs() == [(1, 16, 16), (256,), (64,), (8, 8, 8), (4, 16, 16)]
    assert arch.crossbar_layers() == [
        (1, 4, 3, 16, 16),
        (256, 64, 1, 1, 1),
        (64, 128, 1, 1, 1),
        (8, 4, 3, 8, 8),
        (4, 2, 3, 16, 16),
    ]
    # the architecture the trainer builds mirrors the encoder's widths
    assert architecture(DATA, _params(conv_layers=1)).decoder_channels == (8, 4)


@pytest.mark.parametrize(
    ("shape", "outputs", "message"),
    [((1, 12, 12), 288, "divides by 8"), ((1, 16, 16), 300, "not a whole number")],
)
def test_a_decoder_refuses_sizes_it_cannot_rebuild(
    shape: tuple[int, ...], outputs: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Architecture(shape, (), 3, (8,), outputs, decoder_channels=(4, 4, 4))


def test_the_decoder_reads_each_spike_repeated_two_by_two_and_counts_it_so() -> None:
    params = _params(encoding="rate")
    torch.manual_seed(0)
    net = build_network(architecture(DATA, params), params).eval()
    with torch.no_grad():
        for layer in net.weights:
            layer.weight.mul_(4.0)  # enough current for the decoder to spike
    seen: dict[int, torch.Tensor] = {}
    for i in (2, 3):
        net.weights[i].register_forward_pre_hook(
            lambda m, a, i=i: seen.__setitem__(i, a[0].detach())
        )
    x = torch.tensor(DATA.x_val[:8]).expand(3, -1, -1, -1, -1).bernoulli()
    with torch.no_grad():
        out, events = net(x, 3)
    assert out.shape == (8, 2 * 16 * 16)
    for i, side in ((2, 8), (3, 16)):
        h = seen[i]
        assert h.shape[-2:] == (side, side)
        assert h.sum() > 0
        # nearest-neighbour doubling: every 2 x 2 block holds one spike value
        assert torch.equal(h, F.interpolate(F.max_pool2d(h, 2), scale_factor=2))
        assert torch.equal(events[:, i], h.reshape(3, -1).sum(dim=1).to(torch.float64))


def test_an_encoder_decoder_learns_and_runs_on_crossbars() -> None:
    params = _params(conv_layers=1, hidden_size=128, epochs=5)
    model = train(DATA, params, seed=0)
    assert model.arch.decoder_channels == (8, 4)
    first = train(DATA, {**params, "epochs": 1}, seed=0)
    assert model.final_loss < 0.5 * first.final_loss
    fine = evaluate(model, DATA)
    hw = evaluate(model, DATA, HardwarePoint(xbar_size=64, adc_bits=4, weight_bits=4, cell_bits=2))
    assert set(fine.metrics) >= {"phase_mae", "amp_mae", "phase_ssim"}
    assert len(fine.activity) == len(model.arch.crossbar_layers())
    assert all(0 < a <= 1 for a in fine.activity)  # the decoder's layers spike too
    # a 4-bit crossbar computes other outputs than the float network
    assert hw.metrics["phase_mae"] != fine.metrics["phase_mae"]
    assert np.isfinite(list(hw.metrics.values())).all()


@pytest.mark.parametrize("training", ["conversion", "hybrid"])
def test_a_decoder_network_converts(training: str) -> None:
    model = train(DATA, _params(training=training, epochs=2, finetune_epochs=1), seed=0)
    result = evaluate(model, DATA)
    assert np.isfinite(list(result.metrics.values())).all()
    assert result.spikes_per_inference > 0


@pytest.mark.parametrize("readout", ["membrane", "spikes"])
def test_neurobench_counts_of_a_decoder_network_equal_the_definitions(readout: str) -> None:
    params = _params(readout=readout, conv_layers=1, encoding="rate")
    torch.manual_seed(0)
    net = build_network(architecture(DATA, params), params).eval()
    with torch.no_grad():
        for layer in net.weights:
            layer.weight.mul_(3.0)
        net.weights[3].weight[0, 1] = 0.0  # pruned synapses in the decoder
    x = torch.tensor(DATA.x_val[:6]).expand(3, -1, -1, -1, -1).bernoulli()
    counted, expected = _counted(net, x, 3), _reference(net, x, 3)
    assert counted == pytest.approx(expected, rel=1e-9)
    assert counted["syn_ops_effective_ac"] > 0


def test_a_study_whose_image_cannot_halve_often_enough_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(_STUDY.replace("size = 16", "size = 20").replace("high = 2", "high = 3"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: space.software.decoder_layers: 3 decoder layers halve the image 3 times; "
        "task.size = 20 does not divide by 8"
    )


def test_nir_refuses_a_decoder() -> None:
    reason = nir_problem(_params(neuron="leaky", beta=0.9))
    assert reason is not None and "upsampling" in reason


def test_a_study_searches_the_decoder_and_prices_its_layers(tmp_path: Path) -> None:
    path = tmp_path / "ptycho.toml"
    path.write_text(_STUDY)
    study = nmhpo.run_study(path, progress=False)
    records = study.trials()
    assert [r.state for r in records] == ["COMPLETE"] * 2
    for record in records:
        assert record.result is not None
        depth = int(record.result.point.software["decoder_layers"])
        layers = record.result.point.layers
        assert len(layers) == 2 + depth  # two dense layers, then the decoder's convs
        assert [shape[2] for shape in layers[2:]] == [3] * depth
        energy = record.result.breakdown.energy_by_layer_pj
        assert len(energy) == len(layers) and all(e > 0 for e in energy)
