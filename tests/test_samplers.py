"""nmhpo's GP sampler: Optuna's, with a smaller acquisition search, sampling without the no-op
CPU device mode."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import optuna
import pytest
import torch

from nmhpo.samplers import (
    GP_LOCAL_SEARCHES,
    GP_PRELIMINARY_SAMPLES,
    _gp_sampler,
    _TorchWithoutCpuMode,
    _without_cpu_device_mode,
    set_acquisition_budget,
)


def _objective(trial: optuna.Trial) -> tuple[float, float]:
    x = trial.suggest_float("x", -2.0, 2.0)
    n = trial.suggest_int("n", 1, 8)
    c = trial.suggest_categorical("c", ["a", "b"])
    return (x - 0.5) ** 2 + n / 8, abs(x) + (c == "a")


def _trials(sampler: optuna.samplers.BaseSampler) -> list[tuple[dict, tuple]]:
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(_objective, n_trials=14)
    return [(t.params, tuple(t.values)) for t in study.trials]


def test_the_same_suggestions_as_optunas_gp_sampler_with_the_same_budget() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kwargs = {"seed": 3, "n_startup_trials": 5, "deterministic_objective": True}
    ours = _trials(_gp_sampler(**kwargs))
    optunas = optuna.samplers.GPSampler(**kwargs)
    assert set_acquisition_budget(optunas, GP_LOCAL_SEARCHES, GP_PRELIMINARY_SAMPLES)
    assert ours == _trials(optunas)
    assert len({p["x"] for p, _ in ours}) == 14  # GP proposed after the random start
    # the budget is what makes the difference: Optuna's own search proposes other points
    assert ours != _trials(optuna.samplers.GPSampler(**kwargs))


def test_the_budget_reaches_optunas_acquisition_search(monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna.samplers._gp.sampler as gp_module

    # the sampler module's own handle: Optuna imports it lazily, into a copy of the module
    optim_mixed = gp_module.optim_mixed
    seen: list[tuple[int, int]] = []
    original = optim_mixed.optimize_acqf_mixed

    def spy(*args: object, **kwargs: object) -> object:
        seen.append((kwargs["n_local_search"], kwargs["n_preliminary_samples"]))  # type: ignore[arg-type]
        return original(*args, **kwargs)

    monkeypatch.setattr(optim_mixed, "optimize_acqf_mixed", spy)
    _trials(_gp_sampler(seed=0, n_startup_trials=5, deterministic_objective=True))
    assert seen and set(seen) == {(GP_LOCAL_SEARCHES, GP_PRELIMINARY_SAMPLES)}


def test_an_optuna_without_the_budget_attributes_keeps_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Other:
        _n_local_search = 10

    other = Other()
    assert not set_acquisition_budget(other, 4, 512)
    assert other._n_local_search == 10 and "no _n_local_search or" in caplog.text


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
