"""nmhpo: co-design search of spiking neural networks and crossbar hardware with Optuna.

The public API (see README "Python API")::

    import nmhpo

    cfg = nmhpo.load_config("quickstart")          # or "path/to/study.toml"
    study = nmhpo.run_study(cfg, n_trials=8)        # -> nmhpo.Study
    study.pareto()                                   # [nmhpo.TrialRecord, ...]
    study.to_dataframe()                             # pandas, with nmhpo[notebook]
    study.report()                                   # PNGs, CSV, JSON

Names load on first use, so ``import nmhpo`` (and ``import nmhpo.crossbar``, which imports
this package first) stays cheap and never imports torch or Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from nmhpo.analysis import Comparison, Reach, StudySummary
    from nmhpo.api import Study, open_study, run_study
    from nmhpo.config import StudyConfig, load_config
    from nmhpo.errors import (
        ConfigError,
        DeviceError,
        ExportError,
        HardwareModelError,
        NmhpoError,
        PresetError,
        StorageError,
        StudyStoppedError,
        TaskError,
        TrialFailedError,
    )
    from nmhpo.export import ExportResult
    from nmhpo.record import Breakdown, Point, Pruned, RunInfo, TrialRecord, TrialResult
    from nmhpo.report import Report

_LAZY: dict[str, str] = {
    "load_config": "nmhpo.config",
    "StudyConfig": "nmhpo.config",
    "run_study": "nmhpo.api",
    "open_study": "nmhpo.api",
    "Study": "nmhpo.api",
    "TrialRecord": "nmhpo.record",
    "TrialResult": "nmhpo.record",
    "RunInfo": "nmhpo.record",
    "Breakdown": "nmhpo.record",
    "Point": "nmhpo.record",
    "Pruned": "nmhpo.record",
    "Comparison": "nmhpo.analysis",
    "StudySummary": "nmhpo.analysis",
    "Reach": "nmhpo.analysis",
    "Report": "nmhpo.report",
    "ExportResult": "nmhpo.export",
    "NmhpoError": "nmhpo.errors",
    "ConfigError": "nmhpo.errors",
    "ExportError": "nmhpo.errors",
    "StorageError": "nmhpo.errors",
    "StudyStoppedError": "nmhpo.errors",
    "TaskError": "nmhpo.errors",
    "DeviceError": "nmhpo.errors",
    "PresetError": "nmhpo.errors",
    "HardwareModelError": "nmhpo.errors",
    "TrialFailedError": "nmhpo.errors",
}

__all__ = [
    "__version__",
    "load_config",
    "StudyConfig",
    "run_study",
    "open_study",
    "Study",
    "TrialRecord",
    "TrialResult",
    "RunInfo",
    "Breakdown",
    "Point",
    "Pruned",
    "Comparison",
    "StudySummary",
    "Reach",
    "Report",
    "ExportResult",
    "NmhpoError",
    "ConfigError",
    "ExportError",
    "StorageError",
    "StudyStoppedError",
    "TaskError",
    "DeviceError",
    "PresetError",
    "HardwareModelError",
    "TrialFailedError",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nmhpo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
