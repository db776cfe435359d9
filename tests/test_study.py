from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nmhpo.config import load_config
from nmhpo.errors import StorageError, StudyStoppedError
from nmhpo.record import TrialRecord
from nmhpo.samplers import derived_seed, make_sampler
from nmhpo.study import load_existing, run_study
from tests.conftest import tiny_study_text, users_digits

pytestmark = pytest.mark.slow


def _write(tmp_path: Path, text: str, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_tiny_study_end_to_end_into_sqlite(tiny_study: Path) -> None:
    cfg = load_config(tiny_study)
    summary = run_study(cfg)
    assert summary.n_complete == 3 and summary.n_new == 3
    db = tiny_study.parent / "nmhpo-studies.db"
    assert db.is_file()

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    assert study.metric_names == ["accuracy", "energy_uj"]
    assert study.user_attrs["nmhpo_identity_hash"] == cfg.identity_hash()
    assert study.user_attrs["nmhpo_config"]["study"]["name"] == "tiny"
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        accuracy, energy = trial.values
        assert 0.0 <= accuracy <= 1.0
        assert accuracy > 0.3  # two short epochs already beat chance (0.1) on digits
        result = TrialRecord.from_trial(trial).result
        assert result is not None
        assert result.metrics["energy_uj"] == pytest.approx(energy)
        assert sum(result.breakdown.energy_pj.values()) == pytest.approx(energy * 1e6)
        assert result.metrics["train_time_s"] > 0
        assert result.point.hardware["xbar_size"] == trial.params["xbar_size"]
        activity = result.point.activity
        assert len(activity) == 2 and all(0 <= a <= 1 for a in activity)
        assert result.run.worker and result.run.cpu_s is not None and result.run.cpu_s > 0
    assert summary.pareto and all(t.state == "COMPLETE" for t in summary.pareto)


def test_resume_continues_to_n_trials_without_replaying_suggestions(tmp_path: Path) -> None:
    path = _write(tmp_path, tiny_study_text(n_trials=2))
    run_study(load_config(path))
    db = f"sqlite:///{tmp_path / 'nmhpo-studies.db'}"
    first = optuna.load_study(study_name="tiny", storage=db).trials
    run_study(load_config(path).with_overrides(n_trials=4))
    trials = optuna.load_study(study_name="tiny", storage=db).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert [t.values for t in trials[:2]] == [t.values for t in first]  # untouched
    assert [t.params for t in trials[2:]] != [t.params for t in trials[:2]]
    # Running again with the target met starts no trial.
    assert run_study(load_config(path).with_overrides(n_trials=4)).n_new == 0


def test_resumed_sampler_gets_a_different_seed() -> None:
    assert derived_seed(0, 0) != derived_seed(0, 5)
    assert derived_seed(0, 5) == derived_seed(0, 5)


def test_changed_space_or_objectives_is_refused_clearly(tmp_path: Path) -> None:
    path = _write(tmp_path, tiny_study_text(n_trials=1))
    run_study(load_config(path))
    changed = _write(tmp_path, tiny_study_text().replace("high = 5, grid", "high = 6, grid"))
    with pytest.raises(StorageError, match=r"different definition .*space\.hardware\.adc_bits"):
        run_study(load_config(changed))
    flipped = _write(tmp_path, tiny_study_text().replace('"energy_uj"', '"latency_us"'))
    with pytest.raises(StorageError, match="objectives"):
        run_study(load_config(flipped))
    # Asking for a new study (another name) works beside the old one.
    summary = run_study(load_config(changed).with_overrides(name="tiny-v2", n_trials=1))
    assert summary.n_complete == 1


def test_failing_trials_are_recorded_and_a_failure_streak_stops_the_study(
    tmp_path: Path,
) -> None:
    # A learning rate this large makes the loss explode: a real diverging run.
    text = tiny_study_text(n_trials=3).replace(
        'lr = { type = "float", low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03] }',
        "lr = 1e20",
    )
    text = text.replace("seed = 0", "seed = 0\nmax_failures = 2")
    path = _write(tmp_path, text)
    with pytest.raises(StudyStoppedError, match="2 failed trials in a row .*training diverged"):
        run_study(load_config(path))
    study = load_existing(load_config(path))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert "diverged" in study.trials[0].user_attrs["fail_reason"]


def test_unopenable_storage_is_one_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, tiny_study_text()))
    bad = cfg.with_overrides(storage=f"sqlite:///{tmp_path}/no/such/dir/x.db")
    with pytest.raises(StorageError, match="cannot open storage"):
        run_study(bad)
    pg = cfg.with_overrides(storage="postgresql://nmhpo:secret@127.0.0.1:1/none")
    with pytest.raises(StorageError) as info:
        run_study(pg)
    assert "secret" not in str(info.value) and "***" in str(info.value)
    assert not (tmp_path / "nmhpo-studies.db").exists()


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "nsga3", "gp", "random", "qmc", "grid"])
def test_every_sampler_runs_a_real_study(tmp_path: Path, sampler: str) -> None:
    path = _write(tmp_path, tiny_study_text(sampler=sampler, n_trials=3))
    cfg = load_config(path)
    summary = run_study(cfg)
    assert summary.n_complete == 3
    study = load_existing(cfg)
    expected = {
        "tpe": "TPESampler",
        "nsga2": "NSGAIISampler",
        "nsga3": "NSGAIIISampler",
        "gp": "GPSampler",
        "random": "RandomSampler",
        "qmc": "QMCSampler",
        "grid": "GridSampler",
    }[sampler]
    assert summary.sampler == type(make_sampler(cfg)).__name__ == expected
    for trial in study.trials:
        assert set(trial.params) == set(cfg.searched())
        if sampler == "grid":
            assert trial.params["lr"] in (0.01, 0.03)
            assert trial.params["adc_bits"] in (3, 5)


def test_ctrl_c_stops_cleanly_and_the_study_resumes(tmp_path: Path) -> None:
    # long enough to be interrupted after two trials (a tiny trial takes about 0.1 s)
    path = _write(tmp_path, tiny_study_text(n_trials=30))
    db = f"sqlite:///{tmp_path / 'nmhpo-studies.db'}"
    cmd = [sys.executable, "-m", "nmhpo", "run", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.2)
        try:
            n = len(
                optuna.load_study(study_name="tiny", storage=db).get_trials(
                    states=(TrialState.COMPLETE,)
                )
            )
        except (KeyError, Exception):  # noqa: B014  (storage not created yet)
            n = 0
        if n >= 2:
            break
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.fail("the study finished before it could be interrupted; make it longer")
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    interrupted = optuna.load_study(study_name="tiny", storage=db).trials
    assert all(t.state != TrialState.RUNNING for t in interrupted)
    # A trial the Ctrl-C ended says so, as any failed trial says why.
    for t in interrupted:
        if t.state == TrialState.FAIL:
            assert t.user_attrs.get("fail_reason") == "interrupted (KeyboardInterrupt)"
    completed_before = {t.number: t.values for t in interrupted if t.state == TrialState.COMPLETE}

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr
    trials = optuna.load_study(study_name="tiny", storage=db).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 30
    for number, values in completed_before.items():
        assert trials[number].values == values


def test_a_grid_point_interrupted_before_its_parameters_is_run_again(tmp_path: Path) -> None:
    """A Ctrl-C between the trial's creation (the GridSampler gives it its grid id) and its
    first parameter leaves a failed trial without parameters: the point must be queued again
    by its grid id, or the GridSampler counts it as visited for good."""
    import optuna.samplers

    from nmhpo.database import open_storage
    from nmhpo.grid import requeue_failed_grid_points
    from nmhpo.workers import _Interrupts

    url = f"sqlite:///{tmp_path / 'grid.db'}"
    space = {"x": [0, 1], "y": [0, 1]}

    class CtrlCAtTrial2(optuna.samplers.GridSampler):
        def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
            super().before_trial(study, trial)
            if trial.number == 2:
                os.kill(os.getpid(), signal.SIGINT)

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_int("x", 0, 1) + trial.suggest_int("y", 0, 1)

    study = optuna.create_study(storage=open_storage(url), sampler=CtrlCAtTrial2(space, seed=0))
    interrupts = _Interrupts()
    with pytest.raises(KeyboardInterrupt), interrupts.installed(), interrupts.optimizing(study):
        study.optimize(interrupts.guard(objective), catch=(Exception,))
    lost = study.trials[2]
    assert lost.state == TrialState.FAIL and lost.params == {}

    again = optuna.load_study(
        study_name=study.study_name,
        storage=open_storage(url),
        sampler=optuna.samplers.GridSampler(space, seed=0),
    )
    assert requeue_failed_grid_points(again) == 1
    again.optimize(objective, catch=(Exception,))
    points = {
        tuple(sorted(t.params.items())) for t in again.trials if t.state == TrialState.COMPLETE
    }
    assert len(points) == 4


def test_a_worker_starting_after_the_target_adds_no_trial(tmp_path: Path) -> None:
    from nmhpo.study import _work, count_complete

    cfg = load_config(_write(tmp_path, tiny_study_text(sampler="random", n_trials=2)))
    run_study(cfg)
    _work(cfg, worker=1, callbacks=[], deadline=None)  # a spawned worker slow to start
    assert count_complete(load_existing(cfg)) == 2
    assert len(load_existing(cfg).trials) == 2


def test_ctrl_c_while_optuna_records_a_trial_stops_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt inside Optuna's tell escapes Optuna as an UnboundLocalError with the
    trial half-handled; nmhpo defers it to the end of that trial."""
    from nmhpo.storage import BatchedRDBStorage

    real = BatchedRDBStorage.set_trial_state_values
    sent: list[int] = []

    def tell_with_ctrl_c(self, trial_id, state, values=None):  # type: ignore[no-untyped-def]
        if state.is_finished() and not sent:
            sent.append(trial_id)
            os.kill(os.getpid(), signal.SIGINT)  # handled at the next bytecode, in here
        return real(self, trial_id, state, values)

    monkeypatch.setattr(BatchedRDBStorage, "set_trial_state_values", tell_with_ctrl_c)
    path = _write(tmp_path, tiny_study_text(n_trials=3))
    with pytest.raises(KeyboardInterrupt):
        run_study(load_config(path))
    trials = optuna.load_study(
        study_name="tiny", storage=f"sqlite:///{tmp_path / 'nmhpo-studies.db'}"
    ).trials
    assert len(sent) == 1 and len(trials) == 1
    assert trials[0].state == TrialState.COMPLETE  # recorded in full, then stopped


def test_hardware_points_of_one_software_point_reuse_one_trained_network(
    tmp_path: Path,
) -> None:
    text = tiny_study_text(sampler="grid", n_trials=4)
    text = text.replace(
        'lr = { type = "float", low = 0.005, high = 0.05, log = true, grid = [0.01, 0.03] }',
        "lr = 0.02",
    )
    text = text.replace('num_steps = { type = "int", low = 2, high = 3 }', "num_steps = 3")
    text = text.replace(
        'encoding = { type = "categorical", choices = ["rate", "direct"] }', 'encoding = "rate"'
    )
    cfg = load_config(_write(tmp_path, text))
    run_study(cfg)
    trials = load_existing(cfg).trials
    runs = [r.result.run for r in map(TrialRecord.from_trial, trials) if r.result]
    assert [run.trained for run in runs] == [True, False, False, False]
    assert len({run.model_key for run in runs}) == 1
    assert len(list((tmp_path / "nmhpo-cache" / "models").glob("*.pt"))) == 1
    # Same network, different hardware: the scores differ only through the hardware.
    assert len({(t.params["xbar_size"], t.params["adc_bits"]) for t in trials}) == 4
    assert len({t.values[1] for t in trials}) == 4  # energy differs per hardware point
    # A new process (a resumed study or another worker) reuses the model from disk.
    summary = run_study(cfg.with_overrides(n_trials=4))
    assert summary.n_new == 0


def test_a_study_killed_before_its_identity_was_stored_is_adopted(tmp_path: Path) -> None:
    """A run killed between creating the study and storing its identity leaves an empty study
    without one: the next run adopts it instead of refusing it for ever. A study of another
    tool that holds trials is still refused."""
    cfg = load_config(_write(tmp_path, tiny_study_text(sampler="random", n_trials=1)))
    url = cfg.storage_url()
    orphan = optuna.create_study(
        study_name="tiny", storage=url, directions=["maximize", "minimize"]
    )
    orphan.set_user_attr("nmhpo_config", {"partial": True})
    assert run_study(cfg).n_complete == 1
    assert load_existing(cfg).user_attrs["nmhpo_identity_hash"] == cfg.identity_hash()

    foreign = optuna.create_study(
        study_name="foreign", storage=url, directions=["maximize", "minimize"]
    )
    foreign.optimize(lambda t: (t.suggest_float("x", 0, 1), 0.0), n_trials=1)
    with pytest.raises(StorageError, match="not created by nmhpo"):
        run_study(cfg.with_overrides(name="foreign"))


def test_a_failed_trial_gets_one_optuna_line_without_traceback() -> None:
    """Optuna's "failed because of the following error" line stays, without the traceback;
    its second line ("failed with value None.") and anything about a Ctrl-C go."""
    import logging

    from nmhpo.study import _TrialFailureFilter

    def record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
        exc_info = (type(exc), exc, None) if exc is not None else None
        return logging.LogRecord("optuna", logging.WARNING, "", 0, message, (), exc_info)

    keep = _TrialFailureFilter()
    failed = record(
        "Trial 3 failed with parameters: {} because of the following error: x", OSError()
    )
    assert keep.filter(failed) and failed.exc_info is None
    assert not keep.filter(record("Trial 3 failed with value None."))
    assert not keep.filter(record("Trial 4 failed because of ...", KeyboardInterrupt()))
    assert keep.filter(record("Trial 5 failed with value (0.5, nan)."))


def test_a_study_on_a_users_data_file_notices_when_the_file_changed(tmp_path: Path) -> None:
    """The path is part of the study's identity but says nothing of the contents: resuming
    on an edited file would mix trials scored on two datasets in one front."""
    import numpy as np

    data, arrays = users_digits(tmp_path)
    original = data.read_bytes()
    path = _write(
        tmp_path, tiny_study_text(n_trials=1).replace("n_train = 600", 'path = "mine.npz"')
    )
    assert run_study(load_config(path)).n_complete == 1
    np.savez(data, **{**arrays, "y_train": (np.arange(60) + 1) % 10})  # relabelled
    with pytest.raises(StorageError, match=r"its data \(.*mine\.npz\) changed since"):
        run_study(load_config(path).with_overrides(n_trials=2))
    data.write_bytes(b"not an npz any more")  # refused as changed, before it is read
    with pytest.raises(StorageError, match=r"its data \(.*mine\.npz\) changed since"):
        run_study(load_config(path).with_overrides(n_trials=2))
    data.write_bytes(original)  # the same contents again (a new modification time)
    assert run_study(load_config(path).with_overrides(n_trials=2)).n_complete == 2


def test_a_study_on_a_dataset_folder_notices_files_added_removed_or_resized(
    tmp_path: Path,
) -> None:
    """A folder's recordings are too many to hash at every start: their names and sizes are
    kept instead. The study file, its database and caches live in the same folder here, and
    must not count; a touched file (new modification time, as on a copy) still resumes."""
    import numpy as np

    from tests.tasks.test_mnist import _fake_mnist, _write_idx

    _fake_mnist(tmp_path, "t10k", 120, compress=True)
    text = tiny_study_text(n_trials=1).replace(
        'name = "digits"\nn_train = 600', 'name = "mnist"\npath = "."'
    )
    path = _write(tmp_path, text.replace("epochs = 2", "epochs = 1"))
    assert run_study(load_config(path)).n_complete == 1
    assert (
        load_existing(load_config(path)).user_attrs["nmhpo_data_fingerprint"].startswith("files:")
    )
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    os.utime(labels, (0, 0))
    (tmp_path / "slurm-7.out").write_text("a worker's log beside the data")
    assert run_study(load_config(path).with_overrides(n_trials=2)).n_complete == 2
    extra = tmp_path / "train-images-idx3-ubyte.gz"
    extra.write_bytes(b"more data")
    with pytest.raises(
        StorageError, match=r"its data \(.*\) changed since it began \(added train-images-"
    ):
        run_study(load_config(path).with_overrides(n_trials=3))
    extra.unlink()  # the folder as it was: resumes
    assert run_study(load_config(path).with_overrides(n_trials=3)).n_complete == 3
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    size = images.stat().st_size
    _write_idx(images, np.zeros((120, 28, 28)), 2051, compress=True)  # replaced, readable
    assert images.stat().st_size != size
    with pytest.raises(
        StorageError, match=r"changed since it began \(changed t10k-images-idx3-ubyte\.gz\), so"
    ):
        run_study(load_config(path).with_overrides(n_trials=4))


def test_a_data_file_edited_during_the_run_fails_the_next_trials_with_the_reason(
    tmp_path: Path,
) -> None:
    """The data is read again once its file changes: without a check, the trials after an
    edit would be scored on other data than those before it, in one front."""
    import numpy as np

    data, arrays = users_digits(tmp_path)
    text = tiny_study_text(n_trials=3).replace("n_train = 600", 'path = "mine.npz"')
    cfg = load_config(_write(tmp_path, text)).with_overrides(max_failures=1)

    def edit(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.number == 0:
            np.savez(data, **{**arrays, "y_train": (np.arange(60) + 1) % 10})

    with pytest.raises(StudyStoppedError):
        run_study(cfg, callbacks=[edit])
    trials = load_existing(cfg).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert "mine.npz changed during the run" in trials[1].user_attrs["fail_reason"]


def test_a_dataset_folder_changed_between_two_studies_in_one_process_is_read_again(
    tmp_path: Path,
) -> None:
    """A notebook changes its dataset folder between two studies: the second must train on
    the new files, under a new model key, even when an edit keeps every file's size (a
    folder is listed once per run, not per trial)."""
    import numpy as np

    from nmhpo.objective import task_data
    from nmhpo.record import TrialRecord
    from tests.tasks.test_mnist import _fake_mnist, _write_idx

    data = tmp_path / "mnist"
    data.mkdir()
    _fake_mnist(data, "t10k", 120, compress=False)
    text = tiny_study_text(n_trials=1).replace(
        'name = "digits"\nn_train = 600', f'name = "mnist"\npath = "{data}"'
    )
    cfg_a = load_config(_write(tmp_path, text.replace("epochs = 2", "epochs = 1"), "a.toml"))
    run_study(cfg_a)
    labels = data / "t10k-labels-idx1-ubyte"
    _write_idx(labels, (np.arange(120) + 3) % 10, 2049, compress=False)  # same size
    cfg_b = cfg_a.with_overrides(name="b")
    run_study(cfg_b)

    def key(cfg: object) -> tuple[str, bool]:
        record = TrialRecord.from_trial(load_existing(cfg).get_trials()[0])  # type: ignore[arg-type]
        assert record.result is not None
        return record.result.run.model_key, record.result.run.trained

    (key_a, _), (key_b, trained_b) = key(cfg_a), key(cfg_b)
    assert key_b != key_a and trained_b  # not the network trained on the old labels
    _fake_mnist(data, "train", 100, compress=False)
    run_study(cfg_a.with_overrides(name="c"))
    assert len(task_data(cfg_a.with_overrides(name="c")).x_test) == 120  # t10k is test now
