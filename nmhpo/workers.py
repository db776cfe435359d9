"""Worker processes of one study on one machine (`run_study(..., workers=N)`), and how
Ctrl-C and stop requests reach them without breaking Optuna's bookkeeping."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nmhpo.config import StudyConfig
from nmhpo.errors import NmhpoError

if TYPE_CHECKING:
    import optuna

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


#: How the study's owner asks its spawned workers to stop after their trial in hand (a
#: forwarded SIGINT could land as a "second Ctrl-C" in the middle of Optuna's bookkeeping).
STOP_SIGNAL = getattr(signal, "SIGUSR1", signal.SIGINT)


#: The ``fail_reason`` of a trial a Ctrl-C (or a stop request) ended.
INTERRUPTED = "interrupted (KeyboardInterrupt)"

#: How long stopping workers get to finish their trial before they are terminated.
_STOP_WAIT_S = 30.0


#: A worker's report (a stop reason) is cut to this many characters.
_MAX_REPORT = 2000


class LevelPrefixed(logging.Formatter):
    """``<prefix>message``, and ``<prefix>warning: message`` for warnings: the library logs
    plain messages, the CLI (and its spawned workers) says which ones need attention."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        level = (
            "error: "
            if record.levelno >= logging.ERROR
            else "warning: "
            if record.levelno >= logging.WARNING
            else ""
        )
        return f"{self.prefix}{level}{super().format(record)}"


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
                trial.set_user_attr("fail_reason", INTERRUPTED)
                raise KeyboardInterrupt
            self.in_objective = True
            try:
                return objective(trial)
            finally:
                self.in_objective = False

        return guarded


def _spawned_worker(
    cfg: StudyConfig, worker: int, deadline_s: float | None, errors: Any, log_level: int
) -> None:
    """A worker process of `run_study`: logs like its parent, reports a stop reason back."""
    deadline = None if deadline_s is None else time.monotonic() + deadline_s
    from nmhpo.study import _work, quiet_optuna

    try:
        quiet_optuna()
        logger = logging.getLogger("nmhpo")
        logger.setLevel(log_level)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(LevelPrefixed(f"nmhpo (worker {worker}): "))
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
