"""Report figures (matplotlib, Agg backend: no screen needed).

Every figure takes plain data that `nmhpo.analysis` computes (arrays, dicts, `FrontInfo`):
analysis computes, plots only render, so they can be drawn and tested without a study.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo.registry import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nmhpo.analysis import FrontInfo

#: One colour per parameter class, the same in every figure.
CLASS_COLORS: dict[str, str] = {
    "encoding": "tab:purple",
    "training": "tab:blue",
    "neuron": "tab:green",
    "architecture": "tab:orange",
    "hardware": "tab:red",
    "other": "tab:gray",
}
#: Hatches that tell objectives apart in the per-class importance panel.
_HATCHES = ("", "//", "..", "xx", "\\\\", "oo")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)


def _label(name: str) -> str:
    metric = METRICS.get(name)
    if metric is None:
        return name
    return f"{name} ({metric.unit})" if metric.unit else name


def _use_log(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    positive = values[values > 0]
    return 0 < len(positive) == len(values) and positive.max() / positive.min() > 30


def _num(value: float) -> str:
    """A bar label: thousands separated in the everyday range, 3 significant digits."""
    if 100 <= abs(value) < 1e7:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _share(part: float, total: float) -> str:
    return f" ({100 * part / total:.3g}%)" if total > 0 else ""


def _class_color(cls: str) -> str:
    return CLASS_COLORS.get(cls, CLASS_COLORS["other"])


def plot_pareto_front(info: FrontInfo, path: Path) -> None:
    """Every completed trial, the Pareto set highlighted and joined, one panel per objective
    pair; a log axis where a metric spans more than ~1.5 decades (energy usually does).

    When the study has constraints, infeasible trials are drawn as crosses (they are never
    on the Pareto set). With a grid's front in ``info``, it is overlaid as a dashed line of
    hollow squares, so a reader sees how close the search came to the true front.
    """
    plt = _pyplot()
    names, values, feasible = info.names, info.values, info.feasible
    constrained, on_front, grid_front = info.constrained, info.on_front, info.grid_front
    grid_name = info.grid_name
    pairs = list(itertools.combinations(range(len(names)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 5), squeeze=False)
    for ax, (i, j) in zip(axes[0], pairs, strict=False):
        if i == j:  # single objective: value per trial
            numbers = info.numbers
            ax.plot(numbers[feasible], values[feasible, 0], "o", color="tab:blue", label="trials")
            if constrained and (~feasible).any():
                ax.plot(
                    numbers[~feasible],
                    values[~feasible, 0],
                    "x",
                    color="tab:orange",
                    label="infeasible (violates a constraint)",
                )
            if len(grid_front):
                ax.axhline(grid_front[0, 0], ls="--", color="black", label="grid best")
            ax.legend(fontsize=8)
            ax.set_xlabel("trial")
            ax.set_ylabel(_label(names[0]))
            continue
        dominated = ~on_front & feasible
        ax.scatter(
            values[dominated, j],
            values[dominated, i],
            s=22,
            color="0.65",
            label="feasible, dominated" if constrained else "dominated trials",
        )
        if constrained and (~feasible).any():
            ax.scatter(
                values[~feasible, j],
                values[~feasible, i],
                s=30,
                marker="x",
                color="tab:orange",
                label=f"infeasible (violates a constraint): {int((~feasible).sum())}",
            )
        # With 3+ objectives a 2-D projection of the front is not a staircase: points only.
        two = len(names) == 2
        step = "steps-post" if two else "default"
        if len(grid_front):
            order = np.argsort(grid_front[:, j])
            ax.plot(
                grid_front[order, j],
                grid_front[order, i],
                "--s" if two else "s",
                color="black",
                mfc="none",
                ms=7,
                lw=1,
                drawstyle=step,
                label=f"grid Pareto set ({grid_name}): {len(grid_front)}",
            )
        front = values[on_front]
        order = np.argsort(front[:, j])
        ax.plot(
            front[order, j],
            front[order, i],
            "-o" if two else "o",
            color="tab:red",
            ms=6,
            drawstyle=step,
            label=f"Pareto set: {len(front)}",
        )
        for number, v in zip(info.numbers[on_front], front, strict=False):
            ax.annotate(
                str(number), (v[j], v[i]), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
        ax.set_xlabel(_label(names[j]))
        ax.set_ylabel(_label(names[i]))
        both = np.concatenate([values, grid_front])
        if _use_log(both[:, j]):
            ax.set_xscale("log")
        if _use_log(both[:, i]):
            ax.set_yscale("log")
        arrows = ["higher" if info.directions[k] == "maximize" else "lower" for k in (j, i)]
        ax.set_title(
            f"{names[i]} vs {names[j]} (better: x {arrows[0]}, y {arrows[1]})", fontsize=9
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    feasible_note = f", {int(feasible.sum())} feasible" if constrained else ""
    fig.suptitle(
        f"study {info.study_name}\n{len(values)} completed trials{feasible_note}, "
        f"{int(on_front.sum())} on the Pareto set",
        fontsize=11,
    )
    fig.tight_layout()
    _save(fig, path)


def plot_hypervolume_history(
    series: Mapping[str, np.ndarray],
    path: Path,
    xlabel: str = "completed trials",
    *,
    title: str = "hypervolume of the feasible trials",
    target: float | None = None,
    x: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Hypervolume after each completed trial, one step line per study.

    Args:
        series: ``{label: hv}``, ``hv[k-1]`` being the hypervolume after ``k`` trials; all
            must share one reference point or the lines do not compare.
        path: PNG to write.
        xlabel: What the x axis counts.
        title: Figure title (say which reference point was used).
        target: The grid's hypervolume: drawn as the 100% line, with a right-hand axis in
            percent of it.
        x: Per study, the x value of each point (e.g. cumulative CPU seconds) instead of the
            number of completed trials.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = itertools.cycle(["-", "--", "-.", ":"])
    for name, hv in series.items():
        hv = np.asarray(hv, dtype=float)
        if len(hv) == 0:
            continue
        ax.step(
            np.asarray(x[name], dtype=float) if x is not None else np.arange(1, len(hv) + 1),
            hv,
            where="post",
            lw=1.8,
            ls=next(styles),  # studies that share a prefix of trials still show apart
            label=f"{name}: final {hv[-1]:.4g} after {len(hv)}",
        )
    if target is not None and target > 0:
        ax.axhline(target, ls="--", color="black", lw=1, label=f"grid hypervolume {target:.4g}")
        for frac in (0.95, 0.99):
            ax.axhline(frac * target, ls=":", color="0.5", lw=0.8)
        secondary = ax.secondary_yaxis(
            "right", functions=(lambda y: 100 * y / target, lambda p: p * target / 100)
        )
        secondary.set_ylabel("% of the grid's hypervolume (dotted: 95%, 99%)")
    lengths = [len(hv) for hv in series.values() if len(hv)]
    spans = [float(np.max(v)) for v in (x or {}).values() if len(v)] if x is not None else lengths
    if spans and min(spans) > 0 and max(spans) > 4 * min(spans):
        # A 400-trial grid beside a 60-trial search: a log axis keeps the search's early
        # climb (what a sampler comparison is about) readable.
        ax.set_xscale("log")
        xlabel += " (log scale)"
    else:
        ax.set_xlim(left=0)
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("hypervolume (product of objective units)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    _save(fig, path)


def plot_importance(
    per_objective: Mapping[str, Mapping[str, float]],
    per_class: Mapping[str, Mapping[str, float]],
    path: Path,
    *,
    classes: Mapping[str, str] | None = None,
    title: str = "parameter importance (PED-ANOVA, normalized per objective)",
) -> None:
    """One bar panel per objective (parameters, most important on top, coloured by class)
    and one panel of the same importances summed per class (hatched per objective).

    Args:
        per_objective: ``{objective: {param: importance}}``.
        per_class: ``{objective: {class: importance}}`` (`nmhpo.analysis.importance_by_class`).
        path: PNG to write.
        classes: ``{param: class}``, for the bar colours (grey without it).
        title: Figure title (name the evaluator).
    """
    plt = _pyplot()
    from matplotlib.patches import Patch

    classes = classes or {}
    n_params = max((len(v) for v in per_objective.values()), default=1)
    class_names = list(dict.fromkeys(c for v in per_class.values() for c in v))
    n_panels = len(per_objective) + 1
    height = max(3.5, 0.32 * max(n_params, len(class_names) * len(per_objective)) + 1.8)
    fig, axes = plt.subplots(1, n_panels, figsize=(4.6 * n_panels, height), squeeze=False)
    for ax, (objective, imp) in zip(axes[0], per_objective.items(), strict=False):
        names = list(imp)
        shares = np.array([imp[n] for n in names], dtype=float)
        y = np.arange(len(names))
        colors = [_class_color(classes.get(n, "other")) for n in names]
        ax.barh(y, shares, color=colors)
        for k, share in enumerate(shares):
            ax.text(share, k, f" {share:.2f}", va="center", fontsize=7)
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(1e-9, shares.max(initial=0.0)) * 1.25)
        ax.set_xlabel("importance (share of the total)")
        ax.set_title(_label(objective), fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    used = list(dict.fromkeys(classes.get(n, "other") for v in per_objective.values() for n in v))
    axes[0][0].legend(
        handles=[Patch(color=_class_color(c), label=c) for c in used],
        fontsize=7,
        loc="lower right",
        title="class",
        title_fontsize=7,
    )
    ax = axes[0][-1]
    n_obj = max(1, len(per_class))
    width = 0.8 / n_obj
    y = np.arange(len(class_names))
    for k, by_class in enumerate(per_class.values()):
        shares = np.array([by_class.get(c, 0.0) for c in class_names], dtype=float)
        y_k = y - 0.4 + width * (k + 0.5)
        for y_bar, share in zip(y_k, shares, strict=True):
            ax.text(share, y_bar, f" {share:.2f}", va="center", fontsize=7)
        ax.barh(
            y_k,
            shares,
            height=width,
            color=[_class_color(c) for c in class_names],
            hatch=_HATCHES[k % len(_HATCHES)],
            edgecolor="black",
            lw=0.5,
        )
    ax.set_yticks(y, class_names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("importance summed over the class's parameters")
    ax.set_title("by parameter class", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(
        handles=[
            Patch(facecolor="white", edgecolor="black", hatch=_HATCHES[k % len(_HATCHES)], label=o)
            for k, o in enumerate(per_class)
        ],
        fontsize=7,
        loc="lower right",
        title="objective",
        title_fontsize=7,
    )
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def _compact_ticks(ax: Any) -> None:
    """At most four x ticks in engineering notation (150k, not 150000): six-digit areas in
    a narrow panel ran together into one unreadable label."""
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))


def _breakdown_panel(ax: Any, parts: Mapping[str, float], unit: str, what: str) -> None:
    shown = {k: float(v) for k, v in parts.items() if float(v) != 0.0}
    if not shown:
        ax.text(0.5, 0.5, f"no {what} breakdown recorded", ha="center", va="center")
        ax.set_axis_off()
        return
    names = sorted(shown, key=lambda k: -shown[k])
    vals = np.array([shown[n] for n in names])
    total = vals.sum()
    y = np.arange(len(names))
    ax.barh(y, vals, color="tab:blue" if what == "energy" else "tab:green")
    for k, v in enumerate(vals):
        ax.text(v, k, f" {_num(v)}{_share(v, total)}", va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, vals.max() * 1.4)
    _compact_ticks(ax)
    ax.set_xlabel(f"{what} ({unit})")
    hidden = len(parts) - len(shown)
    note = f"; {hidden} at 0 not shown" if hidden else ""
    ax.set_title(f"{what} by component: total {_num(total)} {unit}{note}", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)


def plot_breakdown(
    energy: Mapping[str, float],
    area: Mapping[str, float],
    path: Path,
    title: str,
    *,
    by_layer: Sequence[float] | None = None,
) -> None:
    """Where one design's energy per inference and chip area go, component by component
    (largest on top, each with its share), plus the energy per network layer when given.

    Args:
        energy: ``{component: pJ}`` per inference (the trial's ``breakdown.energy_pj``).
        area: ``{component: um^2}`` (``breakdown.area_um2``).
        path: PNG to write.
        title: Figure title (name the trial and its objective values).
        by_layer: Energy per crossbar layer in pJ (``breakdown.energy_by_layer_pj``).
    """
    plt = _pyplot()
    layers = list(by_layer or [])
    n_panels = 3 if layers else 2
    n_rows = max(len(energy), len(area), len(layers), 3)
    fig, axes = plt.subplots(
        1, n_panels, figsize=(5.2 * n_panels, 0.32 * n_rows + 2.2), squeeze=False
    )
    _breakdown_panel(axes[0][0], energy, "pJ", "energy")
    _breakdown_panel(axes[0][1], area, "um^2", "area")
    if layers:
        ax = axes[0][2]
        vals = np.asarray(layers, dtype=float)
        y = np.arange(len(vals))
        ax.barh(y, vals, color="tab:purple")
        total = vals.sum()
        for k, v in enumerate(vals):
            ax.text(v, k, f" {_num(v)}{_share(v, total)}", va="center", fontsize=7)
        ax.set_yticks(y, [f"layer {k}" for k in range(len(vals))], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max(vals.max(initial=0.0), 1e-12) * 1.4)
        _compact_ticks(ax)
        ax.set_xlabel("energy (pJ)")
        ax.set_title("energy by crossbar layer", fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)
