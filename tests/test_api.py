"""The public Python API: names, a study run and read back, and the example notebook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import numpy as np
import pytest
from optuna.trial import TrialState

import nmhpo
from nmhpo.errors import ConfigError, NmhpoError, StorageError
from tests.conftest import tiny_study_text

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_public_names_resolve_and_import_nothing_heavy() -> None:
    for name in nmhpo.__all__:
        assert getattr(nmhpo, name) is not None
    code = (
        "import sys, nmhpo; nmhpo.load_config; "
        "heavy = [m for m in ('torch', 'optuna', 'snntorch') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    with pytest.raises(AttributeError):
        nmhpo.no_such_name  # noqa: B018


def test_analysis_and_plots_do_not_import_each_other() -> None:
    for module, other in (("nmhpo.analysis", "nmhpo.plots"), ("nmhpo.plots", "nmhpo.analysis")):
        code = f"import sys, {module}; print({other!r} in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False", module


@pytest.mark.slow
def test_run_then_open_and_read_a_study(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(sampler="random", n_trials=3))
    study = nmhpo.run_study(path, progress=False)
    assert isinstance(study, nmhpo.Study)
    assert study.last_run is not None and study.last_run.n_new == 3
    captured = capsys.readouterr()
    assert "finished with values" not in captured.err + captured.out  # quiet: no Optuna lines

    again = nmhpo.open_study(path)
    assert again.name == "tiny" and again.objectives == ["accuracy", "energy_uj"]
    trials = again.trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(isinstance(t, nmhpo.TrialRecord) and t.result is not None for t in trials)
    assert again.trials(["fail"]) == []
    front = again.pareto()
    assert front and {t.number for t in front} <= {0, 1, 2}
    assert front == sorted(front, key=lambda t: -t.values[0])

    frame = again.to_dataframe()
    assert list(frame.index) == [0, 1, 2]
    assert {"accuracy", "energy_uj", "param_xbar_size", "metric_latency_ns", "cpu_s"} <= set(
        frame.columns
    )
    assert frame["accuracy"].tolist() == [t.values[0] for t in trials]

    report = again.report(tmp_path / "rep")
    assert {p.name for p in report.files} >= {"trials.csv", "pareto_front.png"}
    assert [t.number for t in report.pareto] == [t.number for t in front]
    comparison = again.compare(study)
    assert [s.name for s in comparison.studies] == ["tiny", "tiny"]
    assert comparison.studies[0].final_hv == comparison.studies[1].final_hv > 0
    assert "3 complete" in repr(again)
    assert repr(report).startswith("<nmhpo.Report 'tiny': 3/3 trials complete")
    assert len(repr(report)) < 300  # a notebook cell ending in .report() stays readable

    # States and trial numbers as a notebook user types them.
    assert again.trials("complete") == again.trials([TrialState.COMPLETE]) == trials
    assert again.trials(TrialState.FAIL) == []
    assert again.report(tmp_path / "rep3", trial=np.int64(1)).breakdown_trial == 1  # a
    # number taken from to_dataframe() is a NumPy integer
    for bad in ("1", 1.0, True, np.array([1])):
        with pytest.raises(NmhpoError, match=r"^trial: expected a trial number \(int\)"):
            again.export(bad)  # type: ignore[arg-type]
        with pytest.raises(NmhpoError, match=r"^trial: expected a trial number \(int\)"):
            again.report(tmp_path / "rep2", trial=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "rep2").exists()

    # The study file changed since the run: reading the study through it is refused, as
    # resuming is (an export would describe trial 0 by a preset it did not run on).
    changed = tmp_path / "changed.toml"
    changed.write_text(path.read_text().replace("spikesim-65nm", "rram-32nm"))
    with pytest.raises(StorageError, match=r"different definition \(changed: hardware.preset\)"):
        nmhpo.open_study(changed)

    # More trials resume the same study.
    more = nmhpo.run_study(path, n_trials=4, progress=False)
    assert more.last_run is not None and more.last_run.n_new == 1
    assert len(more.trials(["complete"])) == 4


def test_api_errors_are_nmhpo_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        nmhpo.open_study(tmp_path / "missing.toml")
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text())
    with pytest.raises(StorageError, match="no study storage"):
        nmhpo.open_study(path)
    # Errors name the keyword the caller passed, not the CLI's option.
    with pytest.raises(ConfigError, match=r"^n_trials: expected greater than or equal to 1"):
        nmhpo.run_study(path, n_trials=0)
    with pytest.raises(ConfigError, match=r"^study_name: "):
        nmhpo.run_study(path, study_name="no spaces")
    for workers in (0, -3, "2", 1.5, True, np.int64(0), np.array([2])):
        with pytest.raises(ConfigError, match=r"^workers: expected an int >= 1"):
            nmhpo.run_study(path, workers=workers)  # type: ignore[arg-type]
    for timeout in (-1, 0, "x"):
        with pytest.raises(ConfigError, match=r"^timeout_s: expected a number of seconds"):
            nmhpo.run_study(path, timeout_s=timeout)  # type: ignore[arg-type]
    for bad in (None, 123):
        with pytest.raises(ConfigError, match=r"^config: expected a StudyConfig"):
            nmhpo.run_study(bad)  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match=r"^load_config: expected a study file's path"):
            nmhpo.load_config(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="StudyConfig.model_validate"):
        nmhpo.load_config({"study": {}})  # type: ignore[arg-type]
    cfg = nmhpo.load_config(path)
    with pytest.raises(
        ConfigError, match=r"^samplr: unknown \[study\] field; expected one of name,"
    ):
        cfg.with_overrides(samplr="tpe")
    with pytest.raises(ConfigError, match=r"^--n-trials: "):
        cfg.with_overrides(option_names={"n_trials": "--n-trials"}, n_trials=0)
    assert not (tmp_path / "nmhpo-studies.db").exists()


def test_a_config_keeps_its_paths_when_the_working_directory_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook may change directory between building a config and running it: the study's
    database, data and cache stay where they pointed when the config was validated."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    (here / "tiny.toml").write_text(tiny_study_text())
    monkeypatch.chdir(here)
    built = nmhpo.StudyConfig.model_validate(tomllib.loads(tiny_study_text()))
    loaded = nmhpo.load_config("tiny.toml")  # a relative path
    overridden = built.with_overrides(n_trials=5)
    monkeypatch.chdir(elsewhere)
    for cfg in (built, loaded, overridden):
        assert cfg.base_dir == here
        assert cfg.storage_url() == f"sqlite:///{here / 'nmhpo-studies.db'}"
        assert cfg.cache_dir == here / "nmhpo-cache"
    # An absolute study file needs no working directory at all.
    absolute = nmhpo.load_config(here / "tiny.toml")
    assert absolute.workdir is None and absolute.base_dir == here
    # A dict is accepted where a config is: it is validated here, in `elsewhere`.
    with pytest.raises(StorageError, match=str(elsewhere / "nmhpo-studies.db")):
        nmhpo.open_study(tomllib.loads(tiny_study_text()))


@pytest.mark.slow
def test_the_example_notebook_runs(tmp_path: Path, nmhpo_home: Path) -> None:
    """examples/quickstart.ipynb, executed on a real kernel in another folder: every cell
    runs, the study lands in nmhpo's home, and no Optuna log line reaches the notebook."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "Trial 0 finished" not in text and "[I " not in text
    assert "TrialRecord(number=" in text
    assert (nmhpo_home / "nmhpo-studies.db").is_file()
    assert not (tmp_path / "nmhpo-studies.db").exists()
    assert any("image/png" in o.get("data", {}) for o in outputs)
    # The progress bar is a Jupyter widget (tqdm.auto with ipywidgets), not text lines.
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
