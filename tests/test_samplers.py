"""nmhpo's GP sampler: Optuna's, sampling without the no-op CPU device mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import optuna
import pytest
import torch

from nmhpo.samplers import _gp_sampler, _TorchWithoutCpuMode, _without_cpu_device_mode


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -2.0, 2.0)
    n = trial.suggest_int("n", 1, 8)
    c = trial.suggest_categorical("c", ["a", "b"])
    return (x - 0.5) ** 2 + n / 8, abs(x) + (c == "a")


def _trials(sampler: optuna.samplers.BaseSampler) -> list[tuple[dict, tuple]]:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=14)
    return [(t.params, tuple(t.values)) for t in study.trials]


def test_the_same_suggestions_as_optunas_gp_sampler() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"seed": 3, "n_startup_trials": 5, "deterministic_objective": True}
    ours = _trials(_gp_sampler(**kwargs))
    assert ours == _trials(optuna.samplers.GPSampler(**kwargs))
    assert len({p["x"] for p, _ in ours}) == 14  # GP proposed after the random start


@contextlib.contextmanager
def _default_device(name: str) -> Iterator[None]:
    torch.set_default_device(name)
    try:
        yield
    finally:
        torch.set_default_device(None)


def test_the_cpu_context_is_skipped_only_while_the_cpu_is_the_default() -> None:
    proxy = _TorchWithoutCpuMode(torch)
    assert proxy.from_numpy is torch.from_numpy
    assert isinstance(proxy.device("cpu"), contextlib.nullcontext)
    with _default_device("meta"):
        # a user's other default device: Optuna's own context, which puts GP on the CPU
        device = proxy.device("cpu")
        assert isinstance(device, torch.device)
        with device:
            assert torch.zeros(1).device.type == "cpu"
        assert torch.zeros(1).device.type == "meta"


def test_optunas_module_is_restored_after_sampling() -> None:
    import optuna.samplers._gp.sampler as gp_module

    before = gp_module.torch
    with pytest.raises(RuntimeError), _without_cpu_device_mode():
        assert isinstance(gp_module.torch, _TorchWithoutCpuMode)
        raise RuntimeError("a failing sample")
    assert gp_module.torch is before
