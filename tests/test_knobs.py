"""The hardware knob table is the one list of knobs: study files, the search space, the cost
model and crossbar-aware inference all take exactly its knobs."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from nmhpo.config import HardwareSection, StudyConfig, load_config
from nmhpo.crossbar import HARDWARE_KNOBS, KNOBS, Knob, dense_network, evaluate, load_preset
from nmhpo.errors import ConfigError, HardwareModelError
from nmhpo.registry import HARDWARE
from tests.conftest import tiny_study_text

PRESET = load_preset("spikesim-65nm")


def _value(knob: Knob) -> Any:
    """A valid value of ``knob``: the preset's, or the table's default for an unpriced one."""
    return PRESET.knobs.get(knob.name, knob.default)


def test_derived_lists_follow_the_table() -> None:
    assert KNOBS == tuple(k.name for k in HARDWARE_KNOBS if k.priced)
    assert list(HARDWARE) == [k.name for k in HARDWARE_KNOBS]
    assert set(PRESET.knobs) == set(KNOBS)


def test_hardware_point_fields_are_the_inference_knobs() -> None:
    from nmhpo.snn import HardwarePoint

    fields = {f.name for f in dataclasses.fields(HardwarePoint)} - {"seed"}
    assert fields == {k.name for k in HARDWARE_KNOBS if k.inference}


@pytest.mark.parametrize("knob", HARDWARE_KNOBS, ids=lambda k: k.name)
def test_every_knob_is_accepted_where_the_table_says(knob: Knob) -> None:
    value = _value(knob)
    assert knob.check(value)
    assert HardwareSection.model_validate({knob.name: value}).overrides() == {knob.name: value}

    raw = tomllib.loads(tiny_study_text())
    searched = raw["space"]["hardware"].pop(knob.name, None)
    raw["hardware"][knob.name] = value
    assert StudyConfig.model_validate(raw).fixed_hardware()[knob.name] == value
    if searched is not None:  # fixed and searched at once: refused, not one silently ignored
        raw["space"]["hardware"][knob.name] = searched
        with pytest.raises(ConfigError, match=rf"^hardware\.{knob.name}: also in space\.hardware"):
            StudyConfig.model_validate(raw)

    raw = tomllib.loads(tiny_study_text())
    raw["space"]["hardware"][knob.name] = {"type": "categorical", "choices": [value]}
    assert knob.name in StudyConfig.model_validate(raw).searched()

    network = dense_network([64, 10])
    if knob.priced:
        assert evaluate(network, PRESET, {knob.name: value}, num_steps=4).design(0)["energy_pj"]
    else:
        # Only priced knobs may reach the cost model, which rejects any other name.
        with pytest.raises(HardwareModelError, match="unknown hardware knob"):
            evaluate(network, PRESET, {knob.name: value}, num_steps=4)


def _fixed_study(tmp_path: Path, sigma: float) -> Path:
    """The tiny study with every parameter fixed and ``conductance_sigma`` in [hardware]."""
    text = tiny_study_text(n_trials=1)
    text = text.replace(
        'lr = { type = "float", low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03] }',
        "lr = 0.02",
    )
    text = text.replace('num_steps = { type = "int", low = 2, high = 3 }', "num_steps = 4")
    text = text.replace(
        'encoding = { type = "categorical", choices = ["rate", "direct"] }', 'encoding = "direct"'
    )
    text = text.replace('xbar_size = { type = "categorical", choices = [32, 64] }', "")
    text = text.replace('adc_bits = { type = "int", low = 3, high = 5, grid = [3, 5] }', "")
    text = text.replace(
        'preset = "spikesim-65nm"', f'preset = "spikesim-65nm"\nconductance_sigma = {sigma}'
    )
    path = tmp_path / f"sigma{sigma}.toml"
    path.write_text(text)
    return path


def test_conductance_sigma_from_a_study_file_reaches_inference_and_moves_accuracy(
    tmp_path: Path,
) -> None:
    from nmhpo.objective import evaluate_point

    results = {}
    for sigma in (0.0, 0.5):
        cfg = load_config(_fixed_study(tmp_path, sigma))
        assert not cfg.searched()
        results[sigma] = evaluate_point(cfg, cfg.fixed_software(), cfg.fixed_hardware())
    for sigma, result in results.items():
        assert result.point.hardware["conductance_sigma"] == sigma
    # Same trained network (same software point and seed); only the devices differ.
    assert results[0.0].run.model_key == results[0.5].run.model_key
    # Measured: 0.86 without variation, 0.73 with sigma = 0.5.
    assert results[0.5].metrics["accuracy"] < results[0.0].metrics["accuracy"] - 0.05


def test_conductance_sigma_is_searchable() -> None:
    import optuna

    from nmhpo.space import suggest

    raw = tomllib.loads(tiny_study_text())
    raw["space"]["hardware"]["conductance_sigma"] = {"type": "float", "low": 0.0, "high": 0.3}
    cfg = StudyConfig.model_validate(raw)
    trial = optuna.trial.FixedTrial(
        {"lr": 0.01, "num_steps": 2, "encoding": "rate", "xbar_size": 32, "adc_bits": 3}
        | {"conductance_sigma": 0.2}
    )
    _, hardware = suggest(trial, cfg)
    assert hardware["conductance_sigma"] == 0.2
