"""A scalar, one-design-at-a-time implementation of the crossbar model, with plain loops.

It exists to check the vectorized `evaluate` (tests assert they agree on random networks and
designs) and as the baseline the benchmark measures the vectorized model against. It is
written for reading, not speed: every formula appears once, in the order of
shared/crossbar-model.md.
"""

from __future__ import annotations

import math
from typing import Any

from nmhpo.crossbar._network import Network
from nmhpo.crossbar._presets import Preset


def _tech_factor(node: float, nodes: list[float], factors: list[float]) -> float:
    pairs = sorted(zip(nodes, factors, strict=True))
    for (n0, f0), (n1, f1) in zip(pairs, pairs[1:], strict=False):
        if n0 <= node <= n1:
            t = (math.log(node) - math.log(n0)) / (math.log(n1) - math.log(n0))
            return math.exp(math.log(f0) + t * (math.log(f1) - math.log(f0)))
    raise ValueError(f"tech_node {node} outside the scaling table")


def evaluate_one(
    network: Network,
    preset: Preset,
    knobs: dict[str, Any],
    num_steps: int,
    activity: list[float] | None = None,
    mode: str = "event",
) -> dict[str, float]:
    """Energy (pJ), latency (ns) and area (um^2) of one design."""
    kn = {**preset.knobs, **knobs}
    e, a = preset.constants["energy_pj"], preset.constants["area_um2"]
    x = kn["xbar_size"]
    dense = mode == "spikesim"
    act = [1.0] * network.n_layers if dense or activity is None else list(activity)
    if dense:
        cols, bits_e, bits_a, slices, fe, fa = 8, 1.0, 1.0, 1, 1.0, 1.0
        e_xbar = e["xbar_sram"] if kn["device"] == "sram" else e["xbar_rram"]
    else:
        cols = kn["cols_per_adc"]
        bits_e = 2.0 ** (kn["adc_bits"] - 4)
        bits_a = 1.8 ** (kn["adc_bits"] - 4)
        slices = math.ceil(kn["weight_bits"] / kn["cell_bits"])
        table = preset.constants["tech_scaling"]
        fe = _tech_factor(kn["tech_node"], table["node_nm"], table["energy"])
        fa = _tech_factor(kn["tech_node"], table["node_nm"], table["area"])
        e_xbar = e["xbar_sram_event"] if kn["device"] == "sram" else e["xbar_rram"]
    groups = math.ceil(x / cols)

    energy = 0.0
    n_pe = 0
    for layer, a_in in zip(network.layers, act, strict=True):
        pes = math.ceil(layer.c_in / x) * math.ceil(layer.c_out / x)
        n_pe += pes
        rows = min(x, layer.c_in) * layer.k**2
        p_active = 1.0 - (1.0 - a_in) ** rows
        per_cycle = (
            groups * layer.k**2 * slices * e_xbar * a_in
            + groups**2 * slices * e["adc"] * bits_e * p_active
            + groups**2 * slices * e["mux"] * p_active
            + groups * 16 * slices * e["sub"] * p_active
            + groups * e["tmpbuf"] * p_active
            + e["neuron"]
            + (e["htree"] + e["fetch"] + e["tilebuf"]) * a_in
        )
        energy += num_steps * pes * layer.d_out**2 * per_cycle * fe

    tiles = math.ceil(n_pe / kn["pe_per_tile"])
    k2_max = max(layer.k**2 for layer in network.layers)
    a_xbar = a["xbar_sram"] if kn["device"] == "sram" else a["xbar_rram"]
    a_pe = k2_max * slices * a_xbar + groups * (a["adc"] * bits_a + a["mux"])
    a_tile = groups * a["sub"] + a["tmpbuf"] + a["tilebuf"] + kn["pe_per_tile"] * a_pe + a["htree"]
    word = preset.constants["memory"]["word_bits"] * a["bitcell"]
    a_in_mem = sum(layer.c_in * layer.d_in**2 * word for layer in network.layers)
    n_mem = preset.constants["memory"]["membrane_layers"]
    a_mem = sum(layer.c_out * layer.d_out**2 * word for layer in network.layers[:n_mem])
    area = (tiles * a_tile + a_in_mem + a_mem) * fa

    lat = preset.constants["latency"]
    pe_cycle = lat["pe_cycle_clocks"] * 1000.0 / kn["clock_mhz"]
    if not dense:
        pe_cycle *= (cols / 8) * (kn["adc_bits"] / 4)
    neurons = [layer.c_out * layer.d_out**2 for layer in network.layers]
    schedule = sum(math.floor(lat["pipeline_fraction"] * n) for n in neurons[:-1]) + neurons[-1]
    latency = pe_cycle * num_steps * schedule
    if not dense:
        energy += area * preset.constants["leakage"]["pw_per_um2"] * latency * 1e-9
    return {"energy_pj": energy, "latency_ns": latency, "area_um2": area, "n_pe": n_pe}
