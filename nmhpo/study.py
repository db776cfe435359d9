"""Study manager: the run loop of one or many workers until n_trials completed trials exist.

Storage and identity live in :mod:`nmhpo.database`, samplers in :mod:`nmhpo.samplers`, grid
bookkeeping in :mod:`nmhpo.grid`, worker processes and signals in :mod:`nmhpo.workers`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nmhpo.analysis import pareto_trials
from nmhpo.config import StudyConfig, check_storage_url, mask_url, require_data, search_problem
from nmhpo.database import (
    check_before_reading_data,
    count_complete,
    create_or_load,
    driver_problem,
    load_existing,
    open_storage,
)
from nmhpo.devices import check_available, device_for
from nmhpo.errors import ConfigError, StorageError, StudyStoppedError, TaskError
from nmhpo.grid import requeue_failed_grid_points
from nmhpo.multifidelity import wrap_sampler
from nmhpo.record import variant_of
from nmhpo.samplers import make_sampler
from nmhpo.workers import _drain, _interrupt, _Interrupts, _start_workers

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from nmhpo.record import TrialRecord
    from nmhpo.tasks import TaskData

__all__ = ["RunSummary", "count_complete", "load_existing", "open_storage", "run_study"]

logger = logging.getLogger(__name__)

TrialCallback = Callable[["optuna.Study", "FrozenTrial"], None]


_FAILED_WITH_NONE = re.compile(r"Trial \d+ failed with value None\.")


class _TrialFailureFilter(logging.Filter):
    """Optuna logs a failed trial with its traceback. The reason is already in the trial's
    user attrs and in the progress line, so keep Optuna's one-line message, drop the traceback
    (unless nmhpo logs at debug level) and its second line ("Trial N failed with value
    None."), and say nothing for Ctrl-C, which the CLI reports."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            return False
        if _FAILED_WITH_NONE.fullmatch(record.getMessage()):
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


class _CountTrials:
    """A callback that counts the trials this process ran (``n_new`` counts every worker's)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.n += 1


def _process_salt() -> int:
    """A number of this host and process, to seed a worker started on its own."""
    import socket

    text = f"{socket.gethostname()}:{os.getpid()}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


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
    pareto: list[TrialRecord] = field(default_factory=list)
    n_pruned_new: int = 0  # stopped at a rung by the multi-fidelity pruner
    n_here: int = 0  # trials this process ran (n_new counts every worker's)
    #: Pruned before any training: a grid point another worker had already taken.
    n_skipped_new: int = 0
    #: Completed hardware variants: a network trained by another trial, scored again.
    n_variants_new: int = 0


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


def _work(
    cfg: StudyConfig,
    *,
    worker: int,
    callbacks: list[TrialCallback],
    deadline: float | None,
    seed_worker: int | None = None,
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
            cfg,
            worker=worker,
            callbacks=callbacks,
            deadline=deadline,
            interrupts=interrupts,
            seed_worker=worker if seed_worker is None else seed_worker,
        )


def _work_loop(
    cfg: StudyConfig,
    *,
    worker: int,
    callbacks: list[TrialCallback],
    deadline: float | None,
    interrupts: _Interrupts,
    seed_worker: int,
) -> _FailureGuard:
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    from nmhpo.objective import Objective
    from nmhpo.snn import ModelStore

    storage = open_storage(cfg.storage_url(), heartbeat_s=cfg.study.heartbeat_s)
    study = create_or_load(cfg, storage)
    study.sampler = wrap_sampler(
        make_sampler(cfg, len(study.get_trials(deepcopy=False)), seed_worker), cfg
    )
    store = ModelStore(cfg.cache_dir / "models") if cfg.study.reuse_models else None
    device = device_for(cfg.study.device, worker)
    logger.debug("worker %d runs its trials on %s", worker, device)
    objective = Objective(
        cfg, store, grid=cfg.study.sampler == "grid", flush=storage.flush, device=device
    )
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    return False


def storage_problem(url: str) -> str | None:
    """Why ``url`` cannot serve a run, found without opening it (so `validate` tells it as
    `run` would): not a usable URL, a SQLite file whose folder is missing, or a database
    whose driver is not installed."""
    problem = check_storage_url(url)
    if problem:
        return problem
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() or path.parent.is_dir():
            return None
        return f"folder {path.parent} does not exist"
    return driver_problem(url)


def check_run(cfg: StudyConfig, data: TaskData | None) -> None:
    """What `run` and `validate` refuse beyond the file itself, after the command line's
    overrides: a space that searches nothing run more than once (`search_problem`), and a
    space the task's ``data`` cannot serve (`data_problem`; None when the data is not read,
    e.g. `validate` on a folder task). Task options the data makes unused, and pruning
    options without a pruner, are logged.

    Raises:
        ConfigError: either problem, prefixed by the study file when there is one.
    """
    from nmhpo.config import PruningSection, unused_task_options
    from nmhpo.objective import data_problem

    problem = search_problem(cfg) or (None if data is None else data_problem(cfg, data))
    if problem:
        raise ConfigError(f"{cfg.path}: {problem}" if cfg.path else problem)
    for key in unused_task_options(cfg):
        logger.warning(
            "%s: task.%s: not used: the data comes from %s, whose splits are used as they are",
            cfg.path or "study",
            key,
            cfg.data_path(),
        )
    if cfg.study.pruner == "none" and cfg.study.pruning != PruningSection():
        logger.warning(
            '%s: study.pruning: not used: pruner is "none", so every trial trains to its '
            'last epoch; set pruner = "asha" to stop dominated trials early',
            cfg.path or "study",
        )


def _prepare_data(cfg: StudyConfig) -> None:
    """Read (or generate into the study's cache) the task's data before the study is written
    to, and `check_run` with it: a user's file that cannot be used fails here, in one line,
    instead of as the first `max_failures` trials of a study that its fixed file could then
    no longer resume (the path is part of its identity). Spawned workers then read the cache
    rather than all generating the data at once (ptycho at 16,000 frames: 3.5 s each).

    Raises:
        TaskError: the data cannot be read or breaks the documented rules.
        ConfigError: see `check_run`.
    """
    from nmhpo.objective import task_data

    try:
        data = task_data(cfg)
    except TaskError as exc:
        if cfg.path is not None and str(exc).startswith("task."):  # a study file's key
            raise TaskError(f"{cfg.path}: {exc}") from None
        raise
    check_run(cfg, data)


def run_study(
    cfg: StudyConfig,
    *,
    timeout_s: float | None = None,
    callbacks: list[TrialCallback] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
    requeue: bool = True,
    independent: bool = False,
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
        independent: this process is one of many started on their own (`nmhpo worker`, a
            SLURM array): its sampler's seed also depends on its host and process id, or
            workers started together would all propose the same first points.

    Raises:
        ConfigError: the study's data path names nothing (before anything is written).
        DeviceError: [study].device asks for CUDA and torch sees none (before anything is
            written).
        TaskError: the task's data cannot be prepared (before anything is written).
        StorageError: the storage cannot be opened or holds an incompatible study.
        StudyStoppedError: ``max_failures`` trials failed in a row.
    """
    from optuna.trial import TrialState

    check_available(cfg.study.device)
    require_data(cfg)  # before a database server is written to
    problem = search_problem(cfg)  # (and before the data is generated into the cache)
    if problem:
        raise ConfigError(f"{cfg.path}: {problem}" if cfg.path else problem)
    from nmhpo.objective import refresh_data_stamps

    refresh_data_stamps()
    url = cfg.storage_url()
    if cfg.study.storage is None and cfg.storage_dir is not None:
        cfg.storage_dir.mkdir(parents=True, exist_ok=True)  # nmhpo's home, for shipped studies
    # The task's data before the study, so a data file that cannot be used writes nothing. A
    # database server is opened first (a wrong URL or password should not wait for the data),
    # and so is an existing SQLite file, to refuse a study that cannot resume before its data
    # is read; a new SQLite file only after the data (opening creates it), its folder checked
    # before.
    sqlite = url.startswith("sqlite")
    problem = storage_problem(url)
    if problem:
        raise StorageError(f"cannot open storage {mask_url(url)}: {problem}")
    new_file = sqlite and not Path(url.removeprefix("sqlite:///")).is_file()
    storage = None if new_file else open_storage(url, heartbeat_s=cfg.study.heartbeat_s)
    if storage is not None:
        check_before_reading_data(cfg, storage)
    _prepare_data(cfg)
    if storage is None:
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
    mine = _CountTrials()
    if done < target:
        try:
            if workers > 1:
                procs, errors = _start_workers(cfg, workers, timeout_s)
            guard = _work(
                cfg,
                worker=0,
                callbacks=[mine, *(callbacks or [])],
                deadline=deadline,
                seed_worker=_process_salt() if independent else None,
            )
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
        n_here=mine.n,
        n_failed_new=sum(t.state == TrialState.FAIL for t in new),
        n_pruned_new=sum(
            t.state == TrialState.PRUNED and "pruned.epoch" in t.user_attrs for t in new
        ),
        n_skipped_new=sum(
            t.state == TrialState.PRUNED and "pruned.epoch" not in t.user_attrs for t in new
        ),
        n_variants_new=sum(
            t.state == TrialState.COMPLETE and variant_of(t.user_attrs) is not None for t in new
        ),
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
