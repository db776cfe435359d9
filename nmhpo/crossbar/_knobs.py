"""The one table of hardware knobs: what each is, its domain, and which parts of nmhpo read it.

Study files (``[hardware]`` and ``[space.hardware]``), the search-space registry, the crossbar
price model and crossbar-aware inference each derive their list of knobs from `HARDWARE_KNOBS`,
so a knob is added in one place and cannot be accepted by one of them and dropped by another.
Plain Python only: ``nmhpo.crossbar`` imports this, and it must not pull in torch or pydantic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

KnobKind = Literal["float", "int", "categorical"]

DEVICES: tuple[str, ...] = ("rram", "sram")


def is_number(v: Any) -> bool:
    """A real number; booleans are excluded because TOML ``true`` is not a size or a rate."""
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def int_in(lo: int, hi: int | None = None) -> Callable[[Any], bool]:
    return lambda v: is_integer(v) and v >= lo and (hi is None or v <= hi)


def number_in(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: is_number(v) and lo <= v <= hi


def positive(v: Any) -> bool:
    return is_number(v) and v > 0


def one_of(choices: tuple[Any, ...]) -> Callable[[Any], bool]:
    return lambda v: v in choices


@dataclass(frozen=True)
class Knob:
    """One hardware knob.

    ``priced``: the crossbar cost model reads it, so every preset sets it and
    `nmhpo.crossbar.evaluate` accepts it. ``inference``: it changes what the crossbars compute,
    so crossbar-aware inference reads it (a field of ``nmhpo.snn.HardwarePoint``) and it can
    move accuracy. ``default`` is used only for knobs no preset sets (the unpriced ones); a
    priced knob's default is its preset's value.
    """

    name: str
    kind: KnobKind
    domain: str  # stated in error messages, e.g. "an integer in 1-16"
    check: Callable[[Any], bool]
    priced: bool
    inference: bool
    unit: str
    description: str
    default: Any = None


HARDWARE_KNOBS: tuple[Knob, ...] = (
    Knob(
        name="xbar_size",
        kind="int",
        domain="an integer in 8-1024",
        check=int_in(8, 1024),
        priced=True,
        inference=True,
        unit="rows",
        description="rows (= columns) of one crossbar array",
    ),
    Knob(
        name="pe_per_tile",
        kind="int",
        domain="an integer in 1-256",
        check=int_in(1, 256),
        priced=True,
        inference=False,
        unit="",
        description="processing elements (crossbar groups) per tile",
    ),
    Knob(
        name="clock_mhz",
        kind="float",
        domain="a number > 0",
        check=positive,
        priced=True,
        inference=False,
        unit="MHz",
        description="clock of the digital periphery",
    ),
    Knob(
        name="device",
        kind="categorical",
        domain=f"one of {', '.join(DEVICES)}",
        check=one_of(DEVICES),
        priced=True,
        inference=False,
        unit="",
        description="memory cell technology",
    ),
    Knob(
        name="adc_bits",
        kind="int",
        domain="an integer in 1-16",
        check=int_in(1, 16),
        priced=True,
        inference=True,
        unit="bits",
        description="resolution of the ADC that reads each partial sum",
    ),
    Knob(
        name="cols_per_adc",
        kind="int",
        domain="an integer in 1-1024",
        check=int_in(1, 1024),
        priced=True,
        inference=False,
        unit="",
        description="columns sharing one ADC through a multiplexer",
    ),
    Knob(
        name="weight_bits",
        kind="int",
        domain="an integer in 1-16",
        check=int_in(1, 16),
        priced=True,
        inference=True,
        unit="bits",
        description="precision of a stored weight (its sign by a differential pair of arrays)",
    ),
    Knob(
        name="cell_bits",
        kind="int",
        domain="an integer in 1-16",
        check=int_in(1, 16),
        priced=True,
        inference=True,
        unit="bits",
        description="bits per memory cell; a weight spans several cells when it has more bits",
    ),
    Knob(
        name="tech_node",
        kind="float",
        domain="a number in 7-65 (nm)",
        check=number_in(7, 65),
        priced=True,
        inference=False,
        unit="nm",
        description="technology node the preset's constants are scaled to",
    ),
    Knob(
        name="conductance_sigma",
        kind="float",
        domain="a number in 0-1",
        check=number_in(0, 1),
        priced=False,
        inference=True,
        unit="",
        description="device variation: each programmed cell is scaled by (1 + sigma N(0, 1))",
        default=0.0,
    ),
)

#: Each knob by name.
KNOB_TABLE: dict[str, Knob] = {k.name: k for k in HARDWARE_KNOBS}

#: Knobs the crossbar cost model prices; a preset must set exactly these.
PRICED_KNOBS: tuple[str, ...] = tuple(k.name for k in HARDWARE_KNOBS if k.priced)
