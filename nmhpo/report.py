"""`nmhpo report`'s files: computed by `nmhpo.analysis`, drawn by `nmhpo.plots`.

The one module that imports both, so that analysis never draws and plots never compute.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo.analysis import (
    Comparison,
    Evaluator,
    PruningSummary,
    compare_studies,
    complete_trials,
    importance,
    importance_by_class,
    is_feasible,
    objective_names,
    param_classes,
    pareto_front_info,
    pareto_trials,
    pruning_summary,
    shared_objectives,
    write_trials_csv,
)
from nmhpo.errors import ConfigError
from nmhpo.record import TrialRecord, variant_of

if TYPE_CHECKING:
    import optuna

#: Every file `write_report` may write; those it skips are removed from ``out_dir``.
REPORT_FILES = frozenset(
    {
        "trials.csv",
        "trials.json",
        "pareto.json",
        "pareto_front.png",
        "hypervolume.json",
        "hypervolume_history.png",
        "hypervolume_cpu.png",
        "pruning.json",
        "importance.png",
        "breakdown.png",
    }
)


def _jsonable(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null (json.dumps would write bare NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, default=str, allow_nan=False))
    tmp.replace(path)


@dataclass(frozen=True)
class Report:
    """Files a report wrote and the Pareto set it found.

    ``pareto`` are the Pareto trials (best first in the first objective), ``pareto_records``
    the same as flat rows (`TrialRecord.row`); ``comparison`` is `compare_studies` of the
    study (against the grid, when given).
    """

    study_name: str
    objective_names: list[str]
    directions: list[str]
    pareto: list[TrialRecord]
    n_trials: int
    n_complete: int
    files: list[Path]
    constrained: bool = False
    n_feasible: int = 0
    pareto_records: list[dict[str, Any]] = field(default_factory=list)
    hypervolume: float | None = None
    reference: list[float] | None = None
    comparison: Comparison | None = None
    breakdown_trial: int | None = None
    pruning: PruningSummary | None = None
    #: Completed hardware variants (``[study] hardware_variants``), and those on the front.
    n_variants: int = 0
    n_variants_on_front: int = 0

    def __repr__(self) -> str:
        # The generated repr prints every Pareto record and comparison history: a notebook
        # cell ending in study.report() would show kilobytes of it.
        folder = self.files[0].parent if self.files else None
        hv = "" if self.hypervolume is None else f", hypervolume {self.hypervolume:.4g}"
        return (
            f"<nmhpo.Report {self.study_name!r}: {self.n_complete}/{self.n_trials} trials "
            f"complete, {len(self.pareto)} on the Pareto front{hv}; "
            f"{len(self.files)} files in {folder}>"
        )


def _breakdown_trial(
    study: optuna.Study, trial_number: int | None, pareto: list[TrialRecord]
) -> TrialRecord | None:
    """The trial whose breakdown the report shows: ``trial_number``, else the first Pareto
    trial; checked before any file is written, so a wrong number writes nothing."""
    if trial_number is None:
        return pareto[0] if pareto else None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if trial_number not in trials:
        top = max(trials, default=-1)
        raise ConfigError(
            f"trial: expected a trial number of study {study.study_name!r} (0-{top}); "
            f"got {trial_number}"
        )
    record = TrialRecord.from_trial(trials[trial_number])
    breakdown = None if record.result is None else record.result.breakdown
    if breakdown is None or not (breakdown.energy_pj or breakdown.area_um2):
        raise ConfigError(
            f"trial {trial_number} of study {study.study_name!r} is {record.state} and has no "
            "energy/area breakdown; give the number of a completed trial"
        )
    return record


def _breakdown_figure(
    study: optuna.Study, trial: TrialRecord, chosen: bool, path: Path
) -> int | None:
    """Plot one trial's energy/area breakdown; returns its number, or None if it has none."""
    from nmhpo.plots import plot_breakdown

    breakdown = None if trial.result is None else trial.result.breakdown
    if breakdown is None or not (breakdown.energy_pj or breakdown.area_um2):
        return None  # (a chosen trial without one was refused before anything was written)
    names = objective_names(study)
    values = ", ".join(f"{n} {v:.4g}" for n, v in zip(names, trial.values or [], strict=False))
    plot_breakdown(
        breakdown.energy_pj,
        breakdown.area_um2,
        path,
        title=f"{study.study_name}: trial {trial.number}" + (f" ({values})" if values else ""),
        by_layer=list(breakdown.energy_by_layer_pj) or None,
    )
    return trial.number


def write_report(
    study: optuna.Study,
    out_dir: Path,
    grid: optuna.Study | None = None,
    trial_number: int | None = None,
    evaluator: Evaluator = "ped-anova",
) -> Report:
    """Write everything needed to judge a study under ``out_dir``.

    Files: ``trials.csv`` and ``trials.json`` (every trial), ``pareto.json`` (the Pareto set),
    ``pareto_front.png`` (feasible/infeasible trials marked; the grid's front overlaid when
    ``grid`` is given), ``hypervolume_history.png`` and ``hypervolume.json`` (`compare_studies`
    of this study against the grid), ``importance.png`` (PED-ANOVA per objective and per
    parameter class, from `MIN_TRIALS_FOR_IMPORTANCE` completed trials) and ``breakdown.png``
    (energy and area by component of ``trial_number``, default the first Pareto trial);
    ``hypervolume_cpu.png`` (hypervolume against the CPU seconds of every trial) and, in a
    study that stopped trials early, ``pruning.json`` (`PruningSummary`).
    A figure without data to show is skipped, not drawn empty, and a stale copy of it from an
    earlier report is removed. The hypervolume's reference point comes from this study and the
    grid only, so two reports' hypervolumes do not compare: use `compare_studies` for that.

    Raises:
        StorageError: ``grid`` has different objectives.
        ConfigError: ``trial_number`` is not a trial of the study.
    """
    from nmhpo.plots import plot_hypervolume_history, plot_importance, plot_pareto_front

    names = objective_names(study)
    if grid is not None:
        shared_objectives([study, grid])
    pareto = pareto_trials(study)
    breakdown_trial = _breakdown_trial(study, trial_number, pareto)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_trials = study.get_trials(deepcopy=False)
    complete = complete_trials(study)
    files = []

    csv_path = out_dir / "trials.csv"
    write_trials_csv(study, csv_path)
    files.append(csv_path)
    trials_json = out_dir / "trials.json"
    _write_json(trials_json, [TrialRecord.from_trial(t).row(names) for t in all_trials])
    files.append(trials_json)
    pareto_records = [t.row(names) for t in pareto]
    json_path = out_dir / "pareto.json"
    _write_json(json_path, pareto_records)
    files.append(json_path)

    if complete:
        png = out_dir / "pareto_front.png"
        plot_pareto_front(pareto_front_info(study, grid), png)
        files.append(png)

    comparison = None
    grid_has_points = grid is not None and any(is_feasible(t) for t in complete_trials(grid))
    if any(is_feasible(t) for t in complete) or grid_has_points:
        comparison = compare_studies([study], grid)
        hv_json = out_dir / "hypervolume.json"
        _write_json(hv_json, comparison.to_dict())
        files.append(hv_json)
        series = {study.study_name: np.asarray(comparison.studies[0].history)}
        target = None
        if comparison.grid is not None:
            series[f"grid ({comparison.grid.name})"] = np.asarray(comparison.grid.history)
            target = comparison.grid.final_hv
        png = out_dir / "hypervolume_history.png"
        plot_hypervolume_history(
            series,
            png,
            title=f"hypervolume of the feasible trials, reference {_fmt(comparison.reference)}",
            target=target,
        )
        files.append(png)
        # Against CPU seconds of every trial, stopped and failed ones included: what a
        # multi-fidelity study is judged by.
        png = out_dir / "hypervolume_cpu.png"
        cpu = {study.study_name: np.asarray(comparison.studies[0].cpu_history)}
        if comparison.grid is not None:
            cpu[f"grid ({comparison.grid.name})"] = np.asarray(comparison.grid.cpu_history)
        plot_hypervolume_history(
            series,
            png,
            "CPU seconds (every trial, stopped ones included)",
            title=f"hypervolume against CPU time, reference {_fmt(comparison.reference)}",
            target=target,
            x=cpu,
        )
        files.append(png)

    pruning = pruning_summary(study)
    if pruning is not None:
        path = out_dir / "pruning.json"
        _write_json(path, pruning.to_dict())
        files.append(path)

    per_objective = {
        name: importance(study, i, evaluator=evaluator) for i, name in enumerate(names)
    }
    per_objective = {k: v for k, v in per_objective.items() if v}  # {}: too few trials
    if per_objective:
        classes = param_classes(study)
        per_class = {k: importance_by_class(v, classes) for k, v in per_objective.items()}
        png = out_dir / "importance.png"
        label = "PED-ANOVA" if evaluator == "ped-anova" else "fANOVA"
        plot_importance(
            per_objective,
            per_class,
            png,
            classes=classes,
            title=f"parameter importance ({label}, normalized per objective)",
        )
        files.append(png)

    png = out_dir / "breakdown.png"
    shown = None
    if breakdown_trial is not None:
        shown = _breakdown_figure(study, breakdown_trial, trial_number is not None, png)
    if shown is not None:
        files.append(png)

    for name in REPORT_FILES - {p.name for p in files}:
        (out_dir / name).unlink(missing_ok=True)  # a figure from an older report would mislead

    final = comparison.studies[0].final_hv if comparison else None
    return Report(
        study_name=study.study_name,
        objective_names=names,
        directions=[d.name.lower() for d in study.directions],
        pareto=pareto,
        n_trials=len(all_trials),
        n_complete=len(complete),
        files=files,
        constrained=any(t.constraints for t in complete),
        n_feasible=sum(is_feasible(t) for t in complete),
        pareto_records=pareto_records,
        hypervolume=final,
        reference=list(comparison.reference) if comparison else None,
        comparison=comparison,
        breakdown_trial=shown,
        pruning=pruning,
        n_variants=sum(variant_of(t.user_attrs) is not None for t in complete),
        n_variants_on_front=sum(
            r.result is not None and r.result.run.variant_of is not None for r in pareto
        ),
    )


def _fmt(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in values) + ")"
