"""study.toml: frozen pydantic models, and `load_config`, the only place a study file is read.

Every problem with a file becomes one `ConfigError` line naming the file, the dotted key and what
was expected. Validation finishes before any storage is opened, so a bad file writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from nmhpo.crossbar import HARDWARE_KNOBS
from nmhpo.devices import device_problem
from nmhpo.errors import ConfigError
from nmhpo.registry import EVENT_ENCODING, HARDWARE, METRICS, OPTIONAL_GROUPS, SOFTWARE, Param

if TYPE_CHECKING:
    from nmhpo.constraints import Constraint
    from nmhpo.crossbar import Preset
    from nmhpo.tasks import TaskInfo, TaskOptions

DEFAULT_STORAGE_FILE = "nmhpo-studies.db"
#: Strict types too: TOML has them, so "20" for n_trials, true for a seed or "off" for a
#: switch is a mistake to name, not a value to coerce (lax pydantic took "off" as False).
_STRICT = ConfigDict(frozen=True, extra="forbid", strict=True)
Scalar = Union[bool, int, float, str]  # noqa: UP007  (pydantic needs the runtime union)


class _Frozen(BaseModel):
    """A study's definition, checked once when made and read-only after: a field changed in
    place would skip the checks, and the study stored in the database would no longer be the
    one described. Assigning says how to make a changed copy, not pydantic's "Instance is
    frozen" validation error."""

    model_config = _STRICT

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(
            f"{type(self).__name__}.{name}: a study's definition is read-only; make a changed "
            "copy with config.with_overrides(...) for [study] fields, or edit the study file "
            "and load it again"
        )


class Objective(_Frozen):
    model_config = _STRICT
    name: str
    direction: Literal["maximize", "minimize"] | None = None

    @property
    def resolved_direction(self) -> Literal["maximize", "minimize"]:
        """The stated direction, else the metric's natural one (accuracy up, costs down)."""
        if self.direction is not None:
            return self.direction
        from nmhpo.tasks import TASKS

        for info in TASKS.values():
            if self.name in info.metrics:
                return info.metrics[self.name]
        return METRICS[self.name].direction


class PruningSection(_Frozen):
    """[study.pruning]: where the rungs are and how many trials go on past each.

    Rungs are at ``min_epochs * reduction_factor**k`` epochs, below a trial's own epochs. At a
    rung a trial goes on when it is on the non-dominated front of the trials that reached that
    rung, or among the best ``ceil(n / reduction_factor)`` of them by non-dominated rank and
    crowding; with fewer than ``min_trials`` there, it always goes on.
    """

    model_config = _STRICT
    #: The first rung. 1 by measurement: a first rung at epoch 3 was better on pbl (1.3x
    #: against 1.1x to 95%) and worse on bragg and digits (bench_multifidelity's asha-first3).
    #: `nmhpo report`'s rung agreement tells how well a study's first rung ranks as its end;
    #: that alone did not predict the better first rung (bench_rung_agreement: epoch 1 ranked
    #: worst on digits and bragg, where it was the better first rung).
    min_epochs: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=3.0, gt=1.0, le=100.0)
    min_trials: int = Field(default=3, ge=1)
    #: Show each stopped trial to the sampler as a completed one whose values are those of
    #: its last rung (pessimistic for a measure that improves with training), instead of
    #: hiding it (GP, NSGA-II) or filing it as bad whatever it measured (TPE).
    learn_from_stopped: bool = True


class StudySection(_Frozen):
    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=120)
    storage: str | None = None
    #: GP by default: fewest evaluations to the grid's front in benchmarks/bench_search.py.
    sampler: Literal["tpe", "nsga2", "nsga3", "gp", "random", "qmc", "grid"] = "gp"
    n_trials: int = Field(ge=1)
    seed: int = Field(default=0, ge=0)  # (NumPy's seed sequences take none below 0)
    objectives: list[Objective] = Field(min_length=1)
    torch_threads: int = Field(default=1, ge=1, le=256)
    max_failures: int = Field(default=5, ge=1)
    #: Feasibility rules on any metric, e.g. "area_mm2 <= 2.0" (parsed, never evaluated).
    constraints: list[str] = Field(default_factory=list)
    #: Training seeds per point; objectives are the means, standard deviations are stored.
    repeats: int = Field(default=1, ge=1, le=100)
    #: Reuse a software point's trained network for every hardware point (train once).
    reuse_models: bool = True
    #: Seconds between heartbeats of a running trial; silent for 3 of them, it is re-run.
    heartbeat_s: int = Field(default=60, ge=1, le=3600)
    #: Where trials train and infer: "auto" (a GPU when torch sees one, else the CPU), "cpu",
    #: "cuda" (worker i on GPU i mod G) or "cuda:N". Not part of the study's identity: a study
    #: may be resumed on another machine; results then agree to within float rounding only.
    device: str = "auto"
    #: "asha": stop trials dominated at a rung (asynchronous successive halving by
    #: non-dominated rank); "none": every trial trains to its last epoch. Default: "asha",
    #: chosen by benchmarks/bench_multifidelity.py (95% of the front in 1.1-3.7x less CPU on
    #: four tasks, a better front at equal completed trials in 16 of 20 (task, seed) pairs
    #: and in the median of each task), and "none" for a grid, which
    #: evaluates every point in full. Not part of the study's identity: a study may be
    #: resumed with or without it.
    pruner: Literal["none", "asha"] = "asha"
    pruning: PruningSection = Field(default_factory=PruningSection)
    #: Score each network a trial trains at this many other points of the searched hardware
    #: space too, each as a trial of its own (queued at once, counted in n_trials): the
    #: network comes from the train-once cache, so such a trial costs one inference and one
    #: pricing, no training. 0: only the hardware point the sampler chose. Not part of the
    #: study's identity.
    hardware_variants: int = Field(default=0, ge=0, le=64)
    #: Which points: "front" skips those a cheaper point with the same inference knobs (so
    #: the same accuracy) dominates on the priced objectives, or that break a constraint on a
    #: priced metric, and spreads the rest along the first priced objective; "random" draws
    #: them uniformly. Not part of the study's identity (nmhpo.variants says how and why).
    variant_pick: Literal["front", "random"] = "front"

    @model_validator(mode="before")
    @classmethod
    def _default_pruner(cls, data: Any) -> Any:
        if isinstance(data, dict) and "pruner" not in data and data.get("sampler") == "grid":
            return {**data, "pruner": "none"}
        return data

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        problem = device_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class TaskSection(_Frozen):
    """The task's name, data seed and optional user data file; every other key is one of the
    task's own options (validated against that task's options model)."""

    model_config = ConfigDict(frozen=True, extra="allow", strict=True)
    name: str
    path: str | None = Field(default=None, min_length=1)
    data_seed: int = Field(default=0, ge=0)

    def options_dict(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class _HardwareSettings(_Frozen):
    """The [hardware] keys that are not knobs; `HardwareSection` adds one field per knob."""

    model_config = _STRICT
    preset: str = "spikesim-65nm"
    mode: Literal["event", "spikesim"] = "event"
    #: "crossbar": score every hardware point by crossbar-aware inference (quantized weights,
    #: partial sums through the ADC); "float": score the trained float network.
    inference: Literal["crossbar", "float"] = "crossbar"
    #: Replace preset constants, e.g. [hardware.constants.energy_pj] adc = 2.5
    constants: dict[str, dict[str, float | list[float]]] = Field(default_factory=dict)

    def overrides(self) -> dict[str, Any]:
        """The knobs this section sets over the preset's defaults."""
        return {k: v for k, v in self.model_dump().items() if k in HARDWARE and v is not None}


_KNOB_TYPES: dict[str, Any] = {"int": int, "float": float, "categorical": Scalar}

# NOTE: the knob fields are generated from the crossbar's knob table so that a knob added
# there is a [hardware] key at once; a hand-written list here once accepted
# conductance_sigma and then dropped it. Domains are checked by `_semantic_problem`, with the
# table's wording. mypy sees only the base class (it cannot follow create_model's fields).
if TYPE_CHECKING:
    HardwareSection = _HardwareSettings
else:
    HardwareSection = create_model(
        "HardwareSection",
        __base__=_HardwareSettings,
        __module__=__name__,
        __doc__="[hardware]: the preset, the cost mode, and any knob set over the preset.",
        **{
            k.name: (
                _KNOB_TYPES[k.kind] | None,
                Field(default=None, description=k.description),
            )
            for k in HARDWARE_KNOBS
        },
    )


ParamClassName = Literal["encoding", "training", "neuron", "architecture", "hardware"]


class FloatParam(_Frozen):
    model_config = _STRICT
    type: Literal["float"]
    cls: ParamClassName | None = Field(default=None, alias="class")
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    grid: list[float] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.step, self.grid)
        return self


class IntParam(_Frozen):
    model_config = _STRICT
    type: Literal["int"]
    cls: ParamClassName | None = Field(default=None, alias="class")
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, ge=1)
    grid: list[int] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(
            self.low, self.high, self.log, None if self.step == 1 else self.step, self.grid
        )
        return self


class CategoricalParam(_Frozen):
    model_config = _STRICT
    type: Literal["categorical"]
    cls: ParamClassName | None = Field(default=None, alias="class")
    choices: list[Scalar] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, v: list[Scalar]) -> list[Scalar]:
        if len(set(map(repr, v))) != len(v):
            raise ValueError("choices must be distinct")
        # Optuna finds a choice by equality (list.index): 1 would be stored as True.
        for i, a in enumerate(v):
            for b in v[i + 1 :]:
                if a == b:
                    raise ValueError(f"choices must be distinct; {a!r} and {b!r} are equal")
        return v


class FixedParam(_Frozen):
    """A parameter held constant (written as a bare value in the study file)."""

    model_config = _STRICT
    type: Literal["fixed"]
    value: Scalar


ParamSpec = Annotated[
    FloatParam | IntParam | CategoricalParam | FixedParam, Field(discriminator="type")
]
# A searched parameter's spec: `StudyConfig.searched` leaves fixed values out, so its callers
# need not handle FixedParam.
SearchedParam = FloatParam | IntParam | CategoricalParam


def _check_range(
    low: float, high: float, log: bool, step: float | None, grid: list[Any] | None
) -> None:
    if not low < high:
        raise ValueError(f"low must be < high; got low={low}, high={high}")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0; got low={low}")
    if log and step is not None:
        raise ValueError("log and step cannot be combined")
    if step is not None:
        # Optuna would move high down to the last multiple, with a warning at every trial
        # (an int range narrower than its step becomes [low, low]): say it where it is written.
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9 * max(1.0, abs(n)):
            raise ValueError(
                f"high - low must be a multiple of step; got low={low}, high={high}, step={step}"
            )
    if grid is not None:
        outside = [g for g in grid if not low <= g <= high]
        if outside:
            raise ValueError(f"grid level {outside[0]} is outside [{low}, {high}]")
        if len(set(grid)) != len(grid):
            raise ValueError("grid levels must be distinct")


def _as_spec(value: Any) -> Any:
    return value if isinstance(value, dict) else {"type": "fixed", "value": value}


class SpaceSection(_Frozen):
    model_config = _STRICT
    software: dict[str, ParamSpec] = Field(default_factory=dict)
    hardware: dict[str, ParamSpec] = Field(default_factory=dict)

    @field_validator("software", "hardware", mode="before")
    @classmethod
    def _wrap_scalars(cls, v: Any) -> Any:
        return {k: _as_spec(x) for k, x in v.items()} if isinstance(v, dict) else v


class StudyConfig(_Frozen):
    """A validated study file. ``path`` is the file it came from (for relative paths).

    However it is built (`load_config`, ``model_validate``, keywords), every rule runs and a
    failure is one `ConfigError` line, never a pydantic ValidationError.
    """

    model_config = _STRICT
    study: StudySection
    task: TaskSection
    hardware: HardwareSection = Field(default_factory=HardwareSection)
    space: SpaceSection = Field(default_factory=SpaceSection)
    path: Path | None = Field(default=None, exclude=True, strict=False)
    #: Where the default SQLite file goes: the study file's folder, or nmhpo's home folder
    #: for a study shipped inside the package (never write into site-packages).
    storage_dir: Path | None = Field(default=None, exclude=True, strict=False)
    #: The working directory when the config was validated: relative paths (a relative
    #: ``path``, or every path of a config built in code) stay where they pointed then, even
    #: if a notebook changes directory before running the study.
    workdir: Path | None = Field(default=None, exclude=True, strict=False)

    @model_validator(mode="wrap")
    @classmethod
    def _validate_whole(
        cls, data: Any, handler: ModelWrapValidatorHandler[StudyConfig]
    ) -> StudyConfig:
        """Run the field rules, then the rules that need the registries, and word any failure
        as one `ConfigError` line (prefixed by the file when there is one).

        A model validator rather than a step of `load_config`, so a config built in code
        (``model_validate``, keywords, `with_overrides`) cannot skip the name checks. A
        `ConfigError` is not a ValueError, so pydantic lets it through unwrapped.
        """
        path = data.get("path") if isinstance(data, dict) else getattr(data, "path", None)
        prefix = "" if path is None else f"{path}: "
        try:
            cfg = handler(data)
        except ValidationError as exc:
            raise ConfigError(f"{prefix}{_describe(exc)}") from None
        if cfg.workdir is None and (cfg.path is None or not cfg.path.is_absolute()):
            try:
                cfg = cfg.model_copy(update={"workdir": Path.cwd()})
            except OSError:  # the working directory was deleted: nothing relative resolves
                raise ConfigError(
                    f"{prefix}the working directory no longer exists; relative paths cannot "
                    "be resolved (give the study file's absolute path, or cd somewhere)"
                ) from None
        problem = _semantic_problem(cfg)
        if problem:
            raise ConfigError(f"{prefix}{problem}")
        return cfg

    @property
    def base_dir(self) -> Path:
        """What relative paths in the study are relative to: the study file's folder, or for
        a config built in code, the working directory it was validated in."""
        if self.path is not None and self.path.is_absolute():
            return self.path.parent
        workdir = self.workdir or Path.cwd()
        return (workdir / self.path).parent if self.path is not None else workdir

    def storage_url(self) -> str:
        """The study's storage: [study].storage, else ``nmhpo-studies.db`` beside the file."""
        if self.study.storage is None:
            folder = self.storage_dir or self.base_dir
            return f"sqlite:///{(folder / DEFAULT_STORAGE_FILE).resolve()}"
        return resolve_storage_url(self.study.storage, self.base_dir)

    @property
    def cache_dir(self) -> Path:
        """Generated data and trained models, beside the study's default storage."""
        return (self.storage_dir or self.base_dir) / "nmhpo-cache"

    def task_info(self) -> TaskInfo:
        from nmhpo.tasks import get_task

        return get_task(self.task.name)

    def task_options(self) -> TaskOptions:
        return self.task_info().options.model_validate(self.task.options_dict())

    def data_path(self) -> Path | None:
        """A user's data for the task, relative to the study file (``~`` is the home)."""
        if self.task.path is None:
            return None
        return (self.base_dir / Path(self.task.path).expanduser()).resolve()

    def parsed_constraints(self) -> list[Constraint]:
        from nmhpo.constraints import parse_constraints

        return parse_constraints(self.study.constraints, self.allowed_metrics())

    def allowed_metrics(self) -> set[str]:
        """Names usable as objectives and in constraints."""
        return set(METRICS) | set(self.task_info().metrics)

    def preset(self) -> Preset:
        """The hardware preset with this study's constant overrides applied."""
        from nmhpo.crossbar import load_preset

        return load_preset(self.hardware.preset, self.base_dir).with_constants(
            self.hardware.constants
        )

    def searched(self) -> dict[str, SearchedParam]:
        """Parameters Optuna suggests (fixed values excluded), software first."""
        both = {**self.space.software, **self.space.hardware}
        return {k: v for k, v in both.items() if not isinstance(v, FixedParam)}

    def fixed_software(self) -> dict[str, Any]:
        """Software parameters not searched: defaults overridden by fixed values (an event
        task's default encoding is "events", its only one).

        Each group of `OPTIONAL_GROUPS` (the training algorithm's parameters, the decoder) is
        left out unless the study names one of its parameters, so the points of a study
        written before they existed keep their training seeds and model-cache keys.
        """
        named = set(self.space.software)
        left_out = {k for group in OPTIONAL_GROUPS if not named & set(group) for k in group}
        out = {k: p.default for k, p in SOFTWARE.items() if k not in left_out}
        if self.task_info().events:
            out["encoding"] = EVENT_ENCODING
        out.update(
            {k: v.value for k, v in self.space.software.items() if isinstance(v, FixedParam)}
        )
        return out

    def fixed_hardware(self) -> dict[str, Any]:
        """Hardware knobs not searched: [hardware] overrides and fixed space values, over the
        table's defaults for knobs no preset sets (so a trial records conductance_sigma = 0)."""
        out = {k.name: k.default for k in HARDWARE_KNOBS if not k.priced}
        out.update(self.hardware.overrides())
        out.update(
            {k: v.value for k, v in self.space.hardware.items() if isinstance(v, FixedParam)}
        )
        return out

    def identity(self) -> dict[str, Any]:
        """What defines the study's results: a resumed study must match it exactly."""
        dumped = self.model_dump(mode="json", by_alias=True)
        return {
            "objectives": [
                {"name": o.name, "direction": o.resolved_direction} for o in self.study.objectives
            ],
            "constraints": list(self.study.constraints),
            "repeats": self.study.repeats,
            "task": dumped["task"],
            "hardware": dumped["hardware"],
            "space": dumped["space"],
        }

    def identity_hash(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_overrides(
        self, *, option_names: Mapping[str, str] | None = None, **study_fields: Any
    ) -> StudyConfig:
        """A copy with [study] fields replaced (None leaves one as it is), validated the same
        way; the whole config is checked again, since e.g. a new storage or name must pass the
        same rules as the file. A relative SQLite ``storage`` is relative to the working
        directory, as the user typed it in a shell or a notebook.

        Errors name a field as the caller's user wrote it: ``option_names`` maps a field to
        that name (the CLI's ``{"n_trials": "--n-trials", ...}``); unmapped fields are named
        as given (``n_trials``, the Python API's keywords).
        """
        names = dict(option_names or {})
        fields = {k: v for k, v in study_fields.items() if v is not None}
        if not fields:
            return self
        unknown = sorted(set(fields) - set(StudySection.model_fields))
        if unknown:
            raise ConfigError(
                f"{names.get(unknown[0], unknown[0])}: unknown [study] field; expected one of "
                f"{', '.join(StudySection.model_fields)}"
            )
        if "storage" in fields:
            if not isinstance(fields["storage"], str):
                raise ConfigError(
                    f"{names.get('storage', 'storage')}: expected a SQLAlchemy URL string; "
                    f"got {type(fields['storage']).__name__}"
                )
            fields["storage"] = resolve_storage_url(fields["storage"], Path.cwd())
            problem = check_storage_url(fields["storage"])
            if problem:
                raise ConfigError(
                    f"{names.get('storage', 'storage')}: {problem}; "
                    f"got {mask_url(fields['storage'])!r}"
                )
        try:
            study = StudySection.model_validate({**self.study.model_dump(), **fields})
        except ValidationError as exc:
            key, _, problem = _describe(exc).partition(": ")
            raise ConfigError(f"{names.get(key, key)}: {problem}") from None
        return StudyConfig.model_validate({**dict(self), "study": study})


def resolve_storage_url(url: str, base_dir: Path) -> str:
    """Relative SQLite paths in a study file are relative to that file, not the shell's cwd."""
    match = re.fullmatch(r"sqlite:///(?!/)(.+)", url)
    if match and match.group(1) != ":memory:":
        return f"sqlite:///{(base_dir / match.group(1)).resolve()}"
    return url


def check_storage_url(url: str) -> str | None:
    """What a usable URL would be, when ``url`` is not one (else None); nothing is opened.

    The caller adds the URL it got (masked), so each message names it once.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return "expected an SQLAlchemy URL such as sqlite:///studies.db or postgresql://host/db"
    if parsed.get_backend_name() not in ("sqlite", "postgresql", "mysql"):
        return "expected a sqlite, postgresql or mysql URL"
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        # Every connection would see its own empty database: the study could be neither
        # created nor resumed, and nothing would outlive the run.
        return "expected a SQLite file (sqlite:///study.db); an in-memory database keeps nothing"
    return None


# ---------------------------------------------------------------------------- loading


def packaged_studies() -> list[str]:
    """Names of the study files shipped with nmhpo (usable as ``nmhpo run NAME``)."""
    from nmhpo._resources import data_dir

    return sorted(p.stem for p in data_dir("studies").glob("*.toml"))


def load_config(path: str | Path) -> StudyConfig:
    """Read and fully validate a study file; raises `ConfigError` with one line.

    ``path`` may also name a shipped study (``quickstart``); its default storage, model cache
    and reports then live in `nmhpo._resources.home_dir` (``$NMHPO_HOME``, by default
    ``~/.local/share/nmhpo``), wherever the caller runs.
    """
    from nmhpo._resources import data_dir, home_dir

    if not isinstance(path, str | Path):
        hint = ""
        if isinstance(path, dict):
            hint = "; build a config from a dict with StudyConfig.model_validate"
        raise ConfigError(
            f"load_config: expected a study file's path or a shipped study's name; "
            f"got {type(path).__name__}{hint}"
        )
    path = Path(path)
    shipped = data_dir("studies") / f"{path}.toml"
    if not path.exists() and path.suffix == "" and len(path.parts) == 1 and shipped.is_file():
        cfg = load_config(shipped)
        return cfg.model_copy(update={"storage_dir": home_dir()})
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        names = ", ".join(packaged_studies())
        raise ConfigError(f"{path}: no such file (shipped studies: {names})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> StudyConfig:
    """Validate an already-parsed study table (``path`` names it in errors)."""
    sections = ("study", "task", "hardware", "space")
    unknown = [k for k in raw if k not in sections]
    if unknown:
        raise ConfigError(
            f"{path}: {unknown[0]}: unknown key; expected one of {', '.join(sections)}"
        )
    return StudyConfig.model_validate({**raw, "path": path})


def _semantic_problem(cfg: StudyConfig) -> str | None:
    """Rules that need the registries: names of tasks, presets, knobs, objectives."""
    from nmhpo.constraints import parse_constraint
    from nmhpo.crossbar import load_preset
    from nmhpo.errors import PresetError
    from nmhpo.tasks import TASKS

    if cfg.task.name not in TASKS:
        return f"task.name: expected one of {', '.join(TASKS)}; got {cfg.task.name!r}"
    options_model = TASKS[cfg.task.name].options
    try:
        options = options_model.model_validate(cfg.task.options_dict())
    except ValidationError as exc:
        err = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        if err[0]["type"] == "extra_forbidden":
            known = ", ".join(["name", "path", "data_seed", *options_model.model_fields])
            return (
                f"task.{err[0]['loc'][0]}: unknown key for task {cfg.task.name}; "
                f"expected one of {known}"
            )
        return f"task.{_describe(exc)}"
    data = cfg.data_path()
    if data is None and TASKS[cfg.task.name].read_path is not None:
        return f"task.path: the {cfg.task.name} task reads your data files; give their folder"
    if data is None and TASKS[cfg.task.name].needs_path:
        return f"task.path: the {cfg.task.name} task reads your data; give your .npz file"
    if data is not None and TASKS[cfg.task.name].read_path is not None and data.is_file():
        return f"task.path: the {cfg.task.name} task reads a folder of its files; got file {data}"
    if data is not None and TASKS[cfg.task.name].read_path is None and data.is_dir():
        return f"task.path: the {cfg.task.name} task reads one .npz file; got folder {data}"
    try:
        load_preset(cfg.hardware.preset, cfg.base_dir)
    except PresetError as exc:
        return f"hardware.preset: {exc}"
    try:
        cfg.preset()
    except PresetError as exc:
        return f"hardware.{exc}"
    for key, value in cfg.hardware.overrides().items():
        if not HARDWARE[key].check(value):
            return f"hardware.{key}: expected {HARDWARE[key].domain}; got {value!r}"
    for section, table in (("software", SOFTWARE), ("hardware", HARDWARE)):
        for name, spec in getattr(cfg.space, section).items():
            problem = _param_problem(name, spec, table)
            if problem:
                return f"space.{section}.{name}{problem}"
    event_tasks = [name for name, info in TASKS.items() if info.events]
    problem = _encoding_problem(cfg, TASKS[cfg.task.name].events, event_tasks)
    if problem:
        return problem
    if not TASKS[cfg.task.name].image:
        conv = _largest(cfg.space.software.get("conv_layers"), SOFTWARE["conv_layers"].default)
        if conv > 0:
            return (
                f"space.software.conv_layers: expected 0: the {cfg.task.name} task's inputs "
                f"are no image; got {conv}"
            )
    problem = _decoder_problem(cfg, TASKS[cfg.task.name], options)
    if problem:
        return problem
    time_bins = getattr(options, "time_bins", None)
    if TASKS[cfg.task.name].events and isinstance(time_bins, int):
        most = _largest(cfg.space.software.get("num_steps"), SOFTWARE["num_steps"].default)
        if most > time_bins:
            return (
                f"space.software.num_steps: expected at most task.time_bins ({time_bins}): "
                f"a step is at least one fine time bin; got {most}"
            )
    both = set(cfg.space.software) & set(cfg.space.hardware)
    if both:
        return f"space.hardware.{sorted(both)[0]}: also in space.software"
    fixed_and_searched = set(cfg.hardware.overrides()) & set(cfg.space.hardware)
    if fixed_and_searched:
        name = sorted(fixed_and_searched)[0]
        return (
            f"hardware.{name}: also in space.hardware; set a knob in one place, [hardware] "
            "or [space.hardware]"
        )
    allowed = set(METRICS) | set(TASKS[cfg.task.name].metrics)
    seen: set[str] = set()
    for i, obj in enumerate(cfg.study.objectives):
        if obj.name not in allowed:
            return (
                f"study.objectives[{i}].name: expected one of {', '.join(sorted(allowed))}; "
                f"got {obj.name!r}"
            )
        if obj.name in seen:
            return f"study.objectives[{i}].name: {obj.name!r} is listed twice"
        seen.add(obj.name)
    if cfg.study.hardware_variants:
        if cfg.study.sampler == "grid":
            return "study.hardware_variants: a grid search scores every hardware point already"
        if not cfg.study.reuse_models:
            return (
                "study.hardware_variants: a variant scores a cached network, and reuse_models "
                "= false trains every trial's own; set reuse_models = true"
            )
        if not any(k not in SOFTWARE for k in cfg.searched()):
            return "study.hardware_variants: expected a searched [space.hardware] parameter"
    if cfg.study.pruner != "none" and cfg.study.sampler == "grid":
        return (
            "study.pruner: a grid search evaluates every point in full; "
            'use pruner = "none" or another sampler'
        )
    for i, text in enumerate(cfg.study.constraints):
        try:
            parse_constraint(text, allowed)
        except ConfigError as exc:
            return f"study.constraints[{i}]: {exc}"
    if cfg.study.hardware_variants:
        from nmhpo.variants import moving_knobs  # (it reads this module's models)

        if not moving_knobs(cfg):
            return (
                "study.hardware_variants: no searched hardware knob changes an objective or "
                "a constrained metric here (none of them is priced, and inference is "
                f"{cfg.hardware.inference!r}); add a priced objective such as energy_uj, or "
                'search an inference knob (adc_bits, ...) with inference = "crossbar"'
            )
    if cfg.study.storage is not None:
        problem = check_storage_url(cfg.study.storage)
        if problem:
            return f"study.storage: {problem}; got {mask_url(cfg.study.storage)!r}"
    if cfg.study.sampler == "grid":
        return grid_problem(cfg)
    return None


def _decoder_problem(cfg: StudyConfig, info: TaskInfo, options: Any) -> str | None:
    """Decoder layers predict an image of the input's size: the task must have image targets,
    and its side must halve ``decoder_layers`` times."""
    depth = _largest(cfg.space.software.get("decoder_layers"), SOFTWARE["decoder_layers"].default)
    if depth == 0:
        return None
    if not info.image_outputs:
        return (
            f"space.software.decoder_layers: expected 0: the {cfg.task.name} task's targets "
            f"are no image; got {depth}"
        )
    side = getattr(options, "size", None)
    if isinstance(side, int) and side % 2**depth:
        return (
            f"space.software.decoder_layers: {depth} decoder layers halve the image {depth} "
            f"times; task.size = {side} does not divide by {2**depth}"
        )
    return None


def _largest(spec: Any, default: int) -> int:
    """The largest value a numeric parameter can take (its default when not in the space)."""
    if spec is None:
        return default
    if isinstance(spec, FixedParam):
        return int(spec.value)
    if isinstance(spec, CategoricalParam):
        return int(max(spec.choices))
    return int(spec.high)


def _encoding_problem(cfg: StudyConfig, events: bool, event_tasks: list[str]) -> str | None:
    """An event task's samples are already spikes: "events" is its only encoding, and no
    other task has events to pass through."""
    spec = cfg.space.software.get("encoding")
    if spec is None:
        return None  # the default fits the task (`StudyConfig.fixed_software`)
    if isinstance(spec, FixedParam):
        values = [spec.value]
    elif isinstance(spec, CategoricalParam):
        values = list(spec.choices)
    else:
        return None  # not categorical: `_param_problem` has said so
    for v in values:
        if events and v != EVENT_ENCODING:
            return (
                f"space.software.encoding: the {cfg.task.name} task's inputs are events; "
                f"expected 'events' (or no encoding key); got {v!r}"
            )
        if not events and v == EVENT_ENCODING:
            return (
                f"space.software.encoding: 'events' needs an event task "
                f"({', '.join(event_tasks)}); task {cfg.task.name} gives static inputs"
            )
    return None


def _param_problem(name: str, spec: Any, table: dict[str, Param]) -> str | None:
    if name not in table:
        return f": unknown parameter; expected one of {', '.join(table)}"
    param = table[name]
    if isinstance(spec, FixedParam):
        values = [spec.value]
    elif isinstance(spec, CategoricalParam):
        values = list(spec.choices)
    else:
        if param.kind == "categorical":
            return f".type: expected categorical (or a fixed value); got {spec.type}"
        if param.kind == "int" and isinstance(spec, FloatParam):
            return ".type: expected int (this parameter takes integers); got float"
        values = [spec.low, spec.high, *(spec.grid or [])]
    for v in values:
        if not param.check(v):
            return f": expected {param.domain}; got {v!r}"
    return None


def require_data(cfg: StudyConfig) -> None:
    """Refuse a data path that names nothing. Checked where the data is needed (`run`,
    `validate`, `grid`, reading the data), not with the file: a study shared as its file and
    database is read (`report`, `dashboard`, `open_study`) without the data it was run on.

    Raises:
        ConfigError: ``[task] path`` does not exist.
    """
    data = cfg.data_path()
    if data is not None and not data.exists():
        prefix = f"{cfg.path}: " if cfg.path else ""
        raise ConfigError(f"{prefix}task.path: {data} does not exist")


def unused_task_options(cfg: StudyConfig) -> list[str]:
    """Task options the study sets that do nothing: a task that reads one .npz takes its
    splits from the file as they are, so options that would make data (``n_train``,
    ``val_fraction``, ...) are not used. Worth a warning, not a refusal: a shipped study
    with such options is how a user starts with their own file (studies/pbl.toml says so)."""
    info = cfg.task_info()
    if cfg.task.path is None or info.read_path is not None:
        return []
    # data_seed draws generated data and its splits; a file brings both
    seed = ["data_seed"] if cfg.task.data_seed != 0 else []  # (0, the default: not named)
    return sorted(seed + ([] if info.needs_path else list(cfg.task.options_dict())))


def search_problem(cfg: StudyConfig) -> str | None:
    """Why running ``cfg`` would be pointless: nothing searched, yet more than one trial
    (each would train the same point). Checked by `run` and `validate` after the command
    line's overrides, not on the file alone, so ``--n-trials 1`` runs such a study and a
    report can still read one."""
    if not cfg.searched() and cfg.study.n_trials > 1:
        return (
            "space: nothing is searched (every value is fixed), so every trial would train "
            f"the same point; give a parameter a range or choices, or run 1 trial (n_trials = "
            f"1) to evaluate this one design; got n_trials = {cfg.study.n_trials}"
        )
    return None


def grid_problem(cfg: StudyConfig) -> str | None:
    """Why ``cfg``'s space has no finite grid (a continuous parameter without levels)."""
    for section in ("software", "hardware"):
        for name, spec in getattr(cfg.space, section).items():
            if isinstance(spec, FloatParam) and spec.grid is None:
                return (
                    f"space.{section}.{name}.grid: a grid needs levels for every continuous "
                    "parameter, e.g. grid = [0.001, 0.01]"
                )
    return None


def mask_url(url: str) -> str:
    """A URL with its password replaced, safe to print."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


# ------------------------------------------------------------------ error wording


def _describe(exc: ValidationError) -> str:
    # A misspelt key also makes the intended one "missing": report the misspelling.
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    loc = [p for p in err["loc"] if p not in ("float", "int", "categorical", "fixed")]
    key = _dotted(loc)
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "extra_forbidden":
        tag = err["loc"][-2] if len(err["loc"]) >= 2 else None
        # Inside a parameter spec the loc passes through the union's tag ("float", ...).
        fields = _spec_keys(tag) if tag in _SPEC_TYPES else _fields_at(loc[:-1])
        hint = f"; expected one of {', '.join(fields)}" if fields else ""
        return f"{key}: unknown key{hint}"
    if kind == "missing":
        return f"{key}: missing (required)"
    if kind == "literal_error":
        return f"{key}: expected one of {ctx.get('expected', '')}; got {_short(value)}"
    if kind == "union_tag_invalid":
        tag = _short(ctx.get("tag"))
        return f"{key}.type: expected one of float, int, categorical, fixed; got {tag}"
    if kind == "union_tag_not_found":
        # With no type the spec's keys are unknown: a key no type has (often a misspelt
        # "type") is the likelier mistake, so name it with every type's keys.
        stray = [k for k in value if k not in _spec_keys(None)] if isinstance(value, dict) else []
        if stray:
            return f"{key}.{stray[0]}: unknown key; expected one of {', '.join(_spec_keys(None))}"
        return (
            f"{key}: expected a table with type = float, int or categorical; got {_short(value)}"
        )
    if kind == "string_too_short" and not value:
        return f"{key}: expected a value; got an empty string"
    if kind == "string_pattern_mismatch":
        return f"{key}: expected letters, digits, '.', '_' or '-'; got {_short(value)}"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    msg = re.sub(r"^Input should be", "expected", msg)
    if kind.endswith("_type") or kind.startswith(("greater", "less", "too_")):
        return f"{key}: {msg}; got {_short(value)}"
    return f"{key}: {msg}"


_SPEC_TYPES: dict[str, type[BaseModel]] = {
    "float": FloatParam,
    "int": IntParam,
    "categorical": CategoricalParam,
    "fixed": FixedParam,
}


def _spec_keys(spec_type: Any) -> list[str]:
    """The keys a parameter spec of ``spec_type`` takes (every type's keys for None), as the
    study file spells them."""
    models = [_SPEC_TYPES[spec_type]] if spec_type in _SPEC_TYPES else _SPEC_TYPES.values()
    keys: list[str] = []
    for model in models:
        for name, info in model.model_fields.items():
            if (info.alias or name) not in keys:
                keys.append(info.alias or name)
    return keys


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fields_at(loc: list[Any]) -> list[str]:
    """Allowed keys of the table at ``loc`` (for "unknown key" hints)."""
    model: Any = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", None)
        if not fields or part not in fields:
            return []
        model = _unwrap(fields[part].annotation)
    fields = getattr(model, "model_fields", None)
    return [f for f in fields if f not in ("path", "storage_dir")] if fields else []


def _unwrap(annotation: Any) -> Any:
    for arg in typing.get_args(annotation) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _unwrap(arg)
        if inner is not None:
            return inner
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType):
        return None
    return None
