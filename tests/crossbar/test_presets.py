from __future__ import annotations

from pathlib import Path

import pytest

from nmhpo.crossbar import KNOBS, load_preset, preset_names
from nmhpo.errors import PresetError


@pytest.mark.parametrize("name", preset_names())
def test_every_shipped_preset_loads_with_every_knob(name: str) -> None:
    preset = load_preset(name)
    assert set(preset.knobs) == set(KNOBS)
    assert preset.constants["energy_pj"]["adc"] > 0


def test_spikesim_preset_holds_the_documented_table() -> None:
    p = load_preset("spikesim-65nm")
    assert p.constants["energy_pj"]["xbar_rram"] == 1.76423
    assert p.constants["area_um2"]["htree"] == 433660.0
    assert p.knobs["xbar_size"] == 64


def test_derived_preset_inherits_constants_and_overrides_knobs() -> None:
    p = load_preset("rram-32nm")
    assert p.constants == load_preset("spikesim-65nm").constants
    assert p.knobs["tech_node"] == 32


def test_user_preset_file_relative_to_the_study(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('base = "spikesim-65nm"\n[knobs]\nadc_bits = 7\n')
    assert load_preset("mine.toml", tmp_path).knobs["adc_bits"] == 7


def test_unknown_preset_and_bad_knob_are_reported(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="unknown hardware preset 'nope'; expected one of"):
        load_preset("nope")
    (tmp_path / "bad.toml").write_text('base = "spikesim-65nm"\n[knobs]\nvolts = 7\n')
    with pytest.raises(PresetError, match=r"knobs\.volts: unknown knob"):
        load_preset("bad.toml", tmp_path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[knobs]\nadc_bits = 99\n", r"knobs\.adc_bits: expected an integer in 1-16; got 99"),
        ('[energy_pj]\nadc = "x"\n', r"energy_pj\.adc: expected a number >= 0 .*; got 'x'"),
        ("[energy_pj]\nadc = -1000\n", r"energy_pj\.adc: expected a number >= 0 .*; got -1000"),
        ("[energy_pj]\nadc = true\n", r"energy_pj\.adc: expected a number >= 0 .*; got True"),
    ],
)
def test_a_preset_file_with_values_outside_their_domain_is_refused(
    tmp_path: Path, body: str, message: str
) -> None:
    """Outside its domain a value would be priced as if real: adc_bits = 99 overflowed in
    every trial, a negative ADC energy gave negative energies per inference."""
    (tmp_path / "mine.toml").write_text(f'base = "rram-32nm"\n{body}')
    with pytest.raises(PresetError, match=message):
        load_preset("mine.toml", tmp_path)
    with pytest.raises(PresetError, match=r"constants\.energy_pj\.adc: expected a value like"):
        load_preset("rram-32nm").with_constants({"energy_pj": {"adc": -1.0}})
