"""Grid studies: the exhaustive grid of a study's space as its own study (``<name>-grid``),
each point evaluated once, failed points queued again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nmhpo.config import StudyConfig
from nmhpo.database import open_storage
from nmhpo.errors import StorageError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial


def grid_config(cfg: StudyConfig) -> StudyConfig:
    """The exhaustive grid of ``cfg``'s space as its own study, ``<name>-grid``, in the same
    storage: every grid point once (``n_trials`` = the grid's size).

    Raises:
        ConfigError: a continuous parameter has no grid levels (naming file and key).
    """
    from nmhpo.config import grid_problem
    from nmhpo.errors import ConfigError
    from nmhpo.space import grid_size

    problem = grid_problem(cfg)
    if problem:
        raise ConfigError(f"{cfg.path}: {problem}")
    study = cfg.study.model_copy(
        # (a grid evaluates every point in full, each hardware point among them: the
        # search's pruner and hardware variants do not apply)
        update={
            "name": f"{cfg.study.name}-grid",
            "sampler": "grid",
            "n_trials": grid_size(cfg),
            "pruner": "none",
            "hardware_variants": 0,
        }
    )
    return cfg.model_copy(update={"study": study})


def find_grid(cfg: StudyConfig) -> optuna.Study | None:
    """The ``<name>-grid`` study beside ``cfg``'s study, if one was run."""
    import optuna

    if cfg.study.name.endswith("-grid"):
        return None
    try:
        storage = open_storage(
            cfg.storage_url(), must_exist=True, heartbeat_s=cfg.study.heartbeat_s
        )
        return optuna.load_study(study_name=f"{cfg.study.name}-grid", storage=storage)
    except (KeyError, StorageError):
        return None


def _grid_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def requeue_failed_grid_points(study: optuna.Study) -> int:
    """Queue again every grid point whose only trials failed (a Ctrl-C, a diverged run): the
    GridSampler counts a failed point as visited and would never return to it.

    A point is known by its grid id (the GridSampler's system attr), which a trial has from
    its start, before any parameter exists: a trial interrupted before or while suggesting
    has none or some of its parameters. Trials without a grid id fall back to their
    parameters.
    """
    import optuna
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    live = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    alive_ids = {t.system_attrs["grid_id"] for t in trials if t.state in live and _has_id(t)}
    alive_params = {
        _grid_key(t.params or t.system_attrs.get("fixed_params", {}))
        for t in trials
        if t.state in live
    }
    queued = 0
    for t in trials:
        if t.state != TrialState.FAIL:
            continue
        if _has_id(t):
            grid_id = t.system_attrs["grid_id"]
            if grid_id in alive_ids:
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING,
                    system_attrs={
                        "grid_id": grid_id,
                        "search_space": t.system_attrs["search_space"],
                    },
                )
            )
            alive_ids.add(grid_id)
        elif t.params and _grid_key(t.params) not in alive_params:
            study.enqueue_trial(t.params, skip_if_exists=False)
            alive_params.add(_grid_key(t.params))
        else:
            continue
        queued += 1
    return queued


def _has_id(trial: FrozenTrial) -> bool:
    return "grid_id" in trial.system_attrs and "search_space" in trial.system_attrs


def skip_if_grid_point_taken(trial: optuna.Trial) -> None:
    """A grid point is evaluated once: if it is complete, or running in a trial with a lower
    number (the one that goes on), this trial is pruned before any training. Races between
    workers and the GridSampler's fallback after a crash can otherwise repeat a point."""
    import optuna
    from optuna.trial import TrialState

    params = trial.params
    for other in trial.study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)
    ):
        if other.number == trial.number or other.params != params:
            continue
        if other.state == TrialState.COMPLETE or other.number < trial.number:
            raise optuna.TrialPruned(f"grid point already taken by trial {other.number}")
