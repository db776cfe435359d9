"""Optuna's RDB storage with a trial's parameters and user attributes written in batches.

Optuna writes every ``suggest_*`` and every ``set_user_attr`` in a transaction of its own: for
the quickstart's 8 parameters and 4 attribute groups that is 12 commits per trial, most of the
study manager's cost on SQLite (benchmarks/bench_scale.py) and, with several workers on one
file, 12 turns at SQLite's single write lock. Here a trial's parameters are kept in memory
until nmhpo's objective has suggested all of them and calls :meth:`BatchedRDBStorage.flush`
(one commit, before any training), and its user attributes until its state is set (one commit,
just before the state's).

What Optuna promises is kept: its own storage cache (``_CachedStorage``) guarantees only that a
trial's attributes reach the database before its state changes, which is what happens here.
What a SIGKILL can lose is what is not needed: a killed trial is re-run from its stored
parameters (flushed before training), and its attributes were not yet final. Reads through this
storage (the trial being run, samplers looking at running trials) see the buffered values.

System attributes (a grid sampler's point, a GP sampler's pending suggestion, constraints) are
written at once: other workers read them while the trial runs.

This class relies on RDBStorage's ``_without_commit`` helpers (Optuna 5); tests run it on real
SQLite and PostgreSQL databases.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
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


@dataclass
class _Pending:
    params: dict[str, tuple[float, distributions.BaseDistribution, Any]] = field(
        default_factory=dict
    )
    user_attrs: dict[str, Any] = field(default_factory=dict)


class BatchedRDBStorage(optuna.storages.RDBStorage):
    """An RDBStorage that commits a trial's parameters once and its user attributes once.

    Besides batching, the check for stale trials (killed workers) runs at most once per
    heartbeat interval instead of before every trial: a trial only counts as stale after
    several silent intervals, so checking more often finds nothing sooner.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_buffers()

    def _init_buffers(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._last_stale_check = float("-inf")
        self._known_distributions: dict[tuple[int, str], distributions.BaseDistribution] = {}
        self._fresh: dict[int, FrozenTrial] = {}

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        for key in (
            "_pending",
            "_pending_lock",
            "_last_stale_check",
            "_known_distributions",
            "_fresh",
        ):
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
        if previous_distribution is not None:
            # Incompatible distributions fail at the suggest call, as without batching.
            distributions.check_distribution_compatibility(previous_distribution, distribution)
        with self._pending_lock:
            pending = self._pending.setdefault(trial_id, _Pending())
            pending.params[param_name] = (
                param_value_internal,
                distribution,
                previous_distribution,
            )

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        json.dumps(value)  # an unserialisable value fails here, not at the flush
        with self._pending_lock:
            self._pending.setdefault(trial_id, _Pending()).user_attrs[key] = value

    def flush(self, trial_id: int | None = None) -> None:
        """Commit what is buffered (for ``trial_id``, or for every trial) in one transaction."""
        with self._pending_lock:
            if trial_id is None:
                batch, self._pending = self._pending, {}
            else:
                one = self._pending.pop(trial_id, None)
                batch = {} if one is None else {trial_id: one}
        if not batch:
            return
        try:
            with _create_scoped_session(self.scoped_session) as session:
                self._write(session, batch)
        except IntegrityError:
            self._write_one_by_one(batch)

    def _write_one_by_one(self, batch: dict[int, _Pending]) -> None:
        """Optuna's own path, which ignores a row another process wrote first."""
        for tid, pending in batch.items():
            for name, (value, dist, previous) in pending.params.items():
                super()._set_trial_param(tid, name, value, dist, previous)
            for key, attr in pending.user_attrs.items():
                super().set_trial_user_attr(tid, key, attr)

    def _write(self, session: Any, batch: dict[int, _Pending]) -> None:
        """The batch in three statements: a state check, the parameters, the attributes.

        Optuna's own helpers would issue a query and an insert per row (24 statements for the
        quickstart's 8 parameters and 4 attributes); the rows and checks are the same.
        """
        trials = {
            row.trial_id: row
            for row in session.execute(
                sa.select(
                    models.TrialModel.trial_id,
                    models.TrialModel.study_id,
                    models.TrialModel.state,
                ).where(models.TrialModel.trial_id.in_(list(batch)))
            )
        }
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
        with self._pending_lock:
            pending = self._pending.pop(trial_id, None)
            self._fresh.pop(trial_id, None)
        if pending is None or not state.is_finished():
            if pending is not None:
                self._pending[trial_id] = pending
                self.flush(trial_id)
            return super().set_trial_state_values(trial_id, state, values)
        # A finished trial: its last attributes, values and state in one transaction.
        try:
            with _create_scoped_session(self.scoped_session) as session:
                self._write(session, {trial_id: pending})
                trial = models.TrialModel.find_or_raise_by_id(trial_id, session, for_update=True)
                self.check_trial_is_updatable(trial_id, trial.state)
                for objective, value in enumerate(values or ()):
                    self._set_trial_value_without_commit(session, trial, objective, value)
                trial.state = state
                trial.datetime_complete = datetime.now()  # as RDBStorage does
        except IntegrityError:
            self._write_one_by_one({trial_id: pending})
            return super().set_trial_state_values(trial_id, state, values)
        return True

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        trial = super()._create_new_trial(study_id, template_trial)
        if template_trial is None:
            # Optuna reads a new trial back at once (optuna.Trial's constructor); nothing can
            # have changed it yet, so that read is answered from here.
            with self._pending_lock:
                self._fresh[trial._trial_id] = copy.deepcopy(trial)
        return trial

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._pending_lock:
            self._fresh.pop(trial_id, None)
        super().set_trial_system_attr(trial_id, key, value)

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

    # --- reads see the buffer --------------------------------------------------------------

    def _overlay(self, trial: FrozenTrial) -> FrozenTrial:
        with self._pending_lock:
            pending = self._pending.get(trial._trial_id)
            if pending is None:
                return trial
            params = dict(trial.params)
            dists = dict(trial.distributions)
            for name, (value, dist, _) in pending.params.items():
                params[name] = dist.to_external_repr(value)
                dists[name] = dist
            user_attrs = {**trial.user_attrs, **pending.user_attrs}
        trial.params = params
        trial.distributions = dists
        trial.user_attrs = user_attrs
        return trial

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._pending_lock:
            fresh = self._fresh.pop(trial_id, None)
        if fresh is not None:
            return self._overlay(fresh)
        return self._overlay(super().get_trial(trial_id))

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        trials = super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        if not self._pending:
            return trials
        return [self._overlay(t) for t in trials]

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        with self._pending_lock:
            pending = self._pending.get(trial_id)
            if pending is not None and param_name in pending.params:
                return pending.params[param_name][0]
        return super().get_trial_param(trial_id, param_name)

    def get_trial_user_attrs(self, trial_id: int) -> dict[str, Any]:
        attrs = super().get_trial_user_attrs(trial_id)
        with self._pending_lock:
            pending = self._pending.get(trial_id)
            return attrs if pending is None else {**attrs, **pending.user_attrs}

    # --- heartbeats ------------------------------------------------------------------------

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        interval = self.get_heartbeat_interval()
        now = time.monotonic()
        if interval is not None and now - self._last_stale_check < interval:
            return []
        self._last_stale_check = now
        return super()._get_stale_trial_ids(study_id)
