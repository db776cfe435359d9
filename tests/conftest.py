from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nmhpo._pgserver import postgres_server

# A real study that trains in a fraction of a second per trial: few samples, one epoch,
# a small network, two time steps.
TINY_STUDY = """
[study]
name = "tiny"
sampler = "{sampler}"
n_trials = {n_trials}
seed = 0
pruner = "{pruner}"
objectives = [
  {{ name = "accuracy", direction = "maximize" }},
  {{ name = "energy_uj", direction = "minimize" }},
]

[task]
name = "digits"
n_train = 600

[hardware]
preset = "spikesim-65nm"

[space.software]
epochs = 2
batch_size = 32
hidden_size = 32
lr = {{ type = "float", low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03] }}
num_steps = {{ type = "int", low = 2, high = 3 }}
encoding = {{ type = "categorical", choices = ["rate", "direct"] }}

[space.hardware]
xbar_size = {{ type = "categorical", choices = [32, 64] }}
adc_bits = {{ type = "int", low = 3, high = 5, grid = [3, 5] }}
"""


def users_digits(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A user's own classification file (mine.npz), and its arrays to edit."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.random((60, 64)),
        "y_train": np.arange(60) % 10,
        "x_val": rng.random((20, 64)),
        "y_val": np.arange(20) % 10,
    }
    data = tmp_path / "mine.npz"
    np.savez(data, **arrays)
    return data, arrays


def kill_once_trials_run(
    proc: subprocess.Popen[bytes], database: Path, before: int, rng: random.Random, within_s: float
) -> bool:
    """SIGKILL ``proc`` (an `nmhpo run`) a random moment of up to ``within_s`` after it has
    started a trial of its own (``database``, SQLite, holds more than the ``before`` trials
    it held at the launch), so that the kill lands among trials, not during the process's
    start (torch's import, the data), which outlasts a fixed delay on a slow machine.
    False when the run ended first."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if count_trials(database) > before:
            break
        time.sleep(0.1)
    time.sleep(rng.uniform(0.0, within_s))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def count_trials(database: Path) -> int:
    """Trials in an SQLite study database, any state (0 before its schema exists)."""
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM trials").fetchone()[0])
    except sqlite3.Error:  # the schema is not there yet
        return 0


def tiny_study_text(sampler: str = "tpe", n_trials: int = 3, pruner: str = "none") -> str:
    """The tiny study; without pruning unless asked (most tests count trials and trainings
    exactly, and a stopped trial adds one)."""
    return TINY_STUDY.format(sampler=sampler, n_trials=n_trials, pruner=pruner)


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text())
    return path


@pytest.fixture(autouse=True)
def nmhpo_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Shipped studies keep their databases in nmhpo's home folder: never the user's own."""
    home = tmp_path_factory.mktemp("nmhpo-home")
    monkeypatch.setenv("NMHPO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A real PostgreSQL server on 127.0.0.1 in a temporary directory, stopped afterwards."""
    with postgres_server() as url:
        yield url
