from __future__ import annotations

import pytest
import torch
from torch import nn

from nmhpo.registry import SOFTWARE
from nmhpo.snn import HardwarePoint, crossbar_synapses, evaluate, train
from nmhpo.tasks import load_task

DATA = load_task("digits")


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    params = {k: p.default for k, p in SOFTWARE.items()}
    params.update(epochs=5, hidden_size=64, num_steps=6, lr=0.01, encoding="direct")
    return train(DATA, params, seed=0)


def _calibrated(layer: nn.Module, hw: HardwarePoint, x: torch.Tensor):  # type: ignore[no-untyped-def]
    (syn,) = crossbar_synapses(nn.ModuleList([layer]), hw)
    syn.start_calibration()
    syn(x)
    syn.finish_calibration()
    return syn


@pytest.mark.parametrize("layer", [nn.Linear(150, 20), nn.Conv2d(3, 5, 3, padding=1)])
def test_high_precision_crossbar_equals_float(layer: nn.Module) -> None:
    torch.manual_seed(0)
    x = (
        (torch.rand(16, 150) < 0.3).float()
        if isinstance(layer, nn.Linear)
        else (torch.rand(4, 3, 6, 6) < 0.3).float()
    )
    hw = HardwarePoint(xbar_size=64, adc_bits=16, weight_bits=16, cell_bits=16)
    syn = _calibrated(layer, hw, x)
    with torch.no_grad():
        expected = layer(x)
    torch.testing.assert_close(syn(x), expected, rtol=2e-3, atol=2e-3)


def test_slicing_is_exact_without_adc_and_lossy_with_a_coarse_adc() -> None:
    torch.manual_seed(1)
    layer = nn.Linear(200, 8)
    x = (torch.rand(32, 200) < 0.5).float()
    hw = HardwarePoint(xbar_size=32, adc_bits=16, weight_bits=8, cell_bits=2)
    one_cell = HardwarePoint(xbar_size=32, adc_bits=16, weight_bits=8, cell_bits=8)
    sliced, whole = _calibrated(layer, hw, x), _calibrated(layer, one_cell, x)
    assert sliced.n_slices == 4 and whole.n_slices == 1
    torch.testing.assert_close(sliced(x), whole(x), rtol=1e-3, atol=1e-3)
    coarse = _calibrated(layer, HardwarePoint(32, 2, 8, 2), x)
    assert (coarse(x) - whole(x)).abs().max() > 0.05


def test_conductance_variation_is_seeded_and_moves_outputs() -> None:
    torch.manual_seed(2)
    layer = nn.Linear(64, 10)
    x = (torch.rand(8, 64) < 0.5).float()
    noisy = HardwarePoint(64, 12, 8, 8, conductance_sigma=0.2, seed=3)
    a, b = _calibrated(layer, noisy, x)(x), _calibrated(layer, noisy, x)(x)
    torch.testing.assert_close(a, b)
    clean = _calibrated(layer, HardwarePoint(64, 12, 8, 8), x)(x)
    assert (a - clean).abs().max() > 1e-3


def test_hardware_knobs_move_accuracy_on_a_trained_digits_model(model) -> None:  # type: ignore[no-untyped-def]
    float_acc = evaluate(model, DATA).metrics["accuracy"]
    eight = evaluate(model, DATA, HardwarePoint(64, 8, 8, 8)).metrics["accuracy"]
    adc2 = evaluate(model, DATA, HardwarePoint(64, 2, 8, 8)).metrics["accuracy"]
    w2 = evaluate(model, DATA, HardwarePoint(64, 8, 2, 2)).metrics["accuracy"]
    assert abs(eight - float_acc) <= 0.02
    assert adc2 < eight - 0.02
    assert w2 < eight - 0.05


def test_hardware_inference_is_repeatable(model) -> None:  # type: ignore[no-untyped-def]
    hw = HardwarePoint(32, 4, 4, 2, conductance_sigma=0.1, seed=1)
    assert evaluate(model, DATA, hw).metrics == evaluate(model, DATA, hw).metrics
