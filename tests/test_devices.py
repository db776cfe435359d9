"""[study] device: validation, resolution per worker, and the CLI and API options.

The resolver is tested with fake GPU counts, so every rule is checked without a GPU; a run
that asks for CUDA on a machine without it is tested by making torch's count 0.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nmhpo
import nmhpo.devices
from nmhpo.cli import app
from nmhpo.config import load_config
from nmhpo.devices import check_available, device_problem, resolve_device
from nmhpo.errors import ConfigError, DeviceError
from tests.conftest import tiny_study_text

runner = CliRunner()


@pytest.mark.parametrize(
    ("setting", "worker", "n_gpus", "expected"),
    [
        ("cpu", 0, 0, "cpu"),
        ("cpu", 3, 8, "cpu"),
        ("auto", 0, 0, "cpu"),
        ("auto", 5, 0, "cpu"),
        ("auto", 0, 2, "cuda:0"),
        ("auto", 3, 2, "cuda:1"),
        ("cuda", 0, 4, "cuda:0"),
        ("cuda", 5, 4, "cuda:1"),  # round-robin: 8 workers on 4 GPUs are two per GPU
        ("cuda:3", 0, 4, "cuda:3"),
        ("cuda:3", 7, 4, "cuda:3"),
    ],
)
def test_resolve_device_round_robin(setting: str, worker: int, n_gpus: int, expected: str) -> None:
    assert resolve_device(setting, worker, n_gpus) == expected


def test_cuda_without_a_gpu_is_a_device_error() -> None:
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        resolve_device("cuda", 0, 0)
    for setting in ("cuda", "cuda:0"):
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            check_available(setting, n_gpus=0)
    with pytest.raises(DeviceError, match=r"2 GPU\(s\), cuda:0 to cuda:1"):
        check_available("cuda:2", n_gpus=2)
    check_available("cuda:1", n_gpus=2)
    check_available("auto", n_gpus=0)
    check_available("cpu", n_gpus=0)


@pytest.mark.parametrize("setting", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_settings_accepted(setting: str) -> None:
    assert device_problem(setting) is None


@pytest.mark.parametrize("setting", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:0 ", "mps", ""])
def test_bad_device_in_a_study_file_is_one_config_line(tmp_path: Path, setting: str) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text().replace("seed = 0\n", f'seed = 0\ndevice = "{setting}"\n'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: study.device: expected auto, cpu, cuda or cuda:N; got {setting!r}"
    )


def test_device_is_not_part_of_the_study_identity(tiny_study: Path) -> None:
    """A study may be resumed on another machine with another device."""
    cfg = load_config(tiny_study)
    assert cfg.study.device == "auto"
    on_gpu = cfg.with_overrides(device="cuda:1")
    assert on_gpu.study.device == "cuda:1"
    assert on_gpu.identity_hash() == cfg.identity_hash()


def test_validating_a_device_does_not_import_torch() -> None:
    code = (
        "import sys; from nmhpo.devices import device_problem, resolve_device, check_available; "
        "import nmhpo.config; device_problem('cuda:1'); resolve_device('auto', 0, 2); "
        "check_available('auto'); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("verb", ["run", "worker", "grid"])
def test_cuda_without_a_gpu_fails_in_one_line_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verb: str
) -> None:
    monkeypatch.setattr(nmhpo.devices, "gpu_count", lambda: 0)
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(sampler="grid" if verb == "grid" else "tpe"))
    result = runner.invoke(app, [verb, str(path), "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: device 'cuda': torch sees no CUDA GPU on this machine "
        "(use --device cpu or auto, or a CUDA build of torch)"
    ]
    assert list(tmp_path.iterdir()) == [path]  # no storage, no cache


def test_bad_device_option_names_the_option(tiny_study: Path) -> None:
    result = runner.invoke(app, ["run", str(tiny_study), "--device", "gpu"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --device: expected auto, cpu, cuda or cuda:N; got 'gpu'"
    ]


def test_api_cuda_without_a_gpu_raises_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nmhpo.devices, "gpu_count", lambda: 0)
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text())
    with pytest.raises(DeviceError, match="no CUDA GPU"):
        nmhpo.run_study(path, device="cuda:0", progress=False)
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.slow
def test_run_with_device_cpu_records_it(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=1))
    result = runner.invoke(app, ["run", str(path), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    trials = nmhpo.open_study(path).trials()
    assert [t.result.run.device for t in trials if t.result is not None] == ["cpu"]
    assert trials[0].result is not None
    assert trials[0].result.to_user_attrs()["run.device"] == "cpu"


@pytest.mark.slow
def test_api_device_override_records_it(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(n_trials=1))
    study = nmhpo.run_study(path, device="cpu", progress=False)
    (trial,) = study.trials()
    assert trial.result is not None and trial.result.run.device == "cpu"
    assert trial.result.run.worker is not None
