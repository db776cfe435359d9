"""Reading a finished (or running) study: Pareto set, flat trial records, report files."""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

logger = logging.getLogger(__name__)


def objective_names(study: optuna.Study) -> list[str]:
    """Objective names as stored with the study (``values_0``... for foreign studies)."""
    names = study.metric_names
    return list(names) if names else [f"values_{i}" for i in range(len(study.directions))]


def pareto_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed, feasible, non-dominated trials, ordered by the first objective (best first)."""
    from optuna.study import StudyDirection

    trials = list(study.best_trials)
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    return sorted(trials, key=lambda t: sign * t.values[0])


def trial_record(trial: FrozenTrial, names: list[str]) -> dict[str, Any]:
    """One flat row per trial: state, objectives, parameters, metrics, timings, breakdowns."""
    row: dict[str, Any] = {
        "number": trial.number,
        "state": trial.state.name,
        "duration_s": trial.duration.total_seconds() if trial.duration else None,
    }
    for name, value in zip(names, trial.values or [None] * len(names), strict=False):
        row[name] = value
    row.update({f"param_{k}": v for k, v in trial.params.items()})
    attrs = trial.user_attrs
    for key, value in attrs.get("metrics", {}).items():
        row.setdefault(f"metric_{key}", value)
    run = attrs.get("run", {})
    for key in ("trained", "train_time_s", "eval_time_s", "hw_time_s", "training_seed"):
        if key in run:
            row[key] = run[key]
    breakdown = attrs.get("breakdown", {})
    for comp, value in breakdown.get("energy_pj", {}).items():
        row[f"energy_pj_{comp}"] = value
    for comp, value in breakdown.get("area_um2", {}).items():
        row[f"area_um2_{comp}"] = value
    if "fail_reason" in attrs:
        row["fail_reason"] = attrs["fail_reason"]
    return row


def write_trials_csv(study: optuna.Study, path: Path) -> int:
    """All trials as CSV (one row each, union of columns); returns the row count."""
    names = objective_names(study)
    rows = [trial_record(t, names) for t in study.get_trials(deepcopy=False)]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # a reader never sees a half-written file
    return len(rows)


@dataclass(frozen=True)
class Report:
    """Files a report wrote and the Pareto set it found."""

    study_name: str
    objective_names: list[str]
    directions: list[str]
    pareto: list[FrozenTrial]
    n_trials: int
    n_complete: int
    files: list[Path]


def write_report(study: optuna.Study, out_dir: Path) -> Report:
    """Pareto table data, a Pareto-front PNG and CSV/JSON of all trials under ``out_dir``."""
    from optuna.trial import TrialState

    from nmhpo.plots import plot_pareto_front

    out_dir.mkdir(parents=True, exist_ok=True)
    names = objective_names(study)
    pareto = pareto_trials(study)
    files = []
    csv_path = out_dir / "trials.csv"
    write_trials_csv(study, csv_path)
    files.append(csv_path)
    json_path = out_dir / "pareto.json"
    json_path.write_text(
        json.dumps([trial_record(t, names) for t in pareto], indent=2, default=str)
    )
    files.append(json_path)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if complete:
        png = out_dir / "pareto_front.png"
        plot_pareto_front(study, png)
        files.append(png)
    return Report(
        study_name=study.study_name,
        objective_names=names,
        directions=[d.name.lower() for d in study.directions],
        pareto=pareto,
        n_trials=len(study.get_trials(deepcopy=False)),
        n_complete=len(complete),
        files=files,
    )
