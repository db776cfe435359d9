"""The crossbar energy/latency/area model, vectorized over hardware designs.

Axis 0 of every result array is the design, axis 1 (where present) the layer; inside `_Energy`,
the PE-cycle table puts the count kind first. Energy is action counts times energy per action,
area the sum over instantiated units, latency SpikeSim ELA's schedule.
The formulas and constants are those of shared/crossbar-model.md:

* ``mode="spikesim"`` reproduces SpikeSim ELA (dense: every PE cycle of every step is charged).
* ``mode="event"`` (default) adds ADC precision, columns per ADC, weight/cell bits, technology
  node, measured spike activity and optional leakage; at its default knobs and activity 1.0 it
  equals ``spikesim``.

Energy is defined once, in `_Energy`: an array energy[design, component, layer] kept as two
factors, energy per PE cycle (action counts per PE cycle x energy per action, per design and
component) and PE cycles (per crossbar size, count kind and layer). The total, the breakdown by
component and the breakdown by layer are its three sums, so they cannot drift apart.

How it stays fast (10^5 designs in a few tens of ms): the PE cycles depend on the design only
through the crossbar size when the activity is one value per layer, so they are computed once per
distinct crossbar size, summed over layers there when layers are not wanted, and only then
gathered per design. The full (design, component, layer) array is never built; the breakdowns are
computed when first read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
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
    "leakage",
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
#: Components charged per action; leakage (the last) is static power over the latency.
_DYNAMIC: tuple[str, ...] = ENERGY_COMPONENTS[:-1]
# Which PE cycles make a component act (its count kind):
#   "cycle":   every PE cycle (neuron updates: membranes leak with or without spikes);
#   "spike":   x input activity (buffers and the H-tree move spikes);
#   "convert": x P(the PE converts), the chance that any of its rows spikes (ADC, mux, shift-add,
#              temporary buffer: a PE with no input spike is not read out);
#   "read":    x input activity x k^2 (each of a PE's k^2 crossbars is read per input spike).
_COUNT_KINDS: tuple[str, ...] = ("cycle", "spike", "convert", "read")
_KIND_OF = {
    "xbar": "read",
    "adc": "convert",
    "mux": "convert",
    "sub": "convert",
    "tmpbuf": "convert",
    "neuron": "cycle",
    "htree": "spike",
    "fetch": "spike",
    "tilebuf": "spike",
}
# Each component's kind as an index into _COUNT_KINDS, and as a (components, kinds) 0/1 matrix.
_KIND_INDEX = np.array([_COUNT_KINDS.index(_KIND_OF[c]) for c in _DYNAMIC])
_CHARGED_ON = np.eye(len(_COUNT_KINDS))[_KIND_INDEX]
_INT_KNOBS = ("xbar_size", "pe_per_tile", "adc_bits", "cols_per_adc", "weight_bits", "cell_bits")
# Crossbar sizes spanning at most this many integers use a lookup table instead of np.unique.
_TABLE_SPAN = 1 << 16


@dataclass(frozen=True)
class _Energy:
    """The dynamic energy model, the one place energy is defined::

        energy[d, c, l] = pj_per_cycle[d, c] * cycles[kind(c), size(d), l]

    ``pj_per_cycle`` (n, C) is Accelergy's action counts x energy per action, per PE cycle at
    full activity: the actions of component c in one PE cycle of every time step (ELA's X/8 mux
    steps, (X/8)^2 conversions, ... x T) times the preset's pJ per action (scaled by ADC bits and
    technology). ``cycles`` (K, m, L) counts the PE cycles per step of layer l that make a
    component of count kind k act (all of them; x activity; x P(PE converts); x activity x k^2),
    per distinct crossbar size, ``index`` (n,) giving each design's size; or (K, n, L) with
    ``index`` None when the activity is given per design. ``kind(c)`` is `_KIND_INDEX`.
    Leakage is not here: it is chip-wide static power, not per action.
    """

    pj_per_cycle: np.ndarray
    cycles: np.ndarray
    index: np.ndarray | None

    def pj(self, keep: Literal["", "c", "l"] = "") -> np.ndarray:
        """``energy[d, c, l]`` summed over components and layers, except ``keep``: "" gives (n,),
        "c" (n, C) and "l" (n, L).

        The (n, C, L) array is never built. Without layers, they are summed on the per-size
        table (m << n rows) before it is spread onto the components and gathered per design;
        per layer, the components are summed onto their count kinds instead.
        """
        if keep == "l":
            cycles = self.cycles if self.index is None else self.cycles[:, self.index]
            # NOTE: einsum, not `@`: a multi-threaded BLAS call on this (n, 9) x (9, 4) product
            # ran 20x slower on a loaded 2-core machine.
            by_kind = np.einsum("dc,ck->kd", self.pj_per_cycle, _CHARGED_ON)
            return np.einsum("kd,kdl->dl", by_kind, cycles)
        # NOTE: einsum sums the short layer axis 2x faster than ndarray.sum(axis=2).
        cycles = np.einsum("kdl->kd", self.cycles)[_KIND_INDEX]
        if self.index is not None:
            cycles = np.take(cycles, self.index, axis=1)
        if keep == "c":
            return self.pj_per_cycle * cycles.T
        return np.einsum("dc,cd->d", self.pj_per_cycle, cycles)


@dataclass(frozen=True)
class _Terms:
    """What the breakdowns are built from; kept so they are computed only when read."""

    n: int
    energy: _Energy
    leakage_pj: np.ndarray  # (n,)
    area_parts: dict[str, Any]  # counts and factors the area breakdown is built from
    area_um2: Mapping[str, float]  # the preset's area per unit


@dataclass(frozen=True)
class CrossbarResult:
    """Totals (computed eagerly) and breakdowns (on first access), design on axis 0.

    ``energy_pj`` is per inference (one input over all time steps).
    """

    energy_pj: np.ndarray
    latency_ns: np.ndarray
    area_um2: np.ndarray
    n_pe: np.ndarray
    n_tiles: np.ndarray
    _terms: _Terms = field(repr=False, compare=False)

    @property
    def edp_pj_ns(self) -> np.ndarray:
        return self.energy_pj * self.latency_ns

    @cached_property
    def energy_breakdown_pj(self) -> dict[str, np.ndarray]:
        """Energy per component, each (n_designs,); they sum to ``energy_pj``."""
        by_component = self._terms.energy.pj("c")
        out = {c: by_component[:, i] for i, c in enumerate(_DYNAMIC)}
        out["leakage"] = self._terms.leakage_pj
        return out

    @cached_property
    def area_breakdown_um2(self) -> dict[str, np.ndarray]:
        """Area per component, each (n_designs,); they sum to ``area_um2``."""
        t, p, a = self._terms, self._terms.area_parts, self._terms.area_um2
        units = {
            "xbar": p["pe_slots"] * p["xbar_per_pe"],
            "adc": p["pe_slots"] * p["groups"] * a["adc"] * p["adc_scale"],
            "mux": p["pe_slots"] * p["groups"] * a["mux"],
            "sub": p["n_tiles"] * p["groups"] * a["sub"],
            "tmpbuf": p["n_tiles"] * a["tmpbuf"],
            "tilebuf": p["n_tiles"] * a["tilebuf"],
            "htree": p["n_tiles"] * a["htree"],
            "input_mem": p["input_mem"],
            "membrane_mem": p["membrane_mem"],
        }
        return {c: np.broadcast_to(v * p["tech"], (t.n,)) for c, v in units.items()}

    @cached_property
    def energy_by_layer_pj(self) -> np.ndarray:
        """Dynamic energy per layer, (n_designs, n_layers); with leakage (chip-wide, not split
        by layer) the layers sum to ``energy_pj``."""
        return self._terms.energy.pj("l")

    def design(self, index: int = 0) -> dict[str, Any]:
        """One design's figures as plain Python numbers (for JSON and trial user attrs)."""
        return {
            "energy_pj": float(self.energy_pj[index]),
            "latency_ns": float(self.latency_ns[index]),
            "area_um2": float(self.area_um2[index]),
            "edp_pj_ns": float(self.edp_pj_ns[index]),
            "n_pe": int(self.n_pe[index]),
            "n_tiles": int(self.n_tiles[index]),
            "energy_breakdown_pj": {
                k: float(v[index]) for k, v in self.energy_breakdown_pj.items()
            },
            "energy_by_layer_pj": [float(x) for x in self.energy_by_layer_pj[index]],
            "area_breakdown_um2": {k: float(v[index]) for k, v in self.area_breakdown_um2.items()},
        }


def _knob_arrays(knobs: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
    """Validated knobs: scalars stay 0-d (broadcasting does the rest), arrays are (n,)."""
    unknown = set(knobs) - set(KNOBS)
    if unknown:
        raise HardwareModelError(
            f"unknown hardware knob {sorted(unknown)[0]!r}; expected one of {', '.join(KNOBS)}"
        )
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
        out[name] = value[0] if value.ndim == 1 and value.shape[0] == 1 else value
    device = out["device"]
    if device.dtype.kind not in "US" or not np.all((device == "rram") | (device == "sram")):
        bad = [d for d in np.atleast_1d(device).tolist() if d not in DEVICES][:1]
        raise HardwareModelError(
            f"hardware knob 'device' must be one of {', '.join(DEVICES)}; got {bad[0]!r}"
        )
    for name in ("clock_mhz", "tech_node", *_INT_KNOBS):
        arr = out[name]
        if arr.dtype.kind not in "iuf":
            raise HardwareModelError(f"hardware knob {name!r} must be a number; got {arr!r}")
        if not np.all(arr > 0):
            raise HardwareModelError(f"hardware knob {name!r} must be > 0; got {arr.min():g}")
        if name in _INT_KNOBS and arr.dtype.kind == "f" and not np.all(arr == np.round(arr)):
            raise HardwareModelError(f"hardware knob {name!r} must be an integer")
        out[name] = arr.astype(np.float64, copy=False)
    if not np.all(_adc_fits(out["cols_per_adc"], out["xbar_size"])):
        raise HardwareModelError("hardware knob 'cols_per_adc' must not exceed 'xbar_size'")
    return out


def _adc_fits(cols_per_adc: Any, xbar_size: Any) -> np.ndarray:
    """An ADC converts columns of one crossbar: it cannot be shared by more than it has."""
    return np.asarray(cols_per_adc, dtype=np.float64) <= np.asarray(xbar_size, dtype=np.float64)


def _node_in_table(tech_node: Any, preset: Preset) -> np.ndarray:
    """Nodes the preset's scaling table covers (scaling is interpolated, never extrapolated)."""
    nodes = np.asarray(preset.constants["tech_scaling"]["node_nm"], dtype=np.float64)
    node = np.asarray(tech_node, dtype=np.float64)
    return (node >= nodes.min()) & (node <= nodes.max())


def buildable(preset: Preset, knobs: Mapping[str, Any]) -> np.ndarray:
    """Which designs of a batch `evaluate` prices: each knob may be in its own domain and the
    design still be refused, for an ADC shared by more columns than a crossbar has, or a
    technology node outside the preset's scaling table (the two rules `evaluate` raises
    on). (n_designs,) booleans, for picking the designs of a batch to price without pricing
    each one on its own."""
    merged = {**preset.knobs, **knobs}
    ok = _adc_fits(merged["cols_per_adc"], merged["xbar_size"]) & _node_in_table(
        merged["tech_node"], preset
    )
    return np.atleast_1d(ok)


def _n_designs(knobs: Mapping[str, Any], extra: list[np.ndarray]) -> int:
    shapes = [np.shape(v) for v in knobs.values()]
    sizes = {s[0] for s in shapes if len(s) == 1}
    sizes |= {a.shape[0] for a in extra if a.ndim >= 1}
    sizes.discard(1)
    if len(sizes) > 1:
        raise HardwareModelError(f"design batch sizes disagree: {sorted(sizes)}")
    return sizes.pop() if sizes else 1


def tech_factors(tech_node: np.ndarray, preset: Preset) -> tuple[np.ndarray, np.ndarray]:
    """Energy and area scale factors relative to 65 nm, interpolated in log-log."""
    table = preset.constants["tech_scaling"]
    nodes = np.asarray(table["node_nm"], dtype=np.float64)
    node = np.asarray(tech_node, dtype=np.float64)
    outside = ~_node_in_table(node, preset)
    if np.any(outside):
        raise HardwareModelError(
            f"hardware knob 'tech_node' must be within {nodes.min():g}-{nodes.max():g} nm; got "
            f"{np.atleast_1d(node)[np.atleast_1d(outside)][0]:g}"
        )
    log_node = np.log(node)
    energy = np.exp(np.interp(log_node, np.log(nodes), np.log(table["energy"])))
    area = np.exp(np.interp(log_node, np.log(nodes), np.log(table["area"])))
    return energy, area


def _per_integer(values: np.ndarray, fn: Any) -> Any:
    """``fn(values)``, computed once per distinct value when ``values`` is a large array of
    integers in a modest range (ADC bits, technology nodes): a table lookup instead of
    transcendental functions on every design."""
    if values.ndim == 0 or values.size < 256:
        return fn(values)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo > _TABLE_SPAN or not np.array_equal(values, np.round(values)):
        return fn(values)
    table = fn(np.arange(lo, hi + 1.0))
    index = (values - lo).astype(np.intp)
    if isinstance(table, tuple):
        return tuple(t[index] for t in table)
    return table[index]


def _distinct_sizes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct crossbar sizes and each design's index into them (a lookup table when the
    sizes span a modest range, which avoids sorting 10^5 values)."""
    xi = np.atleast_1d(x).astype(np.int64)
    lo, hi = int(xi.min()), int(xi.max())
    if hi - lo <= _TABLE_SPAN:
        return np.arange(lo, hi + 1, dtype=np.float64), xi - lo
    unique, index = np.unique(xi, return_inverse=True)
    return unique.astype(np.float64), index


def _pes(c_in: np.ndarray, c_out: np.ndarray, xbar_size: Any) -> np.ndarray:
    """PEs of each layer: its input channels over crossbar rows times its output channels over
    crossbar columns, one PE per (row block, column block); a PE holds that block for every
    kernel position (k^2 crossbars). Broadcasts ``xbar_size`` against the layers."""
    return np.ceil(c_in / xbar_size) * np.ceil(c_out / xbar_size)


def _cycles_by_kind(
    pe_cycles_u: np.ndarray,
    rows_u: np.ndarray,
    k2: np.ndarray,
    act: np.ndarray,
    index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """PE cycles per step of each layer that make each count kind act: (K, m, L) per distinct
    crossbar size, with ``index`` passed through; or (K, n, L) and None when ``act`` is given per
    design and layer (then the cycles differ by design, not only by crossbar size).

    A PE converts when any of its rows carries a spike; rows are taken as independent at the
    measured activity: P = 1 - (1 - a)^rows = -expm1(rows * log1p(-a)).
    """
    if act.ndim == 2:
        pe_cycles, rows, out_index = pe_cycles_u[index], rows_u[index], None
    else:
        pe_cycles, rows, out_index = pe_cycles_u, rows_u, index
    with np.errstate(divide="ignore"):
        p_converts = rows * np.log1p(-act)  # log P(no row spikes); in place from here on
    np.expm1(p_converts, out=p_converts)
    np.negative(p_converts, out=p_converts)
    out = np.empty((len(_COUNT_KINDS), *pe_cycles.shape))
    cycle, spike, convert, read = out  # views, in _COUNT_KINDS order
    np.copyto(cycle, pe_cycles)
    np.multiply(pe_cycles, act, out=spike)
    np.multiply(pe_cycles, p_converts, out=convert)
    np.multiply(spike, k2, out=read)
    return out, out_index


def _pj_per_cycle(
    n: int, counts: Mapping[str, Any], pj_per_action: Mapping[str, Any], scale: Any
) -> np.ndarray:
    """``counts[c] * pj_per_action[c] * scale`` as an (n, C) array over the dynamic components
    in `ENERGY_COMPONENTS` order (a missing or misspelt component fails here, loudly); each
    value is a scalar or (n,), ``scale`` the factor every component shares.

    Column-major, so each component is contiguous: filling it is several times faster than
    row-major, the products stay on (n,) vectors that fit in cache, and the breakdown's columns
    come out contiguous.
    """
    out = np.empty((n, len(_DYNAMIC)), order="F")
    for i, c in enumerate(_DYNAMIC):
        np.multiply(counts[c] * pj_per_action[c], scale, out=out[:, i])
    return out


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
    n_layers = network.n_layers
    if act.ndim >= 1 and act.shape[-1] != n_layers:
        raise HardwareModelError(
            f"activity has {act.shape[-1]} values for a network of {n_layers} layers"
        )
    if act.ndim > 2 or np.any(act < 0) or np.any(act > 1):
        raise HardwareModelError("activity must be within [0, 1], per layer or per design")

    e = preset.constants["energy_pj"]
    a = preset.constants["area_um2"]
    c_in, c_out = network.column("c_in"), network.column("c_out")
    k, d_in, d_out = network.column("k"), network.column("d_in"), network.column("d_out")
    k2 = k**2
    x = kn["xbar_size"]
    sram = kn["device"] == "sram"
    spikesim = mode == "spikesim"
    if spikesim:
        # 0-d arrays, as _knob_arrays keeps scalar knobs: same arithmetic, one type per name
        cols = np.asarray(8.0)
        adc_e_scale = adc_a_scale = slices = e_f = a_f = np.float64(1.0)
        e_xbar = np.where(sram, e["xbar_sram"], e["xbar_rram"])
        act = np.asarray(1.0)
    else:
        cols = kn["cols_per_adc"]
        # NeuroSim V1.4: ADC energy ~doubles per bit, area grows 1.7-2.1x per bit.
        adc_e_scale, adc_a_scale = _per_integer(
            kn["adc_bits"], lambda b: (np.exp2(b - 4.0), np.power(1.8, b - 4.0))
        )
        slices = np.ceil(kn["weight_bits"] / kn["cell_bits"])
        e_f, a_f = _per_integer(kn["tech_node"], lambda node: tech_factors(node, preset))
        e_xbar = np.where(sram, e["xbar_sram_event"], e["xbar_rram"])
    groups = np.ceil(x / cols)  # ADCs per PE (ELA's X/8), each converting `cols` columns

    # Per distinct crossbar size (m of them) x layer: PEs and PE cycles per step.
    sizes, index = _distinct_sizes(x)
    index = np.broadcast_to(index, (n,))
    pes_u = _pes(c_in, c_out, sizes[:, None])
    n_pe = pes_u.sum(axis=1)[index]
    rows_u = np.minimum(sizes[:, None], c_in) * k2  # rows that can wake a PE
    cycles, cycles_index = _cycles_by_kind(pes_u * d_out**2, rows_u, k2, act, index)

    # Energy = action counts x energy per action (Accelergy). Actions of each component per
    # PE cycle at full activity and time step (crossbar-model.md, E_pc); `cycles` adds the
    # activity, P(PE converts) and the k^2 crossbars of each layer, `scale` the T steps.
    per_slice = groups * slices  # mux steps (X/c) x weight slices
    conversions = per_slice * groups  # X/c ADCs per PE, each used X/c times, per slice
    counts_per_cycle = {
        "xbar": per_slice,  # one read per mux step and slice, on each of the k^2 crossbars
        "adc": conversions,
        "mux": conversions,
        "sub": 16 * per_slice,  # shift-adds
        "tmpbuf": groups,
        "neuron": 1.0,
        "htree": 1.0,
        "fetch": 1.0,
        "tilebuf": 1.0,
    }
    # pJ per action at 65 nm (the preset's table); `scale` adds the technology factor too.
    pj_per_action = {
        **{c: e[c] for c in ("mux", "sub", "tmpbuf", "neuron", "htree", "fetch", "tilebuf")},
        "xbar": e_xbar,
        "adc": e["adc"] * adc_e_scale,
    }
    pj_per_cycle = _pj_per_cycle(n, counts_per_cycle, pj_per_action, scale=steps * e_f)
    energy = _Energy(pj_per_cycle, cycles, cycles_index)

    n_tiles = np.ceil(n_pe / kn["pe_per_tile"])
    pe_slots = n_tiles * kn["pe_per_tile"]
    a_xbar = np.where(sram, a["xbar_sram"], a["xbar_rram"])
    word_um2 = preset.constants["memory"]["word_bits"] * a["bitcell"]
    n_mem = int(preset.constants["memory"]["membrane_layers"])
    mem_um2 = (
        np.sum(c_in * d_in**2) * word_um2,
        np.sum((c_out * d_out**2)[:n_mem]) * word_um2,
    )
    k2_max = float(k2.max())  # PEs are uniform, sized for the largest kernel
    a_pe = k2_max * slices * a_xbar + groups * (a["adc"] * adc_a_scale + a["mux"])
    a_tile = groups * a["sub"] + (a["tmpbuf"] + a["tilebuf"] + a["htree"])
    area = np.broadcast_to((pe_slots * a_pe + n_tiles * a_tile + sum(mem_um2)) * a_f, (n,))

    lat = preset.constants["latency"]
    pe_cycle_ns = lat["pe_cycle_clocks"] * 1000.0 / kn["clock_mhz"]
    if not spikesim:
        # A column group waits for its shared SAR ADC: `cols` conversions of `adc_bits`
        # cycles each, against ELA's 8 conversions at 4 bits (NeuroSim: SAR time ~ bits).
        pe_cycle_ns = pe_cycle_ns * (cols / 8.0) * (kn["adc_bits"] / 4.0)
    neurons = c_out * d_out**2
    schedule = np.sum(np.floor(lat["pipeline_fraction"] * neurons[:-1])) + neurons[-1]
    latency = np.broadcast_to(pe_cycle_ns * steps * schedule, (n,))

    # Static power of the instantiated area over the inference (pW x ns = 1e-9 pJ); the
    # shipped presets leave it at 0 (ELA has none), a user preset can set it.
    leak = 0.0 if spikesim else float(preset.constants["leakage"].get("pw_per_um2", 0.0))
    leakage = area * (leak * 1e-9) * latency if leak else np.zeros(n)

    terms = _Terms(
        n=n,
        energy=energy,
        leakage_pj=leakage,
        area_parts={
            "pe_slots": pe_slots,
            "n_tiles": n_tiles,
            "groups": groups,
            "xbar_per_pe": k2_max * slices * a_xbar,
            "adc_scale": adc_a_scale,
            "tech": a_f,
            "input_mem": mem_um2[0],
            "membrane_mem": mem_um2[1],
        },
        area_um2=a,
    )
    return CrossbarResult(
        energy_pj=energy.pj() + leakage,
        latency_ns=latency,
        area_um2=area,
        n_pe=np.broadcast_to(n_pe, (n,)),
        n_tiles=np.broadcast_to(n_tiles, (n,)),
        _terms=terms,
    )


@dataclass(frozen=True)
class LayerMapping:
    """How one design lays a network on crossbars: the counts `evaluate` prices.

    Per layer, arrays of shape (n_layers,): ``row_blocks`` = ceil(c_in / xbar_size),
    ``col_blocks`` = ceil(c_out / xbar_size), ``pes`` their product, ``crossbars`` = pes x k^2 x
    ``weight_slices`` (one crossbar per kernel position and cell slice), and
    ``pe_cycles_per_step`` = pes x d_out^2 (every output position is one PE cycle). For the chip:
    ``n_pe``, ``n_tiles`` = ceil(n_pe / pe_per_tile) and ``crossbars_per_pe`` = k_max^2 x
    ``weight_slices`` (PEs are uniform, sized for the largest kernel), as the area counts them.
    ``weight_slices`` is ceil(weight_bits / cell_bits) in event mode and 1 in spikesim mode.
    """

    row_blocks: np.ndarray
    col_blocks: np.ndarray
    pes: np.ndarray
    crossbars: np.ndarray
    pe_cycles_per_step: np.ndarray
    n_pe: int
    n_tiles: int
    pe_per_tile: int
    crossbars_per_pe: int
    weight_slices: int


def layer_mapping(
    network: Network,
    preset: Preset,
    knobs: Mapping[str, Any] | None = None,
    *,
    mode: Mode = "event",
) -> LayerMapping:
    """The crossbar mapping of ``network`` on one design (``knobs`` over the preset's; scalar
    values; knobs the cost model does not read are ignored)."""
    if mode not in MODES:
        raise HardwareModelError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    merged = {k: v for k, v in {**preset.knobs, **(knobs or {})}.items() if k in KNOBS}
    kn = _knob_arrays(merged, 1)  # one design: a knob with several values is refused
    x = float(kn["xbar_size"])
    c_in, c_out = network.column("c_in"), network.column("c_out")
    k2, d_out = network.column("k") ** 2, network.column("d_out")
    slices = 1 if mode == "spikesim" else int(np.ceil(kn["weight_bits"] / kn["cell_bits"]))
    pes = _pes(c_in, c_out, x)
    n_pe = int(pes.sum())
    pe_per_tile = int(kn["pe_per_tile"])
    return LayerMapping(
        row_blocks=np.ceil(c_in / x),
        col_blocks=np.ceil(c_out / x),
        pes=pes,
        crossbars=pes * k2 * slices,
        pe_cycles_per_step=pes * d_out**2,
        n_pe=n_pe,
        n_tiles=-(-n_pe // pe_per_tile),
        pe_per_tile=pe_per_tile,
        crossbars_per_pe=int(k2.max()) * slices,
        weight_slices=slices,
    )
