from __future__ import annotations

import pytest
import torch
from torch import nn

from nmhpo.registry import SOFTWARE
from nmhpo.snn import HardwarePoint, _hardware, crossbar_synapses, evaluate, train
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


def _reference(layer: nn.Module, hw: HardwarePoint, x: torch.Tensor, calib: torch.Tensor):  # type: ignore[no-untyped-def]
    """The crossbar as the module docstring states it, one group, sign and slice at a time
    on im2col rows in float64: the fast path's layouts (grouped convolution, batched
    products, in-place ADC) must compute this."""
    conv = isinstance(layer, nn.Conv2d)
    k = layer.kernel_size[0] if conv else 1
    w = layer.weight.detach().double().reshape(layer.weight.shape[0], -1)
    levels = 2 ** (hw.weight_bits - 1) - 1
    w_max = float(w.abs().max())
    q = torch.round(w / w_max * levels)
    n_slices = -(-int(torch.tensor(levels + 1.0).log2().ceil().item()) // hw.cell_bits)
    base = 2**hw.cell_bits

    def rows(t: torch.Tensor) -> torch.Tensor:
        if not conv:
            return t.double()
        cols = torch.nn.functional.unfold(t.double(), k, padding=k // 2)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])

    group = min(hw.xbar_size * k * k, w.shape[1])
    spans = [(g, min(g + group, w.shape[1])) for g in range(0, w.shape[1], group)]

    def psums(t: torch.Tensor) -> dict:  # type: ignore[type-arg]
        r, out = rows(t), {}
        for sign, mag in ((0, q.clamp(min=0)), (1, (-q).clamp(min=0))):
            for j in range(n_slices):
                cell = torch.remainder(torch.div(mag, base**j, rounding_mode="floor"), base)
                out[sign, j] = [r[:, a:b] @ cell[:, a:b].T for a, b in spans]
        return out

    full = {key: max(float(p.max()) for p in ps) or 1.0 for key, ps in psums(calib).items()}
    total = 0.0
    for (sign, j), ps in psums(x).items():
        step = full[sign, j] / (2**hw.adc_bits - 1)
        codes = sum(
            torch.round((p / full[sign, j]).clamp(0, 1) * (2**hw.adc_bits - 1)) for p in ps
        )
        total = total + (1 - 2 * sign) * base**j * step * codes
    y = total * (w_max / levels)
    if layer.bias is not None:
        y = y + layer.bias.detach().double()
    if conv:
        n, _, h, wd = x.shape
        y = y.reshape(n, h * wd, -1).transpose(1, 2).reshape(n, -1, h, wd)
    return y.float()


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: nn.Conv2d(10, 6, 3, padding=1), (5, 10, 7, 7)),
        (lambda: nn.Conv2d(10, 6, 5, padding=2, bias=False), (5, 10, 6, 9)),
        (lambda: nn.Conv2d(10, 6, 1), (5, 10, 4, 4)),
        (lambda: nn.Linear(70, 12), (40, 70)),
        (lambda: nn.Linear(70, 12, bias=False), (40, 70)),
    ],
)
@pytest.mark.parametrize("chunk_rows", [1 << 14, 100, 16])
def test_fast_path_equals_the_reference_crossbar_over_several_groups(  # type: ignore[no-untyped-def]
    make, shape, chunk_rows, monkeypatch
) -> None:
    # chunk_rows = 100: two 7x7 images a chunk (2, 2, 1); 16: one image, or 16 rows, a chunk
    monkeypatch.setattr(_hardware, "_CHUNK_ROWS", chunk_rows)
    torch.manual_seed(3)
    layer = make()
    calib, x = (torch.rand(shape) < 0.4).float(), (torch.rand(shape) < 0.4).float()
    # 4-row crossbars: 3 groups of 4 channels (the last padded) for the conv, 18 for the linear.
    hw = HardwarePoint(xbar_size=4, adc_bits=4, weight_bits=6, cell_bits=2)
    (syn,) = crossbar_synapses(nn.ModuleList([layer]), hw)
    assert syn.n_groups == (3 if isinstance(layer, nn.Conv2d) else 18) and syn.n_slices == 3
    syn.start_calibration()
    syn(calib)
    syn.finish_calibration()
    expected = _reference(layer, hw, x, calib)
    torch.testing.assert_close(syn(x), expected, rtol=1e-5, atol=1e-5)
    # a coarse ADC is what the comparison exercises: it moves outputs away from float
    assert (expected - layer(x).detach()).abs().max() > 0.02


def test_only_same_size_convolutions_are_mapped() -> None:
    hw = HardwarePoint(xbar_size=4, adc_bits=4, weight_bits=6, cell_bits=2)
    for layer in (
        nn.Conv2d(3, 4, 3, padding=1, stride=2),
        nn.Conv2d(3, 4, 3),
        nn.Conv2d(4, 4, 3, padding=1, groups=2),
    ):
        with pytest.raises(ValueError, match="'same' convolutions"):
            crossbar_synapses(nn.ModuleList([layer]), hw)
    # a layer the crossbar mapping has no layout for is refused, not mapped as a linear one
    with pytest.raises(TypeError, match="Linear and Conv2d"):
        crossbar_synapses(nn.ModuleList([nn.Conv1d(3, 4, 3, padding=1)]), hw)


def test_conv_partial_sums_ask_cudnn_for_full_float32_and_restore_the_flag() -> None:
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with _hardware._ieee_conv(torch.device("cuda")):
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before
    with _hardware._ieee_conv(torch.device("cpu")):
        assert conv.fp32_precision == before
    assert torch.backends.cudnn.allow_tf32 in (True, False)  # the legacy flag reads again
