"""The public Python API: names, a study run and read back, and the example notebook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import nmhpo
from nmhpo.errors import ConfigError, StorageError
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
    with pytest.raises(ConfigError, match="--n-trials"):
        nmhpo.run_study(path, n_trials=0)
    assert not (tmp_path / "nmhpo-studies.db").exists()


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
