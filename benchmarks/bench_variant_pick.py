"""Which hardware points are worth a variant? ``variant_pick = "front"`` against the random
draw, on networks trained once and scored at every point of their hardware space.

Per task, ``--networks`` software points drawn at random from the study's software space are
trained once (20 epochs, as in bench_multifidelity.py) and scored by nmhpo's own trial path
(``evaluate_point``, crossbar-aware inference and pricing) at every point of the searched
hardware space: the ground truth. Two spaces: the study's own (crossbar size, ADC and weight
bits, all read by inference) and the same with ``device`` and ``tech_node`` searched too
(priced-only knobs: the case where the front pick can drop points for sure).

Then for every network and every point ``h0`` of the space (the point the sampler chose),
each strategy picks ``K`` variants knowing what that trial knows (the activity measured at
``h0``):

- ``random``: `nmhpo.variants.hardware_variants` (5 seeds per ``h0``);
- ``front``: `nmhpo.variants.pick_variants`;
- ``oracle``: the ``K`` points of largest greedy hypervolume gain, given every point's true
  accuracy (an upper bound no strategy without inference can reach).

Figures (hypervolume with energy in log10, as bench_multifidelity.py; reference point: the
worst value of each objective over all the task's points):

- ``hv_share``: hypervolume of ``h0`` and its variants over that of all the network's points,
  mean over networks and ``h0``;
- ``on_front``: the share of variants on their network's own front;
- ``study_hv_share``: one ``h0`` per network at random, the union of every network's ``h0``
  and variants over the union of all points (what a study of these networks would hold);
  mean over 200 draws;
- ``same_accuracy_within_group``: the largest accuracy difference between points that share
  their inference knobs (0 if the front pick's premise holds).

Writes benchmarks/results/variant_pick.json, and each ground truth to
benchmarks/results/variant-pick-truth/ (``--analyse-only`` reads them back). Run:
    .venv/bin/python benchmarks/bench_variant_pick.py [--tasks digits20 bragg events20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TRUTH = RESULTS / "variant-pick-truth"
#: (study file, epochs, spaces): bench_multifidelity.py's tasks; events' extended space is
#: left out (six times its 42 points at 0.5 s an inference).
TASKS: dict[str, tuple[str, int | None, tuple[str, ...]]] = {
    "digits20": ("studies/quickstart.toml", 20, ("study", "study+device+node")),
    "bragg": ("studies/bragg.toml", None, ("study", "study+device+node")),
    "events20": ("studies/events.toml", 20, ("study",)),
}
EXTRA = {
    "device": {"type": "categorical", "choices": ["rram", "sram"]},
    "tech_node": {"type": "categorical", "choices": [22, 45, 65]},
}
K = 4
RANDOM_SEEDS = 5
STUDY_DRAWS = 200


def _config(task: str, space: str, folder: Path) -> Any:
    from nmhpo.config import StudyConfig, load_config

    source, epochs, _ = TASKS[task]
    base = load_config(ROOT / source)
    data = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["study"].update(
        name=f"{task}-pick",
        storage=f"sqlite:///{folder / 'study.db'}",
        torch_threads=1,
        device="cpu",
        hardware_variants=K,
        variant_pick="front",
    )
    if epochs is not None:
        data["space"]["software"]["epochs"] = epochs
    if space != "study":
        data["space"]["hardware"].update(EXTRA)
    return StudyConfig.model_validate({**data, "path": base.path})


def _levels(cfg: Any) -> dict[str, list[Any]]:
    from nmhpo.variants import _levels, searched_hardware

    out = {}
    for name, spec in searched_hardware(cfg).items():
        levels = _levels(spec)
        if levels is None:
            raise ValueError(f"{name}: the benchmark needs a finite hardware space")
        out[name] = levels
    return out


def ground_truth(task: str, space: str, n_networks: int, seed: int) -> dict[str, Any]:
    """Every network scored at every hardware point, through nmhpo's trial path."""
    import optuna
    import torch

    from nmhpo.objective import evaluate_point
    from nmhpo.snn import ModelStore
    from nmhpo.space import suggest
    from nmhpo.study import quiet_optuna

    quiet_optuna()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(task, space, Path(tmp))
        store = ModelStore(Path(tmp) / "models")
        levels = _levels(cfg)
        points = [
            dict(zip(levels, values, strict=True))
            for values in itertools.product(*levels.values())
        ]
        draw = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        names = [o.name for o in cfg.study.objectives]
        networks = []
        start = time.process_time()
        for _ in range(n_networks):
            software, _ = suggest(draw.ask(), cfg)
            values, activity, layers, num_steps = [], [], None, int(software["num_steps"])
            for point in points:
                result = evaluate_point(cfg, software, {**cfg.fixed_hardware(), **point}, store)
                values.append([float(result.metrics[n]) for n in names])
                activity.append(list(result.point.activity))
                layers = [list(shape) for shape in result.point.layers]
            networks.append(
                {
                    "software": {k: v for k, v in software.items() if k in cfg.searched()},
                    "values": values,
                    "activity": activity,
                    "layers": layers,
                    "num_steps": num_steps,
                }
            )
        return {
            "task": task,
            "space": space,
            "objectives": [[o.name, o.resolved_direction] for o in cfg.study.objectives],
            "levels": levels,
            "points": points,
            "networks": networks,
            "cpu_s": time.process_time() - start,
        }


def _loss(values: np.ndarray, objectives: list[list[str]]) -> np.ndarray:
    """Objectives as losses, the priced ones (spanning decades) in log10."""
    from nmhpo.registry import PRICED_METRICS

    out = np.array(values, dtype=np.float64)
    for j, (name, direction) in enumerate(objectives):
        if direction == "maximize":
            out[:, j] = -out[:, j]
        elif name in PRICED_METRICS:
            out[:, j] = np.log10(out[:, j])
    return out


def _hv(loss: np.ndarray, ref: np.ndarray) -> float:
    """2-D hypervolume of the points below ``ref`` (both objectives minimized)."""
    pts = loss[np.all(loss < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    pts = pts[np.lexsort((pts[:, 1], pts[:, 0]))]
    area, best = 0.0, ref[1]
    for x, y in pts:
        if y < best:
            area += (ref[0] - x) * (best - y)
            best = y
    return area


def _front_mask(loss: np.ndarray) -> np.ndarray:
    n = len(loss)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        others = np.all(loss <= loss[i], axis=1) & np.any(loss < loss[i], axis=1)
        mask[i] = not others.any()
    return mask


def analyse(truth: dict[str, Any]) -> dict[str, Any]:
    """Every strategy's picks from every network's every own point, and the figures."""
    from nmhpo.crossbar._knobs import KNOB_TABLE
    from nmhpo.variants import hardware_variants, pick_variants

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(truth["task"], truth["space"], Path(tmp))
    points = truth["points"]
    index = {tuple(p.values()): i for i, p in enumerate(points)}
    losses = [_loss(np.array(n["values"]), truth["objectives"]) for n in truth["networks"]]
    every = np.vstack(losses)
    ref = every.max(axis=0) + 1e-9
    inference = [k for k in truth["levels"] if KNOB_TABLE[k].inference]

    spread = 0.0  # same network, same inference knobs: accuracy must not move
    for net in truth["networks"]:
        groups: dict[tuple[Any, ...], list[float]] = {}
        for p, v in zip(points, net["values"], strict=True):
            groups.setdefault(tuple(p[k] for k in inference), []).append(v[0])
        spread = max(spread, *(max(g) - min(g) for g in groups.values()))

    def picks(net: dict[str, Any], own: int, strategy: str, seed: int) -> list[int]:
        params = {**net["software"], **points[own]}
        if strategy == "random":
            chosen = hardware_variants(cfg, params, K, (seed, own))
        elif strategy == "front":
            chosen = pick_variants(
                cfg,
                params,
                K,
                (seed, own),
                layers=net["layers"],
                activity=net["activity"][own],
                num_steps=net["num_steps"],
            )
        else:
            raise ValueError(strategy)
        return [index[tuple(c[k] for k in truth["levels"])] for c in chosen]

    def oracle(loss: np.ndarray, own: int) -> list[int]:
        chosen = [own]
        for _ in range(K):
            base = _hv(loss[chosen], ref)
            gains = [
                (_hv(loss[[*chosen, j]], ref) - base, -j)
                for j in range(len(loss))
                if j not in chosen
            ]
            chosen.append(-max(gains)[1])
        return chosen[1:]

    strategies = ("random", "front", "oracle")
    hv_share: dict[str, list[float]] = {s: [] for s in strategies}
    on_front: dict[str, list[float]] = {s: [] for s in strategies}
    n_picked: dict[str, list[int]] = {s: [] for s in strategies}
    cache: dict[tuple[str, int, int, int], list[int]] = {}
    pick_s = {"random": 0.0, "front": 0.0}
    for i, (net, loss) in enumerate(zip(truth["networks"], losses, strict=True)):
        whole = _hv(loss, ref)
        front = _front_mask(loss)
        for own in range(len(points)):
            for strategy in strategies:
                seeds = range(RANDOM_SEEDS) if strategy == "random" else range(1)
                for seed in seeds:
                    start = time.perf_counter()
                    chosen = (
                        oracle(loss, own)
                        if strategy == "oracle"
                        else picks(net, own, strategy, seed)
                    )
                    if strategy in pick_s:
                        pick_s[strategy] += time.perf_counter() - start
                    cache[(strategy, i, own, seed)] = chosen
                    hv_share[strategy].append(_hv(loss[[own, *chosen]], ref) / whole)
                    n_picked[strategy].append(len(chosen))
                    if chosen:
                        on_front[strategy].append(float(np.mean(front[chosen])))

    rng = np.random.default_rng(0)
    whole_study = _hv(every, ref)
    study_share: dict[str, list[float]] = {s: [] for s in strategies}
    for _ in range(STUDY_DRAWS):
        owns = rng.integers(len(points), size=len(losses))
        seed = int(rng.integers(RANDOM_SEEDS))
        for strategy in strategies:
            held = [
                loss[[own, *cache[(strategy, i, own, seed if strategy == "random" else 0)]]]
                for i, (loss, own) in enumerate(zip(losses, owns, strict=True))
            ]
            study_share[strategy].append(_hv(np.vstack(held), ref) / whole_study)
    calls = {s: len(hv_share[s]) for s in pick_s}
    return {
        "k": K,
        "n_networks": len(losses),
        "n_points": len(points),
        "hv_share": {s: float(np.mean(v)) for s, v in hv_share.items()},
        "on_front": {s: float(np.mean(v)) if v else None for s, v in on_front.items()},
        "variants_per_network": {s: float(np.mean(v)) for s, v in n_picked.items()},
        "study_hv_share": {s: float(np.mean(v)) for s, v in study_share.items()},
        "study_hv_share_p10": {s: float(np.percentile(v, 10)) for s, v in study_share.items()},
        "pick_ms_per_call": {s: 1e3 * pick_s[s] / calls[s] for s in pick_s},
        "same_accuracy_within_group": spread,
        "front_points_per_network": float(np.mean([_front_mask(x).sum() for x in losses])),
        "ground_truth_cpu_s": truth["cpu_s"],
    }


def _job(args: tuple[str, str, int, int, bool]) -> dict[str, Any]:
    """One task and space: its ground truth (computed, or read back with ``--analyse-only``:
    the strategies' figures change with nmhpo's pick, the ground truth does not), analysed."""
    task, space, n_networks, seed, analyse_only = args
    path = TRUTH / f"{task}-{space}-{n_networks}-{seed}.json"
    if analyse_only:
        truth = json.loads(path.read_text())
    else:
        truth = ground_truth(task, space, n_networks, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(truth) + "\n")
    return {"task": task, "space": space, **analyse(truth)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--networks", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--analyse-only", action="store_true", help="reuse the ground truth")
    args = parser.parse_args()
    jobs = [
        (task, space, args.networks, args.seed, args.analyse_only)
        for task in args.tasks
        for space in TASKS[task][2]
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(_job, jobs))
    for r in results:
        print(
            f"{r['task']:9s} {r['space']:18s} hv_share "
            + " ".join(f"{s}={v:.3f}" for s, v in r["hv_share"].items())
            + " | study "
            + " ".join(f"{s}={v:.3f}" for s, v in r["study_hv_share"].items())
            + " | on_front "
            + " ".join(f"{s}={v:.2f}" for s, v in r["on_front"].items() if v is not None)
        )
    path = write_result(
        "variant_pick",
        {
            "description": __doc__.splitlines()[0],
            "k": K,
            "networks": args.networks,
            "seed": args.seed,
            "results": results,
            "math_note": "hypervolume in 2-D, energy-like objectives in log10",
        },
    )
    print(path)


if __name__ == "__main__":
    main()
