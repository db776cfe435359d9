"""The typed trial record: the one contract between the objective, the analysis, the plots and
the CLI.

The objective builds a :class:`TrialResult` (what one trial measured) and stores it with
:meth:`TrialResult.to_user_attrs`; every reader turns an Optuna trial into a
:class:`TrialRecord` with :meth:`TrialRecord.from_trial` and never reads user attributes by
hand. Changing the stored layout therefore touches this module only.

Stored layout (chosen for optuna-dashboard, which shows every numeric user attribute as a
sortable column of its trial table and every other value as one JSON line):

- one scalar user attribute per metric, under the metric's name (``accuracy``, ``energy_uj``,
  ``train_time_s``...), and ``std.<metric>`` when a point is trained with several seeds;
- ``run.<field>``: how the trial ran (``run.trained``, ``run.cpu_s``, ``run.worker``...);
- ``energy_pj.<component>`` and ``area_um2.<component>``: the crossbar model's breakdown, so a
  user can sort trials by ADC energy;
- ``fail_reason`` for a failed trial;
- in a study that prunes (:mod:`nmhpo.multifidelity`): ``rung<epoch>.<objective>`` (with
  ``.cpu_s``, ``.eval_s``, ``.violation``) at each rung a trial reached, and ``pruned.<field>``
  for a trial stopped at one (epoch, reason, CPU seconds used and saved);
- the bulky detail (the full software and hardware points, layer shapes, measured activity per
  layer and per time step, energy per layer, the seeds of repeated training) as one JSON value
  in the *system* attribute ``nmhpo:detail``: reports read it, the dashboard does not show it
  (one such line widened its trial page to thousands of pixels).

Trials stored by nmhpo 0.1 (``metrics``/``breakdown``/``point``/``run`` dictionaries) are read
too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

#: System attribute holding a trial's bulky detail (JSON).
DETAIL_KEY = "nmhpo:detail"
#: User attributes of hardware variants (``[study] hardware_variants``): on a variant, set
#: when it is queued, the trial whose network it scores (`RunInfo.variant_of`); on that
#: trial, how many it queued. Not under ``run.``: a queued trial has no result yet.
VARIANT_OF = "variant.of"
VARIANTS_QUEUED = "variant.queued"
_STD = "std."
_RUN = "run."
_ENERGY = "energy_pj."
_AREA = "area_um2."
_PRUNED = "pruned."
_VARIANT = "variant."
_PREFIXES = (_STD, _RUN, _ENERGY, _AREA, _PRUNED, _VARIANT)
_FAIL = "fail_reason"
_RUNG = re.compile(r"^rung(\d+)\.(.+)$")


@dataclass(frozen=True)
class RunInfo:
    """How a trial ran: whether it trained or reused a cached network, and what it cost."""

    trained: bool
    model_key: str
    training_seed: int
    train_time_s: float
    epochs_run: int
    final_loss: float
    eval_time_s: float
    hw_time_s: float
    cpu_s: float | None = None
    worker: str | None = None
    #: The torch device that trained (or would have trained) and scored the network: "cpu",
    #: "cuda:0", ... A reused network may have been trained on another device.
    device: str | None = None
    #: Epochs not trained in this trial because a checkpoint of the same point (stopped at a
    #: rung by an earlier trial) was resumed.
    resumed_epochs: int = 0
    #: The trial whose freshly trained network this one scores at another hardware point
    #: (``[study] hardware_variants``); None for a trial the sampler proposed.
    variant_of: int | None = None


@dataclass(frozen=True)
class Pruned:
    """Why and where a trial was stopped, what it used and (estimated) what it saved."""

    epoch: int
    reason: str
    epochs_run: int
    epochs_saved: int
    cpu_s: float
    cpu_s_saved_est: float
    train_time_s: float = 0.0
    worker: str | None = None

    def to_user_attrs(self) -> dict[str, Any]:
        out = {_PRUNED + f.name: getattr(self, f.name) for f in fields(Pruned)}
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_attrs(cls, user_attrs: Mapping[str, Any]) -> Pruned | None:
        found = {k[len(_PRUNED) :]: v for k, v in user_attrs.items() if k.startswith(_PRUNED)}
        if "epoch" not in found:
            return None
        known = {f.name for f in fields(Pruned)}
        return cls(**{k: v for k, v in found.items() if k in known})


@dataclass(frozen=True)
class Breakdown:
    """The crossbar model's energy and area of one design, by component and by layer."""

    energy_pj: Mapping[str, float]
    area_um2: Mapping[str, float]
    energy_by_layer_pj: tuple[float, ...] = ()


@dataclass(frozen=True)
class Point:
    """The full design a trial evaluated: searched values over fixed values and defaults."""

    software: Mapping[str, Any]
    hardware: Mapping[str, Any]
    inference: str
    layers: tuple[tuple[int, ...], ...] = ()
    activity: tuple[float, ...] = ()
    activity_per_step: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class TrialResult:
    """What one (software, hardware) point measured; ``metrics`` holds every objective.

    ``metrics_std`` is empty unless the point was trained with several seeds
    (``[study] repeats``), and then ``metrics`` are the means. ``repeats`` lists each seed's
    ``training_seed``, ``model_key`` and ``trained``.
    """

    metrics: Mapping[str, float]
    breakdown: Breakdown
    point: Point
    run: RunInfo
    metrics_std: Mapping[str, float] = field(default_factory=dict)
    repeats: tuple[Mapping[str, Any], ...] = ()

    def to_user_attrs(self) -> dict[str, Any]:
        """The scalar user attributes (see the module docstring); JSON-able, flat."""
        out: dict[str, Any] = {k: float(v) for k, v in self.metrics.items()}
        out.update({_STD + k: float(v) for k, v in self.metrics_std.items()})
        out.update(
            {
                _RUN + f.name: getattr(self.run, f.name)
                for f in fields(RunInfo)
                if f.name != "variant_of"
            }
        )
        out.update({_ENERGY + k: float(v) for k, v in self.breakdown.energy_pj.items()})
        out.update({_AREA + k: float(v) for k, v in self.breakdown.area_um2.items()})
        return {k: v for k, v in out.items() if v is not None}

    def detail(self) -> dict[str, Any]:
        """The bulky part, stored as the ``nmhpo:detail`` system attribute."""
        return {
            "software": dict(self.point.software),
            "hardware": dict(self.point.hardware),
            "inference": self.point.inference,
            "layers": [list(x) for x in self.point.layers],
            "activity": list(self.point.activity),
            "activity_per_step": [list(x) for x in self.point.activity_per_step],
            "energy_by_layer_pj": list(self.breakdown.energy_by_layer_pj),
            "repeats": [dict(r) for r in self.repeats],
        }

    @classmethod
    def from_attrs(
        cls, user_attrs: Mapping[str, Any], detail: Mapping[str, Any] | None = None
    ) -> TrialResult | None:
        """The result stored in a trial's attributes, or None when it holds none (a failed
        or running trial, or a study made by another tool)."""
        if any(isinstance(user_attrs.get(k), Mapping) for k in ("metrics", "run", "breakdown")):
            return _from_legacy(user_attrs)
        if not any(k.startswith(_RUN) for k in user_attrs):
            return None
        metrics: dict[str, float] = {}
        std: dict[str, float] = {}
        run: dict[str, Any] = {}
        energy: dict[str, float] = {}
        area: dict[str, float] = {}
        for key, value in user_attrs.items():
            if key.startswith(_STD):
                std[key[len(_STD) :]] = float(value)
            elif key.startswith(_RUN):
                run[key[len(_RUN) :]] = value
            elif key.startswith(_ENERGY):
                energy[key[len(_ENERGY) :]] = float(value)
            elif key.startswith(_AREA):
                area[key[len(_AREA) :]] = float(value)
            elif (
                key != _FAIL
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and not key.startswith((_PRUNED, _VARIANT))
                and not _RUNG.match(key)
            ):
                metrics[key] = float(value)
        if variant_of(user_attrs) is not None:
            run["variant_of"] = variant_of(user_attrs)
        d = detail or {}
        return cls(
            metrics=metrics,
            metrics_std=std,
            run=_run_info(run),
            breakdown=Breakdown(
                energy_pj=energy,
                area_um2=area,
                energy_by_layer_pj=tuple(float(x) for x in d.get("energy_by_layer_pj", ())),
            ),
            point=_point(d),
            repeats=tuple(d.get("repeats", ())),
        )


def _point(d: Mapping[str, Any]) -> Point:
    return Point(
        software=dict(d.get("software", {})),
        hardware=dict(d.get("hardware", {})),
        inference=str(d.get("inference", "")),
        layers=tuple(tuple(int(v) for v in x) for x in d.get("layers", ())),
        activity=tuple(float(x) for x in d.get("activity", ())),
        activity_per_step=tuple(
            tuple(float(v) for v in x) for x in d.get("activity_per_step", ())
        ),
    )


#: What a record lacking some run fields (written by another version) reads as.
_RUN_DEFAULTS: dict[str, Any] = {
    "trained": False,
    "model_key": "",
    "training_seed": 0,
    "train_time_s": 0.0,
    "epochs_run": 0,
    "final_loss": math.nan,
    "eval_time_s": 0.0,
    "hw_time_s": 0.0,
}


def _run_info(run: Mapping[str, Any]) -> RunInfo:
    known = {f.name for f in fields(RunInfo)}
    return RunInfo(**{**_RUN_DEFAULTS, **{k: v for k, v in run.items() if k in known}})


def _from_legacy(attrs: Mapping[str, Any]) -> TrialResult:
    """nmhpo 0.1's layout: four dictionaries (``metrics``, ``breakdown``, ``point``, ``run``)."""
    run = dict(attrs.get("run", {}))
    breakdown = dict(attrs.get("breakdown", {}))
    point = dict(attrs.get("point", {}))
    metrics = {k: float(v) for k, v in attrs.get("metrics", {}).items()}
    if "n_tiles" in breakdown:
        metrics.setdefault("n_tiles", float(breakdown["n_tiles"]))
    return TrialResult(
        metrics=metrics,
        metrics_std={k: float(v) for k, v in attrs.get("metrics_std", {}).items()},
        run=_run_info(run),
        breakdown=Breakdown(
            energy_pj=dict(breakdown.get("energy_pj", {})),
            area_um2=dict(breakdown.get("area_um2", {})),
            energy_by_layer_pj=tuple(breakdown.get("energy_by_layer_pj", ())),
        ),
        point=_point(point),
        repeats=tuple(run.get("repeats", ())),
    )


@dataclass(frozen=True)
class TrialRecord:
    """One trial as every reader sees it: Optuna's bookkeeping plus nmhpo's result.

    ``values`` are in the study's objective order; ``feasible`` is None for a trial that did
    not complete; ``result`` is None when the trial measured nothing (failed, running, or made
    by another tool).
    """

    number: int
    state: str
    values: tuple[float, ...] | None
    params: Mapping[str, Any]
    constraints: Mapping[str, float]
    feasible: bool | None
    duration_s: float | None
    fail_reason: str | None
    result: TrialResult | None
    #: Objective values (and ``cpu_s``, ``eval_s``) at each rung the trial reached.
    rungs: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    pruned: Pruned | None = None

    @classmethod
    def from_trial(cls, trial: FrozenTrial) -> TrialRecord:
        from optuna.trial import TrialState

        complete = trial.state == TrialState.COMPLETE
        constraints = dict(trial.constraints)
        detail = trial.system_attrs.get(DETAIL_KEY)
        return cls(
            number=trial.number,
            state=trial.state.name,
            values=None if trial.values is None else tuple(float(v) for v in trial.values),
            params=dict(trial.params),
            constraints=constraints,
            feasible=all(v <= 0.0 for v in constraints.values()) if complete else None,
            duration_s=trial.duration.total_seconds() if trial.duration else None,
            fail_reason=trial.user_attrs.get(_FAIL),
            result=TrialResult.from_attrs(trial.user_attrs, detail),
            rungs=_rungs(trial.user_attrs),
            pruned=Pruned.from_attrs(trial.user_attrs),
        )

    def __repr__(self) -> str:
        # Short enough for a notebook cell listing a Pareto set; the result prints in full.
        values = None if self.values is None else tuple(float(f"{v:.4g}") for v in self.values)
        params = {
            k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in self.params.items()
        }
        return (
            f"TrialRecord(number={self.number}, state={self.state!r}, values={values}, "
            f"params={params})"
        )

    @property
    def metrics(self) -> Mapping[str, float]:
        return {} if self.result is None else self.result.metrics

    @property
    def cpu_s(self) -> float:
        """CPU seconds the trial used: ``run.cpu_s`` (``pruned.cpu_s`` for a stopped trial)
        when recorded, else its wall duration (failed trials record no run), else 0 (still
        running)."""
        if self.result is not None and self.result.run.cpu_s is not None:
            return float(self.result.run.cpu_s)
        if self.pruned is not None:
            return float(self.pruned.cpu_s)
        return self.duration_s or 0.0

    def row(self, objective_names: list[str]) -> dict[str, Any]:
        """One flat row (CSV, JSON, a DataFrame): state, objectives, feasibility, parameters,
        metrics, timings and breakdowns."""
        row: dict[str, Any] = {
            "number": self.number,
            "state": self.state,
            "duration_s": self.duration_s,
        }
        values = self.values or (None,) * len(objective_names)
        row.update(zip(objective_names, values, strict=False))
        row["feasible"] = self.feasible
        row.update({f"constraint_{k}": v for k, v in self.constraints.items()})
        row.update({f"param_{k}": v for k, v in self.params.items()})
        if self.result is not None:
            r = self.result
            for key, value in r.metrics.items():
                row.setdefault(f"metric_{key}", value)
            for key, value in r.metrics_std.items():
                row[f"std_{key}"] = value
            for key in ("trained", "train_time_s", "eval_time_s", "hw_time_s", "cpu_s"):
                row[key] = getattr(r.run, key)
            row["training_seed"] = r.run.training_seed
            row["worker"] = r.run.worker
            if r.run.variant_of is not None:
                row["variant_of"] = r.run.variant_of
            row.update({f"energy_pj_{k}": v for k, v in r.breakdown.energy_pj.items()})
            row.update({f"area_um2_{k}": v for k, v in r.breakdown.area_um2.items()})
        if self.pruned is not None:
            row["pruned_epoch"] = self.pruned.epoch
            row["pruned_reason"] = self.pruned.reason
            row["cpu_s"] = self.pruned.cpu_s
            row["epochs_saved"] = self.pruned.epochs_saved
            row["cpu_s_saved_est"] = self.pruned.cpu_s_saved_est
        for epoch, rung in sorted(self.rungs.items()):
            row.update({f"rung{epoch}_{k}": v for k, v in rung.items()})
        if self.fail_reason is not None:
            row["fail_reason"] = self.fail_reason
        return row


def _rungs(user_attrs: Mapping[str, Any]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for key, value in user_attrs.items():
        m = _RUNG.match(key)
        if m and isinstance(value, int | float) and not isinstance(value, bool):
            out.setdefault(int(m.group(1)), {})[m.group(2)] = float(value)
    return dict(sorted(out.items()))


def variant_of(user_attrs: Mapping[str, Any]) -> int | None:
    """The trial whose network a hardware variant scores; None for any other trial (set
    when the variant is queued, so a running or failed variant answers too)."""
    value = user_attrs.get(VARIANT_OF)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def queued_variants_of(user_attrs: Mapping[str, Any]) -> str | None:
    """The model key of a trial that queued hardware variants of its network, else None."""
    return user_attrs.get(_RUN + "model_key") if VARIANTS_QUEUED in user_attrs else None


def is_result_attr(key: str) -> bool:
    """Whether a user attribute key belongs to nmhpo's stored result (not the user's own)."""
    return key.startswith(_PREFIXES) or key == _FAIL or bool(_RUNG.match(key))
