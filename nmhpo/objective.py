"""One trial, end to end: parameters -> trained SNN -> crossbar price -> objective values."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo import __version__
from nmhpo.config import StudyConfig
from nmhpo.crossbar import KNOBS, Layer, Network, evaluate
from nmhpo.errors import TrialFailedError
from nmhpo.grid import skip_if_grid_point_taken
from nmhpo.multifidelity import decide_for_trial, rung_attrs, rung_epochs
from nmhpo.record import (
    DETAIL_KEY,
    VARIANT_OF,
    VARIANTS_QUEUED,
    Breakdown,
    Point,
    Pruned,
    RunInfo,
    TrialResult,
    queued_variants_of,
    variant_of,
)
from nmhpo.registry import total_epochs
from nmhpo.space import suggest
from nmhpo.tasks import TaskData, prepare
from nmhpo.variants import pick_variants, priced_metrics
from nmhpo.workers import INTERRUPTED

if TYPE_CHECKING:
    import optuna

    from nmhpo.snn import ModelStore, TrainedModel, Training

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
def _prepared(
    name: str,
    options_json: str,
    seed: int,
    path: str | None,
    stamp: Any,
    cache: str,
) -> TaskData:
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
    """The study's task data: generated once per study (disk cache) and once per process,
    and read again once a user's file changed (a notebook that edits its .npz between two
    studies must not train the second on the first's arrays).

    Raises:
        ConfigError: the study's data path names nothing.
        TaskError: the data cannot be read or breaks the documented rules.
    """
    from nmhpo.config import require_data

    require_data(cfg)
    path = cfg.data_path()
    return _prepared(
        cfg.task.name,
        cfg.task_options().model_dump_json(),
        cfg.task.data_seed,
        None if path is None else str(path),
        _data_stamp(cfg),
        str(cfg.cache_dir),
    )


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """A user's data file as of now: size and modification time. None for a folder (see
    `_folder_stamp`)."""
    try:
        stat = path.stat() if path is not None and not path.is_dir() else None
    except OSError:
        return None
    return None if stat is None else (stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=4)
def _folder_stamp(path: str, patterns: Any) -> str:
    """A dataset folder's files (names, sizes, modification times) as of the last
    `refresh_data_stamps`: a folder's own stamp changes with anything written into it (a
    study kept there: its database) and not with its files', and listing tens of thousands
    of recordings at every trial would cost more than reading them once."""
    from nmhpo.tasks._base import dataset_fingerprint

    return dataset_fingerprint(Path(path), patterns, times=True)


def refresh_data_stamps() -> None:
    """List dataset folders afresh: called where a run or an export begins, so a notebook
    that changed a folder between two studies gets the new files (and model keys)."""
    from nmhpo.database import forget_folder_prints

    _folder_stamp.cache_clear()
    forget_folder_prints()


def _data_stamp(cfg: StudyConfig) -> Any:
    """What the in-process data cache and the model key know of the user's data."""
    path = cfg.data_path()
    if path is not None and path.is_dir():
        return _folder_stamp(str(path), cfg.task_info().data_files)
    return _stamp(path)


def data_problem(cfg: StudyConfig, data: TaskData) -> str | None:
    """What the study's space needs of the data that the data does not have: conv layers need
    square images ((n, channels, side, side), or a flat square size read as one channel).
    Found once the data is read, before any trial, rather than as a shape error in each."""
    from nmhpo.config import _largest
    from nmhpo.registry import SOFTWARE

    spec = cfg.space.software.get("conv_layers")
    if _largest(spec, SOFTWARE["conv_layers"].default) == 0:
        return None
    shape = data.input_shape
    if len(shape) == 3 and shape[1] == shape[2]:
        return None
    if len(shape) != 3 and math.isqrt(math.prod(shape)) ** 2 == math.prod(shape):
        return None
    return (
        "space.software.conv_layers: conv layers need square images, (n, channels, side, side) "
        f"or a flat square size; the task's samples are {tuple(shape)}"
    )


def task_identity(cfg: StudyConfig) -> dict[str, Any]:
    """What decides the trained network besides the software point (part of the model-cache
    key): the task's data, including a user file's size and modification time, so an edited
    file is not served by networks trained on the old one (a dataset folder: its files' names,
    sizes and times); and nmhpo's version, whose trainer may differ."""
    path = cfg.data_path()
    stamp = _data_stamp(cfg)
    return {
        "name": cfg.task.name,
        "options": cfg.task_options().model_dump(mode="json"),
        "data_seed": cfg.task.data_seed,
        "path": None if path is None else str(path),
        "file": list(stamp) if isinstance(stamp, tuple) else stamp,
        "nmhpo": __version__,
    }


def evaluate_point(
    cfg: StudyConfig,
    software: dict[str, Any],
    hardware: dict[str, Any],
    store: ModelStore | None = None,
    *,
    device: str | None = None,
    rungs: Sequence[int] = (),
    on_rung: Callable[[int, TrialResult], None] | None = None,
) -> TrialResult:
    """Every metric of one point: the mean over [study].repeats training seeds (the objective
    uses the means; their standard deviations are stored as ``std.<metric>``).

    Args:
        device: the torch device to train and infer on; default: [study].device resolved as
            for worker 0.
        rungs: epochs at which the point is scored part-way through its training (all
            repeats advanced together) and ``on_rung(epoch, result)`` is called; it may raise
            (e.g. ``optuna.TrialPruned``) to stop the point there. Skipped when the point's
            networks are already trained: stopping them would save nothing.
    """
    if device is None:
        from nmhpo.devices import device_for

        device = device_for(cfg.study.device, 0)
    runs = [_Repeat(cfg, software, store, repeat, device) for repeat in range(cfg.study.repeats)]
    if on_rung is not None and not any(r.cached for r in runs):
        for epoch in rungs:
            for r in runs:
                r.advance(epoch)
            if all(r.done for r in runs):
                break  # early stopping ended them all: the rung would score the final networks
            on_rung(epoch, _mean([_score(cfg, r, r.current(), hardware, device) for r in runs]))
    return _mean([_score(cfg, r, r.finish(), hardware, device) for r in runs])


def _mean(runs: list[TrialResult]) -> TrialResult:
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


class _Repeat:
    """One training seed of a point: its network from the train-once cache, or its training,
    advanced rung by rung in a study that prunes.

    At each rung the training is checkpointed in the cache, so that a point stopped there (or
    a trial killed after it) resumes from the checkpoint when it comes back (with another
    hardware point, or as the killed trial's re-run) instead of training from zero.
    """

    def __init__(
        self,
        cfg: StudyConfig,
        software: dict[str, Any],
        store: ModelStore | None,
        repeat: int,
        device: str,
    ) -> None:
        from nmhpo.snn import model_key  # torch loads only for real trials

        self.cfg, self.software, self.store, self.device = cfg, software, store, device
        self.seed = (training_seed(cfg.study.seed, software) + repeat) % 2**32
        self.key = model_key(task_identity(cfg), software, self.seed)
        self.model: TrainedModel | None = store.load(self.key) if store is not None else None
        self.cached = self.model is not None
        self.training: Training | None = None
        self.resumed_epochs = 0
        self.trained_s = 0.0  # training time spent in this trial

    @property
    def done(self) -> bool:
        return self.model is not None or (self.training is not None and self.training.done)

    def advance(self, epoch: int) -> None:
        if self.model is not None:
            return
        resumed = self._checkpoint_after(self.training.epoch if self.training else 0, epoch)
        if resumed is not None:
            self.training = resumed
        elif self.training is None:
            from nmhpo.snn import Training

            self.training = Training(
                task_data(self.cfg), self.software, self.seed, device=self.device
            )
        before = self.training.train_time_s
        self.training.advance(epoch)
        self.trained_s += self.training.train_time_s - before
        if self.store is not None and not self.training.done and epoch > self.resumed_epochs:
            self.store.save_checkpoint(self.key, epoch, self.training.checkpoint())

    def _checkpoint_after(self, current: int, epoch: int) -> Training | None:
        """The training from this point's latest checkpoint in (current, epoch], if any:
        those epochs were trained by an earlier trial of the point (stopped at a rung, or
        killed after one)."""
        from nmhpo.snn import Training

        if self.store is None:
            return None
        for saved in reversed(self.store.checkpoint_epochs(self.key)):
            if not current < saved <= epoch:
                continue
            ckpt = self.store.load_checkpoint(self.key, saved)
            if ckpt is not None:
                logger.debug("resuming %s from its epoch-%d checkpoint", self.key, saved)
                self.resumed_epochs = saved
                data = task_data(self.cfg)
                return Training(
                    data, self.software, self.seed, device=self.device, checkpoint=ckpt
                )
        return None

    def current(self) -> TrainedModel:
        """The network as it stands (the cached one, or the training's so far)."""
        if self.model is not None:
            return self.model
        assert self.training is not None
        return self.training.model()

    def finish(self) -> TrainedModel:
        """The fully trained network, stored in the cache (its checkpoints dropped)."""
        if self.model is None:
            self.advance(total_epochs(self.software))
            assert self.training is not None
            self.model = self.training.model()
            if self.store is not None:
                self.store.save(self.key, self.model)
                self.store.drop_checkpoints(self.key)
        return self.model


def _score(
    cfg: StudyConfig,
    rep: _Repeat,
    model: TrainedModel,
    hardware: dict[str, Any],
    device: str,
) -> TrialResult:
    """Score ``model`` by crossbar-aware (or float) inference on the hardware point, price its
    measured activity, and collect every metric."""
    from nmhpo.snn import HardwarePoint, static_metrics
    from nmhpo.snn import evaluate as infer

    data = task_data(cfg)
    software = rep.software
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
        **priced_metrics(price),
        "train_time_s": model.train_time_s,
        "num_steps": float(software["num_steps"]),
        "spikes_per_inference": scored.spikes_per_inference,
        **scored.neurobench,
        **static_metrics(model.network(device), int(knobs["weight_bits"])),
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
            trained=not rep.cached,
            model_key=rep.key,
            training_seed=rep.seed,
            train_time_s=rep.trained_s,
            epochs_run=model.epochs_run,
            final_loss=model.final_loss,
            eval_time_s=scored.eval_time_s,
            hw_time_s=hw_time,
            device=device,
            resumed_epochs=rep.resumed_epochs,
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
        self._data_stamp: tuple[int, int] | None = None
        self._data_print: str | None = None

    def _check_data(self) -> None:
        """Fail the trial if the user's data file changed during the run: the data is read
        again once it changes, so later trials would be scored on other data than earlier
        ones in the same front (a study refuses to resume on a changed file; this is the
        same rule while it runs). The first check pins the file as this process found it."""
        path = self.cfg.data_path()
        stamp = _stamp(path)
        if stamp is None or stamp == self._data_stamp:
            return
        from nmhpo.database import data_fingerprint

        now = data_fingerprint(self.cfg)
        if self._data_print is not None and now != self._data_print:
            raise TrialFailedError(
                f"{path} changed during the run, after trials were scored on it; restore it, "
                "or start a new study under another name"
            )
        self._data_stamp, self._data_print = stamp, now

    def __call__(self, trial: optuna.Trial) -> tuple[float, ...]:
        cpu_start = time.process_time()
        try:
            self._check_data()
            if (
                self.cfg.study.sampler in ("nsga2", "nsga3")
                and variant_of(trial.user_attrs) is not None
            ):
                # Every value is fixed, so Optuna never asks the sampler, and NSGA-II/III
                # give a trial its generation only when asked: without one, a variant would
                # never be a parent. Asking costs them a crossover, not a model fit.
                _ = trial.relative_params
            software, hardware = suggest(trial, self.cfg)
            if self.flush is not None:
                self.flush()
            if self.grid:
                skip_if_grid_point_taken(trial)
            rungs: list[int] = []
            on_rung = None
            if self.cfg.study.pruner != "none":
                # A hybrid point's rungs count its ReLU and fine-tuning epochs together.
                epochs = total_epochs(software)
                rungs = rung_epochs(self.cfg.study.pruning, epochs)

                def on_rung(epoch: int, result: TrialResult) -> None:
                    self._at_rung(trial, cpu_start, epochs, epoch, result)

            result = evaluate_point(
                self.cfg,
                software,
                hardware,
                self.store,
                device=self.device,
                rungs=rungs,
                on_rung=on_rung,
            )
            self._check_data()  # (not trained on one version and scored on another)
            result = replace(
                result,
                run=replace(result.run, cpu_s=time.process_time() - cpu_start, worker=_WORKER),
            )
            # Buffered by nmhpo.storage and written in one commit with the trial's end; the
            # bulky detail is a system attribute, which optuna-dashboard does not display.
            # Inside the try: a Ctrl-C landing here still fails the trial with its reason.
            for key, value in result.to_user_attrs().items():
                trial.set_user_attr(key, value)
            trial.storage.set_trial_system_attr(trial._trial_id, DETAIL_KEY, result.detail())
            for constraint in self.constraints:
                trial.set_constraint(constraint.text, constraint.violation(result.metrics))
            if self.cfg.study.hardware_variants and not self.grid:
                try:
                    self._queue_variants(trial, result)
                except Exception as exc:  # the trial itself is complete: it must not fail
                    logger.warning(
                        "trial %d: no hardware variants queued (%s: %s)",
                        trial.number,
                        type(exc).__name__,
                        exc,
                        exc_info=logger.isEnabledFor(logging.DEBUG),
                    )
            return tuple(result.metrics[o.name] for o in self.cfg.study.objectives)
        except Exception as exc:
            if type(exc).__name__ != "TrialPruned":
                trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}")
            raise
        except KeyboardInterrupt:
            # Optuna marks the trial failed and re-raises; say why, as for any failed trial.
            trial.set_user_attr("fail_reason", INTERRUPTED)
            raise

    def _queue_variants(self, trial: optuna.Trial, result: TrialResult) -> None:
        """Queue the trials that score this trial's network (cached by now) at other hardware
        points: workers take queued trials before asking the sampler for new ones.

        Once per software point in this study: not for a variant (even one that had to train,
        on a machine without the cache), nor for a point whose variants another trial queued;
        but for a point whose network was cached by another study (its grid, a search of the
        same file under another name), since this study has none of its variants. No more
        than n_trials leaves room for; with several workers, two may count at once and leave a
        few waiting past it, which a resumed run takes first.
        """
        from optuna.trial import TrialState

        if variant_of(trial.user_attrs) is not None:
            return
        model_key = result.run.model_key
        study = trial.study
        trials = study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
        )
        if any(queued_variants_of(t.user_attrs) == model_key for t in trials):
            return
        room = min(self.cfg.study.hardware_variants, self.cfg.study.n_trials - len(trials))
        seed = (self.cfg.study.seed, trial.number)
        points = pick_variants(
            self.cfg,
            trial.params,
            room,
            seed,
            layers=result.point.layers,
            activity=result.point.activity,
            num_steps=int(result.point.software["num_steps"]),
            constraints=self.constraints,
            metrics=result.metrics,
        )
        for params in points:
            study.enqueue_trial(params, user_attrs={VARIANT_OF: trial.number})
        if points:
            trial.set_user_attr(VARIANTS_QUEUED, len(points))

    def _at_rung(
        self,
        trial: optuna.Trial,
        cpu_start: float,
        epochs: int,
        epoch: int,
        result: TrialResult,
    ) -> None:
        """Store the trial's objective values at this rung, commit them for the other
        workers, and stop the trial (``optuna.TrialPruned``) when the rung's decision says so.
        """
        import optuna

        values = {o.name: float(result.metrics[o.name]) for o in self.cfg.study.objectives}
        violation = None
        if self.constraints:
            violation = sum(max(0.0, c.violation(result.metrics)) for c in self.constraints)
        cpu_now = time.process_time() - cpu_start
        eval_s = result.run.eval_time_s + result.run.hw_time_s
        attrs = rung_attrs(epoch, values, cpu_s=cpu_now, eval_s=eval_s, violation=violation)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if self.flush is not None:
            self.flush()  # other workers decide with these values from now on
        decision = decide_for_trial(
            self.cfg,
            trial.study.get_trials(deepcopy=False),
            trial.number,
            epoch,
            list(values.values()),
            violation or 0.0,
        )
        logger.debug("trial %d %s", trial.number, decision.reason(epoch))
        if decision.go_on:
            return
        # Training seconds per epoch trained in this trial (all repeats) times the epochs left,
        # plus the final scoring pass: not the trial's CPU so far, which also holds its data
        # loading, start-up and rung scoring and overstated the saving.
        per_epoch = result.run.train_time_s / max(1, epoch - result.run.resumed_epochs)
        pruned = Pruned(
            epoch=epoch,
            reason=decision.reason(epoch),
            epochs_run=epoch,
            epochs_saved=epochs - epoch,
            cpu_s=cpu_now,
            cpu_s_saved_est=per_epoch * (epochs - epoch) + eval_s,
            train_time_s=result.run.train_time_s,
            worker=_WORKER,
        )
        for key, value in pruned.to_user_attrs().items():
            trial.set_user_attr(key, value)
        for constraint in self.constraints:
            # What the rung measured: a sampler that weighs feasibility sees it too.
            trial.set_constraint(constraint.text, constraint.violation(result.metrics))
        raise optuna.TrialPruned(pruned.reason)
