from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nmhpo.cli import app
from nmhpo.crossbar import dense_network, evaluate, load_preset, parse_sweep, price

runner = CliRunner()
VGG9_CONVS = [
    "3,64,3,32,32",
    "64,64,3,32,16",
    "64,128,3,16,16",
    "128,128,3,16,8",
    "128,256,3,8,8",
    "256,256,3,8,8",
    "256,256,3,8,4",
]


def test_energy_reproduces_the_spikesim_check_value_as_json() -> None:
    args = ["energy", "--num-steps", "5", "--mode", "spikesim", "--json"]
    for spec in VGG9_CONVS:
        args += ["--conv", spec]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["energy_pj"] == pytest.approx(15_906_934.03, abs=0.01)
    assert data["area_um2"] == pytest.approx(8_425_528.76, abs=0.01)
    assert data["latency_ns"] == 62_832_640
    assert set(data["breakdown"]) == {"energy_pj", "energy_by_layer_pj", "area_um2"}
    assert sum(data["breakdown"]["energy_pj"].values()) == pytest.approx(data["energy_pj"])


def test_energy_set_and_activity_match_the_library() -> None:
    result = runner.invoke(
        app,
        [
            "energy",
            "--layers",
            "784,128,10",
            "--preset",
            "spikesim-65nm",
            "--set",
            "xbar_size=64",
            "--set",
            "adc_bits=4",
            "--num-steps",
            "5",
            "--activity",
            "0.1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = evaluate(
        dense_network([784, 128, 10]),
        load_preset("spikesim-65nm"),
        {"xbar_size": 64, "adc_bits": 4},
        num_steps=5,
        activity=0.1,
    )
    assert data["energy_pj"] == pytest.approx(expected.energy_pj[0], rel=1e-12)
    assert data["knobs"]["adc_bits"] == 4 and data["num_steps"] == 5


def test_sweep_prices_the_whole_product_and_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "sweep.csv"
    result = runner.invoke(
        app,
        [
            "energy",
            "--layers",
            "784,128,10",
            "--sweep",
            "xbar_size=32,64,128,256",
            "--sweep",
            "adc_bits=3:8",
            "--num-steps",
            "4",
            "--activity",
            "0.2,0.1",
            "--csv",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 24
    assert {(r["xbar_size"], r["adc_bits"]) for r in rows} == {
        (str(x), str(b)) for x in (32, 64, 128, 256) for b in range(3, 9)
    }
    # Each row equals pricing that design alone.
    row = rows[7]
    alone = evaluate(
        dense_network([784, 128, 10]),
        load_preset("spikesim-65nm"),
        {"xbar_size": int(row["xbar_size"]), "adc_bits": int(row["adc_bits"])},
        num_steps=4,
        activity=[0.2, 0.1],
    )
    assert float(row["energy_pj"]) == pytest.approx(alone.energy_pj[0], rel=1e-12)


def test_sweep_table_and_constant_override() -> None:
    result = runner.invoke(
        app,
        [
            "energy",
            "--layers",
            "64,32,10",
            "--sweep",
            "device=rram,sram",
            "--set",
            "energy_pj.tilebuf=0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 designs" in result.output and "sram" in result.output
    priced = price(
        dense_network([64, 32, 10]),
        load_preset("spikesim-65nm"),
        settings=[("energy_pj.tilebuf", 0.0)],
        sweeps=[("device", ["rram", "sram"])],
    )
    assert np.all(priced.result.energy_breakdown_pj["tilebuf"] == 0)


def test_parse_sweep_forms() -> None:
    assert parse_sweep("adc_bits=3:8") == ("adc_bits", [3, 4, 5, 6, 7, 8])
    assert parse_sweep("xbar_size=64:256:64") == ("xbar_size", [64, 128, 192, 256])
    assert parse_sweep("tech_node=22,45.5") == ("tech_node", [22, 45.5])
    assert parse_sweep("num_steps=1,2") == ("num_steps", [1, 2])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layers", "784,-128,10"], "--layers: expected at least two positive integers"),
        (["--conv", "3,64,3,32"], "--conv: expected CIN,COUT,K,DIN,DOUT"),
        (["--layers", "8,4", "--set", "volts=3"], "--set: unknown knob 'volts'"),
        (["--layers", "8,4", "--set", "device=pcm"], "--set device: expected one of rram, sram"),
        (["--layers", "8,4", "--set", "adc_bits=99"], "--set adc_bits: expected an integer in"),
        (["--layers", "8,4", "--sweep", "adc_bits=3:20"], "--sweep adc_bits: expected an integer"),
        (["--layers", "8,4", "--set", "energy_pj.adc=abc"], "(numbers >= 0); got 'abc'"),
        (["--layers", "8,4", "--set", "energy_pj.adc=-5"], "(numbers >= 0); got -5"),
        (["--layers", "8,4", "--csv", "/proc/no/such.csv"], "/proc/no"),
        (["--layers", "8,4", "--set", "energy_pj.nope=1"], "constants.energy_pj.nope"),
        (["--layers", "8,4", "--sweep", "adc_bits=8:3"], "--sweep adc_bits: expected lo:hi"),
        (["--layers", "8,4", "--sweep", "volts=1,2"], "--sweep: unknown knob 'volts'"),
        (["--layers", "8,4", "--activity", "lots"], "--activity: expected numbers"),
        (["--layers", "8,4", "--activity", "0.1,0.2,0.3"], "activity has 3 values"),
        (["--layers", "8,4", "--preset", "nope"], "unknown hardware preset 'nope'"),
        ([], "give the network"),
    ],
)
def test_bad_energy_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["energy", *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_csv_that_cannot_be_written_is_named_as_given(tmp_path: Path) -> None:
    """The table goes to a temporary file beside it first; an error used to name that
    temporary, a file the user never asked for."""
    for target, message in (
        (tmp_path, f"{tmp_path}: expected a CSV file; it is a folder"),
        (Path("/proc/sweep.csv"), "/proc/sweep.csv: "),
    ):
        result = runner.invoke(app, ["energy", "--layers", "8,4", "--csv", str(target)])
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().startswith(f"error: {message}"), result.stderr
        assert ".tmp" not in result.stderr
    assert list(tmp_path.iterdir()) == []
