"""The crossbar energy/latency/area model, vectorized over hardware designs.

Axis 0 of every array is the design, axis 1 (where present) the layer. Energy is action counts
times energy per action, area the sum over instantiated units, latency SpikeSim ELA's schedule.
The formulas and constants are those of shared/crossbar-model.md:

* ``mode="spikesim"`` reproduces SpikeSim ELA (dense: every PE cycle of every step is charged).
* ``mode="event"`` (default) adds ADC precision, columns per ADC, weight/cell bits, technology
  node and measured spike activity; at its default knobs and activity 1.0 it equals ``spikesim``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nmhpo.crossbar._network import Network
from nmhpo.crossbar._presets import DEVICES, KNOBS, Preset
from nmhpo.errors import HardwareModelError

Mode = Literal["event", "spikesim"]
MODES: tuple[str, ...] = ("event", "spikesim")

#: Energy components, in the order breakdowns list them.
ENERGY_COMPONENTS: tuple[str, ...] = (
    "xbar",
    "adc",
    "mux",
    "sub",
    "tmpbuf",
    "neuron",
    "htree",
    "fetch",
    "tilebuf",
)
#: Area components, in the order breakdowns list them.
AREA_COMPONENTS: tuple[str, ...] = (
    "xbar",
    "adc",
    "mux",
    "sub",
    "tmpbuf",
    "tilebuf",
    "htree",
    "input_mem",
    "membrane_mem",
)

_INT_KNOBS = ("xbar_size", "pe_per_tile", "adc_bits", "cols_per_adc", "weight_bits", "cell_bits")


@dataclass(frozen=True)
class CrossbarResult:
    """Totals and breakdowns, each with the design on axis 0.

    ``energy_pj`` is per inference (one input over all time steps).
    """

    energy_pj: np.ndarray
    latency_ns: np.ndarray
    area_um2: np.ndarray
    n_pe: np.ndarray
    n_tiles: np.ndarray
    energy_breakdown_pj: dict[str, np.ndarray]
    energy_by_layer_pj: np.ndarray
    area_breakdown_um2: dict[str, np.ndarray]

    @property
    def edp_pj_ns(self) -> np.ndarray:
        return self.energy_pj * self.latency_ns

    def design(self, index: int = 0) -> dict[str, Any]:
        """One design's figures as plain Python numbers (for JSON and trial user attrs)."""
        return {
            "energy_pj": float(self.energy_pj[index]),
            "latency_ns": float(self.latency_ns[index]),
            "area_um2": float(self.area_um2[index]),
            "n_pe": int(self.n_pe[index]),
            "n_tiles": int(self.n_tiles[index]),
            "energy_breakdown_pj": {
                k: float(v[index]) for k, v in self.energy_breakdown_pj.items()
            },
            "energy_by_layer_pj": [float(x) for x in self.energy_by_layer_pj[index]],
            "area_breakdown_um2": {k: float(v[index]) for k, v in self.area_breakdown_um2.items()},
        }


def _knob_arrays(knobs: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in KNOBS:
        if name not in knobs:
            raise HardwareModelError(f"hardware knob {name!r} is missing")
        value = np.asarray(knobs[name])
        if value.ndim > 1 or (value.ndim == 1 and value.shape[0] not in (1, n)):
            raise HardwareModelError(
                f"hardware knob {name!r} must be a scalar or have {n} values; got shape "
                f"{value.shape}"
            )
        out[name] = np.broadcast_to(value, (n,))
    unknown = set(knobs) - set(KNOBS)
    if unknown:
        raise HardwareModelError(
            f"unknown hardware knob {sorted(unknown)[0]!r}; expected one of {', '.join(KNOBS)}"
        )
    device = out["device"].astype(str)
    bad = ~np.isin(device, DEVICES)
    if bad.any():
        raise HardwareModelError(
            f"hardware knob 'device' must be one of {', '.join(DEVICES)}; got {device[bad][0]!r}"
        )
    out["device"] = device
    for name in ("clock_mhz", "tech_node", *_INT_KNOBS):
        try:
            arr = out[name].astype(np.float64)
        except ValueError:
            raise HardwareModelError(f"hardware knob {name!r} must be a number") from None
        if not np.all(arr > 0):
            raise HardwareModelError(f"hardware knob {name!r} must be > 0; got {arr.min():g}")
        if name in _INT_KNOBS and not np.all(arr == np.round(arr)):
            raise HardwareModelError(f"hardware knob {name!r} must be an integer")
        out[name] = arr
    if np.any(out["cols_per_adc"] > out["xbar_size"]):
        raise HardwareModelError("hardware knob 'cols_per_adc' must not exceed 'xbar_size'")
    return out


def _n_designs(knobs: Mapping[str, Any], extra: list[np.ndarray]) -> int:
    sizes = {np.asarray(v).shape[0] for v in knobs.values() if np.asarray(v).ndim == 1}
    sizes |= {a.shape[0] for a in extra if a.ndim >= 1}
    sizes.discard(1)
    if len(sizes) > 1:
        raise HardwareModelError(f"design batch sizes disagree: {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def tech_factors(tech_node: np.ndarray, preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """Energy and area scale factors relative to 65 nm, interpolated in log-log."""
    table = preset.constants["tech_scaling"]
    nodes = np.asarray(table["node_nm"], dtype=np.float64)
    if np.any(tech_node < nodes.min()) or np.any(tech_node > nodes.max()):
        raise HardwareModelError(
            f"hardware knob 'tech_node' must be within {nodes.min():g}-{nodes.max():g} nm; got "
            f"{tech_node[(tech_node < nodes.min()) | (tech_node > nodes.max())][0]:g}"
        )
    log_node = np.log(tech_node)
    energy = np.exp(np.interp(log_node, np.log(nodes), np.log(table["energy"])))
    area = np.exp(np.interp(log_node, np.log(nodes), np.log(table["area"])))
    return energy, area


def evaluate(
    network: Network,
    preset: Preset,
    knobs: Mapping[str, Any] | None = None,
    *,
    num_steps: Any,
    activity: Any = 1.0,
    mode: Mode = "event",
) -> CrossbarResult:
    """Price ``network`` on a batch of hardware designs in one vectorized call.

    Args:
        network: the layer shapes.
        preset: constants and default knobs.
        knobs: knob values overriding the preset's, each a scalar or an (n_designs,) array.
        num_steps: time steps T, scalar or (n_designs,).
        activity: fraction of a layer's inputs that spike per step (measured by inference),
            scalar, (n_layers,) or (n_designs, n_layers). Ignored in ``spikesim`` mode.
        mode: ``"event"`` (default) or ``"spikesim"``.
    """
    if mode not in MODES:
        raise HardwareModelError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    merged = {**preset.knobs, **(knobs or {})}
    steps = np.asarray(num_steps, dtype=np.float64)
    act = np.asarray(activity, dtype=np.float64)
    n = _n_designs(merged, [steps.reshape(-1)] + ([act] if act.ndim == 2 else []))
    kn = _knob_arrays(merged, n)
    if not np.all(steps > 0) or not np.all(steps == np.round(steps)):
        raise HardwareModelError("num_steps must be a positive integer")
    steps = np.broadcast_to(steps, (n,))
    n_layers = network.n_layers
    if act.ndim == 1 and act.shape[0] != n_layers:
        raise HardwareModelError(
            f"activity has {act.shape[0]} values for a network of {n_layers} layers"
        )
    if np.any(act < 0) or np.any(act > 1):
        raise HardwareModelError("activity must be within [0, 1]")
    act = np.broadcast_to(act, (n, n_layers)) if act.ndim < 2 else act

    e = preset.constants["energy_pj"]
    a = preset.constants["area_um2"]
    c_in, c_out = network.column("c_in"), network.column("c_out")
    k, d_in, d_out = network.column("k"), network.column("d_in"), network.column("d_out")

    x = kn["xbar_size"][:, None]  # (n, 1)
    sram = (kn["device"] == "sram")[:, None]
    if mode == "spikesim":
        cols = np.full((n, 1), 8.0)
        adc_e_scale = adc_a_scale = slices = np.ones((n, 1))
        e_scale, a_scale = np.ones((n, 1)), np.ones((n, 1))
        act = np.ones((n, n_layers))
        p_active = act
    else:
        cols = kn["cols_per_adc"][:, None]
        bits = kn["adc_bits"][:, None]
        adc_e_scale = 2.0 ** (bits - 4)  # NeuroSim V1.4: ADC energy ~doubles per bit
        adc_a_scale = 1.8 ** (bits - 4)  # NeuroSim V1.4: ADC area grows 1.7-2.1x per bit
        slices = np.ceil(kn["weight_bits"] / kn["cell_bits"])[:, None]
        e_f, a_f = tech_factors(kn["tech_node"], preset)
        e_scale, a_scale = e_f[:, None], a_f[:, None]
        # A PE converts when any of its rows (min(X, C_in) channels x k^2 kernel positions)
        # carries a spike; rows are taken as independent at the measured activity.
        rows = np.minimum(x, c_in[None, :]) * k[None, :] ** 2
        p_active = 1.0 - (1.0 - act) ** rows
    groups = x / cols  # ADCs per PE (ELA's X/8) and mux steps per conversion round

    e_xbar = np.where(sram, e["xbar_sram"], e["xbar_rram"])
    k2 = (k**2)[None, :]
    # Energy per PE cycle, per component, shape (n, n_layers).
    per_cycle = {
        "xbar": groups * k2 * slices * e_xbar * act,
        "adc": groups**2 * slices * e["adc"] * adc_e_scale * p_active,
        "mux": groups**2 * slices * e["mux"] * p_active,
        "sub": groups * 16 * slices * e["sub"] * p_active,
        "tmpbuf": groups * e["tmpbuf"] * p_active,
        "neuron": np.broadcast_to(e["neuron"], (n, n_layers)),
        "htree": e["htree"] * act,
        "fetch": e["fetch"] * act,
        "tilebuf": e["tilebuf"] * act,
    }
    pes = np.ceil(c_in[None, :] / x) * np.ceil(c_out[None, :] / x)  # (n, n_layers)
    cycles = steps[:, None] * pes * d_out[None, :] ** 2  # PE cycles over all steps
    by_component = {c: per_cycle[c] * cycles * e_scale for c in ENERGY_COMPONENTS}
    energy_by_layer = np.sum([by_component[c] for c in ENERGY_COMPONENTS], axis=0)
    energy_breakdown = {c: v.sum(axis=1) for c, v in by_component.items()}

    n_pe = pes.sum(axis=1)
    n_tiles = np.ceil(n_pe / kn["pe_per_tile"])
    a_xbar = np.where(sram[:, 0], a["xbar_sram"], a["xbar_rram"])
    g = groups[:, 0]
    k2_max = float(np.max(k) ** 2)  # PEs are uniform, sized for the largest kernel
    pe_slots = n_tiles * kn["pe_per_tile"]
    word_um2 = preset.constants["memory"]["word_bits"] * a["bitcell"]
    n_mem = int(preset.constants["memory"]["membrane_layers"])
    a_s = a_scale[:, 0]
    area_breakdown = {
        "xbar": pe_slots * k2_max * slices[:, 0] * a_xbar * a_s,
        "adc": pe_slots * g * a["adc"] * adc_a_scale[:, 0] * a_s,
        "mux": pe_slots * g * a["mux"] * a_s,
        "sub": n_tiles * g * a["sub"] * a_s,
        "tmpbuf": n_tiles * a["tmpbuf"] * a_s,
        "tilebuf": n_tiles * a["tilebuf"] * a_s,
        "htree": n_tiles * a["htree"] * a_s,
        "input_mem": np.full(n, np.sum(c_in * d_in**2) * word_um2) * a_s,
        "membrane_mem": np.full(n, np.sum((c_out * d_out**2)[:n_mem]) * word_um2) * a_s,
    }
    area = np.sum([area_breakdown[c] for c in AREA_COMPONENTS], axis=0)

    lat = preset.constants["latency"]
    pe_cycle_ns = lat["pe_cycle_clocks"] * 1000.0 / kn["clock_mhz"]
    if mode == "event":
        # A column group waits for its shared ADC: c conversions instead of ELA's 8.
        pe_cycle_ns = pe_cycle_ns * kn["cols_per_adc"] / 8.0
    neurons = c_out * d_out**2
    schedule = np.sum(np.floor(lat["pipeline_fraction"] * neurons[:-1])) + neurons[-1]
    latency = pe_cycle_ns * steps * schedule

    return CrossbarResult(
        energy_pj=energy_by_layer.sum(axis=1),
        latency_ns=latency,
        area_um2=area,
        n_pe=n_pe,
        n_tiles=n_tiles,
        energy_breakdown_pj=energy_breakdown,
        energy_by_layer_pj=energy_by_layer,
        area_breakdown_um2=area_breakdown,
    )
