"""The `nmhpo` command: parse, call one library function, render. The only module that prints."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from nmhpo import __version__
from nmhpo.errors import NmhpoError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

app = typer.Typer(
    help="Co-design spiking neural networks and crossbar hardware with Optuna.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
out = Console()
if not out.is_terminal:
    out = Console(width=200)  # piped or captured: keep the Pareto table on unbroken lines
err = Console(stderr=True)

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


@contextmanager
def _errors() -> Iterator[None]:
    """Deliberate errors become one line on stderr and exit code 2."""
    try:
        yield
    except NmhpoError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _load(study: str, storage: str | None = None, study_name: str | None = None) -> Any:
    from nmhpo.config import load_config

    return load_config(study).with_overrides(storage=storage, name=study_name)


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
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("nmhpo: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)


@app.command()
def validate(study: StudyArg) -> None:
    """Check a study file without running it (nothing is written)."""
    from nmhpo.space import grid_size

    with _errors():
        cfg = _load(study)
        searched = cfg.searched()
        grid = f", grid of {grid_size(cfg)} points" if cfg.study.sampler == "grid" else ""
        out.print(
            f"{cfg.path}: ok: study {cfg.study.name!r}, task {cfg.task.name}, "
            f"{cfg.study.n_trials} trials, sampler {cfg.study.sampler}, "
            f"{len(searched)} searched parameters{grid}, objectives "
            + ", ".join(f"{o.name} ({o.resolved_direction})" for o in cfg.study.objectives),
            highlight=False,
        )


@app.command()
def run(
    study: StudyArg,
    n_trials: Annotated[
        int | None, typer.Option("--n-trials", min=1, help="Completed trials to reach.")
    ] = None,
    storage: StorageOpt = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Start no trial after S seconds.")
    ] = None,
    study_name: StudyNameOpt = None,
) -> None:
    """Run a study, or resume it until n_trials completed trials exist."""
    import optuna
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from nmhpo.study import run_study

    _quiet_optuna(optuna)
    with _errors():
        cfg = _load(study, storage, study_name).with_overrides(n_trials=n_trials)
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"),
            console=err,
            transient=False,
        )
        bar = progress.add_task(cfg.study.name, total=cfg.study.n_trials, last="")

        def started(done: int, target: int) -> None:
            progress.update(bar, completed=done, total=target)

        def after_trial(study_obj: optuna.Study, trial: FrozenTrial) -> None:
            from nmhpo.study import count_complete

            progress.update(bar, completed=count_complete(study_obj), last=_trial_line(trial, cfg))

        try:
            with progress:
                summary = run_study(
                    cfg, timeout_s=timeout, callbacks=[after_trial], on_start=started
                )
        except KeyboardInterrupt:
            err.print("interrupted: the running trial is marked failed; run again to resume")
            raise typer.Exit(130) from None
    out.print(
        f"study {summary.study_name!r}: {summary.n_complete}/{summary.n_target} trials complete "
        f"({summary.n_new} run now, {summary.n_failed_new} failed) in "
        f"{summary.wall_time_s:.1f} s; storage {summary.storage}",
        highlight=False,
    )
    if summary.stopped_reason:
        out.print(f"stopped early ({summary.stopped_reason}); run again to continue")
    out.print(_pareto_table(summary.pareto, summary.objective_names, summary.directions))


class _TrialFailureFilter(logging.Filter):
    """Optuna logs a failed trial with its traceback. The reason is already in the trial's
    user attrs and in the progress line, so keep Optuna's one-line message, drop the traceback
    (unless --verbose) and say nothing for Ctrl-C, which the CLI reports itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt):
            return False
        if record.exc_info and not logging.getLogger("nmhpo").isEnabledFor(logging.DEBUG):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_optuna(optuna: Any) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _TrialFailureFilter) for f in handler.filters):
            handler.addFilter(_TrialFailureFilter())


def _trial_line(trial: FrozenTrial, cfg: Any) -> str:
    if trial.values is None:
        reason = str(trial.user_attrs.get("fail_reason", trial.state.name))
        return f"trial {trial.number} {trial.state.name.lower()}: {reason[:60]}"
    values = ", ".join(
        f"{o.name}={v:.4g}" for o, v in zip(cfg.study.objectives, trial.values, strict=True)
    )
    return f"trial {trial.number}: {values}"


def _pareto_table(trials: list[FrozenTrial], names: list[str], directions: list[str]) -> Table:
    table = Table(title=f"Pareto set ({len(trials)} trials)", title_justify="left")
    table.add_column("trial", justify="right")
    for name, direction in zip(names, directions, strict=False):
        table.add_column(f"{name} {'↑' if direction == 'maximize' else '↓'}", justify="right")
    params = sorted({k for t in trials for k in t.params})
    for name in params:
        table.add_column(name, justify="right")
    for trial in trials:
        cells = [str(trial.number)] + [f"{v:.4g}" for v in trial.values]
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
) -> None:
    """Print the Pareto set; write a Pareto-front PNG, trials.csv and pareto.json."""
    from nmhpo.analysis import write_report
    from nmhpo.study import load_existing

    with _errors():
        cfg = _load(study, storage, study_name)
        study_obj = load_existing(cfg)
        folder = out_dir or (cfg.storage_dir or cfg.base_dir) / "nmhpo-report" / cfg.study.name
        result = write_report(study_obj, folder)
    out.print(
        f"study {result.study_name!r}: {result.n_complete} complete of {result.n_trials} trials",
        highlight=False,
    )
    out.print(_pareto_table(result.pareto, result.objective_names, result.directions))
    for path in result.files:
        out.print(f"wrote {path}", highlight=False)


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

    from nmhpo.study import load_existing

    with _errors():
        cfg = _load(study, storage)
        study_obj = load_existing(cfg)
    err.print(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C to stop)", highlight=False)
    optuna_dashboard.run_server(study_obj._storage, host=host, port=port)  # noqa: SLF001


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

    table = Table("task", "description", "metrics")
    common = ", ".join(m for m in METRICS if m != "accuracy")
    for name, info in TASKS.items():
        table.add_row(name, info.description, ", ".join(info.metrics) + f" (+ {common})")
    out.print(table)


def main() -> None:
    """Console-script entry point."""
    app()
