"""Task data as plain NumPy arrays (tasks stay independent of torch), splits and the data cache.

A task is a small module: an options model (its own [task] keys), a ``build`` that returns the
train/validation/test splits deterministically from a seed, and a ``metrics`` function that turns
predictions into the task's metrics in physical units. `prepare` adds what every task shares:
reading a user's .npz instead of generating, and an on-disk cache so a study generates its data
once, not once per trial or worker.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from nmhpo.errors import TaskError

logger = logging.getLogger(__name__)

Kind = Literal["classification", "regression"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


class TaskOptions(BaseModel):
    """Base of every task's options: frozen, and a typo is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


@dataclass(frozen=True)
class Splits:
    """Inputs are float32, (n, *input_shape), scaled to [0, 1]; an event task's are uint8 event
    counts on a fine time grid, (n, time_bins, *frame): a frame is (2, H, W) for a camera,
    (700,) for SHD. Targets are int64 class labels
    (n,) for classification and float32 (n, n_outputs) normalised values for regression;
    ``meta`` holds what the metrics need to go back to physical units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict[str, np.ndarray] = field(default_factory=dict)


MetricsFn = Callable[[np.ndarray, np.ndarray, Mapping[str, np.ndarray]], dict[str, float]]
DataFiles = tuple[str, ...] | Callable[[Path], list[Path]]


@dataclass(frozen=True)
class TaskInfo:
    """A registered task: what it is, what it measures, how to build it."""

    name: str
    description: str
    kind: Kind
    metrics: dict[str, Literal["maximize", "minimize"]]  # objective names and directions
    options: type[TaskOptions]
    build: Callable[[Any, int], Splits]  # (options, seed) -> splits
    score: MetricsFn  # (y_true, y_pred, meta) -> metrics
    #: Tasks whose data the user must give ([task] path) read it themselves; others read .npz.
    read_path: Callable[[Path, Any, int], Splits] | None = None
    #: Samples are event counts on a fine time grid (see `nmhpo.tasks._events`): they are the
    #: input spikes, binned into num_steps frames by encoding "events", the only one allowed.
    events: bool = False
    #: One step's input is an image a conv layer can take (a flat input of square size counts);
    #: False for SHD's 700 channels, so validation refuses conv layers before any trial.
    image: bool = True
    #: Targets are images of the input's size (channels x height x width, flattened): a
    #: network may end in conv decoder layers (`decoder_layers`).
    image_outputs: bool = False
    #: What a user's .npz arrays become before they are checked, given the task's options
    #: (the generic regression task scales raw inputs and targets here).
    adapt: Callable[[dict[str, np.ndarray], Any], dict[str, np.ndarray]] | None = None
    #: Nothing to generate: the task reads only the user's file ([task] path is required),
    #: and its options all apply to that file.
    needs_path: bool = False
    #: The files a folder task's reader reads, as glob patterns under the folder or a
    #: function that lists them: what its cache key, model key and the study's data
    #: fingerprint follow (a log, a SLURM output or a licence beside them is not the dataset).
    data_files: DataFiles = ()


@dataclass(frozen=True)
class TaskData:
    """A prepared task: its splits plus how to score predictions."""

    info: TaskInfo
    splits: Splits

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def kind(self) -> Kind:
        return self.info.kind

    @property
    def x_train(self) -> np.ndarray:
        return self.splits.x_train

    @property
    def y_train(self) -> np.ndarray:
        return self.splits.y_train

    @property
    def x_val(self) -> np.ndarray:
        return self.splits.x_val

    @property
    def y_val(self) -> np.ndarray:
        return self.splits.y_val

    @property
    def x_test(self) -> np.ndarray:
        return self.splits.x_test

    @property
    def y_test(self) -> np.ndarray:
        return self.splits.y_test

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One time step's input: an event task's (2, H, W) frame, after its time axis."""
        first = 2 if self.info.events else 1
        return tuple(int(s) for s in self.x_train.shape[first:])

    @property
    def time_bins(self) -> int | None:
        """The fine time bins of an event task's samples; None for other tasks."""
        return int(self.x_train.shape[1]) if self.info.events else None

    @property
    def n_features(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_outputs(self) -> int:
        """Classes for classification, target values for regression."""
        if self.kind == "classification":
            return int(max(self.y_train.max(), self.y_val.max(), self.y_test.max())) + 1
        return int(self.y_train.shape[1])

    @property
    def n_classes(self) -> int:
        return self.n_outputs

    def metrics(self, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
        """The task's metrics; ``y_pred`` is labels (classification) or normalised targets."""
        return self.info.score(y_true, y_pred, self.splits.meta)


def r2_per_output(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 of each column; as scikit-learn, 1 for a perfect fit of a constant, else 0."""
    ss_res = ((y_true - y_pred) ** 2).sum(axis=0)
    ss_tot = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    return np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))


def stratified_split(
    x: np.ndarray,
    y: np.ndarray,
    n_train: int | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> Splits:
    """Per-class shuffled train/validation/test split; ``n_train`` keeps a subset of train."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val = max(1, round(len(idx) * val_fraction))
        n_test = max(1, round(len(idx) * test_fraction))
        parts["val"].append(idx[:n_val])
        parts["test"].append(idx[n_val : n_val + n_test])
        parts["train"].append(idx[n_val + n_test :])
    train = rng.permutation(np.concatenate(parts["train"]))
    if n_train is not None:
        if n_train > len(train):
            raise TaskError(
                f"task.n_train: expected at most {len(train)}, the training samples this "
                f"task's split holds; got {n_train}"
            )
        train = train[:n_train]
    val = np.sort(np.concatenate(parts["val"]))
    test = np.sort(np.concatenate(parts["test"]))
    return Splits(x[train], y[train], x[val], y[val], x[test], y[test])


def generated_splits(
    generate: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
) -> Splits:
    """Splits of a synthetic task: each drawn with its own seed from ``seed``, so the
    validation and test sets stay the same when ``n_train`` changes."""
    seeds = np.random.SeedSequence(seed).spawn(3)
    arrays = [
        generate(n, int(s.generate_state(1)[0]))
        for n, s in zip((n_train, n_val, n_test), seeds, strict=True)
    ]
    return Splits(*arrays[0], *arrays[1], *arrays[2])


# ------------------------------------------------------------------------- npz + cache

NPZ_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def read_npz(
    path: Path, info: TaskInfo, options: TaskOptions | None = None, *, check: bool = True
) -> Splits:
    """A user's own data: arrays x_train, y_train, x_val, y_val and optionally x_test, y_test
    (else the validation arrays are reused as test), plus any ``meta_*`` arrays.

    ``check`` holds the arrays to the documented rules (numbers, finite, consistent shapes,
    inputs in [0, 1], class labels 0, 1, ...), after the task's ``adapt`` (with ``options``,
    the task's defaults when None); off for nmhpo's own cache, which a task generated (pbl's
    normalised targets, for one, are not a user's file's business).
    """
    if path.is_file() and not zipfile.is_zipfile(path):
        raise TaskError(f"{path}: not an .npz archive (write one with numpy.savez)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise TaskError(f"{path}: cannot read as .npz: {exc}") from None
    if check:  # first: a misspelt name is why an array seems missing
        _unknown_arrays(path, arrays)
    missing = [k for k in NPZ_ARRAYS[:4] if k not in arrays]
    if missing:
        raise TaskError(
            f"{path}: missing array {missing[0]!r}; expected {', '.join(NPZ_ARRAYS)} "
            "(x_test/y_test optional)"
        )
    if ("x_test" in arrays) != ("y_test" in arrays):
        given, absent = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise TaskError(f"{path}: {given} without {absent}; give both, or neither")
    arrays.setdefault("x_test", arrays["x_val"])
    arrays.setdefault("y_test", arrays["y_val"])
    if check:
        # The structure first, so that a task's adaptation meets only arrays it can take and
        # a mistake is named in the file's own terms; then the values' scale, after it.
        problem = _npz_problem(arrays, info)
        if not problem and info.adapt is not None:
            try:
                arrays = info.adapt(arrays, info.options() if options is None else options)
            except TaskError as exc:
                raise TaskError(f"{path}: {exc}") from None
        problem = problem or _scale_problem(arrays, info)
        if problem:
            raise TaskError(f"{path}: {problem}")
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if info.events:  # event counts; clipped as `nmhpo.tasks._events` clips them
            arrays[f"x_{split}"] = np.clip(x, 0, np.iinfo(np.uint8).max).astype(np.uint8)
        else:
            arrays[f"x_{split}"] = x.astype(np.float32)
        if info.kind == "classification":
            arrays[f"y_{split}"] = y.astype(np.int64)
        else:
            arrays[f"y_{split}"] = y.astype(np.float32).reshape(len(y), -1)
    meta = {k.removeprefix("meta_"): v for k, v in arrays.items() if k.startswith("meta_")}
    splits = Splits(
        x_train=arrays["x_train"],
        y_train=arrays["y_train"],
        x_val=arrays["x_val"],
        y_val=arrays["y_val"],
        x_test=arrays["x_test"],
        y_test=arrays["y_test"],
        meta=meta,
    )
    if check:
        # The task's own rules (pbl needs meta_y_mean and meta_y_std, ptycho's targets are
        # two images): scoring two samples finds them now, not after every trial trained.
        try:
            info.score(splits.y_val[:2], splits.y_val[:2], splits.meta)
        except TaskError as exc:
            raise TaskError(f"{path}: {exc}") from None
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise TaskError(
                f"{path}: the {info.name} task cannot score these arrays: {exc}"
            ) from None
    return splits


def cache_key(
    info: TaskInfo, options: TaskOptions, seed: int, data_path: Path | None = None
) -> str:
    """What decides a task's data: its options and seed, and for data read from a folder,
    that folder and every file in it (relative name, size, modification time)."""
    key: dict[str, Any] = {
        "task": info.name,
        "options": options.model_dump(mode="json"),
        "seed": seed,
    }
    if data_path is not None:
        key["path"] = str(data_path.resolve())
        key["files"] = dataset_files(data_path, info.data_files)
    blob = json.dumps(key, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: What may sit in a dataset folder beside the data when the study lives there: nmhpo's own
#: files (its database, caches, reports, exports) and the user's study files, notebooks,
#: scripts and notes (hidden files are never data: see `dataset_files`).
_NOT_DATA = re.compile(r"nmhpo-.*|.*\.(db|sqlite3?)(-wal|-shm|-journal)?|.*\.(toml|ipynb|py|md)")


def dataset_files(folder: Path, patterns: DataFiles = ()) -> list[list[Any]]:
    """The files of a dataset folder (relative name, size, modification time): those the
    task's ``patterns`` name, else every file but what is not data, hidden files (macOS
    ``._*`` forks on a copied dataset) left out either way. Anything else counted, a study
    kept in its data folder would change the key with every trial (its database, logs, SLURM
    outputs), and read (and cache) the whole dataset again at every start."""
    out: list[list[Any]] = []
    if callable(patterns):
        paths = sorted(patterns(folder))
    elif patterns:
        paths = sorted({p for pattern in patterns for p in folder.glob(pattern)})
    else:
        paths = sorted(folder.rglob("*"))
    for p in paths:
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if not patterns and any(_NOT_DATA.fullmatch(part) for part in rel.parts):
            continue
        try:
            if p.is_file():
                stat = p.stat()
                out.append([rel.as_posix(), stat.st_size, stat.st_mtime_ns])
        except OSError:  # removed meanwhile (a SQLite journal)
            continue
    return out


def dataset_fingerprint(folder: Path, patterns: DataFiles = (), *, times: bool = False) -> str:
    """The names and sizes of a dataset folder's files (`dataset_files`), hashed: unlike
    their modification times, the same on a copy of the dataset on another machine (the
    study's fingerprint). ``times`` adds them (the model key: an edit that keeps a size)."""
    listing = [row if times else row[:2] for row in dataset_files(folder, patterns)]
    blob = json.dumps(listing, separators=(",", ":")).encode()
    return "files:" + hashlib.sha256(blob).hexdigest()[:32]


#: Files a study lists one by one in its record of a dataset folder; more are summed per
#: folder (N-MNIST's 70,000 recordings: 20 folders), so the record stays a few kilobytes.
_LISTED_FILES = 500


def dataset_summary(
    folder: Path, patterns: DataFiles = (), *, per_folder: bool | None = None
) -> dict[str, Any]:
    """What a study keeps of a dataset folder so that a refusal to resume can say what
    changed: each file's size (``name: size``), or, past `_LISTED_FILES` files (or with
    ``per_folder``, to compare with a summary made so), each folder's file count and total
    size (``"dir/": [count, bytes]``)."""
    rows = dataset_files(folder, patterns)
    if per_folder is None:
        per_folder = len(rows) > _LISTED_FILES
    if not per_folder:
        return {name: size for name, size, _ in rows}
    out: dict[str, list[int]] = {}
    for name, size, _ in rows:
        parent = name.rpartition("/")[0] + "/"
        count, total = out.get(parent, [0, 0])
        out[parent] = [count + 1, total + size]
    return dict(out)


def summary_changes(before: Mapping[str, Any], after: Mapping[str, Any], limit: int = 3) -> str:
    """The files (or folders) added, removed and changed between two `dataset_summary`s,
    a few named each: what a user looks for when their dataset is refused as changed."""
    parts = []
    changed = [k for k in before.keys() & after.keys() if before[k] != after[k]]
    for label, names in (
        ("added", after.keys() - before.keys()),
        ("removed", before.keys() - after.keys()),
        ("changed", changed),
    ):
        listed = sorted(names)
        if listed:
            more = f" and {len(listed) - limit} more" if len(listed) > limit else ""
            parts.append(f"{label} {', '.join(listed[:limit])}{more}")
    return "; ".join(parts)


def _unknown_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """An array nmhpo does not read is either a misspelt split, which would silently leave
    that split out (a misspelt ``x_test`` makes the validation split the test split), or the
    user's own extra data (``x_train_raw`` beside ``x_train``). The first, a name resembling
    a split the file lacks, is refused with that name; the second is named once, since
    nothing in the study will use it."""
    unknown = [k for k in arrays if k not in NPZ_ARRAYS and not k.startswith("meta_")]
    absent = [k for k in NPZ_ARRAYS if k not in arrays]
    for key in unknown:
        close = difflib.get_close_matches(key.lower(), absent, n=1, cutoff=0.75)
        if close:
            raise TaskError(
                f"{path}: unknown array {key!r} (did you mean {close[0]!r}?); expected "
                f"{', '.join(NPZ_ARRAYS)}, and meta_* for anything else kept in the file"
            )
    if unknown:
        logger.warning(
            "%s: array(s) %s not used: nmhpo reads %s (name extra arrays meta_* to keep "
            "them with the data)",
            path,
            ", ".join(unknown),
            ", ".join(NPZ_ARRAYS),
        )


def _npz_problem(arrays: Mapping[str, np.ndarray], info: TaskInfo) -> str | None:
    """What makes a user's arrays unusable, found when the file is read (before any study is
    written) rather than as a shape error, an index error or a NaN loss inside every trial.
    The structure only: the values' scale (`_scale_problem`) a task's ``adapt`` may still
    bring about."""
    for key in NPZ_ARRAYS:
        a = arrays[key]
        if a.dtype.kind not in "biuf":
            return f"{key}: expected numbers; got dtype {a.dtype}"
        if a.ndim == 0 or len(a) == 0:
            return f"{key}: expected at least one sample; got shape {a.shape}"
        if a.size == 0:
            return f"{key}: expected at least one value per sample; got shape {a.shape}"
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            return f"{key}: expected finite values; got NaN or infinity"
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(x) != len(y):
            return f"x_{split} has {len(x)} rows but y_{split} has {len(y)}"
        if x.shape[1:] != arrays["x_train"].shape[1:]:
            return (
                f"x_{split}: expected samples of x_train's shape {arrays['x_train'].shape[1:]}; "
                f"got {x.shape[1:]}"
            )
        if info.events:
            problem = _events_problem(f"x_{split}", x, info)
            if problem:
                return problem
        elif x.ndim not in (2, 4):
            hint = {1: "one feature per sample", 3: "one-channel images"}.get(x.ndim)
            return (
                f"x_{split}: expected inputs as (n, features) or (n, channels, height, "
                f"width); got shape {x.shape}"
                + (f" (for {hint}, add the axis: x[:, None])" if hint else "")
            )
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            return (
                f"x_{split}: expected images as (n, channels, height, width); got "
                f"{x.shape[1:]}, which looks like channels last (move that axis to the front)"
            )
        if info.kind == "classification":
            if y.ndim != 1:
                return f"y_{split}: expected one class label per sample; got shape {y.shape}"
            if y.min() < 0 or (y.dtype.kind == "f" and not np.array_equal(y, np.round(y))):
                bad = y[(y < 0) | (y != np.round(y))][0]
                return f"y_{split}: expected class labels 0, 1, 2, ...; got {bad}"
        else:
            width, expected = _width(y), _width(arrays["y_train"])
            if width != expected:
                return (
                    f"y_{split}: expected {expected} target values per sample, as y_train "
                    f"has; got {width}"
                )
    if info.kind == "classification":
        return _labels_problem(arrays)
    y = arrays["y_train"].reshape(len(arrays["y_train"]), -1)
    if (y == y[:1]).all():
        # Nothing to learn: the network fits the constant and every trial scores alike on
        # validation (an R^2 of -3.9 against a validation split that does vary).
        return f"y_train: expected targets that vary; every one is {y[0].tolist()[:4]}"
    return None


def _scale_problem(arrays: Mapping[str, np.ndarray], info: TaskInfo) -> str | None:
    """Values the networks cannot take as they are: inputs outside [0, 1] (the encodings
    read them as spike probabilities and currents), regression targets far from unit scale."""
    if not info.events:
        for split in SPLITS:
            x = arrays[f"x_{split}"]
            if x.min() < 0 or x.max() > 1:
                return (
                    f"x_{split}: expected inputs scaled to [0, 1]; got values from "
                    f"{x.min():.4g} to {x.max():.4g}"
                )
    return None if info.kind == "classification" else _targets_problem(arrays["y_train"])


def _events_problem(key: str, x: np.ndarray, info: TaskInfo) -> str | None:
    """Event counts: whole numbers >= 0 on a time axis, a camera's as (n, T, 2, H, W)."""
    if info.image and (x.ndim != 5 or x.shape[2] != 2):
        return (
            f"{key}: expected event counts as (n, time_bins, 2, height, width) (ON and OFF "
            f"polarities); got shape {x.shape}"
        )
    if x.ndim < 3:
        return f"{key}: expected event counts as (n, time_bins, ...); got shape {x.shape}"
    if x.min() < 0 or (x.dtype.kind == "f" and not np.array_equal(x, np.round(x))):
        return f"{key}: expected event counts (whole numbers >= 0); got {x.min()} to {x.max()}"
    return None


def _labels_problem(arrays: Mapping[str, np.ndarray]) -> str | None:
    """Classes 0..K-1, every one in the training split, and no class only in another split:
    the network gets one output per class, so a gap or a stray label trains a wrong head."""
    train = np.unique(arrays["y_train"].astype(np.int64))
    if len(train) < 2:
        return f"y_train: expected at least 2 classes; got only {train.tolist()}"
    missing = sorted(set(range(int(train.max()) + 1)) - set(train.tolist()))
    if missing:
        return (
            f"y_train: expected classes 0 to {int(train.max())} with every one present; "
            f"class {missing[0]} has no training sample"
        )
    for split in ("val", "test"):
        other = np.unique(arrays[f"y_{split}"].astype(np.int64))
        stray = sorted(set(other.tolist()) - set(train.tolist()))
        if stray:
            return f"y_{split}: class {stray[0]} does not occur in y_train"
    return None


def _targets_problem(y_train: np.ndarray) -> str | None:
    """Regression targets are trained on as they are: far from unit scale, the loss explodes
    (mean 300 gave a loss of 9e4 and a diverged run), so ask for the normalisation."""
    y = y_train.reshape(len(y_train), -1).astype(np.float64)
    mean, std = np.abs(y.mean(axis=0)).max(), y.std(axis=0).max()
    if mean > 10 or std > 10:
        return (
            "y_train: expected normalised targets (about mean 0 and std 1 per output; keep "
            f"the scale in meta_* arrays); got |mean| up to {mean:.3g}, std up to {std:.3g}"
        )
    return None


def _width(y: np.ndarray) -> int:
    return int(y.reshape(len(y), -1).shape[1])


def _save(path: Path, splits: Splits) -> None:
    arrays = {k: getattr(splits, k) for k in NPZ_ARRAYS}
    arrays |= {f"meta_{k}": v for k, v in splits.meta.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed: workers racing to fill the cache never read a
    # half-written file, and the last rename wins with identical content.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def prepare(
    info: TaskInfo,
    options: TaskOptions,
    seed: int,
    *,
    data_path: Path | None = None,
    cache_dir: Path | None = None,
) -> TaskData:
    """The task's data: the user's .npz if given, else generated once and cached on disk.

    A folder of event recordings (an event task's ``read_path``) is also read once and
    cached: decoding tens of thousands of files is slow, and every worker would repeat it.
    Its key includes every file's name, size and modification time, so changed recordings
    are read again.
    """
    if data_path is not None:
        if info.read_path is None:
            return TaskData(info, read_npz(data_path, info, options))
        if cache_dir is None or not info.events:
            return TaskData(info, info.read_path(data_path, options, seed))
    if cache_dir is None:
        return TaskData(info, info.build(options, seed))
    key = cache_key(info, options, seed, data_path)
    path = cache_dir / f"{info.name}-{key}.npz"
    if path.is_file():
        try:
            return TaskData(info, read_npz(path, info, check=False))
        except TaskError:
            logger.warning("task cache %s is unreadable; generating it again", path)
    if data_path is not None and info.read_path is not None:
        splits = info.read_path(data_path, options, seed)
        made = f"read {data_path}"
    else:
        splits = info.build(options, seed)
        made = "generated"
    _save(path, splits)
    logger.info("%s %s data into %s", made, info.name, path)
    return TaskData(info, splits)
