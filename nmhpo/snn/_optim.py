"""Adam and SGD steps through PyTorch's fused kernels, without ``torch.optim``.

``torch.optim.Optimizer`` imports ``torch._dynamo`` on first use: 1.2 s measured here, paid
by every process that trains (each worker of a study, each `nmhpo run`), about as long as
six quickstart trainings. These classes call the kernels that ``torch.optim.Adam(fused=True)``
and ``torch.optim.SGD(fused=True)`` call, with the same state, so their steps are
bit-identical (tests/snn/test_optim.py); they do only what the trainer needs (no weight decay,
no AMSGrad, no parameter groups).

The same kernels exist for CUDA tensors (``torch.utils._foreach_utils.
_get_fused_kernels_supported_devices`` lists cpu and cuda, the devices ``fused=True`` accepts),
so the classes are device-generic: state is made next to each parameter. Only the CPU path is
tested here (no GPU in CI).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch


def _with_grad(params: list[torch.Tensor]) -> tuple[list[int], list[torch.Tensor]]:
    """Indices and gradients of the parameters that have a gradient: the fused kernels step
    only those, as torch.optim does."""
    pairs = [(i, p.grad) for i, p in enumerate(params) if p.grad is not None]
    return [i for i, _ in pairs], [g for _, g in pairs]


class FusedAdam:
    """``torch.optim.Adam(params, lr, fused=True)``, step and zero_grad only."""

    def __init__(
        self,
        params: Iterable[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avgs = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]
        self.exp_avg_sqs = [
            torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params
        ]
        # The fused kernels want the step counts on the parameters' device (as
        # torch.optim.Adam(fused=True) keeps them); a CPU step would not reach a CUDA kernel.
        self.steps = [torch.zeros((), dtype=torch.float32, device=p.device) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        live, grads = _with_grad(self.params)
        if not live:
            return
        steps = [self.steps[i] for i in live]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            [self.params[i] for i in live],
            grads,
            [self.exp_avgs[i] for i in live],
            [self.exp_avg_sqs[i] for i in live],
            [],
            steps,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, list[torch.Tensor]]:
        """CPU copies of the moments and step counts: what a training checkpoint resumes."""
        return {
            "exp_avgs": [t.detach().cpu().clone() for t in self.exp_avgs],
            "exp_avg_sqs": [t.detach().cpu().clone() for t in self.exp_avg_sqs],
            "steps": [t.detach().cpu().clone() for t in self.steps],
        }

    def load_state_dict(self, state: dict[str, list[torch.Tensor]]) -> None:
        for name in ("exp_avgs", "exp_avg_sqs", "steps"):
            for mine, saved in zip(getattr(self, name), state[name], strict=True):
                mine.copy_(saved)


class FusedSGD:
    """``torch.optim.SGD(params, lr, momentum, fused=True)``, step and zero_grad only."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, momentum: float = 0.9) -> None:
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.buffers: list[torch.Tensor | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        live, grads = _with_grad(self.params)
        if not live:
            return
        first = all(self.buffers[i] is None for i in live)
        if first:
            for i, g in zip(live, grads, strict=True):
                self.buffers[i] = torch.empty_like(g)
        # Every live buffer is set: made just above on the first step and kept since, as
        # torch.optim.SGD(fused=True) keeps them (it too assumes the same parameters get grads).
        buffers = cast(list[torch.Tensor], [self.buffers[i] for i in live])
        torch._fused_sgd_(
            [self.params[i] for i in live],
            grads,
            buffers,
            weight_decay=0.0,
            momentum=self.momentum,
            lr=self.lr,
            dampening=0.0,
            nesterov=False,
            maximize=False,
            is_first_step=first,
        )

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, list[torch.Tensor | None]]:
        """CPU copies of the momentum buffers (None before the first step)."""
        return {"buffers": [None if b is None else b.detach().cpu().clone() for b in self.buffers]}

    def load_state_dict(self, state: dict[str, list[torch.Tensor | None]]) -> None:
        self.buffers = [
            None if b is None else b.to(p.device, copy=True)
            for p, b in zip(self.params, state["buffers"], strict=True)
        ]
