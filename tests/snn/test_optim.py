"""The fused Adam and SGD steps against torch.optim on the same network and batches."""

from __future__ import annotations

import pytest
import torch

from nmhpo.snn._optim import FusedAdam, FusedSGD


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))


@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_steps_are_bit_identical_to_torch_optim(kind: str) -> None:
    ours, theirs = _net(), _net()
    if kind == "adam":
        opt_ours = FusedAdam(ours.parameters(), lr=0.01)
        opt_theirs = torch.optim.Adam(theirs.parameters(), lr=0.01, fused=True)
    else:
        opt_ours = FusedSGD(ours.parameters(), lr=0.05, momentum=0.9)
        opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, fused=True)
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        x, y = torch.randn(32, 8, generator=gen), torch.randint(0, 3, (32,), generator=gen)
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(next(ours.parameters()), next(_net().parameters()))  # it moved
