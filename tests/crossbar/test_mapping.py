from __future__ import annotations

import math

import pytest

from nmhpo.crossbar import Layer, Network, evaluate, layer_mapping, load_preset, vgg9_cifar10
from nmhpo.errors import HardwareModelError

RRAM = load_preset("rram-32nm")
SPIKESIM = load_preset("spikesim-65nm")
SMALL_CNN = Network((Layer(1, 4, 3, 8, 8), Layer(64, 32), Layer(32, 10)))


@pytest.mark.parametrize("network", [vgg9_cifar10(), SMALL_CNN])
@pytest.mark.parametrize("xbar_size", [32, 64, 128])
@pytest.mark.parametrize("mode", ["event", "spikesim"])
def test_mapping_counts_what_evaluate_prices(network: Network, xbar_size: int, mode: str) -> None:
    knobs = {"xbar_size": xbar_size, "pe_per_tile": 4}
    m = layer_mapping(network, RRAM, knobs, mode=mode)  # type: ignore[arg-type]
    priced = evaluate(network, RRAM, knobs, num_steps=4, mode=mode)  # type: ignore[arg-type]
    assert m.n_pe == priced.n_pe[0] == m.pes.sum()
    assert m.n_tiles == priced.n_tiles[0]


def test_mapping_per_layer_against_a_scalar_reference() -> None:
    knobs = {"xbar_size": 32, "weight_bits": 8, "cell_bits": 2, "pe_per_tile": 8}
    m = layer_mapping(SMALL_CNN, RRAM, knobs)
    for i, layer in enumerate(SMALL_CNN.layers):
        rows, cols = math.ceil(layer.c_in / 32), math.ceil(layer.c_out / 32)
        assert (m.row_blocks[i], m.col_blocks[i], m.pes[i]) == (rows, cols, rows * cols)
        assert m.crossbars[i] == rows * cols * layer.k**2 * 4
        assert m.pe_cycles_per_step[i] == rows * cols * layer.d_out**2
    assert (m.n_pe, m.n_tiles, m.weight_slices, m.crossbars_per_pe) == (4, 1, 4, 36)
    # SpikeSim ELA stores one cell per weight.
    assert layer_mapping(SMALL_CNN, SPIKESIM, mode="spikesim").weight_slices == 1


def test_mapping_takes_one_design_and_ignores_inference_only_knobs() -> None:
    m = layer_mapping(SMALL_CNN, RRAM, {"xbar_size": 64, "conductance_sigma": 0.1})
    assert m.n_pe == 3
    with pytest.raises(HardwareModelError, match="must be a scalar"):
        layer_mapping(SMALL_CNN, RRAM, {"xbar_size": [32, 64]})
