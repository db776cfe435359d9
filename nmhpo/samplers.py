"""The sampler a study names, seeded so that resumes and parallel workers do not repeat
suggestions. Settings come from measurements (benchmarks/bench_search.py)."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from nmhpo.config import StudyConfig
from nmhpo.space import grid_levels

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler


def derived_seed(seed: int, n_existing: int, worker: int = 0) -> int:
    """Sampler seed for a (re)start: a resumed seeded sampler must not replay its first
    suggestions, and parallel workers must not propose the same points, so the seed depends on
    how many trials already exist and on the worker."""
    return int(np.random.SeedSequence([seed, n_existing, worker]).generate_state(1)[0])


def make_sampler(cfg: StudyConfig, n_existing: int = 0, worker: int = 0) -> BaseSampler:
    """The sampler [study].sampler names, seeded for this (re)start and worker."""
    import optuna

    with warnings.catch_warnings():
        # multivariate TPE and GP's deterministic_objective are "experimental" in Optuna 5;
        # nmhpo chose them on measurements (benchmarks/results/search.json).
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_sampler(cfg, n_existing, worker)


def _make_sampler(cfg: StudyConfig, n_existing: int, worker: int) -> BaseSampler:
    import optuna.samplers as s

    name = cfg.study.sampler
    seed = derived_seed(cfg.study.seed, n_existing, worker)
    n_startup = min(10, max(4, cfg.study.n_trials // 3))
    # Settings from benchmarks/bench_search.py (results/search.json): on the 240-point
    # grid-vs-search table GP needed a median of 18.5 evaluations to 99% of the grid's
    # hypervolume, multivariate TPE 32 and independent TPE 52.
    if name == "tpe":
        return s.TPESampler(seed=seed, n_startup_trials=n_startup, multivariate=True, group=True)
    if name == "gp":
        # A point's training seed is fixed by the point, so the objective is deterministic.
        return _gp_sampler(seed=seed, n_startup_trials=n_startup, deterministic_objective=True)
    if name in ("nsga2", "nsga3"):
        population = max(4, min(50, cfg.study.n_trials // 4))
        cls = s.NSGAIISampler if name == "nsga2" else s.NSGAIIISampler
        return cls(seed=seed, population_size=population)
    if name == "random":
        return s.RandomSampler(seed=seed)
    if name == "qmc":
        # Scrambled Sobol with the study's own seed: QMCSampler keeps its position in the
        # study, so the same seed continues the sequence on resume instead of restarting it.
        return s.QMCSampler(seed=cfg.study.seed, scramble=True, warn_independent_sampling=False)
    if name == "grid":
        # NOTE: the same seed in every process: GridSampler shuffles its grid with it and maps
        # trial number k to grid point k, so all workers and resumes must agree on the order.
        return s.GridSampler(grid_levels(cfg), seed=cfg.study.seed)
    raise ValueError(f"unknown sampler {name!r}")  # config validation makes this unreachable


class _TorchWithoutCpuMode:
    """``torch`` as Optuna's GP sampler module sees it while nmhpo's GP sampler samples:
    ``torch.device("cpu")`` used as a context is a no-op while the default device is the CPU.

    Optuna 5 runs ``GPSampler.sample_relative`` inside ``with torch.device("cpu")`` (optuna
    PR 6418, for users who set a CUDA default device). That context is a TorchFunctionMode:
    every torch call of the acquisition search then passes through a Python handler (pytorch
    issue 92701), which changes nothing when the default device is the CPU already but costs
    a quarter of GP's sampling time: the quickstart, 74 trials, takes 40.7 s of CPU instead of
    46.3 s, with the very same trials. With any other default device the real context is
    entered, as Optuna intends.
    """

    def __init__(self, torch: Any) -> None:
        self._torch = torch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)

    def device(self, *args: Any, **kwargs: Any) -> Any:
        device = self._torch.device(*args, **kwargs)
        if device.type == "cpu" and self._torch.get_default_device().type == "cpu":
            return contextlib.nullcontext(device)
        return device


@contextlib.contextmanager
def _without_cpu_device_mode() -> Iterator[None]:
    import optuna.samplers._gp.sampler as gp_module
    import torch

    original = getattr(gp_module, "torch", None)
    if original is None:  # another Optuna layout: sample as it does
        yield
        return
    # a stand-in for the torch module on purpose; the module's attribute is typed as the module
    gp_module.torch = _TorchWithoutCpuMode(torch)  # type: ignore[assignment]
    try:
        yield
    finally:
        gp_module.torch = original


def _gp_sampler(**kwargs: Any) -> BaseSampler:
    """Optuna's GPSampler, sampling without the CPU device mode (`_TorchWithoutCpuMode`)."""
    return _gp_sampler_class()(**kwargs)


@functools.cache
def _gp_sampler_class() -> type[BaseSampler]:
    from optuna.samplers import GPSampler as optuna_gp

    # Optuna's name: what runs is its sampler, and the name is what a run reports.
    class GPSampler(optuna_gp):
        def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
            with _without_cpu_device_mode():
                return super().sample_relative(study, trial, search_space)

    return GPSampler
