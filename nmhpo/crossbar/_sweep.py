"""Pricing from command-line style text: layer specs, KEY=VALUE settings and sweeps.

`nmhpo energy` is a thin shell over these functions, so a hardware person can price a network
from Python the same way (`price(...)`) without training anything.
"""

from __future__ import annotations

import csv
import errno
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmhpo.crossbar._knobs import KNOB_TABLE
from nmhpo.crossbar._model import CrossbarResult, Mode, evaluate
from nmhpo.crossbar._network import Layer, Network
from nmhpo.crossbar._presets import KNOBS, Preset
from nmhpo.errors import HardwareModelError

#: Sweepable names besides the hardware knobs.
EXTRA_SWEEPS: tuple[str, ...] = ("num_steps",)
#: Largest product a sweep may expand to (memory stays ~ designs x layers x 8 bytes).
MAX_SWEEP = 10_000_000


def _number(text: str, option: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise HardwareModelError(f"{option}: expected a number; got {text!r}") from None


def parse_value(text: str) -> int | float | str:
    """``"64"`` -> 64, ``"2.5"`` -> 2.5, anything else stays a string (e.g. ``"sram"``)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_network(dense: str | None, convs: Sequence[str]) -> Network:
    """Convolutions (``CIN,COUT,K,DIN,DOUT``, in order) then a dense stack (``784,128,10``)."""
    layers: list[Layer] = []
    for spec in convs:
        parts = spec.split(",")
        if len(parts) != 5:
            raise HardwareModelError(
                f"--conv: expected CIN,COUT,K,DIN,DOUT (5 integers); got {spec!r}"
            )
        values = [_number(p, "--conv") for p in parts]
        if any(v != int(v) or v < 1 for v in values):
            raise HardwareModelError(f"--conv: expected positive integers; got {spec!r}")
        layers.append(Layer(*(int(v) for v in values)))
    if dense:
        sizes = [_number(p, "--layers") for p in dense.split(",")]
        if any(s != int(s) or s < 1 for s in sizes) or len(sizes) < 2:
            raise HardwareModelError(
                "--layers: expected at least two positive integers, e.g. 784,128,10; "
                f"got {dense!r}"
            )
        layers += [Layer(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    if not layers:
        raise HardwareModelError("give the network: --layers 784,128,10 and/or --conv ...")
    return Network(tuple(layers))


def parse_setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` for a knob (``adc_bits=4``) or a constant (``energy_pj.adc=2.5``)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise HardwareModelError(f"--set: expected KEY=VALUE; got {text!r}")
    if key not in KNOBS and "." not in key:
        raise HardwareModelError(
            f"--set: unknown knob {key!r}; expected one of {', '.join(KNOBS)} "
            "or a constant as section.name (e.g. energy_pj.adc)"
        )
    parsed = parse_value(value)
    if key in KNOBS:
        _check_knob("--set", key, parsed)
    return key, parsed


def _check_knob(option: str, key: str, value: Any) -> None:
    """A knob's value within its domain: outside it the model prices nonsense (adc_bits = 99
    gives 1e32 pJ) instead of refusing."""
    knob = KNOB_TABLE[key]
    if not knob.check(value):
        raise HardwareModelError(f"{option} {key}: expected {knob.domain}; got {value!r}")


def parse_sweep(text: str) -> tuple[str, list[Any]]:
    """``KEY=v1,v2,...`` or an inclusive integer range ``KEY=lo:hi`` (``KEY=lo:hi:step``)."""
    key, sep, values = text.partition("=")
    if not sep or not values:
        raise HardwareModelError(f"--sweep: expected KEY=v1,v2 or KEY=lo:hi; got {text!r}")
    if key not in KNOBS and key not in EXTRA_SWEEPS:
        raise HardwareModelError(
            f"--sweep: unknown knob {key!r}; expected one of {', '.join(KNOBS + EXTRA_SWEEPS)}"
        )
    swept: list[int | float | str]
    if ":" in values:
        parts = values.split(":")
        try:
            bounds = [int(p) for p in parts]
        except ValueError:
            raise HardwareModelError(
                f"--sweep {key}: a range needs integers; got {values!r}"
            ) from None
        if (
            len(bounds) not in (2, 3)
            or (len(bounds) == 3 and bounds[2] < 1)
            or bounds[1] < bounds[0]
        ):
            raise HardwareModelError(
                f"--sweep {key}: expected lo:hi or lo:hi:step; got {values!r}"
            )
        swept = list(range(bounds[0], bounds[1] + 1, bounds[2] if len(bounds) == 3 else 1))
    else:
        swept = [parse_value(v) for v in values.split(",")]
    if key in KNOBS:
        for value in swept:
            _check_knob("--sweep", key, value)
    return key, swept


@dataclass(frozen=True)
class Priced:
    """A priced batch: the design table (one array per swept or set knob) and the result."""

    designs: dict[str, np.ndarray]
    num_steps: np.ndarray
    result: CrossbarResult

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per design: its knobs, then the totals (for tables and CSV)."""
        r = self.result
        n = len(r.energy_pj)
        columns = {k: np.broadcast_to(v, (n,)) for k, v in self.designs.items()}
        columns["num_steps"] = np.broadcast_to(self.num_steps, (n,))
        columns |= {
            "energy_pj": r.energy_pj,
            "latency_ns": r.latency_ns,
            "area_um2": r.area_um2,
            "edp_pj_ns": r.edp_pj_ns,
            "n_pe": r.n_pe.astype(np.int64),
        }
        lists = {k: v.tolist() for k, v in columns.items()}
        return [{k: lists[k][i] for k in lists} for i in range(n)]

    def summary(self, preset: Preset, mode: str, index: int = 0) -> dict[str, Any]:
        """One design as the JSON `nmhpo energy --json` prints: totals, then the breakdown."""
        one = self.result.design(index)
        knobs = {
            **preset.knobs,
            **{
                k: np.broadcast_to(v, self.result.energy_pj.shape)[index]
                for k, v in self.designs.items()
            },
        }
        return {
            "energy_pj": one["energy_pj"],
            "latency_ns": one["latency_ns"],
            "area_um2": one["area_um2"],
            "edp_pj_ns": one["edp_pj_ns"],
            "n_pe": one["n_pe"],
            "n_tiles": one["n_tiles"],
            "breakdown": {
                "energy_pj": one["energy_breakdown_pj"],
                "energy_by_layer_pj": one["energy_by_layer_pj"],
                "area_um2": one["area_breakdown_um2"],
            },
            "preset": preset.name,
            "mode": mode,
            "num_steps": int(np.broadcast_to(self.num_steps, self.result.energy_pj.shape)[index]),
            "knobs": {k: v.item() if isinstance(v, np.generic) else v for k, v in knobs.items()},
        }

    def write_csv(self, path: Path) -> int:
        """Written beside ``path`` first and moved onto it, so a full disk never leaves half
        a table; an error names ``path``, the file the user asked for, not that temporary."""
        rows = self.rows()
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "expected a CSV file; it is a folder", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with tmp.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
            tmp.replace(path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        return len(rows)


def price(
    network: Network,
    preset: Preset,
    *,
    settings: Sequence[tuple[str, Any]] = (),
    sweeps: Sequence[tuple[str, list[Any]]] = (),
    num_steps: int = 1,
    activity: float | Sequence[float] = 1.0,
    mode: Mode = "event",
) -> Priced:
    """Price ``network`` at the preset's knobs with ``settings`` applied, over the full product
    of ``sweeps``, in one vectorized call."""
    knobs: dict[str, Any] = {}
    constants: dict[str, dict[str, Any]] = {}
    for key, value in settings:
        if key in KNOBS:
            knobs[key] = value
        else:
            section, _, name = key.partition(".")
            constants.setdefault(section, {})[name] = value
    if constants:
        preset = preset.with_constants(constants)
    size = math.prod(len(v) for _, v in sweeps)
    if size > MAX_SWEEP:
        raise HardwareModelError(
            f"--sweep: the product has {size:,} designs; at most {MAX_SWEEP:,}"
        )
    names = [k for k, _ in sweeps]
    if len(set(names)) != len(names):
        raise HardwareModelError("--sweep: a knob is swept twice")
    grids = np.meshgrid(*[np.asarray(v) for _, v in sweeps], indexing="ij") if sweeps else []
    swept = {k: g.reshape(-1) for k, g in zip(names, grids, strict=True)}
    steps = swept.pop("num_steps", np.asarray(num_steps))
    knobs.update(swept)
    designs = {k: np.asarray(v) for k, v in knobs.items()}
    result = evaluate(network, preset, designs, num_steps=steps, activity=activity, mode=mode)
    return Priced(designs=designs, num_steps=np.asarray(steps), result=result)
