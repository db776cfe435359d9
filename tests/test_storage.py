"""Batched trial writes (nmhpo.storage) on real SQLite and PostgreSQL databases, read back
through Optuna's own storage as another worker or optuna-dashboard would."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.storages._rdb import models
from optuna.trial import TrialState

from nmhpo.storage import BatchedRDBStorage
from nmhpo.study import open_storage

# ask/tell with heartbeats on: Optuna warns that it beats only inside optimize(); fine here.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'studies.db'}"
    return request.getfixturevalue("postgres")


def _study(storage: optuna.storages.BaseStorage) -> optuna.Study:
    return optuna.create_study(
        study_name=f"s-{uuid.uuid4().hex[:8]}",
        storage=storage,
        directions=["maximize", "minimize"],
    )


def _seen_by_another_process(url: str, study_name: str, number: int) -> optuna.trial.FrozenTrial:
    plain = optuna.storages.RDBStorage(url)
    return optuna.load_study(study_name=study_name, storage=plain).trials[number]


def test_parameters_land_at_flush_and_attributes_with_the_state(url: str) -> None:
    storage = open_storage(url)
    assert isinstance(storage, BatchedRDBStorage)
    study = _study(storage)
    trial = study.ask()
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    steps = trial.suggest_int("num_steps", 2, 16)
    encoding = trial.suggest_categorical("encoding", ["rate", "direct"])
    expected = {"lr": lr, "num_steps": steps, "encoding": encoding}

    assert _seen_by_another_process(url, study.study_name, 0).params == {}
    # the process that suggested them reads them at once
    assert study.trials[0].params == expected

    storage.flush()
    other = _seen_by_another_process(url, study.study_name, 0)
    assert other.state == TrialState.RUNNING
    assert other.params == expected
    assert other.distributions["encoding"].choices == ("rate", "direct")

    trial.set_user_attr("metrics", {"accuracy": 0.9, "energy_uj": [1.0, 2.0]})
    assert study.trials[0].user_attrs["metrics"]["accuracy"] == 0.9
    assert _seen_by_another_process(url, study.study_name, 0).user_attrs == {}

    study.tell(trial, [0.9, 1.5])
    done = _seen_by_another_process(url, study.study_name, 0)
    assert done.state == TrialState.COMPLETE
    assert done.values == [0.9, 1.5]
    assert done.params == expected
    assert done.user_attrs == {"metrics": {"accuracy": 0.9, "energy_uj": [1.0, 2.0]}}
    assert done.datetime_complete is not None


def test_a_failed_trial_keeps_its_reason(url: str) -> None:
    storage = open_storage(url)
    study = _study(storage)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("fail_reason", "ValueError: training diverged")
        raise ValueError("training diverged")

    study.optimize(objective, n_trials=2, catch=(ValueError,))
    for t in optuna.load_study(
        study_name=study.study_name, storage=optuna.storages.RDBStorage(url)
    ).trials:
        assert t.state == TrialState.FAIL
        assert t.user_attrs["fail_reason"] == "ValueError: training diverged"
        assert "x" in t.params


def test_a_changed_distribution_is_refused_as_optuna_refuses_it(url: str) -> None:
    storage = open_storage(url)
    study = _study(storage)
    first = study.ask()
    first.suggest_float("x", 0.0, 1.0)
    study.tell(first, [1.0, 1.0])

    # same process: refused at the suggest call
    with pytest.raises(ValueError):
        study.ask().suggest_categorical("x", ["a", "b"])

    # a fresh process looks the stored distribution up: refused at the suggest call too
    fresh = open_storage(url)
    joined = optuna.load_study(study_name=study.study_name, storage=fresh)
    trial = joined.ask()
    with pytest.raises(ValueError):
        trial.suggest_categorical("x", ["a", "b"])
    fresh.flush()
    assert _seen_by_another_process(url, study.study_name, trial.number).params == {}
    # and another trial's buffered parameter counts as stored
    first, second = joined.ask(), joined.ask()
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    fresh.set_trial_param(first._trial_id, "y", 0.5, dist)
    with pytest.raises(ValueError):
        fresh.set_trial_param(second._trial_id, "y", 0, optuna.distributions.IntDistribution(0, 3))


def test_an_attribute_that_is_not_json_fails_at_once(url: str) -> None:
    study = _study(open_storage(url))
    trial = study.ask()
    with pytest.raises(TypeError):
        trial.set_user_attr("model", object())


def test_a_row_written_first_elsewhere_falls_back_to_optunas_path(url: str) -> None:
    storage = open_storage(url)
    study = _study(storage)
    trial = study.ask()
    trial.suggest_float("x", 0.0, 1.0)
    trial.set_user_attr("note", "from nmhpo")
    # another process writes the same parameter row first (unique per trial and name)
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    optuna.storages.RDBStorage(url).set_trial_param(trial._trial_id, "x", 0.25, dist)
    storage.flush()  # the batch hits the unique row; written one by one, that row skipped
    study.tell(trial, [1.0, 2.0])
    done = _seen_by_another_process(url, study.study_name, 0)
    assert done.params == {"x": 0.25}
    assert done.user_attrs == {"note": "from nmhpo"}
    assert done.state == TrialState.COMPLETE


def test_heartbeats_are_one_row_per_trial_and_move_forward(url: str) -> None:
    storage = open_storage(url, heartbeat_s=1)
    study = _study(storage)
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    table = models.TrialHeartbeatModel.__table__
    query = sa.select(table.c.heartbeat).where(table.c.trial_id == trial._trial_id)
    with storage.engine.connect() as conn:
        first = conn.execute(query).scalars().all()
    storage.record_heartbeat(trial._trial_id)
    with storage.engine.connect() as conn:
        second = conn.execute(query).scalars().all()
    assert len(first) == len(second) == 1
    assert second[0] >= first[0]
    # a live trial is not stale; Optuna's own check agrees
    assert storage._get_stale_trial_ids(study._study_id) == []


@pytest.fixture
def away_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Optuna stores trial times as UTC and shows them in local time: run away from UTC."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("away_from_utc")
def test_what_this_process_reads_is_what_the_database_holds(url: str) -> None:
    """Own trials are answered from memory: every trial, as the running study sees it, must
    equal the trial read afresh by plain Optuna (params, attrs, system attrs, values, times)."""
    storage = open_storage(url)
    study = _study(storage)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_float("x", 0.0, 1.0)
        n = trial.suggest_int("n", 1, 8, log=True)
        trial.suggest_categorical("enc", ["rate", "direct"])
        storage.flush()
        trial.set_user_attr("point", {"layers": [(64, 32), (32, 10)], "x": x})
        trial.set_constraint("x <= 0.5", x - 0.5)
        if n == 1:
            raise optuna.TrialPruned()
        if x > 0.9:
            raise ValueError("diverged")
        return x, float("inf") if n == 8 else n * 0.1

    study.optimize(objective, n_trials=25, catch=(ValueError,))
    seen_here = study.get_trials(deepcopy=True)
    fresh = optuna.load_study(
        study_name=study.study_name, storage=optuna.storages.RDBStorage(url)
    ).get_trials(deepcopy=True)
    assert len(seen_here) == len(fresh) == 25
    assert seen_here == fresh
    assert {t.state for t in fresh} >= {TrialState.COMPLETE}
    for t in fresh:
        assert t.user_attrs["point"]["layers"] == [[64, 32], [32, 10]]


def test_a_new_trial_has_a_heartbeat_from_its_first_commit(url: str) -> None:
    """Optuna's stale check skips running trials that never beat: a worker killed before its
    heartbeat thread's first beat would leave its trial running forever."""
    storage = open_storage(url, heartbeat_s=1)
    study = _study(storage)
    trial = study.ask()
    table = models.TrialHeartbeatModel.__table__
    with storage.engine.connect() as conn:
        rows = conn.execute(
            sa.select(table.c.heartbeat).where(table.c.trial_id == trial._trial_id)
        ).all()
    assert len(rows) == 1


def test_a_trial_failed_elsewhere_as_stale_does_not_crash_this_worker(url: str) -> None:
    storage = open_storage(url)
    study = _study(storage)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        trial.suggest_float("x", 0.0, 1.0)
        storage.flush()
        # meanwhile another worker's fail_stale_trials marks this trial failed
        optuna.storages.RDBStorage(url).set_trial_state_values(trial._trial_id, TrialState.FAIL)
        trial.set_user_attr("metrics", {"accuracy": 0.5})
        return 0.5, 1.0

    study.optimize(objective, n_trials=2, catch=(Exception,))  # returns, does not raise
    states = [t.state for t in _plain(url, study.study_name).trials]
    assert states == [TrialState.FAIL, TrialState.FAIL]  # the other process's record stands


def _plain(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(url))


def test_a_write_to_a_finished_or_missing_trial_is_refused_at_once(url: str) -> None:
    """As Optuna refuses it: buffered, the write would fail at the next flush, another
    trial's, and take that trial's parameters with it."""
    storage = open_storage(url)
    study = _study(storage)
    done = study.ask()
    done.suggest_float("x", 0.0, 1.0)
    study.tell(done, [1.0, 1.0])
    dist = optuna.distributions.FloatDistribution(0.0, 1.0)
    # a trial this process finished (checked from memory)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_param(done._trial_id, "y", 0.5, dist)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_user_attr(done._trial_id, "late", 1)
    # a trial another process created and finished (checked in the database)
    plain = optuna.load_study(study_name=study.study_name, storage=optuna.storages.RDBStorage(url))
    elsewhere = plain.ask()
    plain.tell(elsewhere, [0.5, 0.5])
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_param(elsewhere._trial_id, "y", 0.5, dist)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.set_trial_user_attr(elsewhere._trial_id, "late", 1)
    # no such trial
    with pytest.raises(KeyError):
        storage.set_trial_param(10**6, "y", 0.5, dist)
    with pytest.raises(KeyError):
        storage.set_trial_user_attr(10**6, "late", 1)

    # the next trial's parameters and attributes are intact
    trial = study.ask()
    x = trial.suggest_float("x", 0.0, 1.0)
    storage.flush()
    trial.set_user_attr("note", "kept")
    study.tell(trial, [x, x])
    stored = _seen_by_another_process(url, study.study_name, trial.number)
    assert stored.params == {"x": x}
    assert stored.user_attrs == {"note": "kept"}
    assert stored.state == TrialState.COMPLETE
    assert _seen_by_another_process(url, study.study_name, done.number).params.keys() == {"x"}


def test_one_trials_failed_write_does_not_lose_anothers_buffer(url: str) -> None:
    """Two trials run in this process; another process finishes the first (failed as stale)
    while both have parameters buffered: flushing both loses only the first's."""
    storage = open_storage(url)
    study = _study(storage)
    first, second = study.ask(), study.ask()
    first.suggest_float("x", 0.0, 1.0)
    y = second.suggest_float("y", 0.0, 1.0)
    second.set_user_attr("note", "kept")
    optuna.storages.RDBStorage(url).set_trial_state_values(first._trial_id, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        storage.flush()
    assert _seen_by_another_process(url, study.study_name, second.number).params == {"y": y}
    study.tell(second, [y, y])
    stored = _seen_by_another_process(url, study.study_name, second.number)
    assert stored.state == TrialState.COMPLETE
    assert stored.params == {"y": y}
    assert stored.user_attrs == {"note": "kept"}
    assert _seen_by_another_process(url, study.study_name, first.number).params == {}
    # what this process reads agrees with the database
    assert study.get_trials(deepcopy=True) == _plain(url, study.study_name).get_trials()


def _over_the_bound_parameter_limit(storage: BatchedRDBStorage) -> int:
    """How many ids an IN list needs to exceed the database's bound-parameter limit: SQLite's
    (32,766, or 250,000 as Debian builds it) is lowered to 50 on this storage's connections;
    PostgreSQL's is 65,535. The ids need no trials (negative ones never exist)."""
    if storage.engine.name != "sqlite":
        return 70_000
    if not hasattr(sqlite3.Connection, "setlimit"):  # Python 3.10: over the highest build's
        return 260_000

    @sa.event.listens_for(storage.engine, "connect")
    def _limit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 50)

    storage.engine.dispose()
    return 60


def test_more_unfinished_trials_than_the_database_binds_fall_back_to_a_full_read(
    url: str,
) -> None:
    """Optuna's cache asks for the unfinished trials it holds by id (an IN list, one bound
    parameter each); past the database's limit RDBStorage reads the study in full
    (optuna#1457), and so must this storage when it holds trials of its own."""
    storage = open_storage(url)
    study = _study(storage)
    n = _over_the_bound_parameter_limit(storage)
    plain = optuna.storages.RDBStorage(url)
    others = [plain.create_new_trial(study._study_id) for _ in range(3)]  # running elsewhere
    mine = study.ask()._trial_id  # running, held in memory
    finished = study.ask()
    study.tell(finished, [1.0, 1.0])
    later = plain.create_new_trial(study._study_id)
    # the ids Optuna's cache holds as unfinished; those of trials deleted or never made
    # (here: negative) weigh as much in the IN list
    included = {*others, mine, *range(-n, 0)}
    trials = storage._get_trials(study._study_id, None, included, finished._trial_id)
    assert [t._trial_id for t in trials] == sorted([*others, mine, later])
    assert trials == plain._get_trials(study._study_id, None, included, finished._trial_id)


def test_a_stale_trial_says_why_it_failed_and_its_rerun_does_not(tmp_path: Path) -> None:
    """A worker killed mid-trial stops beating: the next worker fails its trial (Optuna gives
    no reason) and queues it again (Optuna copies its user attributes)."""
    from optuna.storages._heartbeat import fail_stale_trials

    from nmhpo.storage import STALE_REASON

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    killed = open_storage(url, heartbeat_s=1)
    study = optuna.create_study(study_name="s", storage=killed, directions=["minimize"])
    trial = study.ask()
    trial.set_user_attr("rung1.loss", 0.5)
    killed.flush()
    killed.record_heartbeat(trial._trial_id)
    time.sleep(3.0)  # the grace period: 3 silent intervals of 1 s (stored to the second)

    survivor = optuna.load_study(study_name="s", storage=open_storage(url, heartbeat_s=1))
    deadline = time.monotonic() + 10
    while len(survivor.get_trials(deepcopy=False)) < 2 and time.monotonic() < deadline:
        fail_stale_trials(survivor)
        time.sleep(0.5)
    failed, rerun = survivor.get_trials(deepcopy=False)
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == STALE_REASON
    assert rerun.state == TrialState.WAITING
    assert rerun.user_attrs == {"rung1.loss": 0.5}


def test_a_storage_and_its_study_can_be_pickled(tmp_path: Path) -> None:
    """joblib or dask ship a study to other processes; the stale-trial callback must not
    stop them (it was once a class local to a function)."""
    import pickle

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url), directions=["minimize"])
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = pickle.loads(pickle.dumps(study))
    assert [t.value for t in again.trials] == [t.value for t in study.trials]


def _closed_study_file(tmp_path: Path, n: int) -> tuple[str, Path]:
    """A study file with ``n`` finished trials whose writer has gone (no ``-wal`` left)."""
    db = tmp_path / "studies.db"
    url = f"sqlite:///{db}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="s", storage=storage, directions=["minimize"])
    for i in range(n):
        study.add_trial(optuna.trial.create_trial(value=float(i)))
    storage.engine.dispose()
    assert not Path(f"{db}-wal").exists()
    return url, db


def test_a_study_in_a_folder_this_process_may_not_write_is_read_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A colleague's folder or a read-only mount: a reader of a WAL file must otherwise create
    its -shm index beside it, which such a folder refuses ("unable to open database file").
    As root this process may write anywhere, so the refusal is simulated; that nothing is
    written beside the file, as a normal reader would (its -wal and -shm), is real."""
    import nmhpo.database

    url, db = _closed_study_file(tmp_path, 3)
    before = db.read_bytes()
    monkeypatch.setattr(nmhpo.database, "_writable", lambda path: False)
    storage = open_storage(url, must_exist=True)
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.value for t in study.trials] == [0.0, 1.0, 2.0]
    storage.engine.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["studies.db"]
    assert db.read_bytes() == before


def test_a_read_only_reader_sees_what_a_writer_has_not_checkpointed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the writer at work its last commits are in the -wal file only: an immutable read
    of the main file would miss them, so read-only mode, which reads through the log, comes
    first."""
    import nmhpo.database

    url, db = _closed_study_file(tmp_path, 2)
    writer = open_storage(url)
    optuna.load_study(study_name="s", storage=writer).add_trial(
        optuna.trial.create_trial(value=7.0)
    )
    assert Path(f"{db}-wal").stat().st_size > 0
    monkeypatch.setattr(nmhpo.database, "_writable", lambda path: False)
    reader = open_storage(url, must_exist=True)
    assert [t.value for t in optuna.load_study(study_name="s", storage=reader).trials] == [
        0.0,
        1.0,
        7.0,
    ]
