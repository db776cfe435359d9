from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmhpo.crossbar import (
    AREA_COMPONENTS,
    ENERGY_COMPONENTS,
    Layer,
    Network,
    buildable,
    dense_network,
    evaluate,
    load_preset,
    vgg9_cifar10,
)
from nmhpo.errors import HardwareModelError

SPIKESIM = load_preset("spikesim-65nm")
VGG9 = vgg9_cifar10()
MLP = dense_network([64, 128, 10])


def test_spikesim_check_value_vgg9() -> None:
    r = evaluate(VGG9, SPIKESIM, {"xbar_size": 64}, num_steps=5, mode="spikesim")
    assert r.energy_pj[0] == pytest.approx(15_906_934.03, abs=0.01)
    assert r.area_um2[0] == pytest.approx(8_425_528.76, abs=0.01)
    assert r.latency_ns[0] == 62_832_640
    assert (r.n_pe[0], r.n_tiles[0]) == (48, 6)
    share = {k: v[0] / r.energy_pj[0] for k, v in r.energy_breakdown_pj.items()}
    assert round(share["tilebuf"], 2) == 0.48
    assert round(share["htree"], 2) == 0.19
    assert round(share["adc"] + share["mux"], 2) == 0.16
    assert round(share["xbar"], 2) == 0.15


def _spikesim_scalar(
    layers: list[tuple[int, int, int, int]], k: int, x: int, p: int, t: int, f: float, device: str
) -> tuple[float, float, float]:
    """SpikeSim ELA re-derived one design at a time, with loops, from crossbar-model.md."""
    e_xbar = 1.76423 if device == "rram" else 671.089
    a_xbar = 26.2144 if device == "rram" else 671.089
    e_pc = 157.12 + 4.64 + 5.096 + 397.0
    e_pc += (x / 8) * k * k * e_xbar + (x / 8) ** 2 * (2.03084 + 0.094245)
    e_pc += (x / 8) * 16 * 1.15e-6 + (x / 8) * 0.2
    n_pe, cycles = 0, 0
    for c_in, c_out, _d_in, d_out in layers:
        n = math.ceil(c_in / x) * math.ceil(c_out / x)
        n_pe += n
        cycles += n * d_out * d_out
    energy = t * e_pc * cycles
    tiles = math.ceil(n_pe / p)
    a_pe = k * k * a_xbar + (x / 8) * (693.633 + 45.9)
    a_tile = (x / 8) * 13411.41498 + 484.643999 + 6054.7072 + p * a_pe + 433660.0
    word = 22 * 0.7391
    a_in = sum(c_in * d_in * d_in * word for c_in, _, d_in, _ in layers)
    a_mem = sum(c_out * d_out * d_out * word for _, c_out, _, d_out in layers[:5])
    area = tiles * a_tile + a_in + a_mem
    neurons = [c_out * d_out * d_out for _, c_out, _, d_out in layers]
    schedule = sum(math.floor(0.75 * n) for n in neurons[:-1]) + neurons[-1]
    latency = 26 * 1000 / f * t * schedule
    return energy, area, latency


layer_st = st.tuples(
    st.integers(1, 600), st.integers(1, 600), st.integers(1, 40), st.integers(1, 40)
)


@settings(max_examples=60, deadline=None)
@given(
    layers=st.lists(layer_st, min_size=1, max_size=8),
    k=st.integers(1, 5),
    designs=st.lists(
        st.tuples(
            st.sampled_from([16, 32, 64, 128, 256]),
            st.integers(1, 16),
            st.integers(1, 32),
            st.sampled_from([100.0, 250.0, 1000.0]),
            st.sampled_from(["rram", "sram"]),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_spikesim_mode_equals_scalar_reference(layers, k, designs) -> None:  # type: ignore[no-untyped-def]
    net = Network(tuple(Layer(ci, co, k, di, do) for ci, co, di, do in layers))
    x, p, t, f, dev = (np.array(col) for col in zip(*designs, strict=False))
    r = evaluate(
        net,
        SPIKESIM,
        {"xbar_size": x, "pe_per_tile": p, "clock_mhz": f, "device": dev},
        num_steps=t,
        mode="spikesim",
    )
    for i, design in enumerate(designs):
        xi, pi, ti, fi, di = design
        energy, area, latency = _spikesim_scalar(layers, k, xi, pi, ti, fi, di)
        assert r.energy_pj[i] == pytest.approx(energy, rel=1e-9)
        assert r.area_um2[i] == pytest.approx(area, rel=1e-9)
        assert r.latency_ns[i] == pytest.approx(latency, rel=1e-9)


def test_event_mode_at_default_knobs_and_full_activity_is_spikesim() -> None:
    for net in (VGG9, MLP):
        a = evaluate(net, SPIKESIM, num_steps=7, activity=1.0, mode="event")
        b = evaluate(net, SPIKESIM, num_steps=7, mode="spikesim")
        assert a.energy_pj == pytest.approx(b.energy_pj, rel=1e-12)
        assert a.area_um2 == pytest.approx(b.area_um2, rel=1e-12)
        assert a.latency_ns == pytest.approx(b.latency_ns, rel=1e-12)


def test_more_activity_steps_or_adc_bits_never_cost_less_energy() -> None:
    activity = np.linspace(0.0, 1.0, 21)
    by_activity = evaluate(MLP, SPIKESIM, num_steps=4, activity=np.stack([activity] * 2, 1))
    assert np.all(np.diff(by_activity.energy_pj) >= 0)
    by_bits = evaluate(MLP, SPIKESIM, {"adc_bits": np.arange(1, 9)}, num_steps=4, activity=0.2)
    assert np.all(np.diff(by_bits.energy_pj) > 0)
    by_steps = evaluate(MLP, SPIKESIM, num_steps=np.arange(1, 20), activity=0.2)
    assert np.all(np.diff(by_steps.energy_pj) > 0)


def test_larger_technology_node_never_has_less_area_or_energy() -> None:
    nodes = np.array([7, 10, 14, 22, 32, 45, 65])
    r = evaluate(VGG9, SPIKESIM, {"tech_node": nodes}, num_steps=5, activity=0.3)
    assert np.all(np.diff(r.area_um2) > 0)
    assert np.all(np.diff(r.energy_pj) > 0)


def test_no_input_spike_means_no_read_or_conversion_energy() -> None:
    r = evaluate(MLP, SPIKESIM, num_steps=4, activity=[0.0, 0.0])
    for comp in ("xbar", "adc", "mux", "sub", "tmpbuf", "htree", "fetch", "tilebuf"):
        assert r.energy_breakdown_pj[comp][0] == 0.0
    assert r.energy_breakdown_pj["neuron"][0] > 0  # membranes still leak and update


def test_breakdowns_sum_to_totals() -> None:
    rng = np.random.default_rng(0)
    n = 50
    knobs = {
        "xbar_size": rng.choice([32, 64, 128], n),
        "adc_bits": rng.integers(2, 9, n),
        "weight_bits": rng.integers(1, 9, n),
        "cell_bits": rng.integers(1, 5, n),
        "tech_node": rng.uniform(7, 65, n),
    }
    r = evaluate(VGG9, SPIKESIM, knobs, num_steps=5, activity=rng.uniform(0, 1, (n, 7)))
    assert set(r.energy_breakdown_pj) == set(ENERGY_COMPONENTS)
    assert set(r.area_breakdown_um2) == set(AREA_COMPONENTS)
    np.testing.assert_allclose(sum(r.energy_breakdown_pj.values()), r.energy_pj, rtol=1e-12)
    np.testing.assert_allclose(r.energy_by_layer_pj.sum(axis=1), r.energy_pj, rtol=1e-12)
    np.testing.assert_allclose(sum(r.area_breakdown_um2.values()), r.area_um2, rtol=1e-12)


# Mixed kernel sizes, feature maps and a dense head, so per-layer terms differ.
MIXED = Network(
    (Layer(3, 40, 3, 16, 16), Layer(40, 200, 5, 16, 8), Layer(200, 90, 1, 8, 8), Layer(5760, 10))
)


def _random_designs(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "xbar_size": rng.choice([16, 32, 64, 128, 256], n),
        "pe_per_tile": rng.integers(1, 17, n),
        "clock_mhz": rng.choice([100.0, 250.0, 500.0], n),
        "device": rng.choice(["rram", "sram"], n),
        "adc_bits": rng.integers(1, 9, n),
        "cols_per_adc": rng.choice([1, 4, 8, 16], n),
        "weight_bits": rng.integers(1, 9, n),
        "cell_bits": rng.integers(1, 5, n),
        "tech_node": rng.uniform(7, 65, n),
    }


@pytest.mark.parametrize("mode", ["event", "spikesim"])
@pytest.mark.parametrize("per_design_activity", [False, True])
def test_energy_views_are_sums_of_one_energy_array(mode: str, per_design_activity: bool) -> None:
    """Total, breakdown by component and breakdown by layer agree, with leakage switched on."""
    rng = np.random.default_rng(3)
    n = 300
    activity = rng.uniform(0, 1, (n, 4) if per_design_activity else 4)
    preset = SPIKESIM.with_constants({"leakage": {"pw_per_um2": 5.0}})
    steps = rng.integers(1, 33, n)
    r = evaluate(
        MIXED, preset, _random_designs(rng, n), num_steps=steps, activity=activity, mode=mode
    )
    breakdown = r.energy_breakdown_pj
    assert list(breakdown) == list(ENERGY_COMPONENTS)
    assert all(v.shape == (n,) for v in breakdown.values())
    assert r.energy_by_layer_pj.shape == (n, 4)
    leakage = breakdown["leakage"]
    assert np.all(leakage > 0) if mode == "event" else np.all(leakage == 0)
    np.testing.assert_allclose(sum(breakdown.values()), r.energy_pj, rtol=1e-12)
    np.testing.assert_allclose(r.energy_by_layer_pj.sum(axis=1) + leakage, r.energy_pj, rtol=1e-12)
    dynamic = sum(v for c, v in breakdown.items() if c != "leakage")
    np.testing.assert_allclose(r.energy_by_layer_pj.sum(axis=1), dynamic, rtol=1e-12)


def test_energy_of_a_layer_is_the_energy_of_that_layer_priced_alone() -> None:
    """Dynamic energy is per layer (only area and leakage are chip-wide), so each column of
    ``energy_by_layer_pj`` must equal pricing that one layer as a network of its own."""
    rng = np.random.default_rng(4)
    n = 50
    knobs = _random_designs(rng, n)
    activity = rng.uniform(0, 1, (n, 4))
    steps = rng.integers(1, 33, n)
    by_layer = evaluate(MIXED, SPIKESIM, knobs, num_steps=steps, activity=activity)
    for i, layer in enumerate(MIXED.layers):
        alone = evaluate(
            Network((layer,)), SPIKESIM, knobs, num_steps=steps, activity=activity[:, i : i + 1]
        )
        np.testing.assert_allclose(by_layer.energy_by_layer_pj[:, i], alone.energy_pj, rtol=1e-12)


def test_batch_equals_one_design_at_a_time() -> None:
    rng = np.random.default_rng(1)
    n = 20
    knobs = {
        "xbar_size": rng.choice([32, 64, 128, 256], n),
        "adc_bits": rng.integers(2, 9, n),
        "cols_per_adc": rng.choice([4, 8, 16], n),
        "device": rng.choice(["rram", "sram"], n),
        "tech_node": rng.uniform(7, 65, n),
    }
    steps = rng.integers(1, 10, n)
    act = rng.uniform(0, 1, (n, 2))
    batch = evaluate(MLP, SPIKESIM, knobs, num_steps=steps, activity=act)
    for i in range(n):
        one = evaluate(
            MLP,
            SPIKESIM,
            {k: v[i] for k, v in knobs.items()},
            num_steps=steps[i],
            activity=act[i],
        )
        assert one.energy_pj[0] == pytest.approx(batch.energy_pj[i], rel=1e-12)
        assert one.area_um2[0] == pytest.approx(batch.area_um2[i], rel=1e-12)
        assert one.latency_ns[0] == pytest.approx(batch.latency_ns[i], rel=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: Layer(-3, 10), "c_in must be a positive integer"),
        (lambda: dense_network([10]), "at least two sizes"),
        (lambda: evaluate(MLP, SPIKESIM, num_steps=0), "num_steps must be a positive"),
        (lambda: evaluate(MLP, SPIKESIM, {"device": "pcm"}, num_steps=1), "'device' must be"),
        (lambda: evaluate(MLP, SPIKESIM, {"xbar_size": 0}, num_steps=1), "'xbar_size' must be"),
        (lambda: evaluate(MLP, SPIKESIM, {"volts": 1}, num_steps=1), "unknown hardware knob"),
        (lambda: evaluate(MLP, SPIKESIM, {"tech_node": 3}, num_steps=1), "'tech_node' must"),
        (lambda: evaluate(MLP, SPIKESIM, num_steps=1, activity=[0.1]), "activity has 1 values"),
        (lambda: evaluate(MLP, SPIKESIM, num_steps=1, activity=1.5), "within [0, 1]"),
        (lambda: evaluate(MLP, SPIKESIM, num_steps=1, mode="exact"), "mode must be one of"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(HardwareModelError, match=message.replace("[", r"\[")):
        call()


def test_importing_the_crossbar_model_does_not_import_torch() -> None:
    code = (
        "import sys, nmhpo.crossbar, nmhpo.config, nmhpo.tasks;"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@settings(max_examples=60, deadline=None)
@given(
    layers=st.lists(
        st.tuples(layer_st, st.integers(1, 5), st.floats(0.0, 1.0)), min_size=1, max_size=6
    ),
    design=st.fixed_dictionaries(
        {
            "xbar_size": st.sampled_from([16, 32, 64, 128, 256]),
            "pe_per_tile": st.integers(1, 16),
            "clock_mhz": st.sampled_from([100.0, 250.0]),
            "device": st.sampled_from(["rram", "sram"]),
            "adc_bits": st.integers(1, 8),
            "cols_per_adc": st.sampled_from([1, 4, 8, 16]),
            "weight_bits": st.integers(1, 8),
            "cell_bits": st.integers(1, 4),
            "tech_node": st.floats(7.0, 65.0),
        }
    ),
    steps=st.integers(1, 32),
    leak=st.sampled_from([0.0, 5.0]),
)
def test_event_mode_equals_the_scalar_reference(layers, design, steps, leak) -> None:  # type: ignore[no-untyped-def]
    from nmhpo.crossbar._reference import evaluate_one

    net = Network(tuple(Layer(ci, co, k, di, do) for (ci, co, di, do), k, _ in layers))
    activity = [a for *_, a in layers]
    preset = SPIKESIM.with_constants({"leakage": {"pw_per_um2": leak}})
    ref = evaluate_one(net, preset, design, steps, activity)
    r = evaluate(net, preset, design, num_steps=steps, activity=activity)
    assert r.energy_pj[0] == pytest.approx(ref["energy_pj"], rel=1e-9)
    assert r.area_um2[0] == pytest.approx(ref["area_um2"], rel=1e-9)
    assert r.latency_ns[0] == pytest.approx(ref["latency_ns"], rel=1e-9)
    assert r.n_pe[0] == ref["n_pe"]


def test_buildable_says_which_designs_evaluate_prices() -> None:
    """Each design alone: priced exactly when `buildable` says so (the pick of hardware
    variants prices only those, in one batch)."""
    preset = load_preset("rram-32nm")
    nodes = preset.constants["tech_scaling"]["node_nm"]
    knobs = {
        "xbar_size": np.array([32, 32, 64, 64, 128]),
        "cols_per_adc": np.array([8, 64, 64, 128, 8]),
        "tech_node": np.array([32.0, 32.0, min(nodes) - 1, 32.0, max(nodes)]),
    }
    mask = buildable(preset, knobs)
    assert mask.tolist() == [True, False, False, False, True]
    network = Network((Layer(64, 10),))
    for i, ok in enumerate(mask):
        one = {k: v[i] for k, v in knobs.items()}
        if ok:
            evaluate(network, preset, one, num_steps=4)
        else:
            with pytest.raises(HardwareModelError):
                evaluate(network, preset, one, num_steps=4)
