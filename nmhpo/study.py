"""Study manager: storage, samplers, create-or-resume, and the run loop.

Optuna's RDB storage (SQLite by default, PostgreSQL for many machines) holds everything; a study
is identified by its name and the hash of what defines its results (objectives, task, hardware,
space), so a resumed run can never silently mix two different searches.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo import __version__
from nmhpo.analysis import pareto_trials
from nmhpo.config import StudyConfig, check_storage_url, mask_url
from nmhpo.errors import NmhpoError, StorageError, StudyStoppedError
from nmhpo.space import grid_levels

if TYPE_CHECKING:
    import optuna
    from optuna.samplers import BaseSampler
    from optuna.trial import FrozenTrial

    from nmhpo.storage import BatchedRDBStorage

logger = logging.getLogger(__name__)

#: A running trial whose heartbeat is silent for this many intervals counts as dead (its
#: worker was killed) and is re-run. Generous, not to fail live trials on a busy SQLite file
#: (optuna#4234); the interval itself is [study].heartbeat_s.
GRACE_INTERVALS = 3

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: How the study's owner asks its spawned workers to stop after their trial in hand (a
#: forwarded SIGINT could land as a "second Ctrl-C" in the middle of Optuna's bookkeeping).
STOP_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGINT)
#: How long stopping workers get to finish their trial before they are terminated.
_STOP_WAIT_S = 30.0
#: A worker's report (a stop reason) is cut to this many characters.
_MAX_REPORT = 2000

TrialCallback = Callable[["optuna.Study", "FrozenTrial"], None]


def open_storage(
    url: str, *, must_exist: bool = False, heartbeat_s: int = 60
) -> BatchedRDBStorage:
    """An RDB storage with heartbeats, batched trial writes (:mod:`nmhpo.storage`) and, for
    SQLite, a lock timeout.

    Args:
        url: SQLAlchemy URL.
        must_exist: for readers (report, dashboard): refuse to create a new SQLite file.
        heartbeat_s: seconds between heartbeats of a running trial.
    """
    import optuna
    from sqlalchemy.exc import IntegrityError, SQLAlchemyError

    from nmhpo.storage import BatchedRDBStorage

    problem = check_storage_url(url)
    if problem:
        raise StorageError(f"storage {mask_url(url)!r}: {problem}")
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several processes on one file: wait for the lock instead of failing (optuna#820).
        engine_kwargs["connect_args"] = {"timeout": 60}
        db_path = url.removeprefix("sqlite:///")
        if must_exist and db_path != ":memory:" and not Path(db_path).is_file():
            raise StorageError(
                f"no study storage at {db_path}; run `nmhpo run` first or pass --storage"
            )
    else:
        engine_kwargs["pool_pre_ping"] = True
    last: Exception | None = None
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                # Heartbeats are marked experimental in Optuna 5; they are what makes a killed
                # worker's trial re-run, so nmhpo depends on them deliberately.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = BatchedRDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=GRACE_INTERVALS * heartbeat_s,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3)
                    ),
                )
            if url.startswith("sqlite") and ":memory:" not in url:
                _tune_sqlite(storage.engine)
            return storage
        except IntegrityError as exc:
            # Workers starting together on an empty PostgreSQL database race to create the
            # tables (duplicate key in pg_type): the loser waits and finds them made.
            last = exc
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
        except (SQLAlchemyError, ImportError, OSError) as exc:
            last = exc
            break
    reason = str(last).splitlines()[0] if str(last) else type(last).__name__
    raise StorageError(f"cannot open storage {mask_url(url)}: {mask_url(reason)}")


def _tune_sqlite(engine: Any) -> None:
    """Write-ahead logging with ``synchronous=NORMAL`` on every connection.

    Optuna commits each parameter, attribute and state change separately; with SQLite's
    default rollback journal every commit waits for fsync. In WAL mode a commit appends to the
    log, readers (a dashboard, other workers) never block the writer, and a killed process loses
    nothing (only a power cut can lose the last commits). Measured in benchmarks/bench_scale.py.
    """
    from sqlalchemy import event

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    engine.dispose()  # connections opened before the listener get replaced


class _TrialFailureFilter(logging.Filter):
    """Optuna logs a failed trial with its traceback. The reason is already in the trial's
    user attrs and in the progress line, so keep Optuna's one-line message, drop the traceback
    (unless nmhpo logs at debug level) and say nothing for Ctrl-C, which the CLI reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            return False
        if record.exc_info and not logging.getLogger("nmhpo").isEnabledFor(logging.DEBUG):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines off (nmhpo reports trials itself), tracebacks trimmed.

    Called by the CLI and by every spawned worker: a worker imports Optuna afresh, and Optuna
    sets its own level when first imported.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _TrialFailureFilter) for f in handler.filters):
            handler.addFilter(_TrialFailureFilter())


def derived_seed(seed: int, n_existing: int, worker: int = 0) -> int:
    """Sampler seed for a (re)start: a resumed seeded sampler must not replay its first
    suggestions, and parallel workers must not propose the same points, so the seed depends on
    how many trials already exist and on the worker."""
    return int(np.random.SeedSequence([seed, n_existing, worker]).generate_state(1)[0])


def make_sampler(cfg: StudyConfig, n_existing: int = 0, worker: int = 0) -> BaseSampler:
    """The sampler [study].sampler names, seeded for this (re)start and worker."""
    import optuna

    with warnings.catch_warnings():
        # multivariate TPE and GP's deterministic_objective are "experimental" in Optuna 5;
        # nmhpo chose them on measurements (benchmarks/results/search.json).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_sampler(cfg, n_existing, worker)


def _make_sampler(cfg: StudyConfig, n_existing: int, worker: int) -> BaseSampler:
    import optuna.samplers as s

    name = cfg.study.sampler
    seed = derived_seed(cfg.study.seed, n_existing, worker)
    n_startup = min(10, max(4, cfg.study.n_trials // 3))
    # Settings from benchmarks/bench_search.py (results/search.json): on the 240-point
    # grid-vs-search table GP needed a median of 18.5 evaluations to 99% of the grid's
    # hypervolume, multivariate TPE 32 and independent TPE 52.
    if name == "tpe":
        return s.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True, group=True)
    if name == "gp":
        # A point's training seed is fixed by the point, so the objective is deterministic.
        return s.GPSampler(seed=seed, n_startup_trials=n_startup, deterministic_objective=True)
    if name in ("nsga2", "nsga3"):
        population = max(4, min(50, cfg.study.n_trials // 4))
        cls = s.NSGAIISampler if name == "nsga2" else s.NSGAIIISampler
        return cls(seed=seed, population_size=population)
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "qmc":
        # Scrambled Sobol with the study's own seed: QMCSampler keeps its position in the
        # study, so the same seed continues the sequence on resume instead of restarting it.
        return s.QMCSampler(seed=cfg.study.seed, scramble=True, warn_independent_sampling=False)
    if name == "grid":
        # NOTE: the same seed in every process: GridSampler shuffles its grid with it and maps
        # trial number k to grid point k, so all workers and resumes must agree on the order.
        return s.GridSampler(grid_levels(cfg), seed=cfg.study.seed)
    raise ValueError(f"unknown sampler {name!r}")  # config validation makes this unreachable


def _identity_diff(stored: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(stored) | set(new))
    out: list[str] = []
    for key in keys:
        a, b = stored.get(key), new.get(key)
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _identity_diff(a, b, path + ".")
        elif a != b:
            out.append(path)
    return out


def create_or_load(cfg: StudyConfig, storage: BatchedRDBStorage) -> optuna.Study:
    """The study named in ``cfg``: created with its identity, or loaded after checking that the
    stored identity (objectives, task, hardware, space) is the same."""
    import optuna

    name = cfg.study.name
    directions = [o.resolved_direction for o in cfg.study.objectives]
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = None
    if study is None:
        study = optuna.create_study(
            study_name=name, storage=storage, directions=directions, load_if_exists=True
        )
        if "nmhpo_identity_hash" not in study.user_attrs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names([o.name for o in cfg.study.objectives])
            study.set_user_attr("nmhpo_config", cfg.model_dump(mode="json", by_alias=True))
            study.set_user_attr("nmhpo_identity", cfg.identity())
            study.set_user_attr("nmhpo_identity_hash", cfg.identity_hash())
            study.set_user_attr("nmhpo_version", __version__)
            return study
    stored_hash = study.user_attrs.get("nmhpo_identity_hash")
    for _ in range(50):
        # Another worker may have created the study a moment ago and not yet stored its
        # identity: an empty study without it is waited for, not called foreign.
        if stored_hash is not None or study.get_trials(deepcopy=False):
            break
        time.sleep(0.1)
        stored_hash = study.user_attrs.get("nmhpo_identity_hash")
    if stored_hash is None:
        raise StorageError(
            f"study {name!r} in {mask_url(storage.url)} was not created by nmhpo; "
            "choose another [study].name or --study-name"
        )
    if stored_hash != cfg.identity_hash():
        changed = _identity_diff(study.user_attrs.get("nmhpo_identity", {}), cfg.identity())
        raise StorageError(
            f"study {name!r} already exists with a different search space or objectives "
            f"(changed: {', '.join(changed[:4]) or 'unknown'}); to start a new study, change "
            "[study].name or pass --study-name NEW"
        )
    return study


def load_existing(cfg: StudyConfig, storage_url: str | None = None) -> optuna.Study:
    """Open a study for reading (reports, dashboard) without creating anything."""
    import optuna

    url = storage_url or cfg.storage_url()
    storage = open_storage(url, must_exist=True, heartbeat_s=cfg.study.heartbeat_s)
    try:
        return optuna.load_study(study_name=cfg.study.name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StorageError(
            f"no study {cfg.study.name!r} in {mask_url(url)}"
            + (f"; it holds: {', '.join(names)}" if names else "; it holds no study")
        ) from None


def count_complete(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


@dataclass
class RunSummary:
    """What a run did, for the CLI to render."""

    study_name: str
    storage: str  # masked
    n_complete: int
    n_target: int
    n_new: int
    n_failed_new: int
    wall_time_s: float
    objective_names: list[str]
    directions: list[str]
    sampler: str
    stopped_reason: str | None = None
    pareto: list[FrozenTrial] = field(default_factory=list)


class _FailureGuard:
    """Stops the study after ``limit`` consecutive failed trials (a broken setup, not bad luck)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.last_reason = ""
        self.tripped = False

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.FAIL:
            self.streak += 1
            self.last_reason = str(trial.user_attrs.get("fail_reason", "unknown reason"))
            if self.streak >= self.limit:
                self.tripped = True
                study.stop()
        elif trial.state == TrialState.COMPLETE:
            self.streak = 0

    def message(self, name: str) -> str:
        return (
            f"study {name!r} stopped after {self.streak} failed trials in a row "
            f"(last: {self.last_reason})"
        )


def grid_config(cfg: StudyConfig) -> StudyConfig:
    """The exhaustive grid of ``cfg``'s space as its own study, ``<name>-grid``, in the same
    storage: every grid point once (``n_trials`` = the grid's size).

    Raises:
        ConfigError: a continuous parameter has no grid levels (naming file and key).
    """
    from nmhpo.config import grid_problem
    from nmhpo.errors import ConfigError
    from nmhpo.space import grid_size

    problem = grid_problem(cfg)
    if problem:
        raise ConfigError(f"{cfg.path}: {problem}")
    study = cfg.study.model_copy(
        update={"name": f"{cfg.study.name}-grid", "sampler": "grid", "n_trials": grid_size(cfg)}
    )
    return cfg.model_copy(update={"study": study})


def find_grid(cfg: StudyConfig) -> optuna.Study | None:
    """The ``<name>-grid`` study beside ``cfg``'s study, if one was run."""
    import optuna

    if cfg.study.name.endswith("-grid"):
        return None
    try:
        storage = open_storage(
            cfg.storage_url(), must_exist=True, heartbeat_s=cfg.study.heartbeat_s
        )
        return optuna.load_study(study_name=f"{cfg.study.name}-grid", storage=storage)
    except (KeyError, StorageError):
        return None


def _grid_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def requeue_failed_grid_points(study: optuna.Study) -> int:
    """Queue again every grid point whose only trials failed (a Ctrl-C, a diverged run): the
    GridSampler counts a failed point as visited and would never return to it.

    A point is known by its grid id (the GridSampler's system attr), which a trial has from
    its start, before any parameter exists: a trial interrupted before or while suggesting
    has none or some of its parameters. Trials without a grid id fall back to their
    parameters.
    """
    import optuna
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    live = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    alive_ids = {t.system_attrs["grid_id"] for t in trials if t.state in live and _has_id(t)}
    alive_params = {
        _grid_key(t.params or t.system_attrs.get("fixed_params", {}))
        for t in trials
        if t.state in live
    }
    queued = 0
    for t in trials:
        if t.state != TrialState.FAIL:
            continue
        if _has_id(t):
            grid_id = t.system_attrs["grid_id"]
            if grid_id in alive_ids:
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    system_attrs={
                        "grid_id": grid_id,
                        "search_space": t.system_attrs["search_space"],
                    },
                )
            )
            alive_ids.add(grid_id)
        elif t.params and _grid_key(t.params) not in alive_params:
            study.enqueue_trial(t.params, skip_if_exists=False)
            alive_params.add(_grid_key(t.params))
        else:
            continue
        queued += 1
    return queued


def _has_id(trial: FrozenTrial) -> bool:
    return "grid_id" in trial.system_attrs and "search_space" in trial.system_attrs


def _work(
    cfg: StudyConfig,
    *,
    worker: int,
    callbacks: list[TrialCallback],
    deadline: float | None,
) -> _FailureGuard:
    """One worker's loop: trials until the study has n_trials complete ones. Shared by
    `run_study` (in this process or in spawned ones) and `nmhpo worker` on other machines."""
    import torch  # (after validation and storage: a bad file never pays for torch)
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(cfg.study.torch_threads)
    # NumPy's BLAS defaults to one thread per core, and idle OpenBLAS threads spin: measured on
    # the quickstart, 10 s of CPU per 22 s of work, for no gain in wall time, taken from
    # whatever else runs (another worker). The study's thread budget bounds BLAS too.
    interrupts = _Interrupts()
    with threadpool_limits(limits=cfg.study.torch_threads), interrupts.installed():
        return _work_loop(
            cfg, worker=worker, callbacks=callbacks, deadline=deadline, interrupts=interrupts
        )


class _Interrupts:
    """Ctrl-C that lands while Optuna records a trial (its ``tell``, between trials) would
    break Optuna's loop: a KeyboardInterrupt there escapes as an UnboundLocalError from
    ``optuna.study._optimize._run_trial``, with the trial's end half-handled. So a Ctrl-C
    outside the objective asks Optuna to stop after the trial in hand (``study.stop()``) and is
    raised again once the loop has ended, or at the start of the next objective call; inside
    the objective it interrupts at once (Optuna records the trial as failed). A second Ctrl-C
    a second or more later interrupts wherever it lands.
    """

    #: The same Ctrl-C can arrive twice: from the terminal and forwarded by the parent.
    SAME_PRESS_S = 1.0

    def __init__(self) -> None:
        self.study: optuna.Study | None = None
        self.in_objective = False
        self.pending_since: float | None = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        previous_stop = signal.signal(STOP_SIGNAL, self._stop_request)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
            signal.signal(STOP_SIGNAL, previous_stop)

    def _handler(self, signum: int, frame: Any) -> None:
        if self.in_objective:
            raise KeyboardInterrupt
        if self.pending_since is None and self.study is not None:
            try:
                self.study.stop()
            except RuntimeError:  # not inside Optuna's loop after all: nothing to protect
                raise KeyboardInterrupt from None
            self.pending_since = time.monotonic()
            return
        if self.pending_since is not None and (
            time.monotonic() - self.pending_since < self.SAME_PRESS_S
        ):
            return
        raise KeyboardInterrupt

    def _stop_request(self, signum: int, frame: Any) -> None:
        """The study's owner asks this worker to stop (its own Ctrl-C, or a failure): as a
        first Ctrl-C, and never a forced one, however many requests arrive."""
        if self.pending_since is not None:
            return
        self._handler(signum, frame)

    @contextmanager
    def optimizing(self, study: optuna.Study) -> Iterator[None]:
        self.study = study
        try:
            yield
        finally:
            self.study = None
        if self.pending_since is not None:
            raise KeyboardInterrupt

    def guard(self, objective: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def guarded(trial: Any) -> Any:
            if self.pending_since is not None:
                raise KeyboardInterrupt
            self.in_objective = True
            try:
                return objective(trial)
            finally:
                self.in_objective = False

        return guarded


def _work_loop(
    cfg: StudyConfig,
    *,
    worker: int,
    callbacks: list[TrialCallback],
    deadline: float | None,
    interrupts: _Interrupts,
) -> _FailureGuard:
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from nmhpo.objective import Objective
    from nmhpo.snn import ModelStore

    storage = open_storage(cfg.storage_url(), heartbeat_s=cfg.study.heartbeat_s)
    study = create_or_load(cfg, storage)
    study.sampler = make_sampler(cfg, len(study.get_trials(deepcopy=False)), worker)
    store = ModelStore(cfg.cache_dir / "models") if cfg.study.reuse_models else None
    objective = Objective(cfg, store, grid=cfg.study.sampler == "grid", flush=storage.flush)
    guard = _FailureGuard(cfg.study.max_failures)
    target = cfg.study.n_trials
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if (remaining is not None and remaining <= 0) or count_complete(study) >= target:
            break  # (a worker that starts late must not add a trial to a finished study)
        with interrupts.optimizing(study):
            study.optimize(
                interrupts.guard(objective),
                n_trials=None,
                timeout=remaining,
                catch=(Exception,),
                callbacks=[
                    MaxTrialsCallback(target, states=(TrialState.COMPLETE,)),
                    guard,
                    *callbacks,
                ],
            )
        if guard.tripped or count_complete(study) >= target:
            break
        # Short of the target with nothing left to start: wait for trials still running
        # elsewhere, or for a killed worker's trial to go stale and be queued again.
        more = _wait_for_others(study, target, deadline)
        if count_complete(study) >= target or (not more and cfg.study.sampler == "grid"):
            break  # done, or every grid point has been tried (failed ones stay failed)
    return guard


#: How often a worker with nothing to start looks at the trials running elsewhere. The last
#: trials of a study end a fraction of a second apart; the heartbeat interval (a minute by
#: default) would be far too coarse.
_POLL_S = 0.25


def _wait_for_others(study: optuna.Study, target: int, deadline: float | None) -> bool:
    """Wait while other workers' trials run. True when there may be work again (a trial was
    queued, e.g. a killed worker's trial re-queued as stale); False when none is left."""
    import optuna
    from optuna.trial import TrialState

    while deadline is None or time.monotonic() < deadline:
        if count_complete(study) >= target:
            return False
        if study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            return True
        if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            return False
        time.sleep(_POLL_S)
        # BatchedRDBStorage checks for stale trials at most once per heartbeat interval.
        optuna.storages.fail_stale_trials(study)
    return False


def _spawned_worker(
    cfg: StudyConfig, worker: int, deadline_s: float | None, errors: Any, log_level: int
) -> None:
    """A worker process of `run_study`: logs like its parent, reports a stop reason back."""
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    try:
        quiet_optuna()
        logger = logging.getLogger("nmhpo")
        logger.setLevel(log_level)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter(f"nmhpo (worker {worker}): %(message)s"))
            logger.addHandler(handler)
        guard = _work(cfg, worker=worker, callbacks=[], deadline=deadline)
        if guard.tripped:
            errors.put(guard.message(cfg.study.name)[:_MAX_REPORT])
    except KeyboardInterrupt:
        pass
    except NmhpoError as exc:
        errors.put(str(exc)[:_MAX_REPORT])
    # Done: a Ctrl-C or stop request from here on would only print a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(STOP_SIGNAL, signal.SIG_IGN)
    # Everything is stored; skip the interpreter's teardown (0.6 s with torch loaded, the
    # time the study's owner would wait for this worker) once the report has left.
    errors.close()
    errors.join_thread()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _start_workers(cfg: StudyConfig, n: int, timeout_s: float | None) -> tuple[list[Any], Any]:
    """Spawn workers 1..n (this process is worker 0), each limited to torch_threads threads.

    Started before this process imports torch and trains: their start-up (a fresh interpreter,
    torch, the data) overlaps worker 0's instead of adding to it.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    level = logging.getLogger("nmhpo").getEffectiveLevel()
    procs = [
        ctx.Process(target=_spawned_worker, args=(cfg, i, timeout_s, errors, level), daemon=False)
        for i in range(1, n)
    ]
    # Thread counts read at import time (OpenMP, BLAS) are set before the interpreter starts.
    saved = {k: os.environ.get(k) for k in _THREAD_VARS}
    os.environ.update({k: str(cfg.study.torch_threads) for k in _THREAD_VARS})
    try:
        for proc in procs:
            proc.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return procs, errors


def _interrupt(procs: list[Any]) -> None:
    """Ask the spawned workers to stop after their trial in hand; end those that do not."""
    for p in procs:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, STOP_SIGNAL)
    deadline = time.monotonic() + _STOP_WAIT_S
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()  # its running trial goes stale and is re-run later
            p.join(timeout=5)


def _drain(errors: Any, into: list[str]) -> None:
    """Read the workers' reports as they come: a worker blocks on a full pipe otherwise."""
    import queue

    while True:
        try:
            into.append(errors.get_nowait())
        except queue.Empty:
            return


def run_study(
    cfg: StudyConfig,
    *,
    timeout_s: float | None = None,
    callbacks: list[TrialCallback] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    requeue: bool = True,
) -> RunSummary:
    """Run (or resume) ``cfg``'s study until ``n_trials`` completed trials exist.

    Args:
        cfg: the validated study.
        timeout_s: start no trial after this many seconds.
        callbacks: called after every trial of this process (e.g. a progress bar).
        on_start: called once with (completed trials already stored, target).
        on_progress: with several workers, called about every second with (complete, target).
        workers: worker processes; 1 runs the trials in this process.
        requeue: queue failed grid points again (off for `nmhpo worker`, which joins a study
            whose owner does this).

    Raises:
        StorageError: the storage cannot be opened or holds an incompatible study.
        StudyStoppedError: ``max_failures`` trials failed in a row.
    """
    from optuna.trial import TrialState

    url = cfg.storage_url()
    storage = open_storage(url, heartbeat_s=cfg.study.heartbeat_s)
    study = create_or_load(cfg, storage)
    if requeue and cfg.study.sampler == "grid":
        queued = requeue_failed_grid_points(study)
        if queued:
            logger.info("queued %d failed grid points again", queued)
    n_before = len(study.get_trials(deepcopy=False))
    done = count_complete(study)
    target = cfg.study.n_trials
    if on_start is not None:
        on_start(done, target)
    start = time.perf_counter()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    stopped: list[str] = []
    procs: list[Any] = []
    errors: Any = None
    if done < target:
        try:
            if workers > 1:
                procs, errors = _start_workers(cfg, workers, timeout_s)
            guard = _work(cfg, worker=0, callbacks=list(callbacks or []), deadline=deadline)
            if guard.tripped:
                stopped.append(guard.message(cfg.study.name))
                _interrupt(procs)
            while any(p.is_alive() for p in procs):
                # Worker 0 is done (the target is reached or it gave up); the others finish
                # the trials they have started.
                for p in procs:
                    p.join(timeout=1.0 / len(procs))
                _drain(errors, stopped)
                if on_progress is not None:
                    on_progress(count_complete(study), target)
        except BaseException:
            # Ctrl-C, or worker 0 failed: no spawned worker may outlive this process.
            _interrupt(procs)
            raise
    if errors is not None:
        _drain(errors, stopped)
        crashed = [p.exitcode for p in procs if p.exitcode not in (0, None)]
        if crashed:
            logger.warning("%d worker process(es) exited with codes %s", len(crashed), crashed)
    trials = study.get_trials(deepcopy=False)
    new = trials[n_before:]
    summary = RunSummary(
        study_name=cfg.study.name,
        storage=mask_url(url),
        n_complete=count_complete(study),
        n_target=target,
        n_new=len(new),
        n_failed_new=sum(t.state == TrialState.FAIL for t in new),
        wall_time_s=time.perf_counter() - start,
        objective_names=[o.name for o in cfg.study.objectives],
        directions=[o.resolved_direction for o in cfg.study.objectives],
        sampler=type(make_sampler(cfg)).__name__,
        pareto=pareto_trials(study),
    )
    if stopped:
        raise StudyStoppedError(stopped[0] + f"; {summary.n_complete}/{target} trials complete")
    if summary.n_complete < target:
        summary.stopped_reason = "timeout" if timeout_s is not None else "stopped"
    return summary
