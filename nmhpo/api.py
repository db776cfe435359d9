"""The Python API: run or open a study and read it as typed records, a DataFrame or a report.

What the CLI does, callable from a notebook or a script::

    import nmhpo

    study = nmhpo.run_study("quickstart", n_trials=8)   # or a path to a study.toml
    study.pareto()                                       # [TrialRecord, ...], best first
    study.to_dataframe()                                 # pandas (pip install "nmhpo[notebook]")
    study.report()                                       # PNGs, CSV and JSON; returns a Report

A run is quiet (no Optuna line per completed trial; a failed one gets one warning line) and
shows one progress bar, a widget in Jupyter.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nmhpo.config import StudyConfig, load_config, mask_url
from nmhpo.errors import ConfigError, NmhpoError

if TYPE_CHECKING:
    import optuna
    import pandas
    from optuna.trial import FrozenTrial, TrialState

    from nmhpo.analysis import Comparison, Evaluator
    from nmhpo.export import ExportResult
    from nmhpo.record import TrialRecord
    from nmhpo.report import Report
    from nmhpo.study import RunSummary

logger = logging.getLogger(__name__)

StudyLike = StudyConfig | Mapping[str, Any] | str | Path
_STATES = ("COMPLETE", "FAIL", "PRUNED", "RUNNING", "WAITING")
#: The keywords that override [study] fields, where they differ from the field's name.
_KEYWORDS = {"name": "study_name"}


def _config(
    config: StudyLike, *, storage: str | None = None, study_name: str | None = None
) -> StudyConfig:
    if isinstance(config, StudyConfig):
        cfg = config
    elif isinstance(config, Mapping):  # a study file's tables, built in a notebook
        cfg = StudyConfig.model_validate(dict(config))
    elif isinstance(config, str | Path):
        cfg = load_config(config)
    else:
        raise ConfigError(
            "config: expected a StudyConfig, a dict of a study file's tables, a study file's "
            f"path or a shipped study's name; got {type(config).__name__}"
        )
    return cfg.with_overrides(option_names=_KEYWORDS, storage=storage, name=study_name)


def _whole(value: Any) -> int | None:
    """``value`` as an int when it is one (a NumPy integer from `to_dataframe` too), else
    None: "1", 1.0 or True would otherwise pass for a trial number or a worker count."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _trial_number(value: Any) -> int:
    number = _whole(value)
    if number is None:
        raise NmhpoError(f"trial: expected a trial number (int); got {value!r}")
    return number


class Study:
    """A stored nmhpo study: its configuration and its trials, read as typed records.

    Every read goes to the storage, so a handle on a study that other workers are running sees
    their trials as they finish.
    """

    def __init__(
        self,
        config: StudyConfig,
        optuna_study: optuna.Study,
        last_run: RunSummary | None = None,
    ) -> None:
        self.config = config
        self.optuna_study = optuna_study
        #: What the `run_study` call that returned this handle did (None from `open_study`).
        self.last_run = last_run

    @property
    def name(self) -> str:
        return self.optuna_study.study_name

    @property
    def objectives(self) -> list[str]:
        from nmhpo.analysis import objective_names

        return objective_names(self.optuna_study)

    @property
    def directions(self) -> list[str]:
        return [d.name.lower() for d in self.optuna_study.directions]

    @property
    def storage_url(self) -> str:
        """Where the study lives (password masked)."""
        return mask_url(self.config.storage_url())

    def trials(
        self, states: str | TrialState | Iterable[str | TrialState] | None = None
    ) -> list[TrialRecord]:
        """Every trial (or those in ``states``: ``"COMPLETE"``, ``["COMPLETE", "PRUNED"]``
        or Optuna's ``TrialState``), by number."""
        from optuna.trial import TrialState

        from nmhpo.analysis import records

        if states is None:
            return records(self.optuna_study)
        given = [states] if isinstance(states, str | TrialState) else list(states)
        wanted = [s.name if isinstance(s, TrialState) else str(s).upper() for s in given]
        unknown = [s for s in wanted if s not in _STATES]
        if unknown:
            raise NmhpoError(f"states: expected some of {', '.join(_STATES)}; got {unknown[0]!r}")
        return records(self.optuna_study, [TrialState[s] for s in wanted])

    def pareto(self) -> list[TrialRecord]:
        """Completed, feasible, non-dominated trials, best first in the first objective."""
        from nmhpo.analysis import pareto_trials

        return pareto_trials(self.optuna_study)

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per trial (`TrialRecord.row`): objectives, ``param_*``, ``metric_*``,
        timings, ``energy_pj_*`` and ``area_um2_*`` breakdowns; indexed by trial number."""
        try:
            import pandas as pd
        except ImportError:
            raise NmhpoError(
                'Study.to_dataframe needs pandas: pip install "nmhpo[notebook]"'
            ) from None
        from nmhpo.analysis import trial_rows

        rows = trial_rows(self.optuna_study)
        frame = pd.DataFrame(rows)
        return frame.set_index("number") if rows else frame

    def report(
        self,
        out_dir: str | Path | None = None,
        *,
        trial: int | None = None,
        importance: Evaluator = "ped-anova",
        grid: bool = True,
    ) -> Report:
        """Write `nmhpo report`'s files (default folder: ``nmhpo-report/<name>`` beside the
        study's database) and return what was written and found."""
        from nmhpo.report import write_report

        if trial is not None:
            trial = _trial_number(trial)
        folder = Path(out_dir) if out_dir is not None else self.default_report_dir()
        return write_report(
            self.optuna_study,
            folder,
            grid=self._grid() if grid else None,
            trial_number=trial,
            evaluator=importance,
        )

    def default_report_dir(self) -> Path:
        cfg = self.config
        return (cfg.storage_dir or cfg.base_dir) / "nmhpo-report" / self.name

    def export(self, trial: int, out_dir: str | Path | None = None) -> ExportResult:
        """Write trial ``trial``'s trained network as NIR (``network.nir``) and its hardware
        design as JSON (``hardware.json``, with the ``limits`` of what NIR cannot hold) into
        ``out_dir`` (default: `default_export_dir`). Needs ``pip install "nmhpo[export]"``.

        Raises:
            ConfigError: the data is needed (a network to train again, a regression's
                scaling) and is not here.
            ExportError: the trial does not exist or did not complete, the study is not
                nmhpo's, its data changed since it ran, or its network has no exact NIR
                graph; nothing is written.
        """
        from nmhpo.export import export_trial

        trial = _trial_number(trial)
        folder = Path(out_dir) if out_dir is not None else self.default_export_dir(trial)
        return export_trial(self, trial, folder)

    def default_export_dir(self, trial: int) -> Path:
        cfg = self.config
        return (cfg.storage_dir or cfg.base_dir) / "nmhpo-export" / self.name / f"trial-{trial}"

    def compare(self, *others: Study | StudyLike, grid: bool = True) -> Comparison:
        """This study and ``others`` against one reference point, and against this study's
        grid (``<name>-grid``) when one was run and ``grid`` is true."""
        from nmhpo.analysis import compare_studies

        handles = [o if isinstance(o, Study) else open_study(o) for o in others]
        tasks = {h._task(): h.name for h in (self, *handles)}  # (the last name of each task)
        if len(tasks) > 1:
            logger.warning(
                "the compared studies ran different tasks or data (%s): their hypervolumes "
                "measure different problems",
                "; ".join(f"{name!r}: {task[0]}" for task, name in tasks.items()),
            )
        return compare_studies(
            [self.optuna_study, *(h.optuna_study for h in handles)],
            self._grid() if grid else None,
        )

    def _task(self) -> tuple[str, str]:
        """What this study's trials were scored on: the task and its data (the fingerprint
        stored with the study, else the data path). Task options are left out: comparing
        what more training samples buy is a fair question."""
        data = self.optuna_study.user_attrs.get("nmhpo_data_fingerprint")
        return self.config.task.name, str(data or self.config.data_path())

    def grid(self) -> Study | None:
        """The exhaustive grid of this study's space (``<name>-grid``, run by `nmhpo grid`)
        in the same storage, or None when it was not run."""
        from nmhpo.grid import find_grid, grid_config

        found = find_grid(self.config)
        if found is None:
            return None
        return Study(grid_config(self.config), found)

    def _grid(self) -> optuna.Study | None:
        grid = self.grid()
        return None if grid is None else grid.optuna_study

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for trial in self.optuna_study.get_trials(deepcopy=False):
            counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
        states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items())) or "no trials"
        return f"<nmhpo.Study {self.name!r}: {states}; {self.storage_url}>"


def open_study(
    config: StudyLike, *, storage: str | None = None, study_name: str | None = None
) -> Study:
    """The stored study of ``config`` (a `StudyConfig`, a dict of a study file's tables, a
    study file, or a shipped study's name), for reading; nothing is created.

    Raises:
        ConfigError: the study file is invalid.
        StorageError: there is no such storage or study.
    """
    from nmhpo.database import load_existing

    cfg = _config(config, storage=storage, study_name=study_name)
    return Study(cfg, load_existing(cfg))


def run_study(
    config: StudyLike,
    *,
    n_trials: int | None = None,
    timeout_s: float | None = None,
    workers: int = 1,
    storage: str | None = None,
    study_name: str | None = None,
    max_failures: int | None = None,
    progress: bool | Literal["auto"] = "auto",
    device: str | None = None,
) -> Study:
    """Run (or resume) a study until ``n_trials`` completed trials exist; return its handle.

    Args:
        config: a `StudyConfig`, a dict of a study file's tables, a study file, or a shipped
            study's name (``"quickstart"``).
        n_trials, storage, study_name, max_failures: override the study file's values.
        timeout_s: start no trial after this many seconds.
        workers: worker processes on this machine; with G GPUs, worker i uses GPU i mod G.
        device: override [study].device: "auto", "cpu", "cuda" or "cuda:N".
        progress: a progress bar (a widget in Jupyter, text elsewhere); ``"auto"`` shows it
            when stderr is a terminal or a notebook.

    Raises:
        ConfigError: the study file, an override, ``workers`` or ``timeout_s`` is invalid.
        DeviceError: CUDA is asked for and torch sees none (nothing is written).
        StorageError: the storage cannot be opened or holds a different study of that name.
        StudyStoppedError: ``max_failures`` trials failed in a row.
    """
    from nmhpo.database import load_existing
    from nmhpo.study import quiet_optuna
    from nmhpo.study import run_study as run

    n_workers = _whole(workers)
    if n_workers is None or n_workers < 1:
        raise ConfigError(f"workers: expected an int >= 1; got {workers!r}")
    workers = n_workers
    if timeout_s is not None and (
        isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s <= 0
    ):
        raise ConfigError(f"timeout_s: expected a number of seconds > 0; got {timeout_s!r}")
    cfg = _config(config, storage=storage, study_name=study_name).with_overrides(
        n_trials=n_trials, max_failures=max_failures, device=device
    )
    quiet_optuna()
    with _progress(cfg, progress, workers) as bar:
        summary = run(
            cfg,
            timeout_s=timeout_s,
            callbacks=[bar.after_trial],
            on_start=bar.start,
            on_progress=bar.start,
            workers=workers,
        )
    return Study(cfg, load_existing(cfg), summary)


class _Bar:
    """Completed trials out of the target, in tqdm (``tqdm.auto``: a Jupyter widget when
    ipywidgets is installed, text otherwise); does nothing when switched off."""

    def __init__(self, cfg: StudyConfig, enabled: bool, workers: int) -> None:
        self.cfg = cfg
        self.enabled = enabled
        self.workers = workers
        self.bar: Any = None

    def start(self, done: int, target: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            label = self.cfg.study.name + (
                f" ({self.workers} workers)" if self.workers > 1 else ""
            )
            self.bar = tqdm(total=max(target, done), initial=done, desc=label, unit="trial")
        self.bar.n = done
        self.bar.refresh()

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        from nmhpo.database import count_complete

        if not self.enabled:
            return
        self.start(count_complete(study), self.cfg.study.n_trials)
        if trial.values is not None:
            names = [o.name for o in self.cfg.study.objectives]
            pairs = zip(names, trial.values, strict=False)
            self.bar.set_postfix_str(
                f"trial {trial.number}: " + ", ".join(f"{n}={v:.4g}" for n, v in pairs)
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def _progress(cfg: StudyConfig, progress: bool | Literal["auto"], workers: int) -> Iterator[_Bar]:
    bar = _Bar(cfg, _show_progress(progress), workers)
    try:
        yield bar
    finally:
        bar.close()


def _show_progress(progress: bool | Literal["auto"]) -> bool:
    if progress != "auto":
        return bool(progress)
    import sys

    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
