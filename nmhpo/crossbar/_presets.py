"""Hardware presets: TOML files of default knobs and per-action constants with their sources."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from nmhpo._resources import data_dir
from nmhpo.crossbar._knobs import DEVICES as DEVICES  # re-exported: _model.py imports it here
from nmhpo.crossbar._knobs import KNOB_TABLE, PRICED_KNOBS
from nmhpo.errors import PresetError

#: Hardware knobs the cost model prices: a preset sets exactly these, and `evaluate` and
#: ``nmhpo energy --set`` accept only these. Derived from the knob table; unpriced knobs
#: (conductance_sigma) change what the crossbars compute, not what they cost.
KNOBS: tuple[str, ...] = PRICED_KNOBS
_SECTIONS: tuple[str, ...] = (
    "energy_pj",
    "area_um2",
    "memory",
    "latency",
    "tech_scaling",
    "leakage",
)


@dataclass(frozen=True)
class Preset:
    """A named hardware description: default knob values and the model's constants."""

    name: str
    description: str
    knobs: dict[str, Any]
    constants: dict[str, dict[str, Any]] = field(repr=False)
    path: Path | None = None

    def with_constants(self, overrides: Mapping[str, Mapping[str, Any]]) -> Preset:
        """A copy with some constants replaced, e.g. ``{"energy_pj": {"adc": 2.5}}``.

        Only constants the preset already has can be replaced, so a typo cannot silently add
        an unused one.
        """
        constants = {s: dict(v) for s, v in self.constants.items()}
        for section, values in overrides.items():
            if section not in constants:
                raise PresetError(
                    f"constants.{section}: unknown section; expected one of {', '.join(_SECTIONS)}"
                )
            for key, value in values.items():
                if key not in constants[section]:
                    known = ", ".join(constants[section])
                    raise PresetError(
                        f"constants.{section}.{key}: unknown constant; expected one of {known}"
                    )
                old = constants[section][key]
                if isinstance(old, list) != isinstance(value, list) or not _is_constant(value):
                    raise PresetError(
                        f"constants.{section}.{key}: expected a value like {old!r} "
                        f"(numbers >= 0); got {value!r}"
                    )
                constants[section][key] = value
        return replace(self, constants=constants)


def _is_constant(value: Any) -> bool:
    """A model constant: a finite number >= 0 (energies, areas, times, ratios), or a list of
    them; a string or a negative energy would be priced as if it were real."""
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        for v in values
    )


def preset_names() -> list[str]:
    """Names of the presets shipped with nmhpo."""
    return sorted(p.stem for p in data_dir("hardware").glob("*.toml"))


def _preset_path(name_or_path: str, relative_to: Path | None) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        if not candidate.is_absolute() and relative_to is not None:
            candidate = relative_to / candidate
        if not candidate.is_file():
            raise PresetError(f"hardware preset file {candidate} does not exist")
        return candidate
    shipped = data_dir("hardware") / f"{name_or_path}.toml"
    if not shipped.is_file():
        raise PresetError(
            f"unknown hardware preset {name_or_path!r}; expected one of "
            f"{', '.join(preset_names())} or a path to a .toml file"
        )
    return shipped


def _read(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    if path in seen:
        raise PresetError(f"{path}: preset 'base' chain loops back to itself")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(raw) - {"base", "preset", "knobs", *_SECTIONS}
    if unknown:
        raise PresetError(f"{path}: unknown section {sorted(unknown)[0]!r}")
    merged: dict[str, Any] = {"knobs": {}, **{s: {} for s in _SECTIONS}}
    if "base" in raw:
        merged = _read(_preset_path(str(raw["base"]), path.parent), (*seen, path))
    for section in ("knobs", *_SECTIONS):
        merged[section] = {**merged[section], **raw.get(section, {})}
    merged["preset"] = raw.get("preset", {})
    return merged


@lru_cache(maxsize=64)
def _load_cached(path: Path) -> Preset:
    merged = _read(path, ())
    bad = set(merged["knobs"]) - set(KNOBS)
    if bad:
        raise PresetError(
            f"{path}: knobs.{sorted(bad)[0]}: unknown knob; expected one of {', '.join(KNOBS)}"
        )
    missing = set(KNOBS) - set(merged["knobs"])
    if missing:
        raise PresetError(f"{path}: knobs.{sorted(missing)[0]}: missing (no base preset sets it)")
    for name, value in merged["knobs"].items():
        knob = KNOB_TABLE[name]
        if not knob.check(value):
            raise PresetError(f"{path}: knobs.{name}: expected {knob.domain}; got {value!r}")
    for section in _SECTIONS:
        for key, value in merged[section].items():
            if not _is_constant(value):
                raise PresetError(
                    f"{path}: {section}.{key}: expected a number >= 0 (or a list of them); "
                    f"got {value!r}"
                )
    return Preset(
        name=path.stem,
        description=str(merged["preset"].get("description", "")),
        knobs=merged["knobs"],
        constants={s: merged[s] for s in _SECTIONS},
        path=path,
    )


def load_preset(name_or_path: str, relative_to: Path | None = None) -> Preset:
    """A preset by shipped name (``"spikesim-65nm"``) or by path to a ``.toml`` file.

    Paths are resolved relative to ``relative_to`` (the study file's folder) so a study can
    carry its own preset beside it.
    """
    return _load_cached(_preset_path(name_or_path, relative_to).resolve())
