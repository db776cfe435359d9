"""Hardware variants: the other hardware points at which a trained network is scored.

A variant costs one inference and one pricing, and counts in ``n_trials``, so its point is
worth choosing. Two facts make part of the choice certain before any inference: a network's
accuracy (and every other metric the crossbar model does not set) depends only on the
hardware knobs inference reads (`Knob.inference`: crossbar size, ADC, weight and cell bits,
conductance noise; under float inference, on weight bits alone, see `unpriced_knobs`), and
the priced metrics (energy, latency, area) of every candidate are known in about a
millisecond from the activity the trial measured. So among points that share
their inference knobs, one that costs more on every priced objective than another is
dominated whatever the network scores there: it is never worth an inference. What remains
is spread along the first priced objective, since which of those points the front keeps is
what the inferences are for (benchmarks/bench_variant_pick.py measures the pick against the
random draw on networks scored at every point of their space).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo.config import CategoricalParam, FloatParam, IntParam, SearchedParam, StudyConfig
from nmhpo.crossbar import KNOBS, Layer, Network, buildable, evaluate
from nmhpo.crossbar._knobs import KNOB_TABLE
from nmhpo.registry import NETWORK_METRICS, PRICED_METRICS, SOFTWARE

if TYPE_CHECKING:
    from nmhpo.constraints import Constraint

#: Candidates priced per trial: the whole hardware space when it is no larger, else a
#: random sample of it (pricing them all takes about a millisecond).
MAX_CANDIDATES = 512


def priced_metrics(price: Mapping[str, Any]) -> dict[str, Any]:
    """The study's priced metrics from the cost model's figures, for one design (numbers)
    or many (arrays): the one place their units are derived."""
    energy, latency, area = price["energy_pj"], price["latency_ns"], price["area_um2"]
    return {
        "energy_pj": energy,
        "energy_uj": energy * 1e-6,
        "latency_ns": latency,
        "latency_us": latency * 1e-3,
        "area_um2": area,
        "area_mm2": area * 1e-6,
        "edp_pj_ns": energy * latency,
        "n_pe": price["n_pe"] * 1.0,
        "n_tiles": price["n_tiles"] * 1.0,
    }


def searched_hardware(cfg: StudyConfig) -> dict[str, SearchedParam]:
    return {k: spec for k, spec in cfg.searched().items() if k not in SOFTWARE}


def used_metrics(cfg: StudyConfig) -> set[str]:
    """The metrics a study judges a trial by: its objectives and its constraints' metrics."""
    return {o.name for o in cfg.study.objectives} | {c.metric for c in cfg.parsed_constraints()}


def unpriced_knobs(cfg: StudyConfig) -> list[str]:
    """Searched hardware knobs that move a metric the study uses and the cost model does not
    set: inference's (accuracy, activity, ...), or under float inference ``weight_bits``
    when the crossbar footprint is used. Points equal in these score every such metric the
    same."""
    hardware = searched_hardware(cfg)
    if cfg.hardware.inference == "crossbar":
        return [k for k in hardware if KNOB_TABLE[k].inference]
    footprint = "footprint_bytes_crossbar" in used_metrics(cfg)
    return [k for k in hardware if k == "weight_bits" and footprint]


def moving_knobs(cfg: StudyConfig) -> list[str]:
    """Searched hardware knobs that can change an objective or a constraint's metric."""
    priced = bool(used_metrics(cfg) & set(PRICED_METRICS))
    unpriced = unpriced_knobs(cfg)
    return [
        k for k in searched_hardware(cfg) if k in unpriced or (priced and KNOB_TABLE[k].priced)
    ]


def hardware_variants(
    cfg: StudyConfig, params: Mapping[str, Any], n: int, seed: Sequence[int]
) -> list[dict[str, Any]]:
    """Up to ``n`` other points of the searched hardware space drawn at random, each with the
    software values of ``params`` (a trial's parameters).

    Drawn uniformly (log-uniformly for a log range), not by the sampler: with the software
    values fixed, a relative sampler's proposal would be for another software point, and
    asking it costs a model fit per trial. Distinct from each other and from ``params``' own
    hardware point; fewer than ``n`` when the hardware space is smaller.
    """
    hardware = searched_hardware(cfg)
    if n <= 0 or not hardware:
        return []
    rng = np.random.default_rng(list(seed))
    seen = {_key(hardware, params)}
    out: list[dict[str, Any]] = []
    for _ in range(50 * n):
        point = dict(zip(hardware, (_draw(spec, rng) for spec in hardware.values()), strict=True))
        key = _key(hardware, point)
        if key not in seen:
            seen.add(key)
            out.append({**params, **point})
            if len(out) == n:
                break
    return out


def pick_variants(
    cfg: StudyConfig,
    params: Mapping[str, Any],
    n: int,
    seed: Sequence[int],
    *,
    layers: Sequence[Sequence[int]],
    activity: Sequence[float],
    num_steps: int,
    constraints: Sequence[Constraint] = (),
    metrics: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The ``n`` variants of a trained network, by ``[study] variant_pick``.

    ``"front"``: of the candidates (see `MAX_CANDIDATES`), dropped are those that break a
    constraint on a priced metric, those dominated on the study's priced objectives by
    another point of their group (points sharing the knobs that move any other metric the
    study uses, `unpriced_knobs`), the trial's own point included, and, when the trial's own
    ``metrics`` break a constraint on another metric, its whole group (or every point, for a
    metric the network alone sets). The rest are ranked along the first priced objective and
    one is drawn from each of ``n`` equal strata (without a priced objective every point of
    a group ties and its first in enumeration order remains; which groups get a variant is
    then drawn at random). Fewer than ``n`` when fewer remain.

    Candidates are priced with the activity measured at the trial's own point (with
    ``repeats`` > 1, its first training seed's). Within the own group that is the activity
    they would measure, so what is dropped there could not be on the front; in another
    group activity differs a little, which can reorder energies close to each other.

    ``"random"``: `hardware_variants`.
    """
    if n <= 0:
        return []
    if cfg.study.variant_pick == "random":
        return hardware_variants(cfg, params, n, seed)
    hardware = searched_hardware(cfg)
    if not hardware:
        return []
    points = [{k: params[k] for k in hardware}, *_candidates(cfg, hardware, params, seed)]
    if len(points) == 1:
        return []
    priced = _price(cfg, points, layers, activity, num_steps)
    objectives = [o for o in cfg.study.objectives if o.name in PRICED_METRICS]
    cost = np.column_stack(
        [
            priced[o.name] if o.resolved_direction == "minimize" else -priced[o.name]
            for o in objectives
        ]
        or [np.zeros(len(points))]
    )
    feasible = ~np.isnan(priced["energy_pj"])  # (NaN: a design the model refuses)
    own_group_out = False
    for c in constraints:
        if c.metric in PRICED_METRICS:
            feasible &= np.array(
                [c.violation({c.metric: float(v)}) <= 0 for v in priced[c.metric]]
            )
        elif metrics is not None and c.metric in metrics and c.violation(metrics) > 0:
            if c.metric in NETWORK_METRICS:
                return []  # (every variant scores this network: none can meet it)
            own_group_out = True
    grouping = {k: hardware[k] for k in unpriced_knobs(cfg)}
    keys = [_key(grouping, point) for point in points]
    ids: dict[tuple[Any, ...], int] = {}
    group = np.array([ids.setdefault(k, len(ids)) for k in keys])
    alive = _undominated(cost, group, feasible)
    if own_group_out:
        alive &= group != group[0]
    alive[0] = False  # (the trial's own point: dominator, never a variant)
    keep = np.flatnonzero(alive).tolist()
    keep.sort(key=lambda i: (cost[i, 0], i))
    if len(keep) > n:
        # One at random from each of n equal strata by rank: spread like evenly spaced ranks
        # (bench_variant_pick: a larger share of each network's front than the random draw),
        # and not the same ranks for every network (a larger share of the study's front).
        rng = np.random.default_rng(list(seed))
        edges = [j * len(keep) // n for j in range(n + 1)]
        keep = [keep[int(rng.integers(edges[j], edges[j + 1]))] for j in range(n)]
    return [{**params, **points[i]} for i in keep]


def _undominated(cost: np.ndarray, group: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Feasible points no feasible point of their group dominates; of equal costs, the first
    (so the trial's own point, index 0, outranks its equals). One broadcast comparison of
    every pair: 513 points and 3 objectives are under a megabyte of booleans."""
    no_worse = np.all(cost[:, None, :] <= cost[None, :, :], axis=2)  # [j, i]: j no worse
    better = np.any(cost[:, None, :] < cost[None, :, :], axis=2)
    order = np.arange(len(cost))
    beaten = (
        no_worse
        & (better | (order[:, None] < order[None, :]))
        & (group[:, None] == group[None, :])
        & feasible[:, None]
    )
    np.fill_diagonal(beaten, False)
    return feasible & ~beaten.any(axis=0)


def _key(specs: Mapping[str, SearchedParam], point: Mapping[str, Any]) -> tuple[Any, ...]:
    """A point's values as compared: a stepped float by its step's index, since a sampler's
    value may sit a rounding error off ``low + i * step`` and is the same point."""
    out: list[Any] = []
    for name, spec in specs.items():
        value = point[name]
        if isinstance(spec, FloatParam) and spec.step is not None:
            value = round((value - spec.low) / spec.step)
        out.append(value)
    return tuple(out)


def _candidates(
    cfg: StudyConfig,
    hardware: Mapping[str, SearchedParam],
    params: Mapping[str, Any],
    seed: Sequence[int],
) -> list[dict[str, Any]]:
    """Every other point of the hardware space when it has at most `MAX_CANDIDATES`, else as
    many drawn at random; hardware values only."""
    levels = [_levels(spec) for spec in hardware.values()]
    if all(lv is not None for lv in levels) and math.prod(len(lv) for lv in levels if lv) <= (
        MAX_CANDIDATES + 1
    ):
        own = _key(hardware, params)
        points = (
            dict(zip(hardware, values, strict=True))
            for values in itertools.product(*(lv or [] for lv in levels))
        )
        return [p for p in points if _key(hardware, p) != own]
    return [
        {k: p[k] for k in hardware}
        for p in hardware_variants(cfg, params, MAX_CANDIDATES, (*seed, 1))
    ]


def _levels(spec: SearchedParam) -> list[Any] | None:
    """Every value of a parameter when it has finitely many (up to `MAX_CANDIDATES`)."""
    if isinstance(spec, CategoricalParam):
        return list(spec.choices)
    if isinstance(spec, IntParam):
        count = (spec.high - spec.low) // spec.step + 1
        return list(range(spec.low, spec.high + 1, spec.step)) if count <= MAX_CANDIDATES else None
    if isinstance(spec, FloatParam) and spec.step is not None:
        count = round((spec.high - spec.low) / spec.step) + 1
        if count <= MAX_CANDIDATES:
            return [min(spec.high, spec.low + spec.step * i) for i in range(count)]
    return None


def _price(
    cfg: StudyConfig,
    points: Sequence[Mapping[str, Any]],
    layers: Sequence[Sequence[int]],
    activity: Sequence[float],
    num_steps: int,
) -> dict[str, np.ndarray]:
    """The priced metrics of every point, in one vectorized call of the cost model; NaN for
    a point the model refuses (`buildable`), which no constraint or comparison keeps."""
    preset = cfg.preset()
    knobs: dict[str, Any] = {**preset.knobs, **cfg.fixed_hardware()}
    for name in points[0]:
        knobs[name] = np.array([p[name] for p in points])
    priced = {k: v for k, v in knobs.items() if k in KNOBS}
    n = len(points)
    ok = np.broadcast_to(buildable(preset, priced), (n,))
    figures = {
        name: np.full(n, np.nan)
        for name in ("energy_pj", "latency_ns", "area_um2", "n_pe", "n_tiles")
    }
    if ok.any():
        subset = {k: v[ok] if np.ndim(v) == 1 else v for k, v in priced.items()}
        result = evaluate(
            Network(tuple(Layer(*shape) for shape in layers)),
            preset,
            subset,
            num_steps=num_steps,
            activity=np.asarray(activity, dtype=np.float64),
            mode=cfg.hardware.mode,
        )
        for name, values in figures.items():
            values[ok] = np.broadcast_to(getattr(result, name), (int(ok.sum()),))
    return priced_metrics(figures)


def _draw(spec: SearchedParam, rng: Any) -> Any:
    """One value as Optuna's random sampler draws it: every step of a range equally likely
    (rounding a continuous draw would give both ends half weight), a log range uniform in
    the logarithm."""
    if isinstance(spec, CategoricalParam):
        return spec.choices[int(rng.integers(len(spec.choices)))]
    if isinstance(spec, IntParam):
        if spec.log:  # (Optuna's log-int rule: widen by half a step each side, round, clip)
            value = math.exp(rng.uniform(math.log(spec.low - 0.5), math.log(spec.high + 0.5)))
            return int(min(spec.high, max(spec.low, round(value))))
        return int(spec.low + spec.step * rng.integers((spec.high - spec.low) // spec.step + 1))
    if spec.step is not None:
        n = round((spec.high - spec.low) / spec.step)
        return float(min(spec.high, spec.low + spec.step * int(rng.integers(n + 1))))
    if spec.log:
        return float(math.exp(rng.uniform(math.log(spec.low), math.log(spec.high))))
    return float(rng.uniform(spec.low, spec.high))
