"""pytest plugin for benchmarks/optuna_storage_suite.py: Optuna's own tests, on nmhpo's storage.

Loaded with ``-p _optuna_suite_plugin`` in a folder holding Optuna's ``tests/``. Environment:

- ``NMHPO_SUITE_STORAGE``: ``plain`` (Optuna's RDBStorage) or ``nmhpo``: every RDBStorage the
  tests build becomes :class:`nmhpo.storage.BatchedRDBStorage`, with the same arguments.
  That covers ``StorageSupplier``'s ``sqlite`` and ``cached_sqlite`` modes (also with the
  heartbeat arguments of ``STORAGE_MODES_HEARTBEAT``), ``optuna.storages.get_storage`` on a
  URL (``create_study(storage="sqlite:///...")``), and tests that construct ``RDBStorage``
  themselves (rdb_tests, test_cached_storage). The class is swapped where tests and
  Optuna's helpers look it up (``optuna.storages.RDBStorage`` and test modules' globals), not
  in ``optuna.storages._rdb.storage``, so the subclass still inherits the original.
- ``NMHPO_SUITE_SELECT``: ``rdb`` (default) keeps only the tests that touch an RDB storage
  (a storage-mode parameter naming sqlite or grpc_rdb, or a test body naming sqlite or
  RDBStorage), less those that name a mode this machine cannot run (gRPC without grpcio,
  Redis without fakeredis); ``all`` keeps everything. The other modes
  (in-memory, journal) run the same code either way.
- ``NMHPO_SUITE_REPORT``: where to write ``{node id: outcome}`` as JSON.

``fakeredis`` (needed only by the journal_redis mode, which no RDB test uses) is stubbed
when it is not installed, so that optuna.testing.storages imports.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

MODE = os.environ.get("NMHPO_SUITE_STORAGE", "plain")
SELECT = os.environ.get("NMHPO_SUITE_SELECT", "rdb")
REPORT = os.environ.get("NMHPO_SUITE_REPORT")

#: Words in a test's body that mean it builds an RDB storage itself.
_RDB_WORDS = ("sqlite", "RDBStorage", "rdb_storage", "create_test_storage")


def _stub_fakeredis() -> bool:
    """Whether the real fakeredis is installed; a stub stands in for it if not."""
    try:
        import fakeredis  # noqa: F401

        return True
    except ImportError:
        stub = types.ModuleType("fakeredis")

        class FakeStrictRedis:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                raise RuntimeError("fakeredis is not installed (stubbed by the nmhpo suite)")

        stub.FakeStrictRedis = FakeStrictRedis  # type: ignore[attr-defined]
        sys.modules["fakeredis"] = stub
        return False


_FAKEREDIS = _stub_fakeredis()

import optuna  # noqa: E402
from optuna.storages._rdb.storage import RDBStorage as _OptunaRDBStorage  # noqa: E402

if MODE == "nmhpo":
    from nmhpo.storage import BatchedRDBStorage

    _REPLACEMENT: type = BatchedRDBStorage
    optuna.storages.RDBStorage = BatchedRDBStorage  # type: ignore[misc]
elif MODE == "plain":
    _REPLACEMENT = _OptunaRDBStorage
else:
    raise ValueError(f"NMHPO_SUITE_STORAGE={MODE!r}: expected plain or nmhpo")


def _storage_modes() -> set[str]:
    from optuna.testing.storages import STORAGE_MODES, STORAGE_MODES_HEARTBEAT

    return {*STORAGE_MODES, *STORAGE_MODES_HEARTBEAT}


#: The gRPC proxy mode serves an RDBStorage (swapped too), but needs grpcio; the Redis
#: journal needs fakeredis. Tests that name a mode this machine lacks are left out (they
#: fail in both runs alike, e.g. test_copy_study[sqlite-journal_redis]).
_GRPC = importlib.util.find_spec("grpc") is not None
_UNAVAILABLE = ({"grpc_rdb", "grpc_journal_file", "grpc_proxy"} if not _GRPC else set()) | (
    {"journal_redis"} if not _FAKEREDIS else set()
)


def _uses_rdb(item: pytest.Item, modes: set[str]) -> bool:
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        named = [v for v in callspec.params.values() if isinstance(v, str) and v in modes]
        if named:
            if _UNAVAILABLE.intersection(named):
                return False
            return any("sqlite" in v or v == "grpc_rdb" for v in named)
    if "rdb_tests" in Path(str(item.fspath)).parts:
        return True
    try:
        source = inspect.getsource(item.function)  # type: ignore[attr-defined]
    except (AttributeError, OSError, TypeError):
        return False
    return any(word in source for word in _RDB_WORDS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and getattr(module, "RDBStorage", None) is _OptunaRDBStorage:
            module.RDBStorage = _REPLACEMENT
    if SELECT == "all":
        return
    modes = _storage_modes()
    keep = [item for item in items if _uses_rdb(item, modes)]
    drop = [item for item in items if item not in keep]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        outcome = report.outcome
        if report.when != "call" and report.outcome == "failed":
            outcome = "error"
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        previous = _outcomes.get(report.nodeid)
        if previous in (None, "passed"):  # a teardown error overrides a passed call
            _outcomes[report.nodeid] = outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REPORT:
        Path(REPORT).write_text(json.dumps(_outcomes, indent=1, sort_keys=True))
