"""The one error family nmhpo raises on purpose.

The CLI catches `NmhpoError` once and prints its message as a single line with exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class NmhpoError(Exception):
    """Base of every deliberate nmhpo error; the message is complete and user-facing."""


class ConfigError(NmhpoError):
    """A study file (or a value given on the command line) is malformed."""


class PresetError(NmhpoError):
    """A hardware preset is unknown or malformed."""


class HardwareModelError(NmhpoError, ValueError):
    """The crossbar model was given inputs outside its domain (negative sizes, 0 steps, ...)."""


class StorageError(NmhpoError):
    """A study storage cannot be opened, or holds a study that cannot be continued."""


class TaskError(NmhpoError):
    """A task is unknown or its data cannot be prepared."""


class TrialFailedError(NmhpoError):
    """A trial failed for a reason worth recording (e.g. a diverging loss)."""


class StudyStoppedError(NmhpoError):
    """A study was stopped early by a guard (e.g. too many consecutive failures)."""


class DeviceError(NmhpoError):
    """The machine cannot provide the device a study asks for (CUDA without a GPU)."""


class ExportError(NmhpoError):
    """A trial cannot be exported: unknown, not complete, or a network NIR cannot hold."""
