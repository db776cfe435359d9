"""Where studies live: opening a storage, creating a study with its identity or loading it.

A study is identified by its name and the hash of what defines its results (objectives, task,
hardware, space), so a resumed run can never silently mix two different searches.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from nmhpo import __version__
from nmhpo.config import StudyConfig, check_storage_url, mask_url
from nmhpo.errors import StorageError

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import optuna

    from nmhpo.storage import BatchedRDBStorage


#: A running trial whose heartbeat is silent for this many intervals counts as dead (its
#: worker was killed) and is re-run. Generous, not to fail live trials on a busy SQLite file
#: (optuna#4234); the interval itself is [study].heartbeat_s.
GRACE_INTERVALS = 3


# The trial loop flushes its storage and create_or_load wants the batched one: the default
# (batched) call is typed so; a batched flag only known at run time gives the common base.
@overload
def open_storage(
    url: str, *, must_exist: bool = ..., heartbeat_s: int = ..., batched: Literal[True] = ...
) -> BatchedRDBStorage: ...
@overload
def open_storage(
    url: str, *, must_exist: bool = ..., heartbeat_s: int = ..., batched: bool
) -> optuna.storages.RDBStorage: ...
def open_storage(
    url: str, *, must_exist: bool = False, heartbeat_s: int = 60, batched: bool = True
) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, batched trial writes (:mod:`nmhpo.storage`) and, for
    SQLite, a lock timeout.

    Args:
        url: SQLAlchemy URL.
        must_exist: for readers (report, dashboard): refuse to create a new SQLite file.
        heartbeat_s: seconds between heartbeats of a running trial.
        batched: False gives Optuna's plain RDBStorage, for code that is not nmhpo's trial
            loop: optuna-dashboard writes user attributes (notes, a user's own marks) that the
            batched storage would only buffer until a flush that never comes.
    """
    problem = check_storage_url(url)
    if problem:
        raise StorageError(f"storage {mask_url(url)!r}: {problem}")
    engine_kwargs: dict[str, Any] = {}
    urls = [url]
    if url.startswith("sqlite"):
        # Several processes on one file: wait for the lock instead of failing (optuna#820).
        engine_kwargs["connect_args"] = {"timeout": 60}
        db_path = url.removeprefix("sqlite:///")
        if must_exist and db_path != ":memory:" and not Path(db_path).is_file():
            raise StorageError(
                f"no study storage at {db_path}; run the study first, or give its storage "
                "(--storage, storage=)"
            )
        if must_exist and db_path != ":memory:" and not _writable(Path(db_path)):
            urls = _read_only_urls(Path(db_path))
    else:
        engine_kwargs["pool_pre_ping"] = True
    last: Exception | None = None
    for i, url_now in enumerate(urls):
        if i == 1:
            logger.warning(
                "%s: read without its write-ahead log, which this process cannot index: "
                "the last commits of a run still at work may be missing",
                url.removeprefix("sqlite:///"),
            )
        try:
            return _open(url_now, engine_kwargs, heartbeat_s, batched, tune=url_now == url)
        except StorageError as exc:
            last = exc
    assert last is not None
    raise StorageError(str(last).replace(urls[-1], url))


def _writable(db_path: Path) -> bool:
    """Whether this process may write a SQLite file and create its journal beside it."""
    return os.access(db_path, os.W_OK) and os.access(db_path.parent, os.W_OK)


def _read_only_urls(db_path: Path) -> list[str]:
    """How to read a study file this process may not write (a colleague's folder, a read-only
    mount): a reader of a WAL database must create its ``-shm`` index beside it, which such a
    folder refuses ("unable to open database file"). With a ``-wal`` file there (a writer is
    at work, or its last commits are not checkpointed yet) read-only mode reads through it;
    without one the file is complete, and ``immutable`` reads it without any index."""
    base = f"sqlite:///file:{db_path.resolve()}?uri=true"
    immutable = base + "&immutable=1"
    if Path(f"{db_path}-wal").exists():
        return [base + "&mode=ro", immutable]
    return [immutable]


def _open(
    url: str, engine_kwargs: dict[str, Any], heartbeat_s: int, batched: bool, *, tune: bool
) -> optuna.storages.RDBStorage:
    import optuna
    from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

    from nmhpo.storage import BatchedRDBStorage, RetryStaleTrial

    last: Exception | None = None
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                # Heartbeats are marked experimental in Optuna 5; they are what makes a killed
                # worker's trial re-run, so nmhpo depends on them deliberately.
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                cls = BatchedRDBStorage if batched else optuna.storages.RDBStorage
                storage = cls(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_s,
                    grace_period=GRACE_INTERVALS * heartbeat_s,
                    heartbeat_stale_trial_callback=RetryStaleTrial(max_retry=3),
                )
            if tune and url.startswith("sqlite") and ":memory:" not in url:
                _tune_sqlite(storage.engine)
            return storage
        except IntegrityError as exc:
            # Workers starting together on an empty PostgreSQL database race to create the
            # tables (duplicate key in pg_type): the loser waits and finds them made.
            last = exc
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
        except OperationalError as exc:
            # The same race on a new SQLite file: "table trials already exists".
            last = exc
            if "already exists" not in str(exc):
                break
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
        except (SQLAlchemyError, ImportError, OSError) as exc:
            last = exc
            break
    reason = str(last).splitlines()[0] if str(last) else type(last).__name__
    if isinstance(last, ImportError):
        reason = driver_problem(url) or reason
    raise StorageError(f"cannot open storage {mask_url(url)}: {mask_url(reason)}")


def driver_problem(url: str) -> str | None:
    """Why ``url``'s database cannot be reached from this Python: the driver SQLAlchemy
    picks for its dialect is not installed (found without connecting, so `validate` can
    tell it)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        hint = (
            'install one with: pip install "nmhpo[postgres]"'
            if parsed.get_backend_name() == "postgresql"
            else "install the driver the URL names"
        )
        return f"no {parsed.drivername} driver ({exc}); {hint}"
    return None


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
            _write_identity(study, cfg)
            return study
    stored_hash = study.user_attrs.get("nmhpo_identity_hash")
    for _ in range(50):
        # Another worker may have created the study a moment ago and not yet stored its
        # identity: an empty study without it is waited for, not called foreign.
        if stored_hash is not None or study.get_trials(deepcopy=False):
            break
        time.sleep(0.1)
        stored_hash = study.user_attrs.get("nmhpo_identity_hash")
    if stored_hash is None and _orphan_of(study, cfg):
        # Created by an nmhpo run killed before it stored the identity (the creation and the
        # identity are separate commits): adopt it, or it would be refused for ever.
        logger.info("study %r has no identity and no trial; storing this one", name)
        _write_identity(study, cfg)
        return study
    if stored_hash is None:
        raise StorageError(
            f"study {name!r} in {mask_url(storage.url)} was not created by nmhpo; "
            "choose another [study].name or --study-name"
        )
    _check_resumable(study, cfg, stored_hash)
    return study


def check_before_reading_data(cfg: StudyConfig, storage: optuna.storages.BaseStorage) -> None:
    """Refuse to resume ``cfg``'s study, if it exists, for what `create_or_load` would refuse
    (another definition, changed data) before the run reads its data: a changed data file
    would otherwise report a read error of its own, or be read whole (ptycho generates its
    16,000 frames) only to be refused.

    Raises:
        StorageError: the stored study has another definition or other data.
    """
    import optuna

    try:
        study = optuna.load_study(study_name=cfg.study.name, storage=storage)
    except KeyError:
        return
    stored_hash = study.user_attrs.get("nmhpo_identity_hash")
    if stored_hash is not None:  # (no identity yet: create_or_load decides)
        _check_resumable(study, cfg, stored_hash)


def _check_resumable(study: optuna.Study, cfg: StudyConfig, stored_hash: str) -> None:
    _check_identity(study, cfg, stored_hash)
    problem = data_changed(study, cfg)
    if problem:
        raise StorageError(
            f"{problem}, so its trials were scored on other data; restore it, or start a new "
            "study under another name ([study].name, --study-name or study_name=)"
        )


def data_changed(study: optuna.Study, cfg: StudyConfig) -> str | None:
    """Why ``study``'s data is not what its trials were scored on, or None. Data that is not
    here (a study shared as its file and database, read elsewhere) has nothing to compare;
    whatever needs it is refused where it is read."""
    stored, now = study.user_attrs.get(_DATA_KEY), data_fingerprint(cfg)
    if stored is not None and now is not None and stored != now:
        what = _folder_changes(study.user_attrs.get(_FILES_KEY), cfg)
        return (
            f"study {study.study_name!r}: its data ({cfg.data_path()}) changed since it began"
            + (f" ({what})" if what else "")
        )
    return None


#: A user's data as it was when the study began (see `data_fingerprint`).
_DATA_KEY = "nmhpo_data_fingerprint"
#: A dataset folder's files as they were (`nmhpo.tasks._base.dataset_summary`).
_FILES_KEY = "nmhpo_data_files"


def _folder_summary(cfg: StudyConfig, per_folder: bool | None = None) -> dict[str, Any] | None:
    path = cfg.data_path()
    if path is None or not path.is_dir():
        return None
    from nmhpo.tasks._base import dataset_summary

    return dataset_summary(path, cfg.task_info().data_files, per_folder=per_folder)


def _folder_changes(stored: Any, cfg: StudyConfig) -> str:
    """What changed in a dataset folder since the study recorded it ('' when it kept no
    record: a file, or a study begun before nmhpo kept one)."""
    if not isinstance(stored, dict):
        return ""
    from nmhpo.tasks._base import summary_changes

    per_folder = bool(stored) and all(k.endswith("/") for k in stored)
    now = _folder_summary(cfg, per_folder=per_folder)
    return "" if now is None else summary_changes(stored, now)


def data_fingerprint(cfg: StudyConfig) -> str | None:
    """What a user's data (``[task] path``) holds, so a resumed study notices that it was
    edited: the path alone (part of the identity) says nothing of the contents.

    A file: its content hash, so a copy with the same bytes (a new modification time)
    resumes. A folder of a dataset's recordings (tens of thousands of files, gigabytes):
    the names and sizes of the files its task reads, so files added, removed, truncated or
    replaced by others of another size are noticed, while the same dataset copied to another
    machine (new modification times) still matches; an edit that keeps a file's size is not.
    Nothing else in the folder counts (the study's own database and caches, logs, SLURM
    outputs), or a study kept in its data folder would refuse itself. None without a path."""
    path = cfg.data_path()
    if path is None:
        return None
    try:
        if path.is_dir():
            return _folder_print(str(path), cfg.task_info().data_files)
        stat = path.stat()
        return _file_hash(str(path), stat.st_size, stat.st_mtime_ns)
    except OSError:
        return None  # (unreadable now: reading the data reports it in one line)


@lru_cache(maxsize=4)
def _folder_print(path: str, patterns: Any) -> str:
    """A dataset folder's fingerprint, listed once per run (a resumed run checks it before
    reading its data and again where it loads the study; N-MNIST lists 70,000 files):
    `forget_folder_prints`, from `nmhpo.objective.refresh_data_stamps`, lists it afresh
    where a run or an export begins."""
    from nmhpo.tasks._base import dataset_fingerprint

    return dataset_fingerprint(Path(path), patterns)


def forget_folder_prints() -> None:
    """List dataset folders afresh for their fingerprints (see `_folder_print`)."""
    _folder_print.cache_clear()


@lru_cache(maxsize=8)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of a file, once per process and version of the file (size, mtime)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:32]


def _check_identity(study: optuna.Study, cfg: StudyConfig, stored_hash: str) -> None:
    """Refuse a study whose stored definition is not ``cfg``'s: resuming it would mix two
    searches, and reading it through ``cfg`` (an export's hardware design, a retrained
    network) would describe trials by a definition they did not run with."""
    if stored_hash != cfg.identity_hash():
        changed = _identity_diff(study.user_attrs.get("nmhpo_identity", {}), cfg.identity())
        raise StorageError(
            f"study {cfg.study.name!r} already exists with a different definition "
            f"(changed: {', '.join(changed[:4]) or 'unknown'}); use the study file it was run "
            "with, or start a new study under another name ([study].name, --study-name or "
            "study_name=)"
        )


def _write_identity(study: optuna.Study, cfg: StudyConfig) -> None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.name for o in cfg.study.objectives])
    study.set_user_attr("nmhpo_config", cfg.model_dump(mode="json", by_alias=True))
    study.set_user_attr("nmhpo_identity", cfg.identity())
    study.set_user_attr("nmhpo_version", __version__)
    fingerprint = data_fingerprint(cfg)
    if fingerprint is not None:
        study.set_user_attr(_DATA_KEY, fingerprint)
    files = _folder_summary(cfg)
    if files is not None:
        study.set_user_attr(_FILES_KEY, files)
    # Last: its presence tells other workers the identity is complete.
    study.set_user_attr("nmhpo_identity_hash", cfg.identity_hash())


def _orphan_of(study: optuna.Study, cfg: StudyConfig) -> bool:
    """An empty study with this config's directions and, at most, part of an nmhpo identity."""
    partial = {"nmhpo_config", "nmhpo_identity", "nmhpo_version", _DATA_KEY, _FILES_KEY}
    directions = [o.resolved_direction for o in cfg.study.objectives]
    return (
        not study.get_trials(deepcopy=False)
        and set(study.user_attrs) <= partial
        and [d.name.lower() for d in study.directions] == directions
    )


def load_existing(
    cfg: StudyConfig, storage_url: str | None = None, *, batched: bool = True
) -> optuna.Study:
    """Open a study for reading (reports, dashboard) without creating anything.

    ``batched=False`` opens it on Optuna's plain RDBStorage (see `open_storage`).
    """
    import optuna

    url = storage_url or cfg.storage_url()
    storage = open_storage(
        url, must_exist=True, heartbeat_s=cfg.study.heartbeat_s, batched=batched
    )
    try:
        study = optuna.load_study(study_name=cfg.study.name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise StorageError(
            f"no study {cfg.study.name!r} in {mask_url(url)}"
            + (f"; it holds: {', '.join(names)}" if names else "; it holds no study")
        ) from None
    stored_hash = study.user_attrs.get("nmhpo_identity_hash")
    if stored_hash is not None:  # (a study made by other tools is read as it is)
        _check_identity(study, cfg, stored_hash)
    return study


def count_complete(study: optuna.Study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
