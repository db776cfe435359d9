"""Which torch device a worker trains on: ``[study] device`` resolved per worker.

The setting is checked in the study file (`device_problem`, no torch needed), checked
against the machine once before a study opens its storage (`check_available`: a study asking
for CUDA on a machine without it fails with one line, not with one traceback per trial), and
resolved by each worker (`resolve_device`). Only `gpu_count` and `check_available` import
torch, and only when a setting names or may use CUDA, so validating a file stays cheap.
"""

from __future__ import annotations

import re

from nmhpo.errors import DeviceError

#: What ``[study] device`` and ``--device`` accept.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_problem(setting: str) -> str | None:
    """Why ``setting`` is not a device setting (else None), worded for a config error."""
    if isinstance(setting, str) and DEVICE_PATTERN.fullmatch(setting):
        return None
    return f"expected auto, cpu, cuda or cuda:N; got {setting!r}"


def resolve_device(setting: str, worker: int, n_gpus: int) -> str:
    """The torch device string worker ``worker`` uses, on a machine with ``n_gpus`` GPUs.

    Round-robin: worker i gets ``cuda:(i % n_gpus)``, so ``--workers G`` gives each of G GPUs
    one worker and ``--workers 2G`` puts two small trials on each GPU at once. "auto" falls
    back to the CPU when torch sees no GPU; "cuda:N" pins every worker to GPU N.

    Raises:
        DeviceError: "cuda" on a machine with no GPU (`check_available` says so earlier).
    """
    if setting == "cpu":
        return "cpu"
    if setting == "auto":
        return f"cuda:{worker % n_gpus}" if n_gpus > 0 else "cpu"
    if setting == "cuda":
        if n_gpus <= 0:
            raise DeviceError(_no_cuda(setting))
        return f"cuda:{worker % n_gpus}"
    return setting  # cuda:N, as given


def device_for(setting: str, worker: int) -> str:
    """`resolve_device` on this machine; counts its GPUs (imports torch) only when the setting
    may use one."""
    return resolve_device(setting, worker, 0 if setting == "cpu" else gpu_count())


def gpu_count() -> int:
    """GPUs torch sees (0 without CUDA); imports torch."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_available(setting: str, n_gpus: int | None = None) -> None:
    """Fail at once when the machine cannot honour ``setting`` (before any storage opens).

    Args:
        n_gpus: the GPU count to check against; default: what torch sees (imports torch only
            for a "cuda" setting: "auto" and "cpu" always work).

    Raises:
        DeviceError: CUDA is asked for but unavailable, or GPU N does not exist.
    """
    if not setting.startswith("cuda"):
        return
    count = gpu_count() if n_gpus is None else n_gpus
    if count <= 0:
        raise DeviceError(_no_cuda(setting))
    index = int(setting.partition(":")[2] or 0)
    if index >= count:
        raise DeviceError(
            f"device {setting!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}"
        )


def _no_cuda(setting: str) -> str:
    return (
        f"device {setting!r}: torch sees no CUDA GPU on this machine "
        "(use --device cpu or auto, or a CUDA build of torch)"
    )
