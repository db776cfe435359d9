"""Hardware variants: the other hardware points at which a trained network is scored.

A variant costs one inference and one pricing, and counts in ``n_trials``, so its point is
worth choosing. Two facts make part of the choice certain before any inference: a network's
accuracy (and every other metric the crossbar model does not set) depends only on the
hardware knobs inference reads (`Knob.inference`: crossbar size, ADC, weight and cell bits,
conductance noise), and the priced metrics (energy, latency, area) of every candidate are
known in microseconds from the activity the trial measured. So among points that share
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
from nmhpo.crossbar import KNOBS, Layer, Network, evaluate
from nmhpo.crossbar._knobs import KNOB_TABLE
from nmhpo.registry import SOFTWARE

if TYPE_CHECKING:
    from nmhpo.constraints import Constraint

#: Metrics the crossbar cost model alone sets (so they move with priced-only knobs too).
PRICED_METRICS: tuple[str, ...] = (
    "energy_pj",
    "energy_uj",
    "latency_ns",
    "latency_us",
    "area_um2",
    "area_mm2",
    "edp_pj_ns",
    "n_pe",
    "n_tiles",
)
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
    seen = {tuple(params.get(k) for k in hardware)}
    out: list[dict[str, Any]] = []
    for _ in range(50 * n):
        point = tuple(_draw(spec, rng) for spec in hardware.values())
        if point not in seen:
            seen.add(point)
            out.append({**params, **dict(zip(hardware, point, strict=True))})
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
) -> list[dict[str, Any]]:
    """The ``n`` variants of a trained network, by ``[study] variant_pick``.

    ``"front"``: of the candidates (see `MAX_CANDIDATES`), those that break a constraint on a
    priced metric, or that are dominated on the study's priced objectives by another point
    with the same inference knobs (the trial's own point included), are dropped; of the rest,
    ranked along the first priced objective, one at random from each of ``n`` equal strata
    (without a priced objective the rank is the candidates' order, so the pick is at random).
    Fewer than ``n`` when fewer remain: the others could not be on the front. The activity
    is the one measured at the trial's own point; at other inference knobs it differs a
    little, so dominance across them is not judged, only within a group (where it is exact
    for points that share the trial's own inference knobs).

    ``"random"``: `hardware_variants`.
    """
    if n <= 0:
        return []
    if cfg.study.variant_pick == "random":
        return hardware_variants(cfg, params, n, seed)
    hardware = searched_hardware(cfg)
    if not hardware:
        return []
    own = {k: params[k] for k in hardware}
    points = [own, *_candidates(cfg, hardware, params, seed)]
    if len(points) == 1:
        return []
    metrics = _price(cfg, points, layers, activity, num_steps)
    objectives = [o for o in cfg.study.objectives if o.name in PRICED_METRICS]
    cost = np.column_stack(
        [
            metrics[o.name] if o.resolved_direction == "minimize" else -metrics[o.name]
            for o in objectives
        ]
        or [np.zeros(len(points))]
    )
    feasible = np.ones(len(points), dtype=bool)
    for c in constraints:
        if c.metric in PRICED_METRICS:
            values = metrics[c.metric]
            feasible &= np.array([c.violation({c.metric: float(v)}) <= 0 for v in values])
    inference = [
        k for k in hardware if cfg.hardware.inference == "crossbar" and KNOB_TABLE[k].inference
    ]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, point in enumerate(points):
        if feasible[i]:
            groups.setdefault(tuple(point[k] for k in inference), []).append(i)
    keep = [i for members in groups.values() for i in _undominated(cost, members) if i != 0]
    keep.sort(key=lambda i: (cost[i, 0], i))
    if len(keep) > n:
        # One at random from each of n equal strata by rank: spread like evenly spaced ranks
        # (bench_variant_pick: a larger share of each network's front than the random draw),
        # and not the same ranks for every network (a larger share of the study's front).
        rng = np.random.default_rng(list(seed))
        edges = [j * len(keep) // n for j in range(n + 1)]
        keep = [keep[int(rng.integers(edges[j], edges[j + 1]))] for j in range(n)]
    return [{**params, **points[i]} for i in keep]


def _undominated(cost: np.ndarray, members: list[int]) -> list[int]:
    """Members no other member dominates; of points with equal costs, the first (so the
    trial's own point, index 0, outranks its equals)."""
    out = []
    for i in members:
        beaten = False
        for j in members:
            if j == i or np.any(cost[j] > cost[i]):
                continue
            if np.any(cost[j] < cost[i]) or j < i:
                beaten = True
                break
        if not beaten:
            out.append(i)
    return out


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
        own = tuple(params[k] for k in hardware)
        return [
            dict(zip(hardware, point, strict=True))
            for point in itertools.product(*(lv or [] for lv in levels))
            if point != own
        ]
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
    """The priced metrics of every point, in one vectorized call of the cost model."""
    preset = cfg.preset()
    knobs: dict[str, Any] = {**preset.knobs, **cfg.fixed_hardware()}
    for name in points[0]:
        knobs[name] = np.array([p[name] for p in points])
    priced = {k: v for k, v in knobs.items() if k in KNOBS}
    result = evaluate(
        Network(tuple(Layer(*shape) for shape in layers)),
        preset,
        priced,
        num_steps=num_steps,
        activity=np.asarray(activity, dtype=np.float64),
        mode=cfg.hardware.mode,
    )
    n = len(points)
    figures = {
        name: np.broadcast_to(np.asarray(getattr(result, name), dtype=np.float64), (n,))
        for name in ("energy_pj", "latency_ns", "area_um2", "n_pe", "n_tiles")
    }
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
