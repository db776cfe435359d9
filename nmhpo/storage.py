"""Optuna's RDB storage with a trial's writes batched and its read-backs answered locally.

Optuna writes every ``suggest_*`` and every ``set_user_attr`` in a transaction of its own, and
reads a trial back from the database when it starts, when it is told and when the sampler next
lists the study: for the quickstart's 8 parameters and 4 attribute groups, some 20 statements
and 14 commits per trial, most of the study manager's cost on SQLite and, with several workers
on one file, 14 turns at SQLite's single write lock (benchmarks/bench_scale.py). Here:

- a trial's parameters are kept in memory until nmhpo's objective has suggested all of them
  and calls :meth:`BatchedRDBStorage.flush` (one commit, before any training);
- its user attributes, values and final state are written in one commit at its end;
- a trial this process created is kept in memory as stored (every write to it passes through
  here), so reading it back costs no query; a trial changed by another process (e.g. failed as
  stale) is read from the database again.

What Optuna promises is kept: its own storage cache (``_CachedStorage``) guarantees only that
a trial's attributes reach the database before its state changes, which is what happens here.
A SIGKILL can lose only what is not needed: a killed trial is re-run from its stored
parameters (flushed before training), and its attributes were not final. System attributes
(a grid sampler's point, a GP sampler's pending suggestion, constraints) are written at once:
other workers read them while the trial runs.

Otherwise it keeps RDBStorage's contract: a write to a missing or finished trial is refused
at the call (``KeyError``, ``UpdateFinishedTrialError``; checked from memory for this
process's own trials, with one query for others), a parameter's distribution is checked at the
call, a write that fails at a flush costs only its own trial's buffer, and an IN list of trial
ids too long for the database falls back to a full read (optuna#1457).
benchmarks/optuna_storage_suite.py runs Optuna's own storage, study and trial tests on plain
RDBStorage and on this class; the differences that remain are deliberate (the tests that show
them, with these reasons: benchmarks/results/optuna_storage_suite.json, "deliberate"):

- The batching itself: a running trial's parameters and user attributes reach the database at
  :meth:`BatchedRDBStorage.flush` or when the trial ends, not at each call. This process reads
  them at once; another process from then on (test_trial.py::test_persisted_param).
- First heartbeat: with heartbeats on, a running trial gets its first heartbeat in the
  transaction that creates it. Optuna never fails a trial that never beat, and a worker killed
  between creating its trial and its heartbeat thread's first beat would leave that trial
  running forever (and a grid point taken). So a trial made by ``ask()`` on a heartbeat
  storage, where no thread beats, is failed as stale after the grace period; nmhpo runs its
  trials with ``optimize()`` (test_heartbeat.py::test_fail_stale_trials).

Also deliberate, and not exercised by Optuna's tests:

- A trial another process finished while this one was running it (failed as stale while this
  worker was slow to beat) is not finished again: ``set_trial_state_values`` returns False
  where Optuna raises ``UpdateFinishedTrialError`` and stops the worker. The other record, and
  the re-run it queued, stand.
- This process's own trials are checked from memory: a write to one that another process has
  just failed as stale is refused at the flush or at the trial's end, not at the call.
- The stale-trial check runs at most once per heartbeat interval and study while it finds
  none (:meth:`BatchedRDBStorage._get_stale_trial_ids`).
- A parameter set twice before a flush keeps its last value (Optuna keeps the first; its own
  ``Trial`` never sets one twice).

This class relies on RDBStorage's ``_without_commit`` helpers and table models (Optuna 5).
tests/test_storage.py checks, on real SQLite and PostgreSQL databases, that what a running
study reads equals what plain Optuna reads from the same database.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import optuna
import sqlalchemy as sa
from optuna import distributions
from optuna.storages._rdb import models
from optuna.storages._rdb.storage import _create_scoped_session
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.dialects import postgresql as postgresql_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError

_logger = logging.getLogger(__name__)


#: The ``fail_reason`` of a trial whose worker stopped beating (killed, or its machine lost).
STALE_REASON = "its worker stopped sending heartbeats (killed, or its machine lost)"


class RetryStaleTrial(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a stale trial, except that the new trial does not inherit the
    ``fail_reason`` `BatchedRDBStorage` gave the failed one (Optuna copies the user
    attributes). At module level, so that a storage holding it can be pickled."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.copy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k != "fail_reason"}
        super().__call__(study, trial)


@dataclass
class _Pending:
    params: dict[str, tuple[float, distributions.BaseDistribution, Any]] = field(
        default_factory=dict
    )
    user_attrs: dict[str, Any] = field(default_factory=dict)


#: Passed as "trial ids above" to RDBStorage._get_trials so that it loads the listed ids only.
_NO_TRIAL_ID_ABOVE = 2**31 - 1  # trial ids are 32-bit INTEGER columns


def _to_stored(local: datetime) -> datetime:
    """RDBStorage keeps trial times as naive UTC (optuna.storages._rdb.models.TrialModel)."""
    return local.astimezone(timezone.utc).replace(tzinfo=None)


def _from_stored(stored: datetime) -> datetime:
    return stored.replace(tzinfo=timezone.utc).astimezone().replace(tzinfo=None)


def _apply(trial: FrozenTrial, pending: _Pending) -> None:
    """Give ``trial`` the buffered parameters and attributes, as the database will hold them."""
    if pending.params:
        params = dict(trial.params)
        dists = dict(trial.distributions)
        for name, (value, dist, _) in pending.params.items():
            params[name] = dist.to_external_repr(value)
            dists[name] = dist
        trial.params = params
        trial.distributions = dists
    if pending.user_attrs:
        trial.user_attrs = {**trial.user_attrs, **pending.user_attrs}


class BatchedRDBStorage(optuna.storages.RDBStorage):
    """An RDBStorage that commits a trial's parameters once and its end once, and answers
    reads of its own trials from memory.

    Besides batching, a trial this process created is kept as stored (every write to it goes
    through here), so Optuna's read-backs of it (when the trial starts, when it is told, when
    the sampler next lists the study's trials) cost no query; a trial another process changed
    is read from the database again. And the check for stale trials (killed workers) runs at
    most once per heartbeat interval instead of before every trial: a trial only counts as
    stale after several silent intervals, so checking more often finds nothing sooner.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_buffers()

    def _init_buffers(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._mine: dict[int, FrozenTrial] = {}
        self._lock = threading.RLock()
        self._last_stale_check: dict[int, float] = {}  # study id -> time.monotonic()
        # Trials found stale (their worker stopped beating): failed with a reason that says so.
        self._stale: set[int] = set()
        self._known_distributions: dict[tuple[int, str], distributions.BaseDistribution] = {}
        # Trials not in ``_mine`` that this process found (or made) unfinished: writes to them
        # are buffered without asking the database again (see _check_writable).
        self._writable: set[int] = set()
        # The study of each trial this process wrote to or created (to find a parameter's
        # distribution among the study's buffered parameters).
        self._study_of: dict[int, int] = {}

    _LOCAL = (
        "_pending",
        "_mine",
        "_lock",
        "_last_stale_check",
        "_stale",
        "_known_distributions",
        "_writable",
        "_study_of",
    )

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        for key in self._LOCAL:
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._init_buffers()

    # --- buffered writes -------------------------------------------------------------------

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: distributions.BaseDistribution,
    ) -> None:
        self._set_trial_param(trial_id, param_name, param_value_internal, distribution, None)

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: distributions.BaseDistribution,
        previous_distribution: distributions.BaseDistribution | None,
    ) -> None:
        self._check_writable(trial_id)
        if previous_distribution is None:
            previous_distribution = self._distribution_in_study(trial_id, param_name)
        if previous_distribution is not None:
            # Incompatible distributions fail at the suggest call, as without batching.
            distributions.check_distribution_compatibility(previous_distribution, distribution)
        with self._lock:
            pending = self._pending.setdefault(trial_id, _Pending())
            pending.params[param_name] = (
                param_value_internal,
                distribution,
                previous_distribution,
            )

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._check_writable(trial_id)
        # What the database will give back (tuples become lists); an unserialisable value
        # fails here, not at the flush.
        stored = json.loads(json.dumps(value))
        with self._lock:
            self._pending.setdefault(trial_id, _Pending()).user_attrs[key] = stored

    def _check_writable(self, trial_id: int) -> None:
        """Refuse a write to a missing or finished trial at once, as Optuna does.

        Buffered, such a write would only fail at the next flush, which may be another
        trial's. A trial this process holds in ``_mine`` is checked from memory, and one it
        already checked (or set running itself) is not asked about again: no query for
        nmhpo's own trials. Any other trial costs one query, once.
        """
        with self._lock:
            mine = self._mine.get(trial_id)
            if mine is None and (trial_id in self._writable or trial_id in self._pending):
                return
        if mine is not None:
            state = mine.state
        else:
            with _create_scoped_session(self.scoped_session) as session:
                row = session.execute(
                    sa.select(models.TrialModel.state, models.TrialModel.study_id).where(
                        models.TrialModel.trial_id == trial_id
                    )
                ).first()
            if row is None:
                raise KeyError(f"No trial with trial_id {trial_id} exists.")
            state = row.state
            with self._lock:
                self._study_of[trial_id] = row.study_id
        self.check_trial_is_updatable(trial_id, state)  # UpdateFinishedTrialError
        if mine is None:
            with self._lock:
                self._writable.add(trial_id)

    def _distribution_in_study(
        self, trial_id: int, name: str
    ) -> distributions.BaseDistribution | None:
        """The distribution ``name`` already has in the trial's study: in a buffer here, or
        stored (looked up once per process). Optuna checks it at each write; Optuna's cache
        passes it in (``previous_distribution``) but for a study's first use of a name, and a
        caller of the storage itself (not through a study) never does."""
        with self._lock:
            study_id = self._study_of.get(trial_id)
        if study_id is None:  # (a queued trial this process set running)
            with _create_scoped_session(self.scoped_session) as session:
                study_id = session.execute(
                    sa.select(models.TrialModel.study_id).where(
                        models.TrialModel.trial_id == trial_id
                    )
                ).scalar()
            if study_id is None:
                return None
            with self._lock:
                self._study_of[trial_id] = study_id
        with self._lock:
            for tid, pending in self._pending.items():
                if name in pending.params and self._study_of.get(tid) == study_id:
                    return pending.params[name][1]
            known = self._known_distributions.get((study_id, name))
        if known is not None:
            return known
        with _create_scoped_session(self.scoped_session) as session:
            return self._stored_distribution(session, study_id, name)

    def flush(self, trial_id: int | None = None) -> None:
        """Commit what is buffered (for ``trial_id``, or for every trial) in one transaction.

        Should the transaction fail, each trial's buffer is written in a transaction of its
        own, so that one trial's bad write (a trial another process has meanwhile finished, a
        distribution it refuses) costs only that trial's buffer, never another's; the first
        error is raised once the others are written.
        """
        with self._lock:
            if trial_id is None:
                batch, self._pending = self._pending, {}
            else:
                one = self._pending.pop(trial_id, None)
                batch = {} if one is None else {trial_id: one}
        if not batch:
            return
        try:
            self._commit(batch)
        except Exception:
            if len(batch) == 1:
                raise
            first: Exception | None = None
            for tid, pending in batch.items():
                try:
                    self._commit({tid: pending})
                except Exception as exc:
                    first = first or exc
            if first is not None:
                raise first from None

    def _commit(self, batch: dict[int, _Pending]) -> None:
        """Write ``batch`` in one transaction and apply it to the trials held in memory; on
        failure those trials are read from the database again and the error raised."""
        try:
            with _create_scoped_session(self.scoped_session) as session:
                self._write(session, batch)
        except IntegrityError:
            self._forget(batch)
            self._write_one_by_one(batch)
            return
        except BaseException:
            self._forget(batch)
            raise
        with self._lock:
            for tid, pending in batch.items():
                if tid in self._mine:
                    _apply(self._mine[tid], pending)

    def _forget(self, trial_ids: Iterable[int]) -> None:
        """Read these trials from the database from now on, and check them before a write."""
        with self._lock:
            for tid in trial_ids:
                self._mine.pop(tid, None)
                self._writable.discard(tid)

    def _write_one_by_one(self, batch: dict[int, _Pending]) -> None:
        """Optuna's own path, which ignores a row another process wrote first."""
        for tid, pending in batch.items():
            for name, (value, dist, previous) in pending.params.items():
                super()._set_trial_param(tid, name, value, dist, previous)
            for key, attr in pending.user_attrs.items():
                super().set_trial_user_attr(tid, key, attr)

    def _write(self, session: Any, batch: dict[int, _Pending], *, lock: bool = False) -> None:
        """The batch in three statements: a state check, the parameters, the attributes.

        Optuna's own helpers would issue a query and an insert per row (24 statements for the
        quickstart's 8 parameters and 4 attributes); the rows and checks are the same.
        ``lock`` takes the trials' rows for update (PostgreSQL), as Optuna does when it sets a
        trial's state.
        """
        query = sa.select(
            models.TrialModel.trial_id,
            models.TrialModel.study_id,
            models.TrialModel.state,
        ).where(models.TrialModel.trial_id.in_(list(batch)))
        if lock:
            query = query.with_for_update()
        trials = {row.trial_id: row for row in session.execute(query)}
        params: list[dict[str, Any]] = []
        attrs: list[dict[str, Any]] = []
        for tid, pending in batch.items():
            if tid not in trials:
                raise KeyError(f"No trial with trial_id {tid} exists.")
            self.check_trial_is_updatable(tid, trials[tid].state)
            for name, (value, dist, previous) in pending.params.items():
                stored = previous or self._stored_distribution(session, trials[tid].study_id, name)
                if stored is not None:
                    distributions.check_distribution_compatibility(stored, dist)
                params.append(
                    {
                        "trial_id": tid,
                        "param_name": name,
                        "param_value": value,
                        "distribution_json": distributions.distribution_to_json(dist),
                    }
                )
            attrs += [
                {"trial_id": tid, "key": key, "value_json": json.dumps(value)}
                for key, value in pending.user_attrs.items()
            ]
        if params:
            session.execute(sa.insert(models.TrialParamModel), params)
        if not attrs:
            return
        dialect = self.engine.name
        if dialect in ("sqlite", "postgresql"):
            module = sqlite_dialect if dialect == "sqlite" else postgresql_dialect
            table = models.TrialUserAttributeModel.__table__
            upsert = module.insert(table)
            upsert = upsert.on_conflict_do_update(
                index_elements=[table.c.trial_id, table.c.key],
                set_={"value_json": upsert.excluded.value_json},
            )
            session.execute(upsert, attrs)
        else:
            for row in attrs:
                self._set_trial_attr_without_commit(
                    session,
                    models.TrialUserAttributeModel,
                    row["trial_id"],
                    row["key"],
                    json.loads(row["value_json"]),
                )

    def _stored_distribution(
        self, session: Any, study_id: int, name: str
    ) -> distributions.BaseDistribution | None:
        """The distribution ``name`` has in the study's stored trials (Optuna's check that a
        parameter keeps its distribution), looked up once per process."""
        key = (study_id, name)
        if key not in self._known_distributions:
            record = session.execute(
                sa.select(models.TrialParamModel.distribution_json)
                .join(models.TrialModel)
                .where(models.TrialModel.study_id == study_id)
                .where(models.TrialParamModel.param_name == name)
                .limit(1)
            ).scalar()
            if record is None:
                return None
            self._known_distributions[key] = distributions.json_to_distribution(record)
        return self._known_distributions[key]

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        with self._lock:
            pending = self._pending.pop(trial_id, None)
        if not state.is_finished():
            self._forget([trial_id])
            if pending is not None:
                with self._lock:
                    self._pending[trial_id] = pending
                self.flush(trial_id)
            started = super().set_trial_state_values(trial_id, state, values)
            if started:
                with self._lock:
                    self._writable.add(trial_id)  # this process set it unfinished
            if started and state == TrialState.RUNNING and self.heartbeat_interval is not None:
                self.record_heartbeat(trial_id)  # a queued trial, now running: see below
            return started
        # A finished trial: its last attributes, values and state in one transaction.
        now = datetime.now()  # as RDBStorage does
        with self._lock:
            if trial_id in self._stale and state == TrialState.FAIL:
                # Optuna fails a stale trial without a word: say why, as every failed trial
                # does (the worker that ran it can no longer).
                self._stale.discard(trial_id)
                pending = pending or _Pending()
                pending.user_attrs.setdefault("fail_reason", STALE_REASON)
            mine = self._mine.get(trial_id)
            running_here = (
                mine is not None and not mine.state.is_finished()
            ) or trial_id in self._writable
        try:
            with _create_scoped_session(self.scoped_session) as session:
                self._write(session, {trial_id: pending or _Pending()}, lock=True)
                if values and mine is not None and mine.values is None:
                    # A trial this process created has no stored values yet: insert them.
                    rows = []
                    for objective, value in enumerate(values):
                        stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                        rows.append(
                            {
                                "trial_id": trial_id,
                                "objective": objective,
                                "value": stored,
                                "value_type": kind,
                            }
                        )
                    session.execute(sa.insert(models.TrialValueModel), rows)
                elif values:
                    trial = models.TrialModel.find_or_raise_by_id(trial_id, session)
                    for objective, value in enumerate(values):
                        self._set_trial_value_without_commit(session, trial, objective, value)
                table = models.TrialModel.__table__
                session.execute(
                    sa.update(table)
                    .where(table.c.trial_id == trial_id)
                    .values(state=state, datetime_complete=_to_stored(now))
                )
        except IntegrityError:
            self._forget([trial_id])
            if pending is not None:
                self._write_one_by_one({trial_id: pending})
            return super().set_trial_state_values(trial_id, state, values)
        except optuna.exceptions.UpdateFinishedTrialError:
            self._forget([trial_id])
            if not running_here:
                raise  # as Optuna: a finished trial cannot be updated
            # Another process finished it while this one ran it: failed as stale while this
            # worker was slow to beat. Its record (and the re-run it queued) stands; this
            # result is dropped, and the worker goes on (Optuna would raise and stop it).
            return False
        except BaseException:
            self._forget([trial_id])
            raise
        with self._lock:
            self._writable.discard(trial_id)
            self._study_of.pop(trial_id, None)
            mine = self._mine.get(trial_id)  # (it may have been dropped meanwhile)
            if mine is not None:
                if pending is not None:
                    _apply(mine, pending)
                mine.state = state
                mine.values = None if values is None else [float(v) for v in values]
                mine.datetime_complete = _from_stored(_to_stored(now))
        return True

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        trial = super()._create_new_trial(study_id, template_trial)
        with self._lock:
            self._study_of[trial._trial_id] = study_id
            if template_trial is None:
                self._mine[trial._trial_id] = copy.deepcopy(trial)
        return trial

    def _get_prepared_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None, session: Any
    ) -> Any:
        """A running trial gets its first heartbeat in the transaction that creates it.

        Optuna's stale check skips running trials without any heartbeat, and the first one
        comes from a thread started after the trial: a worker killed in between would leave
        its trial running forever (and a grid point taken).
        """
        trial = super()._get_prepared_new_trial(study_id, template_trial, session)
        if self.heartbeat_interval is not None and trial.state == TrialState.RUNNING:
            session.add(models.TrialHeartbeatModel(trial_id=trial.trial_id))
        return trial

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        super().set_trial_system_attr(trial_id, key, value)
        with self._lock:
            mine = self._mine.get(trial_id)
            if mine is not None:
                mine.system_attrs = {**mine.system_attrs, key: json.loads(json.dumps(value))}

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        with self._lock:
            mine = self._mine.pop(trial_id, None)  # (intermediate values are not held here)
            if mine is not None and not mine.state.is_finished():
                self._writable.add(trial_id)
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)

    def record_heartbeat(self, trial_id: int) -> None:
        """One upsert instead of Optuna's read-then-write (SQLite and PostgreSQL)."""
        dialect = self.engine.name
        if dialect not in ("sqlite", "postgresql"):
            super().record_heartbeat(trial_id)
            return
        module = sqlite_dialect if dialect == "sqlite" else postgresql_dialect
        table = models.TrialHeartbeatModel.__table__
        upsert = module.insert(table).values(trial_id=trial_id, heartbeat=sa.func.now())
        upsert = upsert.on_conflict_do_update(
            index_elements=[table.c.trial_id], set_={"heartbeat": sa.func.now()}
        )
        with _create_scoped_session(self.scoped_session, True) as session:
            session.execute(upsert)

    # --- reads: own trials from memory, the buffer on top ----------------------------------

    def _overlay(self, trial: FrozenTrial) -> FrozenTrial:
        with self._lock:
            pending = self._pending.get(trial._trial_id)
            if pending is not None:
                _apply(trial, pending)
        return trial

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            mine = self._mine.get(trial_id)
            if mine is not None:
                return self._overlay(copy.deepcopy(mine))
        return self._overlay(super().get_trial(trial_id))

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        if not self._mine:
            trials = super()._get_trials(
                study_id, states, included_trial_ids, trial_id_greater_than
            )
            return [self._overlay(t) for t in trials]
        # Which trials match, then load only those this process does not hold as stored.
        rows = self._matching_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        held: list[FrozenTrial] = []
        load: set[int] = set()
        with self._lock:
            for tid, state in rows:
                mine = self._mine.get(tid)
                if mine is not None and mine.state == state:
                    if state.is_finished():
                        # Optuna's cache keeps finished trials from here: hand this one over
                        # (no copy: get_trials(deepcopy=False) copies nothing in Optuna).
                        held.append(self._mine.pop(tid))
                    else:
                        held.append(copy.deepcopy(mine))  # still written to here
                else:
                    self._mine.pop(tid, None)  # changed elsewhere (e.g. failed as stale)
                    load.add(tid)
                if state.is_finished():
                    self._writable.discard(tid)
        # (RDBStorage._get_trials falls back to a full read if ``load`` is too long an IN list.)
        loaded = super()._get_trials(study_id, None, load, _NO_TRIAL_ID_ABOVE) if load else []
        if states is not None:
            loaded = [t for t in loaded if t.state in states]
        trials = sorted(held + loaded, key=lambda t: t._trial_id)
        return [self._overlay(t) for t in trials]

    def _matching_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[Any]:
        """(trial id, state) of the trials RDBStorage._get_trials would return.

        ``included_trial_ids`` (the unfinished trials Optuna's cache holds) becomes an IN list
        with one bound parameter per id; past the database's limit (SQLite: 32,766 by default,
        PostgreSQL: 65,535) the query fails, and, as RDBStorage does (optuna#1457), the study's
        rows are read without the list and filtered here: two columns a row, not whole trials.
        """
        table = models.TrialModel
        query = sa.select(table.trial_id, table.state).where(table.study_id == study_id)
        if states is not None:
            query = query.where(table.state.in_(list(states)))  # type: ignore[call-overload]
        included = {t for t in included_trial_ids if t <= trial_id_greater_than}
        if included and trial_id_greater_than > -1:
            narrowed = query.where(
                sa.or_(table.trial_id.in_(included), table.trial_id > trial_id_greater_than)
            )
        elif trial_id_greater_than > -1:
            narrowed = query.where(table.trial_id > trial_id_greater_than)
        else:
            narrowed = query
        with _create_scoped_session(self.scoped_session) as session:
            models.StudyModel.find_or_raise_by_id(study_id, session)
            try:
                return list(session.execute(narrowed).all())
            except sa.exc.OperationalError as exc:
                if narrowed is query or not included:
                    raise
                _logger.warning(
                    f"{str(exc).splitlines()[0]}: reading the study's trial ids in full."
                )
                session.rollback()  # (PostgreSQL aborts the transaction)
                rows = session.execute(query).all()
        return [r for r in rows if r[0] in included or r[0] > trial_id_greater_than]

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        with self._lock:
            pending = self._pending.get(trial_id)
            if pending is not None and param_name in pending.params:
                return pending.params[param_name][0]
        return super().get_trial_param(trial_id, param_name)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        return self.get_trial(trial_id).user_attrs

    def get_trial_system_attrs(self, trial_id: int) -> dict[str, Any]:
        return self.get_trial(trial_id).system_attrs

    # --- heartbeats ------------------------------------------------------------------------

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        """Optuna's query, at most once per heartbeat interval and study while it finds none.

        Optuna runs it before every trial (``fail_stale_trials``); a trial only counts as
        stale after a grace period of silent intervals, so checking more often finds nothing
        sooner, and it costs some 3 ms a trial on SQLite (random sampler, 300 trials on a
        shared two-core machine: 16.8 ms a trial throttled, 19.7 ms not). A check that found
        stale trials is not throttled: the next one looks again.
        """
        interval = self.get_heartbeat_interval()
        now = time.monotonic()
        with self._lock:
            last = self._last_stale_check.get(study_id, float("-inf"))
        if interval is not None and now - last < interval:
            return []
        stale = super()._get_stale_trial_ids(study_id)
        with self._lock:
            self._last_stale_check[study_id] = float("-inf") if stale else now
            self._stale.update(stale)
        return stale
