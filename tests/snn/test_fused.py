from __future__ import annotations

import pytest
import snntorch as snn
import torch

from nmhpo.snn._fused import integrate_mean, leaky_over_time
from nmhpo.snn._model import make_surrogate


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "sigmoid", "atan"])
def test_fused_leaky_equals_snntorch_leaky(reset: str, surrogate: str) -> None:
    torch.manual_seed(0)
    cur = (torch.randn(7, 5, 6) * 1.5).requires_grad_(True)
    weights = torch.randn(7, 5, 6)
    neuron = snn.Leaky(
        beta=0.8, threshold=0.9, spike_grad=make_surrogate(surrogate, 20.0), reset_mechanism=reset
    )
    mem = torch.zeros(5, 6)
    expected = []
    for t in range(7):
        spk, mem = neuron(cur[t], mem)
        expected.append(spk)
    expected_spk = torch.stack(expected)
    (expected_spk * weights).sum().backward()
    expected_grad = cur.grad.clone()
    cur.grad = None

    spk = leaky_over_time(
        cur, beta=0.8, threshold=0.9, reset=reset, surrogate=surrogate, slope=20.0
    )
    (spk * weights).sum().backward()
    snn.SpikingNeuron.init()
    assert torch.equal(spk, expected_spk)
    assert expected_spk.sum() > 0  # the comparison is not vacuous
    # snnTorch's sigmoid surrogate overflows to NaN far below threshold; ours stays finite.
    finite = torch.isfinite(expected_grad)
    assert finite.float().mean() > 0.5 and torch.isfinite(cur.grad).all()
    torch.testing.assert_close(cur.grad[finite], expected_grad[finite], rtol=1e-4, atol=1e-5)


def test_integrate_mean_equals_the_recurrence() -> None:
    cur = torch.randn(6, 3, 4)
    for beta in (0.7, 1.0):
        mem, total = torch.zeros(3, 4), torch.zeros(3, 4)
        for t in range(6):
            mem = beta * mem + cur[t]
            total += mem
        torch.testing.assert_close(integrate_mean(cur, beta), total / 6)
