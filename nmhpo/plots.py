"""Report figures (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nmhpo.registry import METRICS

if TYPE_CHECKING:
    import optuna


def _label(name: str) -> str:
    metric = METRICS.get(name)
    if metric is None:
        return name
    return f"{name} ({metric.unit})" if metric.unit else name


def _use_log(values: np.ndarray) -> bool:
    positive = values[values > 0]
    return len(positive) == len(values) and positive.max() / positive.min() > 30


def plot_pareto_front(study: optuna.Study, path: Path) -> None:
    """Every completed trial, the Pareto set highlighted and joined, one panel per objective
    pair; a log axis where a metric spans more than ~1.5 decades (energy usually does)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    from nmhpo.analysis import objective_names

    names = objective_names(study)
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    values = np.array([t.values for t in trials], dtype=float)
    best = {t.number for t in study.best_trials}
    on_front = np.array([t.number in best for t in trials])
    pairs = list(itertools.combinations(range(len(names)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.5 * len(pairs), 4.5), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs, strict=False):
        if i == j:  # single objective: value per trial
            ax.plot([t.number for t in trials], values[:, 0], "o", color="tab:blue")
            ax.set_xlabel("trial")
            ax.set_ylabel(_label(names[0]))
            continue
        ax.scatter(
            values[~on_front, j],
            values[~on_front, i],
            s=22,
            color="0.65",
            label="dominated trials",
        )
        front = values[on_front]
        order = np.argsort(front[:, j])
        ax.plot(
            front[order, j],
            front[order, i],
            "-o",
            color="tab:red",
            ms=6,
            drawstyle="steps-post" if len(names) == 2 else "default",
            label="Pareto set",
        )
        for t, v in zip(np.array(trials, dtype=object)[on_front], front, strict=False):
            ax.annotate(
                str(t.number), (v[j], v[i]), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
        ax.set_xlabel(_label(names[j]))
        ax.set_ylabel(_label(names[i]))
        if _use_log(values[:, j]):
            ax.set_xscale("log")
        if _use_log(values[:, i]):
            ax.set_yscale("log")
        arrows = [
            "higher" if study.directions[k] == StudyDirection.MAXIMIZE else "lower" for k in (j, i)
        ]
        ax.set_title(
            f"{names[i]} vs {names[j]} (better: x {arrows[0]}, y {arrows[1]})", fontsize=9
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(
        f"study {study.study_name}: {len(trials)} completed trials, "
        f"{int(on_front.sum())} on the Pareto set"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
