from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nmhpo.cli import app
from tests.conftest import tiny_study_text, users_digits

runner = CliRunner()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_every_verb_has_help() -> None:
    for verb in ("run", "validate", "report", "dashboard", "presets", "tasks"):
        result = _invoke(verb, "--help")
        assert result.exit_code == 0, verb
        assert "Usage" in result.output


def test_validate_good_file(tiny_study: Path) -> None:
    result = _invoke("validate", str(tiny_study))
    assert result.exit_code == 0
    assert "ok: study 'tiny'" in result.output
    assert not (tiny_study.parent / "nmhpo-studies.db").exists()


def test_validate_reports_grid_size(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text(tiny_study_text(sampler="grid"))
    result = _invoke("validate", str(path))
    assert result.exit_code == 0
    assert "grid of 32 points" in result.output  # lr 2 x steps 2 x enc 2 x xbar 2 x adc 2


@pytest.mark.parametrize("verb", ["validate", "run", "report", "dashboard"])
def test_bad_file_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, verb: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(tiny_study_text().replace('sampler = "tpe"', 'sampler = "tpee"'))
    result = _invoke(verb, str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: {path}: study.sampler: expected one of 'tpe', 'nsga2', 'nsga3', 'gp', "
        "'random', 'qmc' or 'grid'; got 'tpee'"
    ]
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [path]


def test_missing_file_exit_2(tmp_path: Path) -> None:
    result = _invoke("run", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_bad_command_line_values_exit_2(tiny_study: Path) -> None:
    assert _invoke("run", str(tiny_study), "--n-trials", "0").exit_code == 2
    result = _invoke("run", str(tiny_study), "--study-name", "no spaces please")
    assert result.exit_code == 2
    assert "--study-name: expected letters" in result.stderr
    result = _invoke("run", str(tiny_study), "--storage", "postgresql://me:hunter2@127.0.0.1:1/x")
    assert result.exit_code == 2
    assert "hunter2" not in result.stderr and "me:***@" in result.stderr
    assert not (tiny_study.parent / "nmhpo-studies.db").exists()


def test_report_without_a_study_is_exit_2_and_creates_no_database(tiny_study: Path) -> None:
    result = _invoke("report", str(tiny_study))
    assert result.exit_code == 2
    assert "no study storage at" in result.stderr
    assert not (tiny_study.parent / "nmhpo-studies.db").exists()


@pytest.mark.slow
def test_run_then_report_writes_table_png_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=3))
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    assert "3/3 trials complete" in result.output
    assert "Pareto set" in result.output and "accuracy ↑" in result.output

    result = _invoke("report", str(path), "--out", str(tmp_path / "rep"))
    assert result.exit_code == 0, result.output
    png = tmp_path / "rep" / "pareto_front.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "rep" / "trials.csv").read_text().splitlines()
    assert len(rows) == 4
    header = rows[0].split(",")
    for column in (
        "number",
        "state",
        "accuracy",
        "energy_uj",
        "param_xbar_size",
        "energy_pj_adc",
        "train_time_s",
    ):
        assert column in header
    pareto = json.loads((tmp_path / "rep" / "pareto.json").read_text())
    assert pareto and all(row["state"] == "COMPLETE" for row in pareto)

    # A study name that is not in the storage: exit 2, the names that are there.
    result = _invoke("report", str(path), "--study-name", "other")
    assert result.exit_code == 2
    assert "no study 'other'" in result.stderr and "tiny" in result.stderr


def test_presets_and_tasks_list_what_exists() -> None:
    result = _invoke("presets")
    assert result.exit_code == 0
    assert "spikesim-65nm" in result.output and "rram-32nm" in result.output
    result = _invoke("tasks")
    assert result.exit_code == 0
    assert "digits" in result.output and "energy_uj" in result.output
    assert result.output.count("decoder_layers") == 1  # ptycho's image targets only


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_dashboard_serves_the_study_on_loopback(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=1))
    assert _invoke("run", str(path)).exit_code == 0
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nmhpo", "dashboard", str(path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        body = None
        for _ in range(100):
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as resp:
                    body = json.loads(resp.read())
                break
            except OSError:
                if proc.poll() is not None:
                    break
        assert body is not None, proc.stderr.read() if proc.stderr else ""
        assert [s["study_name"] for s in body["study_summaries"]] == ["tiny"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_version() -> None:
    result = _invoke("--version")
    assert result.exit_code == 0 and "nmhpo 0.1.0" in result.output


@pytest.mark.parametrize(
    ("verb", "literal"),
    [
        ("run", "overrides [study].storage."),
        ("run", "instead of [study].name."),
        ("report", "<study> beside the study file]"),
        ("grid", "as <name>-grid"),
    ],
)
def test_help_keeps_literal_brackets(verb: str, literal: str) -> None:
    result = _invoke(verb, "--help")
    assert result.exit_code == 0
    assert literal in " ".join(result.output.split())


def test_tables_print_registry_text_as_written() -> None:
    result = _invoke("tasks")
    assert result.exit_code == 0
    assert "IDX files in [task] path" in result.output


def test_pareto_table_prints_parameter_values_as_written() -> None:
    import optuna

    from nmhpo.cli import _pareto_table, out

    trial = optuna.trial.create_trial(
        params={"act": "[bold]relu"},
        distributions={"act": optuna.distributions.CategoricalDistribution(["[bold]relu"])},
        values=[0.9, 1.0],
    )
    with out.capture() as captured:
        out.print(_pareto_table([trial], ["[red]accuracy", "energy_uj"], ["maximize", "minimize"]))
    text = captured.get()
    assert "[bold]relu" in text and "[red]accuracy" in text


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run", "quickstart", "--n-trials", "0"], "error: --n-trials: "),
        (["dashboard", "quickstart", "--port", "70000"], "error: --port: "),
        (["run", "quickstart", "--frobnicate"], "error: no such option: --frobnicate"),
        (["run"], "error: missing argument 'study'"),
        (["frobnicate"], "error: no such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], line: str) -> None:
    result = _invoke(*args)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), result.stderr
    assert lines[0].endswith(" --help)")  # where to read the usage
    assert result.stdout == ""


def test_bad_range_names_the_limit() -> None:
    result = _invoke("dashboard", "quickstart", "--port", "70000")
    assert "65535; got '70000'" in result.stderr


def test_no_arguments_prints_help_and_help_version_still_exit_0() -> None:
    result = _invoke()
    assert result.exit_code == 2 and "Usage:" in result.stderr and "Commands" in result.stderr
    assert _invoke("--help").exit_code == 0
    assert _invoke("run", "--help").exit_code == 0
    assert _invoke("--version").exit_code == 0


def test_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch, tiny_study: Path) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("nmhpo.cli._load", interrupted)
    assert _invoke("validate", str(tiny_study)).exit_code == 130


def test_usage_error_is_one_line_in_a_real_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "nmhpo", "run", "quickstart", "--n-trials", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "error: --n-trials: Input should be greater than or equal to 1; got '0' "
        "(see python -m nmhpo run --help)"
    ]


def test_dashboard_on_a_busy_port_is_one_line_exit_2(tiny_study: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _invoke("dashboard", str(tiny_study), "--port", str(port))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use; pass --port with a free port"
    ]
    assert not (tiny_study.parent / "nmhpo-studies.db").exists()


def test_dashboard_server_failing_to_bind_is_an_nmhpo_error() -> None:
    """The port is taken between the check and the server's start."""
    import errno

    from nmhpo.cli import _serve
    from nmhpo.errors import NmhpoError

    def taken(storage: object, host: str, port: int) -> None:
        raise OSError(errno.EADDRINUSE, "Address already in use")

    with pytest.raises(NmhpoError, match=r"^port 8080 on 127.0.0.1 is in use; pass --port"):
        _serve(taken, None, "127.0.0.1", 8080)

    def broken(storage: object, host: str, port: int) -> None:
        raise OSError(errno.EIO, "a bug, not a port")

    with pytest.raises(OSError, match="a bug"):  # anything else keeps its traceback
        _serve(broken, None, "127.0.0.1", 8080)


def test_run_that_cannot_open_its_storage_prints_the_error_line_only(tiny_study: Path) -> None:
    url = f"sqlite:///{tiny_study.parent / 'no_such_dir' / 'x.db'}"
    result = _invoke("run", str(tiny_study), "--storage", url)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot open storage"), result.stderr


@pytest.mark.slow
def test_run_of_a_changed_study_prints_the_error_line_only(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=1))
    assert _invoke("run", str(path)).exit_code == 0
    path.write_text(tiny_study_text(n_trials=2).replace("high = 0.05", "high = 0.08"))
    result = _invoke("run", str(path))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: study 'tiny' already exists with a different definition")


def test_postgresql_without_a_driver_names_the_extra(
    tiny_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for driver in ("psycopg", "psycopg2"):
        monkeypatch.setitem(sys.modules, driver, None)  # as if not installed
    url = "postgresql://nmhpo:secret@127.0.0.1:1/db"
    result = _invoke("run", str(tiny_study), "--storage", url)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert 'pip install "nmhpo[postgres]"' in lines[0] and "secret" not in lines[0]


def test_a_data_file_that_cannot_be_used_is_refused_before_the_study_is_written(
    tmp_path: Path,
) -> None:
    """Before: validate said ok, then the first max_failures trials failed, and the fixed
    file could not resume the study (its path is part of the study's identity)."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mine.npz",
        x_train=rng.random((40, 64)) * 16,  # not scaled to [0, 1]
        y_train=rng.integers(0, 10, 40),
        x_val=rng.random((10, 64)),
        y_val=rng.integers(0, 10, 10),
    )
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text().replace("n_train = 600", 'path = "mine.npz"'))
    expected = f"error: {tmp_path / 'mine.npz'}: x_train: expected inputs scaled to [0, 1]"
    for command in ("validate", "run"):
        result = _invoke(command, str(path))
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [result.stderr.splitlines()[-1]]
        assert result.stderr.startswith(expected), result.stderr
    assert not (tmp_path / "nmhpo-studies.db").exists()  # nothing written


def test_conv_layers_on_data_that_is_no_square_image_are_refused_at_validate(
    tmp_path: Path,
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    for name, shape in (("flat", (50,)), ("wide", (1, 8, 6))):
        np.savez(
            tmp_path / f"{name}.npz",
            x_train=rng.random((20, *shape)),
            y_train=np.arange(20) % 4,
            x_val=rng.random((4, *shape)),
            y_val=np.arange(4),
        )
        path = tmp_path / f"{name}.toml"
        text = tiny_study_text().replace("n_train = 600", f'path = "{name}.npz"')
        path.write_text(text.replace("[space.software]", "[space.software]\nconv_layers = 1"))
        for command in ("validate", "run"):
            result = _invoke(command, str(path))
            assert result.exit_code == 2, result.output
            assert "space.software.conv_layers: conv layers need square images" in result.stderr
        assert not (tmp_path / "nmhpo-studies.db").exists()


def test_task_options_a_users_file_does_not_use_are_named(tmp_path: Path) -> None:
    """`n_train` does nothing with `[task] path` (the file's splits are used as they are):
    a warning says so rather than leaving the user to believe it subsampled the file."""
    users_digits(tmp_path)
    path = tmp_path / "tiny.toml"
    path.write_text(
        tiny_study_text().replace(
            "n_train = 600", 'n_train = 600\ndata_seed = 3\npath = "mine.npz"'
        )
    )
    result = _invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert f"warning: {path}: task.n_train: not used: the data comes from" in result.stderr
    assert f"warning: {path}: task.data_seed: not used" in result.stderr  # it draws splits


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ("sqlite:///missing/x.db", "folder {tmp}/missing does not exist"),
        ("mysql://u:secret@h/db", "storage mysql://u:***@h/db: no mysql driver"),
    ],
)
def test_validate_finds_what_run_would_refuse_in_the_storage(
    tmp_path: Path, storage: str, expected: str
) -> None:
    """A storage whose folder is missing or whose driver is not installed is found by
    `validate`, in the words `run` uses, before a cluster job is queued with it."""
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text().replace("seed = 0", f'seed = 0\nstorage = "{storage}"'))
    for command in ("validate", "run"):
        result = _invoke(command, str(path))
        assert result.exit_code == 2, result.output
        assert expected.format(tmp=tmp_path) in result.stderr
        assert "secret" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_an_out_folder_that_is_a_file_is_one_line_naming_the_option(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=1))
    (tmp_path / "afile").write_text("")
    for args in (
        ["report", str(path)],
        ["compare", str(path)],
        ["export", str(path), "--trial", "0"],
    ):
        result = _invoke(*args, "--out", str(tmp_path / "afile"))
        assert result.exit_code == 2
        assert (
            result.stderr.strip()
            == f"error: --out {tmp_path / 'afile'}: expected a folder; it is a file"
        )


def test_pruning_options_without_a_pruner_are_named(tmp_path: Path) -> None:
    """A `[study.pruning]` table under `pruner = "none"` stops nothing: a user who tuned its
    rungs would otherwise believe the study was pruned. Default pruning options say nothing."""
    path = tmp_path / "tiny.toml"
    text = tiny_study_text(pruner="none")
    path.write_text(text)
    result = _invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "study.pruning" not in result.stderr
    path.write_text(text.replace("[task]", "[study.pruning]\nmin_epochs = 2\n\n[task]"))
    result = _invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert f'warning: {path}: study.pruning: not used: pruner is "none"' in result.stderr


def test_a_regression_study_on_a_users_raw_file_runs_and_reports_in_its_units(
    tmp_path: Path,
) -> None:
    """The generic task: raw inputs and targets (hundreds of units) go in as they are, and
    the stored errors are in those units."""
    import numpy as np

    from nmhpo.api import open_study

    rng = np.random.default_rng(0)
    x = rng.normal(50, 20, (300, 5))
    y = 400 + 30 * np.tanh((x[:, :2] - 50) / 20)
    np.savez(tmp_path / "mine.npz", x_train=x[:200], y_train=y[:200], x_val=x[200:], y_val=y[200:])
    text = tiny_study_text(n_trials=2).replace(
        'name = "digits"\nn_train = 600', 'name = "regression"\npath = "mine.npz"'
    )
    text = text.replace('"accuracy", direction = "maximize"', '"rmse", direction = "minimize"')
    path = tmp_path / "reg.toml"
    path.write_text(text)
    result = _invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr  # its options apply to the file
    result = _invoke("run", str(path))
    assert result.exit_code == 0, result.output
    trials = open_study(path).trials("COMPLETE")
    assert len(trials) == 2
    spread = float(np.sqrt(((y[200:] - y[:200].mean(axis=0)) ** 2).mean()))
    for t in trials:  # better than the training mean, in the file's units
        assert 0 < t.values[0] < spread
        assert 0 < t.metrics["r2"] <= 1 and t.metrics["mae"] < t.values[0] * 1.01

    path.write_text(text.replace('path = "mine.npz"', ""))
    result = _invoke("validate", str(path))
    assert result.exit_code == 2
    assert "task.path: the regression task reads your data; give your .npz file" in result.stderr


def test_a_study_shared_without_its_data_is_read_but_not_run(tmp_path: Path) -> None:
    """A study is shared as its file and database: reading it (report) needs neither the
    data nor the networks; running, validating or exporting it needs the data, and says so
    in one line."""
    import shutil

    users_digits(tmp_path)
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=1).replace("n_train = 600", 'path = "mine.npz"'))
    assert _invoke("run", str(path)).exit_code == 0
    (tmp_path / "mine.npz").unlink()
    # its network is in the model cache: a classification export needs nothing else
    result = _invoke("export", str(path), "--trial", "0", "--out", str(tmp_path / "exp"))
    assert result.exit_code == 0, result.output
    shutil.rmtree(tmp_path / "nmhpo-cache")
    result = _invoke("report", str(path), "--out", str(tmp_path / "report"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "report" / "trials.csv").is_file()
    expected = f"error: {path}: task.path: {tmp_path / 'mine.npz'} does not exist"
    commands = (("validate",), ("run", "--n-trials", "2"), ("export", "--trial", "0"), ("grid",))
    for args in commands:
        result = _invoke(args[0], str(path), *args[1:])
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.strip() == expected, (args, result.stderr)
        assert not result.stdout.strip(), (args, result.stdout)  # nothing said before it
