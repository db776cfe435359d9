"""One trial, end to end: parameters -> trained SNN -> crossbar price -> objective values."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo import __version__
from nmhpo.config import StudyConfig
from nmhpo.crossbar import KNOBS, Layer, Network, evaluate
from nmhpo.grid import skip_if_grid_point_taken
from nmhpo.record import DETAIL_KEY, Breakdown, Point, RunInfo, TrialResult
from nmhpo.space import suggest
from nmhpo.tasks import TaskData, prepare

if TYPE_CHECKING:
    import optuna

    from nmhpo.snn import ModelStore

logger = logging.getLogger(__name__)

#: Which machine and process ran a trial: with workers on many machines, the first thing to
#: know about a slow or failed trial.
_WORKER = f"{socket.gethostname()}:{os.getpid()}"


def training_seed(study_seed: int, software: dict[str, Any]) -> int:
    """A seed fixed by the study seed and the software point: the same point trains the same
    network in every trial and worker (what lets a later cache reuse it)."""
    blob = json.dumps({"seed": study_seed, "software": software}, sort_keys=True, default=str)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:4], "little")


@lru_cache(maxsize=4)
def _prepared(name: str, options_json: str, seed: int, path: str | None, cache: str) -> TaskData:
    from nmhpo.tasks import get_task

    info = get_task(name)
    options = info.options.model_validate_json(options_json)
    return prepare(
        info,
        options,
        seed,
        data_path=None if path is None else Path(path),
        cache_dir=Path(cache) / "data",
    )


def task_data(cfg: StudyConfig) -> TaskData:
    """The study's task data: generated once per study (disk cache) and once per process."""
    path = cfg.data_path()
    return _prepared(
        cfg.task.name,
        cfg.task_options().model_dump_json(),
        cfg.task.data_seed,
        None if path is None else str(path),
        str(cfg.cache_dir),
    )


def task_identity(cfg: StudyConfig) -> dict[str, Any]:
    """What decides the trained network besides the software point (part of the model-cache
    key): the task's data, including a user file's size and modification time, so an edited
    file is not served by networks trained on the old one; and nmhpo's version, whose trainer
    may differ."""
    path = cfg.data_path()
    stamp = None
    if path is not None and path.exists():
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
    return {
        "name": cfg.task.name,
        "options": cfg.task_options().model_dump(mode="json"),
        "data_seed": cfg.task.data_seed,
        "path": None if path is None else str(path),
        "file": stamp,
        "nmhpo": __version__,
    }


def evaluate_point(
    cfg: StudyConfig,
    software: dict[str, Any],
    hardware: dict[str, Any],
    store: ModelStore | None = None,
    *,
    device: str | None = None,
) -> TrialResult:
    """Every metric of one point: the mean over [study].repeats training seeds (the objective
    uses the means; their standard deviations are stored as ``std.<metric>``).

    Args:
        device: the torch device to train and infer on; default: [study].device resolved as
            for worker 0.
    """
    if device is None:
        from nmhpo.devices import device_for

        device = device_for(cfg.study.device, 0)
    runs = [
        _evaluate_once(cfg, software, hardware, store, repeat, device)
        for repeat in range(cfg.study.repeats)
    ]
    if len(runs) == 1:
        return runs[0]
    first = runs[0]
    mean = {k: float(np.mean([r.metrics[k] for r in runs])) for k in first.metrics}
    std = {k: float(np.std([r.metrics[k] for r in runs], ddof=1)) for k in first.metrics}
    run = replace(
        first.run,
        trained=any(r.run.trained for r in runs),
        train_time_s=sum(r.run.train_time_s for r in runs),
    )
    repeats = tuple(
        {
            "training_seed": r.run.training_seed,
            "model_key": r.run.model_key,
            "trained": r.run.trained,
        }
        for r in runs
    )
    return replace(first, metrics=mean, metrics_std=std, run=run, repeats=repeats)


def _evaluate_once(
    cfg: StudyConfig,
    software: dict[str, Any],
    hardware: dict[str, Any],
    store: ModelStore | None,
    repeat: int,
    device: str,
) -> TrialResult:
    """Train the software point (or reuse its cached network), score it by crossbar-aware
    inference on the hardware point, price its measured activity, and collect every metric."""
    from nmhpo.snn import HardwarePoint, model_key, train  # torch loads only for real trials
    from nmhpo.snn import evaluate as infer

    data = task_data(cfg)
    seed = (training_seed(cfg.study.seed, software) + repeat) % 2**32
    key = model_key(task_identity(cfg), software, seed)
    model = store.load(key) if store is not None else None
    trained_now = model is None
    if model is None:
        model = train(data, software, seed, device=device)
        if store is not None:
            store.save(key, model)

    preset = cfg.preset()
    knobs = {**preset.knobs, **hardware}
    point = None
    if cfg.hardware.inference == "crossbar":
        point = HardwarePoint.from_knobs(knobs, seed=cfg.study.seed)
    scored = infer(model, data, point, device=device)

    start = time.perf_counter()
    priced = {k: v for k, v in knobs.items() if k in KNOBS}
    network = Network(tuple(Layer(*shape) for shape in model.arch.crossbar_layers()))
    price = evaluate(
        network,
        preset,
        priced,
        num_steps=software["num_steps"],
        activity=scored.activity,
        mode=cfg.hardware.mode,
    ).design(0)
    hw_time = time.perf_counter() - start

    metrics = {
        **scored.metrics,
        "energy_pj": price["energy_pj"],
        "energy_uj": price["energy_pj"] * 1e-6,
        "latency_ns": price["latency_ns"],
        "latency_us": price["latency_ns"] * 1e-3,
        "area_um2": price["area_um2"],
        "area_mm2": price["area_um2"] * 1e-6,
        "edp_pj_ns": price["edp_pj_ns"],
        "train_time_s": model.train_time_s,
        "num_steps": float(software["num_steps"]),
        "spikes_per_inference": scored.spikes_per_inference,
        "n_pe": float(price["n_pe"]),
        "n_tiles": float(price["n_tiles"]),
    }
    return TrialResult(
        metrics=metrics,
        breakdown=Breakdown(
            energy_pj=price["energy_breakdown_pj"],
            area_um2=price["area_breakdown_um2"],
            energy_by_layer_pj=tuple(price["energy_by_layer_pj"]),
        ),
        point=Point(
            software=software,
            hardware=knobs,
            inference=cfg.hardware.inference,
            layers=tuple(tuple(shape) for shape in model.arch.crossbar_layers()),
            activity=tuple(scored.activity),
            activity_per_step=tuple(tuple(x) for x in scored.activity_per_step),
        ),
        run=RunInfo(
            trained=trained_now,
            model_key=key,
            training_seed=seed,
            train_time_s=model.train_time_s if trained_now else 0.0,
            epochs_run=model.epochs_run,
            final_loss=model.final_loss,
            eval_time_s=scored.eval_time_s,
            hw_time_s=hw_time,
            device=device,
        ),
    )


class Objective:
    """The callable Optuna runs. It records the reason of any failure in the trial's user
    attrs before re-raising, so the study loop can mark the trial FAIL and go on."""

    def __init__(
        self,
        cfg: StudyConfig,
        store: ModelStore | None = None,
        *,
        grid: bool = False,
        flush: Callable[[], None] | None = None,
        device: str = "cpu",
    ) -> None:
        """
        Args:
            device: the torch device this worker's trials train and infer on (resolved by
                :func:`nmhpo.devices.resolve_device`).
            flush: commits the suggested parameters (a :class:`nmhpo.storage.BatchedRDBStorage`
                buffers them) before training, so that a killed trial is re-run with them and
                other workers see what is being evaluated.
        """
        self.cfg = cfg
        self.store = store
        self.grid = grid
        self.flush = flush
        self.device = device
        self.constraints = cfg.parsed_constraints()

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        cpu_start = time.process_time()
        try:
            software, hardware = suggest(trial, self.cfg)
            if self.flush is not None:
                self.flush()
            if self.grid:
                skip_if_grid_point_taken(trial)
            result = evaluate_point(self.cfg, software, hardware, self.store, device=self.device)
            result = replace(
                result,
                run=replace(result.run, cpu_s=time.process_time() - cpu_start, worker=_WORKER),
            )
        except Exception as exc:
            if type(exc).__name__ != "TrialPruned":
                trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        # Buffered by nmhpo.storage and written in one commit with the trial's end; the bulky
        # detail is a system attribute, which optuna-dashboard does not display.
        for key, value in result.to_user_attrs().items():
            trial.set_user_attr(key, value)
        trial.storage.set_trial_system_attr(trial._trial_id, DETAIL_KEY, result.detail())
        for constraint in self.constraints:
            trial.set_constraint(constraint.text, constraint.violation(result.metrics))
        return tuple(result.metrics[o.name] for o in self.cfg.study.objectives)
