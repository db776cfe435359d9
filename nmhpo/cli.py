"""The `nmhpo` command: parse, call one library function, render. The only module that prints."""

from __future__ import annotations

import errno
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.table import Table

from nmhpo import __version__
from nmhpo.errors import NmhpoError

try:  # recent typer (0.29 here) ships its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from nmhpo.analysis import Comparison, Reach
    from nmhpo.record import TrialRecord

# No markup: task and preset descriptions, study and parameter names and error messages are
# printed as written ("[task] path" stays "[task] path"), in tables too.
out = Console(markup=False)
if not out.is_terminal:
    # piped or captured: keep the Pareto table on unbroken lines
    out = Console(width=200, markup=False)
err = Console(stderr=True, markup=False)


def _print_error(message: str) -> None:
    err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def _usage_line(exc: click_exceptions.UsageError) -> str:
    """Click's usage error as one line, e.g.
    ``--n-trials: Input should be greater than or equal to 1; got '0' (see nmhpo run --help)``."""
    message = " ".join(exc.format_message().split())
    bad_value = re.fullmatch(r"Invalid value for '([^']*)'(?: / '[^']*')*: (.*)", message)
    if bad_value:
        message = f"{bad_value[1]}: {bad_value[2].removeprefix('Value error, ')}"
        got = _input_of(exc.__cause__)
        if got is not None and repr(got) not in message:
            message = f"{message.rstrip('.')}; got {got!r}"
    else:
        message = message[:1].lower() + message[1:]
    if exc.ctx is not None:
        message += f" (see {exc.ctx.command_path} --help)"
    return message


def _input_of(cause: BaseException | None) -> Any:
    """The value a typer (pydantic) conversion rejected, or None."""
    from pydantic import ValidationError

    if isinstance(cause, ValidationError) and cause.errors():
        return cause.errors()[0].get("input")
    return None


class _OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a bad value, an unknown option, a missing argument) become one line,
    ``error: <message>`` on stderr, and exit 2, like the library's errors."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            # Not standalone: click raises its errors instead of printing them as boxes, and
            # returns the exit code of typer.Exit (--help, --version, Ctrl-C's 130, our 2).
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except click_exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click_exceptions.UsageError as exc:
            _print_error(_usage_line(exc))
            sys.exit(2)
        except click_exceptions.ClickException as exc:
            _print_error(" ".join(exc.format_message().split()))
            sys.exit(exc.exit_code)
        except typer.Abort:
            _print_error("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_OneLineErrors,
    help="Co-design spiking neural networks and crossbar hardware with Optuna.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
    # Plain help: rich markup would eat the literal brackets of "[study].storage".
    rich_markup_mode=None,
)

StudyArg = Annotated[
    str, typer.Argument(help="Study file (study.toml), or the name of a shipped study.")
]
StorageOpt = Annotated[
    str | None,
    typer.Option("--storage", help="SQLAlchemy URL; overrides [study].storage."),
]
StudyNameOpt = Annotated[
    str | None, typer.Option("--study-name", help="Use this study name instead of [study].name.")
]


class ImportanceEvaluator(str, Enum):
    ped_anova = "ped-anova"
    fanova = "fanova"


@contextmanager
def _errors(refused: str | None = None) -> Iterator[None]:
    """Deliberate errors become one line on stderr and exit code 2, and so does a file the
    machine refuses (a read-only or full disk, a missing folder): the user's to fix, not a bug
    of nmhpo's to show a traceback for. ``refused``: what to do when writing is not allowed
    (a command whose default folder is beside a study that may be someone else's)."""
    try:
        yield
    except NmhpoError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        denied = exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
        _print_error(
            f"{where}{exc.strerror or exc}" + (f"; {refused}" if refused and denied else "")
        )
        raise typer.Exit(2) from None


#: What `report` and `compare` say when their default folder, beside the study, refuses writing.
_OUT_HINT = "give a folder you may write with --out"


def _check_out(folder: Path | None) -> None:
    """``--out`` names a folder (made if missing): a file there would fail as 'File exists'
    once the study was read, naming neither the option nor what it expects."""
    if folder is not None and folder.exists() and not folder.is_dir():
        raise NmhpoError(f"--out {folder}: expected a folder; it is a file")


#: The options that override [study] fields, so an override's error names what the user typed.
CLI_OPTION_NAMES = {
    "name": "--study-name",
    "n_trials": "--n-trials",
    "max_failures": "--max-failures",
    "device": "--device",
    "storage": "--storage",
}


def _load(study: str, storage: str | None = None, study_name: str | None = None) -> Any:
    from nmhpo.config import load_config

    return load_config(study).with_overrides(
        option_names=CLI_OPTION_NAMES, storage=storage, name=study_name
    )


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _print_version(value: bool) -> None:
    if value:
        out.print(f"nmhpo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Warnings and errors only.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logger = logging.getLogger("nmhpo")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        from nmhpo.workers import LevelPrefixed

        handler.setFormatter(LevelPrefixed("nmhpo: "))
        logger.addHandler(handler)
    logger.setLevel(level)


@app.command()
def validate(study: StudyArg) -> None:
    """Check a study file without running it (nothing is written)."""
    from nmhpo.space import grid_size

    with _errors():
        cfg = _load(study)
        from nmhpo.config import mask_url, require_data
        from nmhpo.study import check_run, storage_problem
        from nmhpo.tasks import TaskData, read_npz

        require_data(cfg)
        url = cfg.storage_url()
        # Only a storage the file names can be wrong: the default one is beside the study
        # file, or for a shipped study in nmhpo's home, whose folder `run` makes.
        problem = None if cfg.study.storage is None else storage_problem(url)
        if problem:
            raise NmhpoError(f"{cfg.path}: storage {mask_url(url)}: {problem}")
        data, info = cfg.data_path(), cfg.task_info()
        # a user's .npz is read and checked too (a folder, by `run`)
        npz = data is not None and info.read_path is None
        check_run(cfg, TaskData(info, read_npz(data, info, cfg.task_options())) if npz else None)
        searched = cfg.searched()
        grid = f", grid of {grid_size(cfg)} points" if cfg.study.sampler == "grid" else ""
        k = cfg.study.hardware_variants
        pick = "picked along the front" if cfg.study.variant_pick == "front" else "at random"
        variants = (
            f" (each trained network scored at up to {k} more hardware points, {pick})"
            if k
            else ""
        )
        out.print(
            f"{cfg.path}: ok: study {cfg.study.name!r}, task {cfg.task.name}, "
            f"{cfg.study.n_trials} trials{variants}, sampler {cfg.study.sampler}, "
            f"{len(searched)} searched parameters{grid}, objectives "
            + ", ".join(f"{o.name} ({o.resolved_direction})" for o in cfg.study.objectives),
            highlight=False,
        )


WorkersOpt = Annotated[
    int, typer.Option("--workers", min=1, help="Worker processes on this machine.")
]
MaxFailuresOpt = Annotated[
    int | None,
    typer.Option("--max-failures", min=1, help="Stop after K failed trials in a row."),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option(
        "--device",
        help="Torch device: auto (a GPU when torch sees one), cpu, cuda (worker i on GPU "
        "i mod G) or cuda:N. Overrides [study] device.",
    ),
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--timeout", min=0, help="Start no trial after S seconds.")
]


@app.command()
def run(
    study: StudyArg,
    n_trials: Annotated[
        int | None, typer.Option("--n-trials", min=1, help="Completed trials to reach.")
    ] = None,
    storage: StorageOpt = None,
    timeout: TimeoutOpt = None,
    study_name: StudyNameOpt = None,
    workers: WorkersOpt = 1,
    max_failures: MaxFailuresOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run a study, or resume it until n_trials completed trials exist."""
    with _errors():
        cfg = _load(study, storage, study_name).with_overrides(
            option_names=CLI_OPTION_NAMES,
            n_trials=n_trials,
            max_failures=max_failures,
            device=device,
        )
    _run_with_progress(cfg, timeout, workers)


@app.command()
def grid(
    study: StudyArg,
    storage: StorageOpt = None,
    timeout: TimeoutOpt = None,
    workers: WorkersOpt = 1,
    max_failures: MaxFailuresOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Run the exhaustive grid of a study's space as <name>-grid (resumable, each point once).

    Continuous parameters need grid levels in the study file; integers use their whole range
    unless they list levels; categorical parameters use their choices.
    """
    from nmhpo.grid import grid_config
    from nmhpo.space import grid_levels

    with _errors():
        cfg = grid_config(
            _load(study, storage).with_overrides(
                option_names=CLI_OPTION_NAMES, max_failures=max_failures, device=device
            )
        )
        levels = grid_levels(cfg)
        from nmhpo.config import require_data

        require_data(cfg)  # before the grid's line: nothing printed, then refused
    sizes = " x ".join(f"{name} {len(values)}" for name, values in levels.items())
    out.print(
        f"grid of {cfg.study.n_trials} points ({sizes}) as study {cfg.study.name!r}",
        highlight=False,
    )
    _run_with_progress(cfg, timeout, workers)


def _run_with_progress(cfg: Any, timeout: float | None, workers: int) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from nmhpo.study import count_complete, quiet_optuna, run_study

    quiet_optuna()
    progress = Progress(
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}", markup=False),
        console=err,
        transient=False,
    )
    label = cfg.study.name + (f" ({workers} workers)" if workers > 1 else "")
    bar = progress.add_task(label, total=cfg.study.n_trials, last="")
    first_count: int | None = None
    trials_shown = False

    def started(done: int, target: int) -> None:
        # The bar appears once the study is open: a storage that cannot be opened, or a
        # changed study, is the error line alone.
        nonlocal first_count, trials_shown
        first_count = done if first_count is None else first_count
        trials_shown = trials_shown or done > first_count
        progress.update(bar, completed=done, total=target)
        progress.start()

    def after_trial(study_obj: optuna.Study, trial: FrozenTrial) -> None:
        nonlocal trials_shown
        trials_shown = True
        progress.update(bar, completed=count_complete(study_obj), last=_trial_line(trial, cfg))

    with _errors():
        try:
            try:
                summary = run_study(
                    cfg,
                    timeout_s=timeout,
                    callbacks=[after_trial],
                    on_start=started,
                    on_progress=started,
                    workers=workers,
                )
            except BaseException:
                # Failed before any trial ended: remove the bar, leave the error line alone.
                progress.live.transient = not trials_shown
                raise
            else:  # the final count, whichever worker ended the last trial
                progress.update(bar, completed=summary.n_complete, total=summary.n_target)
            finally:
                if progress.live.is_started:  # (stopping prints a newline when not a terminal)
                    progress.stop()
        except KeyboardInterrupt:
            err.print("interrupted: the running trial is marked failed; run again to resume")
            raise typer.Exit(130) from None
    out.print(
        f"study {summary.study_name!r}: {summary.n_complete}/{summary.n_target} trials complete "
        f"({summary.n_new} run now, "
        + (
            f"{summary.n_variants_new} of them hardware variants, "
            if summary.n_variants_new
            else ""
        )
        + (f"{summary.n_pruned_new} stopped early, " if summary.n_pruned_new else "")
        + (
            f"{summary.n_skipped_new} skipped (grid point taken by another worker), "
            if summary.n_skipped_new
            else ""
        )
        + f"{summary.n_failed_new} failed) in "
        f"{summary.wall_time_s:.1f} s; storage {summary.storage}",
        highlight=False,
    )
    if summary.stopped_reason:
        out.print(f"stopped early ({summary.stopped_reason}); run again to continue")
    out.print(_pareto_table(summary.pareto, summary.objective_names, summary.directions))


@app.command()
def worker(
    study: StudyArg,
    storage: StorageOpt = None,
    timeout: TimeoutOpt = None,
    study_name: StudyNameOpt = None,
    max_failures: MaxFailuresOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Join a study as one worker (what a SLURM array, mpirun or a Kubernetes job starts).

    Every worker runs trials until the study has n_trials complete ones; with PostgreSQL
    storage the workers may run on many machines. It is worker 0 of its machine: give each
    worker of a multi-GPU node its own GPU with --device cuda:N (or CUDA_VISIBLE_DEVICES).
    """

    from nmhpo.study import quiet_optuna, run_study

    quiet_optuna()
    with _errors():
        cfg = _load(study, storage, study_name).with_overrides(
            option_names=CLI_OPTION_NAMES, max_failures=max_failures, device=device
        )

        def log_trial(study_obj: optuna.Study, trial: FrozenTrial) -> None:
            err.print(_trial_line(trial, cfg), highlight=False, markup=False)

        try:
            summary = run_study(
                cfg, timeout_s=timeout, callbacks=[log_trial], requeue=False, independent=True
            )
        except KeyboardInterrupt:
            err.print("interrupted: the running trial is marked failed")
            raise typer.Exit(130) from None
    out.print(
        f"worker done: study {summary.study_name!r} has {summary.n_complete}/"
        f"{summary.n_target} complete trials ({summary.n_here} run by this worker); "
        f"storage {summary.storage}",
        highlight=False,
    )


def _trial_line(trial: FrozenTrial, cfg: Any) -> str:
    if trial.values is None:
        reason = str(
            trial.user_attrs.get("fail_reason")
            or trial.user_attrs.get("pruned.reason")
            or trial.state.name
        )
        return f"trial {trial.number} {trial.state.name.lower()}: {reason[:60]}"
    values = ", ".join(
        f"{o.name}={v:.4g}" for o, v in zip(cfg.study.objectives, trial.values, strict=True)
    )
    return f"trial {trial.number}: {values}"


def _pareto_table(trials: list[TrialRecord], names: list[str], directions: list[str]) -> Table:
    table = Table(title=f"Pareto set ({len(trials)} trials)", title_justify="left")
    table.add_column("trial", justify="right")
    for name, direction in zip(names, directions, strict=False):
        table.add_column(f"{name} {'↑' if direction == 'maximize' else '↓'}", justify="right")
    params = sorted({k for t in trials for k in t.params})
    for name in params:
        table.add_column(name, justify="right")
    for trial in trials:
        cells = [str(trial.number)] + [f"{v:.4g}" for v in trial.values or ()]
        for name in params:
            value = trial.params.get(name, "")
            cells.append(f"{value:.3g}" if isinstance(value, float) else str(value))
        table.add_row(*cells)
    return table


@app.command()
def report(
    study: StudyArg,
    storage: StorageOpt = None,
    study_name: StudyNameOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the files [default: nmhpo-report/<study> beside the study file].",
        ),
    ] = None,
    trial: Annotated[
        int | None, typer.Option("--trial", min=0, help="Trial whose breakdown to plot.")
    ] = None,
    importance: Annotated[
        ImportanceEvaluator,
        typer.Option("--importance", help="Importance evaluator (Optuna's)."),
    ] = ImportanceEvaluator.ped_anova,
) -> None:
    """Pareto table; PNGs (front, with the grid's when <name>-grid exists; hypervolume;
    importance; a trial's breakdown); CSV and JSON of all trials."""
    from nmhpo.api import open_study

    with _errors(refused=_OUT_HINT):
        _check_out(out_dir)
        result = open_study(_load(study, storage, study_name)).report(
            out_dir,
            trial=trial,
            importance=importance.value,  # type: ignore[arg-type]
        )
    out.print(
        f"study {result.study_name!r}: {result.n_complete} complete of {result.n_trials} trials"
        + (f", {result.n_feasible} feasible" if result.constrained else ""),
        highlight=False,
    )
    if result.n_variants:
        out.print(
            f"hardware variants: {result.n_variants} of the completed trials scored a network "
            f"another trial trained; {result.n_variants_on_front} of the {len(result.pareto)} "
            "Pareto trials are variants",
            highlight=False,
        )
    if result.pruning is not None:
        p = result.pruning
        where = ", ".join(f"{n} at epoch {e}" for e, n in p.stopped_at.items()) or "none"
        out.print(
            f"stopped early: {p.n_stopped} trials ({where}); {p.epochs_saved} epochs and about "
            f"{p.cpu_s_saved_est:.0f} CPU s saved, {p.cpu_s_stopped:.0f} CPU s spent on them; "
            f"{p.n_rung_evaluations} rung evaluations cost {p.rung_eval_s:.1f} s",
            highlight=False,
        )
        if p.rung_agreement:
            rungs = "; ".join(
                f"epoch {e} (n={p.rung_agreement_n[e]}): "
                + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in row.items())
                for e, row in p.rung_agreement.items()
            )
            out.print(
                f"rung vs final rank agreement (Spearman, completed trials): {rungs}",
                highlight=False,
            )
    out.print(_pareto_table(result.pareto, result.objective_names, result.directions))
    for path in result.files:
        out.print(f"wrote {path}", highlight=False)


@app.command()
def export(
    study: StudyArg,
    trial: Annotated[int, typer.Option("--trial", min=0, help="Trial to export.")],
    storage: StorageOpt = None,
    study_name: StudyNameOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the files [default: nmhpo-export/<study>/trial-<N> beside the "
            "study file].",
        ),
    ] = None,
) -> None:
    """Write a trial's trained network as NIR (network.nir) and its hardware design (knobs,
    crossbar mapping, energy and area, objective values, what NIR cannot hold) as JSON."""
    from nmhpo.api import open_study

    with _errors():
        _check_out(out_dir)
        result = open_study(_load(study, storage, study_name)).export(trial, out_dir)
    source = "from the model cache" if result.network_source == "cache" else "trained again"
    out.print(
        f"trial {result.trial} of study {result.study_name!r}: network {source}, "
        f"{len(result.nir_nodes)} NIR nodes; what NIR does not hold ({len(result.limits)} "
        "items) is listed under 'limits' in hardware.json",
        highlight=False,
    )
    for path in result.files:
        out.print(f"wrote {path}", highlight=False)


@app.command()
def compare(
    studies: Annotated[
        list[str], typer.Argument(help="Study files (or shipped names) to put side by side.")
    ],
    storage: StorageOpt = None,
    use_grid: Annotated[
        bool, typer.Option("--grid/--no-grid", help="Judge against <first study>-grid.")
    ] = True,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder for compare.json and the plots.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON only.")] = False,
    study_names: Annotated[
        list[str] | None,
        typer.Option(
            "--study-name",
            help="A study's name instead of its file's [study].name (a study run with "
            "--study-name): once per study, in their order.",
        ),
    ] = None,
) -> None:
    """Hypervolume after k trials, trials and CPU seconds to 95/99/100% of the grid's
    hypervolume, and whether each study found the grid's Pareto points."""
    from nmhpo.api import open_study

    with _errors(refused=_OUT_HINT):
        _check_out(out_dir)
        names: list[str | None] = [*study_names] if study_names else [None] * len(studies)
        if len(names) != len(studies):
            raise NmhpoError(
                f"--study-name: expected one per study ({len(studies)}, in their order); "
                f"got {len(names)}"
            )
        first, *others = [
            open_study(_load(s, storage, n)) for s, n in zip(studies, names, strict=True)
        ]
        if use_grid and first.grid() is None and not others:
            from nmhpo.config import grid_problem

            run_grid = (
                f"run `nmhpo grid {studies[0]}` first, "
                if grid_problem(first.config) is None
                else "give its continuous parameters grid levels and run `nmhpo grid`, "
            )
            raise NmhpoError(
                f"no study {first.name + '-grid'!r} to compare with: {run_grid}"
                "give several studies, or pass --no-grid"
            )
        result = first.compare(*others, grid=use_grid)
        folder = out_dir or first.default_report_dir().parent / (
            "compare-" + "-".join(h.name for h in (first, *others))
        )
        files = _write_comparison(result, folder)
    if as_json:
        out.print_json(data=result.to_dict())
        return
    out.print(_comparison_table(result))
    out.print(
        f"reference point {list(result.reference)} ({', '.join(result.objectives)})",
        highlight=False,
    )
    for path in files:
        out.print(f"wrote {path}", highlight=False)


def _write_comparison(result: Comparison, folder: Path) -> list[Path]:
    import json

    import numpy as np

    from nmhpo.plots import plot_hypervolume_history

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compare.json"
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    rows = [*result.studies, *([result.grid] if result.grid else [])]
    series = {r.name: np.asarray(r.history) for r in rows}
    cpu = {r.name: np.asarray(r.cpu_history) for r in rows}
    target = result.grid.final_hv if result.grid else None
    by_trials, by_cpu = folder / "hv_vs_trials.png", folder / "hv_vs_cpu.png"
    plot_hypervolume_history(series, by_trials, target=target)
    plot_hypervolume_history(series, by_cpu, "CPU seconds", target=target, x=cpu)
    return [path, by_trials, by_cpu]


def _comparison_table(result: Comparison) -> Table:
    table = Table(title="studies compared (one reference point)", title_justify="left")
    columns = ["study", "trials", *[f"hv@{k}" for k in result.ks], "final hv"]
    if result.grid:
        columns += ["% of grid", "to 95%", "to 99%", "to 100%", "grid front found"]
    for column in columns:
        table.add_column(column, justify="left" if column == "study" else "right")

    def reach(entry: Reach | None) -> str:
        return "-" if entry is None else f"{entry.trials} ({entry.cpu_s:.0f} s)"

    for row in [*result.studies, *([result.grid] if result.grid else [])]:
        cells = [row.name, str(row.n_complete)]
        cells += ["-" if v is None else f"{v:.4g}" for v in row.hv_at.values()]
        cells.append(f"{row.final_hv:.4g}")
        if result.grid and row.to_grid_hv is not None:
            ratio = row.hv_ratio
            cells.append("-" if ratio is None else f"{ratio:.1%}")
            cells += [reach(row.to_grid_hv[k]) for k in ("95%", "99%", "100%")]
            cells.append(f"{row.grid_front_found}/{row.grid_front_size}")
        elif result.grid:
            cells += ["100%", "", "", "", f"{result.grid.pareto_size} (the grid)"]
        table.add_row(*cells)
    return table


@app.command()
def dashboard(
    study: StudyArg,
    storage: StorageOpt = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8080,
    host: Annotated[
        str, typer.Option("--host", help="Interface to bind; 127.0.0.1 keeps it private.")
    ] = "127.0.0.1",
) -> None:
    """Open the study's storage in optuna-dashboard (bound to 127.0.0.1 by default)."""
    import optuna_dashboard

    from nmhpo.database import load_existing

    with _errors():
        cfg = _load(study, storage)
        _check_port(host, port)
        # Optuna's own storage: what the dashboard saves must reach the database at once.
        study_obj = load_existing(cfg, batched=False)
    err.print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C to stop)", highlight=False)
    with _errors():
        _serve(optuna_dashboard.run_server, study_obj._storage, host, port)  # noqa: SLF001


def _serve(run_server: Any, storage: Any, host: str, port: int) -> None:
    try:
        run_server(storage, host=host, port=port)
    except OSError as exc:  # the port was taken between the check and the start
        if exc.errno not in _BIND_ERRNOS:
            raise
        raise NmhpoError(_bind_problem(host, port, exc)) from None


def _check_port(host: str, port: int) -> None:
    """Bind ``host:port`` as optuna-dashboard's server will (IPv6 for a host with ':',
    SO_REUSEADDR), so that a port in use is one line and not the server's traceback."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NmhpoError(_bind_problem(host, port, exc)) from None


_BIND_ERRNOS = (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL)


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is in use; pass --port with a free port"
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges; pass --port 1024 or higher"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine (127.0.0.1 or 0.0.0.0 are)"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


class CrossbarMode(str, Enum):
    event = "event"
    spikesim = "spikesim"


@app.command()
def energy(
    layers: Annotated[
        str | None, typer.Option("--layers", help="Dense widths, input first: 784,128,10.")
    ] = None,
    conv: Annotated[
        list[str] | None,
        typer.Option("--conv", help="A conv layer CIN,COUT,K,DIN,DOUT; repeat, in order."),
    ] = None,
    preset: Annotated[str, typer.Option("--preset", help="Preset name or .toml path.")] = (
        "spikesim-65nm"
    ),
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="KNOB=VALUE (e.g. adc_bits=4) or section.constant=VALUE."),
    ] = None,
    sweeps: Annotated[
        list[str] | None,
        typer.Option("--sweep", help="KNOB=v1,v2,... or KNOB=lo:hi; the product is priced."),
    ] = None,
    num_steps: Annotated[int, typer.Option("--num-steps", min=1, help="Time steps T.")] = 1,
    activity: Annotated[
        str, typer.Option("--activity", help="Input spike activity: one value or one per layer.")
    ] = "1.0",
    mode: Annotated[CrossbarMode, typer.Option("--mode")] = CrossbarMode.event,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Write every design of a sweep to this CSV.")
    ] = None,
) -> None:
    """Price a network on crossbar hardware without training (energy, latency, area)."""
    from nmhpo.crossbar import load_preset, parse_network, parse_setting, parse_sweep, price

    with _errors():
        network = parse_network(layers, conv or [])
        base = load_preset(preset, Path.cwd())
        acts = [float(a) for a in _numbers(activity, "--activity")]
        priced = price(
            network,
            base,
            settings=[parse_setting(s) for s in settings or []],
            sweeps=[parse_sweep(s) for s in sweeps or []],
            num_steps=num_steps,
            activity=acts[0] if len(acts) == 1 else acts,
            mode=mode.value,
        )
    if csv_path is not None:
        with _errors():
            n = priced.write_csv(csv_path)
        out.print(f"wrote {n} designs to {csv_path}", highlight=False)
    elif sweeps:
        _render_sweep(priced, as_json)
    elif as_json:
        out.print_json(data=priced.summary(base, mode.value))
    else:
        _render_design(priced.summary(base, mode.value))


def _numbers(text: str, option: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise NmhpoError(f"{option}: expected numbers separated by commas; got {text!r}") from None


def _render_design(summary: dict[str, Any]) -> None:
    out.print(
        f"energy {summary['energy_pj']:,.2f} pJ   latency {summary['latency_ns']:,.1f} ns   "
        f"area {summary['area_um2']:,.1f} um^2   EDP {summary['edp_pj_ns']:.4g} pJ*ns   "
        f"{summary['n_pe']} PEs in {summary['n_tiles']} tiles  "
        f"({summary['preset']}, {summary['mode']} mode, T={summary['num_steps']})",
        highlight=False,
    )
    for title, parts, total, unit in (
        ("energy", summary["breakdown"]["energy_pj"], summary["energy_pj"], "pJ"),
        ("area", summary["breakdown"]["area_um2"], summary["area_um2"], "um^2"),
    ):
        table = Table("component", unit, "share", title=f"{title} by component")
        for name, value in parts.items():
            share = value / total if total else 0.0
            table.add_row(name, f"{value:,.4g}", f"{share:.1%}")
        out.print(table)


def _render_sweep(priced: Any, as_json: bool, limit: int = 40) -> None:
    rows = priced.rows()
    if as_json:
        out.print_json(data=rows)
        return
    table = Table(*rows[0].keys(), title=f"{len(rows)} designs")
    for row in rows[:limit]:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    out.print(table)
    if len(rows) > limit:
        out.print(f"(first {limit} of {len(rows)} designs; --csv FILE writes all)")


@app.command()
def presets() -> None:
    """List the shipped hardware presets."""
    from nmhpo.crossbar import load_preset, preset_names

    table = Table("preset", "description", "knobs")
    for name in preset_names():
        p = load_preset(name)
        knobs = ", ".join(f"{k}={v}" for k, v in p.knobs.items())
        table.add_row(name, p.description, knobs)
    out.print(table)


@app.command()
def tasks() -> None:
    """List the tasks and the metrics each offers as objectives."""
    from nmhpo.registry import METRICS
    from nmhpo.tasks import TASKS

    table = Table("task", "description", "metrics", "options")
    for name, info in TASKS.items():
        options = ", ".join(f"{k}={f.default!r}" for k, f in info.options.model_fields.items())
        about = info.description
        if info.image_outputs:
            about += "; image targets: a network may end in decoder_layers"
        table.add_row(name, about, ", ".join(info.metrics), options)
    out.print(table)
    out.print(f"every task also offers: {', '.join(METRICS)}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()
