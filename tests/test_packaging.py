from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The same backend pip uses, without network or build isolation.
    code = (
        "import os, sys; from hatchling.build import build_wheel;"
        f"os.chdir({str(ROOT)!r}); print(build_wheel({str(out)!r}))"
    )
    name = (
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    return out / name


def test_wheel_ships_presets_and_studies(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for preset in (ROOT / "hardware").glob("*.toml"):
        assert f"nmhpo/_data/hardware/{preset.name}" in names
    for study in (ROOT / "studies").glob("*.toml"):
        assert f"nmhpo/_data/studies/{study.name}" in names
    assert "nmhpo/cli.py" in names


def test_installed_wheel_runs_shipped_study_and_preset_by_name(
    wheel: Path, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "NMHPO_HOME": str(tmp_path / "home")}
    code = (
        "import nmhpo, nmhpo.crossbar as c, nmhpo.config as k;"
        f"assert nmhpo.__file__.startswith({str(target)!r}), nmhpo.__file__;"
        "print(c.load_preset('rram-32nm').knobs['tech_node']);"
        "print(k.load_config('quickstart').storage_url())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[0] == "32"
    assert lines[1] == f"sqlite:///{(tmp_path / 'home').resolve() / 'nmhpo-studies.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "nmhpo", "validate", "quickstart"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "ok: study 'quickstart'" in result.stdout
    assert list(work.iterdir()) == []  # validating writes nothing
