"""Real processes and real databases: parallel workers, crash recovery, PostgreSQL."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import count_trials, kill_once_trials_run, tiny_study_text

pytestmark = pytest.mark.slow

CMD = [sys.executable, "-m", "nmhpo"]


def _grid_study(tmp_path: Path, storage: str | None = None, heartbeat: int = 1) -> Path:
    # 16 grid points (lr 2 x steps 2 x encoding 2 x xbar 2; adc fixed), quick trials.
    text = tiny_study_text(sampler="grid", n_trials=16)
    text = text.replace(
        'adc_bits = { type = "int", low = 3, high = 5, grid = [3, 5] }', "adc_bits = 4"
    )
    extra = f"heartbeat_s = {heartbeat}"
    if storage:
        extra += f'\nstorage = "{storage}"'
    text = text.replace("seed = 0", f"seed = 0\n{extra}")
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=storage).get_trials(deepcopy=False)


def _assert_every_grid_point_once(trials: list[optuna.trial.FrozenTrial], n: int) -> None:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    keys = Counter(tuple(sorted(t.params.items())) for t in complete)
    assert len(complete) == n
    assert len(keys) == n and set(keys.values()) == {1}, keys


def test_two_workers_share_sqlite_without_lock_errors(tmp_path: Path) -> None:
    path = _grid_study(tmp_path)
    # trials long enough that the spawned worker (a second or two to start) gets some
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 30"))
    result = subprocess.run(
        [*CMD, "run", str(path), "--workers", "2"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "locked" not in result.stderr
    assert "finished with values" not in result.stderr  # workers log like the CLI: no INFO
    trials = _trials(f"sqlite:///{tmp_path / 'nmhpo-studies.db'}")
    _assert_every_grid_point_once(trials, 16)
    assert not [t for t in trials if t.state == TrialState.FAIL]
    # The summary accounts for every trial: a point another worker took is "skipped".
    counts = re.search(
        r"16/16 trials complete \((\d+) run now, (?:(\d+) skipped .*?, )?0 failed", result.stdout
    )
    assert counts, result.stdout
    assert int(counts[1]) == len(trials) == 16 + int(counts[2] or 0)
    # this process and one spawned worker both ran trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    workers = Counter(t.user_attrs["run.worker"] for t in complete)
    assert len(workers) == 2, workers
    # both software-point models were trained once and shared through the disk cache
    trained = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs["run.trained"]]
    assert len(trained) <= 8 + 2  # 8 software points; a race may train one twice per worker


def test_spawned_workers_do_not_outlive_a_failing_owner(tmp_path: Path) -> None:
    """Worker 0 (this process) fails after its first trial: the spawned worker is stopped
    instead of running the study to its end while the owner waits or exits."""
    import multiprocessing

    from nmhpo.config import load_config
    from nmhpo.study import count_complete, load_existing, run_study

    path = tmp_path / "long.toml"
    path.write_text(tiny_study_text(sampler="random", n_trials=200))
    cfg = load_config(path)

    def fail(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        raise RuntimeError("worker 0 broke")

    with pytest.raises(RuntimeError, match="worker 0 broke"):
        run_study(cfg, workers=2, callbacks=[fail])
    assert multiprocessing.active_children() == []
    assert count_complete(load_existing(cfg)) < 200
    assert not load_existing(cfg).get_trials(states=(TrialState.RUNNING,))


def test_task_data_is_in_the_cache_before_workers_are_spawned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Spawned workers read the generated data instead of each generating it at once (on
    ptycho at 16,000 frames every worker spent 3.5 s doing so)."""
    import nmhpo.study
    from nmhpo.config import load_config

    path = tmp_path / "tiny.toml"
    path.write_text(tiny_study_text(sampler="random", n_trials=1))
    cfg = load_config(path)
    seen: list[list[str]] = []

    def spawn(cfg_: object, n: int, timeout_s: float | None) -> tuple[list[object], None]:
        seen.append(sorted(p.name for p in (cfg.cache_dir / "data").glob("*.npz")))
        return [], None  # no process: this one runs the study alone

    monkeypatch.setattr(nmhpo.study, "_start_workers", spawn)
    nmhpo.study.run_study(cfg, workers=2)
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].startswith("digits-")


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    path = _grid_study(tmp_path, heartbeat=1)
    # about 10 s of trials after a 2 s start: the kills land mid-study
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 40"))
    database = tmp_path / "nmhpo-studies.db"
    storage = f"sqlite:///{database}"
    rng = random.Random(7)
    seen: dict[int, tuple[float, ...]] = {}
    kills = mid_trial = 0
    for _ in range(4):
        before = count_trials(database)
        proc = subprocess.Popen(
            [*CMD, "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        kills += kill_once_trials_run(proc, database, before, rng, within_s=3.0)
        proc.wait(timeout=30)
        stored = []
        if Path(storage.removeprefix("sqlite:///")).exists():
            try:
                stored = _trials(storage)
            except KeyError:  # killed after creating the file, before the study (slow start)
                pass
            for t in stored:
                if t.state == TrialState.COMPLETE:
                    assert seen.setdefault(t.number, tuple(t.values)) == tuple(t.values)
            # a kill that left a trial running, whose re-run the resume must arrange
            mid_trial += any(t.state == TrialState.RUNNING for t in stored)
    assert kills >= 2, "the study finished too fast to be killed; make it longer"
    assert mid_trial >= 1, "no kill landed during a trial; change the kill times"
    done = subprocess.run([*CMD, "run", str(path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    trials = _trials(storage)
    _assert_every_grid_point_once(trials, 16)
    for t in trials:
        if t.number in seen:
            assert t.state == TrialState.COMPLETE and tuple(t.values) == seen[t.number]
    assert not [t for t in trials if t.state == TrialState.RUNNING]


def test_max_failures_stops_with_a_clear_message(tmp_path: Path) -> None:
    text = tiny_study_text(n_trials=5).replace(
        'lr = { type = "float", low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03] }',
        "lr = 1e20",
    )
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(
        [*CMD, "run", str(path), "--max-failures", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "stopped after 2 failed trials in a row" in result.stderr
    assert "training diverged" in result.stderr
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- PostgreSQL


def test_two_workers_on_postgresql(tmp_path: Path, postgres: str) -> None:
    path = _grid_study(tmp_path, storage=postgres, heartbeat=2)
    result = subprocess.run(
        [*CMD, "run", str(path), "--workers", "2"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stdout + result.stderr  # the password is masked
    assert "nmhpo:***@127.0.0.1" in result.stdout
    _assert_every_grid_point_once(_trials(postgres), 16)


def test_worker_joins_a_postgresql_study(tmp_path: Path, postgres: str) -> None:
    text = tiny_study_text(n_trials=4).replace("seed = 0", f'seed = 0\nstorage = "{postgres}"')
    text = text.replace('name = "tiny"', 'name = "joined"')
    path = tmp_path / "joined.toml"
    path.write_text(text)
    outputs = _two_workers(path)
    study = optuna.load_study(study_name="joined", storage=postgres)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert 4 <= len(complete) <= 5  # both stop at the target; one may finish a last trial
    assert all("worker done" in out for out, _ in outputs)
    _assert_workers_ran_their_own_points(study, outputs)


def _two_workers(path: Path) -> list[tuple[str, str]]:
    """``nmhpo worker`` started twice at once, as a scheduler starts an array; both succeed."""
    procs = [
        subprocess.Popen(
            [*CMD, "worker", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    return outputs


def _assert_workers_ran_their_own_points(
    study: optuna.Study, outputs: list[tuple[str, str]]
) -> None:
    """Workers started together propose different points (each seeds its sampler with its
    host and process id), and each reports the trials it ran itself."""
    trials = study.get_trials()
    points = {tuple(sorted(t.params.items())) for t in trials}
    assert len(points) == len(trials), [t.params for t in trials]
    ran = [int(re.search(r"\((\d+) run by this worker\)", out)[1]) for out, _ in outputs]
    assert sum(ran) == len(trials), (ran, outputs)


def test_workers_started_together_on_a_new_sqlite_file(tmp_path: Path) -> None:
    """Before: one of two workers started at once on a new file could fail ("table trials
    already exists"), and both proposed the same first points."""
    path = tmp_path / "together.toml"
    path.write_text(tiny_study_text(n_trials=4).replace('name = "tiny"', 'name = "together"'))
    outputs = _two_workers(path)
    study = optuna.load_study(
        study_name="together", storage=f"sqlite:///{tmp_path / 'nmhpo-studies.db'}"
    )
    _assert_workers_ran_their_own_points(study, outputs)
