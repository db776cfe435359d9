"""Training and evaluation of one software point; the only trainer nmhpo has."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import snntorch as snn
import torch
from torch import nn

from nmhpo.errors import TrialFailedError
from nmhpo.snn._model import SpikingMLP, make_surrogate
from nmhpo.tasks import TaskData

logger = logging.getLogger(__name__)

#: A cross-entropy loss above this (ln 10 = 2.3 at chance) means the weights blew up: the run
#: is failed with its reason instead of scoring a broken network.
DIVERGED_LOSS = 1e4


@dataclass(frozen=True)
class TrainResult:
    """What the rest of a trial needs from the network: quality, shape and spike activity."""

    accuracy: float
    layer_sizes: list[int]  # widths, input first: [64, 128, 10]
    activity: list[float]  # per weight layer: fraction of its inputs active per step
    spikes_per_inference: float  # input events into all weight layers, per sample
    train_time_s: float
    eval_time_s: float
    final_loss: float
    epochs: int


def encode(x: torch.Tensor, encoding: str, num_steps: int, gen: torch.Generator) -> torch.Tensor:
    """Time-first input: rate = Bernoulli spikes with probability x, (T, B, F); direct = the
    analog value as a constant current, (1, B, F), reused every step."""
    if encoding == "rate":
        return torch.bernoulli(x.unsqueeze(0).expand(num_steps, *x.shape), generator=gen)
    if encoding == "direct":
        return x.unsqueeze(0)
    raise ValueError(f"unknown encoding {encoding!r}")


def train_and_evaluate(data: TaskData, params: dict[str, Any], seed: int) -> TrainResult:
    """Train a spiking MLP on ``data`` with ``params`` and score it on the validation split.

    Raises:
        TrialFailedError: the loss became NaN or infinite (a diverging run).
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    sizes = [data.n_features] + [int(params["hidden_size"])] * int(params["hidden_layers"])
    sizes.append(data.n_classes)
    steps = int(params["num_steps"])
    model = SpikingMLP(
        sizes,
        beta=float(params["beta"]),
        threshold=float(params["threshold"]),
        spike_grad=make_surrogate(params["surrogate"], float(params["surrogate_slope"])),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=float(params["lr"]))
    loss_fn = nn.CrossEntropyLoss()
    x_train = torch.from_numpy(data.x_train)
    y_train = torch.from_numpy(data.y_train)
    batch = int(params["batch_size"])
    epochs = int(params["epochs"])

    start = time.perf_counter()
    loss_value = math.nan
    try:
        for epoch in range(epochs):
            order = torch.randperm(len(x_train), generator=gen)
            total, count = 0.0, 0
            for first in range(0, len(order), batch):
                idx = order[first : first + batch]
                x_seq = encode(x_train[idx], params["encoding"], steps, gen)
                logits, _ = model(x_seq, steps)
                loss = loss_fn(logits, y_train[idx])
                batch_loss = float(loss.detach())
                if not math.isfinite(batch_loss) or batch_loss > DIVERGED_LOSS:
                    raise TrialFailedError(
                        f"training diverged: loss is {batch_loss:.3g} in epoch {epoch + 1} "
                        f"(lr={float(params['lr']):.3g})"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += batch_loss * len(idx)
                count += len(idx)
            loss_value = total / count
            logger.debug("epoch %d loss %.4f", epoch + 1, loss_value)
        train_time = time.perf_counter() - start

        start = time.perf_counter()
        model.eval()
        with torch.no_grad():
            x_val = torch.from_numpy(data.x_val)
            x_seq = encode(x_val, params["encoding"], steps, gen)
            logits, events = model(x_seq, steps)
            accuracy = float((logits.argmax(dim=1).numpy() == data.y_val).mean())
        eval_time = time.perf_counter() - start
    finally:
        # snnTorch keeps every neuron ever built in a class-level list (snntorch#328);
        # clearing it after each trial keeps a long study's memory flat.
        snn.SpikingNeuron.init()

    n_val = len(data.x_val)
    events_np = events.numpy()
    possible = np.array(sizes[:-1], dtype=np.float64) * steps * n_val
    return TrainResult(
        accuracy=accuracy,
        layer_sizes=sizes,
        activity=[float(a) for a in np.clip(events_np / possible, 0.0, 1.0)],
        spikes_per_inference=float(events_np.sum() / n_val),
        train_time_s=train_time,
        eval_time_s=eval_time,
        final_loss=loss_value,
        epochs=epochs,
    )
