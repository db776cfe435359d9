"""Training of one software point, and its evaluation in float or on crossbars.

Both run on a torch device ("cpu", "cuda:0", ...). The task's arrays are moved there once per
process (`_on_device`); the network is built on the CPU and moved, so a seed gives the same
initial weights on every device; batch order comes from a CPU generator for the same reason.
Nothing in the loops over time steps or batches reads a value back to the host: the loss and
the divergence check are read once per epoch (a GPU waits for the host once per epoch).

Reproducibility: the same seed on the same device gives the same network and metrics (on a
GPU, as far as cuDNN's and atomics' ordering allow). Across devices the initial weights, the
batch order and the crossbar's variation agree, but float rounding differs, so trained
networks and metrics agree only approximately.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import snntorch as snn
import torch
from torch import nn

from nmhpo.errors import TrialFailedError
from nmhpo.registry import SOFTWARE, total_epochs
from nmhpo.snn._convert import converted_state
from nmhpo.snn._encode import encode
from nmhpo.snn._hardware import HardwarePoint, crossbar_synapses
from nmhpo.snn._model import Architecture, SpikingNet, make_surrogate
from nmhpo.snn._neurobench import WorkloadCounter
from nmhpo.snn._optim import FusedAdam, FusedSGD
from nmhpo.tasks import TaskData

logger = logging.getLogger(__name__)

#: A loss above this means the weights blew up (cross-entropy at chance is ln 10 = 2.3; targets
#: are normalised for regression): the run is failed with its reason instead of scored.
DIVERGED_LOSS = 1e4
#: Samples per evaluation batch: large batches amortise the Python loop over time steps.
EVAL_BATCH = 1024
#: Training samples used to calibrate the ADC ranges of crossbar-aware inference.
CALIBRATION_SAMPLES = 256
#: Task data moved to a device, kept per (task data, device): moved once per process.
_DEVICE_DATA_KEEP = 4
#: Hybrid's fine-tuning learning rate relative to ``lr``: the converted network is already
#: near a good solution, and the ReLU network's step size knocks it off (measured on digits).
FINETUNE_LR_SCALE = 0.1


def architecture(data: TaskData, params: dict[str, Any]) -> Architecture:
    conv = int(params["conv_layers"])
    width = int(params["conv_channels"])
    channels = tuple(width * 2**i for i in range(conv))
    # The decoder mirrors the encoder: channels halve as the map doubles, down to conv_channels.
    depth = int(_setting(params, "decoder_layers"))
    return Architecture(
        input_shape=data.input_shape,
        conv_channels=channels,
        kernel_size=int(params["kernel_size"]),
        hidden=(int(params["hidden_size"]),) * int(params["hidden_layers"]),
        n_outputs=data.n_outputs,
        decoder_channels=tuple(width * 2 ** (depth - 1 - j) for j in range(depth)),
    )


def _setting(params: dict[str, Any], name: str) -> Any:
    """``params[name]``, or its default for a parameter a point may lack (`OPTIONAL_SOFTWARE`)."""
    return params.get(name, SOFTWARE[name].default)


def build_network(arch: Architecture, params: dict[str, Any]) -> SpikingNet:
    """The point's spiking network. Under conversion and hybrid training its neurons are
    integrate-and-fire (Leaky with beta 1, threshold 1, reset by subtraction) whatever
    ``neuron``, ``beta``, ``threshold`` and ``reset`` say, and a membrane readout reads the
    mean of its currents: what a converted ReLU network needs (see `nmhpo.snn._convert`)."""
    if _setting(params, "training") != "bptt":
        neuron, beta, threshold, reset, readout_beta = "leaky", 1.0, 1.0, "subtract", 0.0
    else:
        neuron, beta = str(params["neuron"]), float(params["beta"])
        threshold, reset = float(params["threshold"]), str(params["reset"])
        readout_beta = None
    return SpikingNet(
        arch,
        neuron=neuron,
        beta=beta,
        alpha=float(params["alpha"]),
        threshold=threshold,
        reset=reset,
        spike_grad=make_surrogate(str(params["surrogate"]), float(params["surrogate_slope"])),
        readout=str(params["readout"]),
        surrogate=str(params["surrogate"]),
        slope=float(params["surrogate_slope"]),
        readout_beta=readout_beta,
    )


@dataclass
class TrainedModel:
    """A trained network and what it took; what the train-once cache stores."""

    arch: Architecture
    params: dict[str, Any]
    seed: int
    state: dict[str, torch.Tensor]
    train_time_s: float
    epochs_run: int
    final_loss: float
    history: list[float] = field(default_factory=list)  # validation loss per epoch
    _net: SpikingNet | None = field(default=None, repr=False)

    def network(self, device: str = "cpu") -> SpikingNet:
        """The network in eval mode on ``device``, built once per device in a row.

        ``state`` holds CPU tensors (what the model cache stores), so a network trained on a
        GPU is served to a CPU worker and back.
        """
        if self._net is None or str(next(self._net.parameters()).device) != _canonical(device):
            net = build_network(self.arch, self.params)
            net.load_state_dict(self.state)
            net.eval()
            self._net = net.to(device)
        return self._net


def _canonical(device: str) -> str:
    """How torch prints ``device`` ("cuda" -> "cuda:0"), to compare with a tensor's device."""
    return "cuda:0" if device == "cuda" else device


@dataclass(frozen=True)
class EvalResult:
    """Predictions and metrics of one inference pass, with the activity the hardware prices."""

    metrics: dict[str, float]
    activity: list[float]  # per weight layer: fraction of its inputs active per step
    activity_per_step: list[list[float]]  # (T, n_layers)
    spikes_per_inference: float  # input events into all weight layers, per sample
    eval_time_s: float
    #: NeuroBench's workload metrics of the pass, per sample (see `nmhpo.snn._neurobench`).
    neurobench: dict[str, float] = field(default_factory=dict)


def _loss_fn(data: TaskData) -> nn.Module:
    return nn.CrossEntropyLoss() if data.kind == "classification" else nn.MSELoss()


def _targets(y: np.ndarray, data: TaskData) -> torch.Tensor:
    return torch.from_numpy(y).long() if data.kind == "classification" else torch.from_numpy(y)


#: (id(data), device) -> (data, its splits as tensors on device); the data is held so that its
#: id is not reused while the entry lives.
_device_data: dict[tuple[int, str], tuple[TaskData, dict[str, torch.Tensor]]] = {}


def _on_device(data: TaskData, device: str) -> dict[str, torch.Tensor]:
    """The task's splits (x_train, y_train, x_val, ...) as tensors on ``device``, moved once
    per process and device. On the CPU they share the arrays' memory (no copy)."""
    key = (id(data), device)
    if key not in _device_data:
        tensors: dict[str, torch.Tensor] = {}
        for split in ("train", "val", "test"):
            tensors[f"x_{split}"] = torch.from_numpy(getattr(data, f"x_{split}")).to(device)
            tensors[f"y_{split}"] = _targets(getattr(data, f"y_{split}"), data).to(device)
        _device_data[key] = (data, tensors)
        while len(_device_data) > _DEVICE_DATA_KEEP:
            _device_data.pop(next(iter(_device_data)))
    return _device_data[key][1]


def _generator(
    device: torch.device, seed: int, cpu: torch.Generator | None = None
) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed``; on the CPU, ``cpu`` itself when given
    (one stream for batch order and encoding, as before devices existed: same numbers)."""
    if device.type == "cpu":
        return cpu if cpu is not None else torch.Generator().manual_seed(seed)
    return torch.Generator(device=device).manual_seed(seed)


def _run(
    net: SpikingNet,
    x: torch.Tensor,
    params: dict[str, Any],
    gen: torch.Generator,
    synapses: Any = None,
    counter: WorkloadCounter | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference in large batches on ``x``'s device; returns outputs (N, n_out) and events
    (T, n_layers), both still on that device. ``counter`` accumulates NeuroBench's counts."""
    steps = int(params["num_steps"])
    outs = []
    events = torch.zeros(steps, net.n_layers, dtype=torch.float64, device=x.device)
    with torch.inference_mode():
        for first in range(0, len(x), EVAL_BATCH):
            xb = x[first : first + EVAL_BATCH]
            x_seq = encode(xb, params["encoding"], steps, gen)
            out, ev = net(x_seq, steps, synapses, counter=counter)
            outs.append(out)
            events += ev
    return torch.cat(outs), events


class Training:
    """One software point's training, advanced epoch by epoch.

    A multi-fidelity study scores the network at chosen epochs (rungs) and may stop it there;
    `checkpoint` holds everything needed to go on later (weights, optimizer moments, the
    batch-order and encoding generators, early-stopping state), so a stopped point that comes
    back resumes where it stopped and ends bit-identical to an uninterrupted run.

    The algorithm is the point's ``training``:

    * bptt: ``epochs`` epochs of surrogate gradients through time.
    * conversion: ``epochs`` epochs of the ReLU network of the same layers on the analog
      inputs (no time steps, no encoding); `model` returns it converted to integrate-and-fire
      neurons (`nmhpo.snn._convert`), and a checkpoint holds the ReLU network and its
      optimizer.
    * hybrid: the same, then ``finetune_epochs`` epochs of surrogate gradients on the
      converted network (a fresh optimizer at ``lr * FINETUNE_LR_SCALE``), which start by
      converting the ReLU network in place. ``epochs`` counts all of them (`total_epochs`).

    ``patience`` (early stopping) watches surrogate-gradient epochs only: every ReLU epoch runs.
    """

    def __init__(
        self,
        data: TaskData,
        params: dict[str, Any],
        seed: int,
        *,
        device: str = "cpu",
        checkpoint: dict[str, Any] | None = None,
    ) -> None:
        torch.manual_seed(seed)
        self.data, self.params, self.seed, self.device = data, dict(params), seed, device
        self.gen = torch.Generator().manual_seed(seed)  # batch order: on the CPU for every device
        self.arch = architecture(data, params)
        self.net = build_network(self.arch, params).to(device)  # initialised on the CPU, moved
        self.where = next(self.net.parameters()).device
        self.draw = _generator(self.where, seed, self.gen)  # the encoding's randomness
        self.algorithm = str(_setting(params, "training"))
        #: Epochs of the ReLU network (0 under bptt), then surrogate-gradient ones up to
        #: ``epochs``.
        self.relu_epochs = 0 if self.algorithm == "bptt" else int(params["epochs"])
        self.optimizer = self._optimizer(float(params["lr"]))
        self.epochs = total_epochs(params)
        self.epoch = 0
        self.stopped_early = False
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val = math.inf
        self.stale = 0
        self.history: list[float] = []
        self.train_time_s = 0.0
        self.loss_value = math.nan
        if checkpoint is not None:
            self._restore(checkpoint)

    def _optimizer(self, lr: float) -> FusedAdam | FusedSGD:
        if self.params["optimizer"] == "sgd":
            return FusedSGD(self.net.parameters(), lr=lr, momentum=0.9)
        return FusedAdam(self.net.parameters(), lr=lr)

    @property
    def relu_phase(self) -> bool:
        """Whether the weights are still the ReLU network's (conversion, hybrid before its
        fine-tuning): `model` converts them."""
        return self.algorithm != "bptt" and self.epoch <= self.relu_epochs

    @property
    def done(self) -> bool:
        """Trained to its last epoch, or stopped by early stopping."""
        return self.stopped_early or self.epoch >= self.epochs

    def advance(self, to_epoch: int) -> None:
        """Train up to epoch ``to_epoch`` (at most the point's epochs).

        Raises:
            TrialFailedError: the loss became NaN, infinite or absurdly large (a diverging
                run); checked at the end of each epoch, where the loss is read anyway.
        """
        start = time.perf_counter()
        try:
            while self.epoch < min(to_epoch, self.epochs) and not self.stopped_early:
                self._one_epoch()
        finally:
            # snnTorch keeps every neuron ever built in a class-level list (snntorch#328);
            # clearing it after each stretch of training keeps a long study's memory flat.
            snn.SpikingNeuron.init()
            self.train_time_s += time.perf_counter() - start

    def _one_epoch(self) -> None:
        params, net, loss_fn = self.params, self.net, _loss_fn(self.data)
        tensors = _on_device(self.data, self.device)
        x_train, y_train = tensors["x_train"], tensors["y_train"]
        batch, steps = int(params["batch_size"]), int(params["num_steps"])
        relu = self.epoch < self.relu_epochs
        if self.algorithm == "hybrid" and self.epoch == self.relu_epochs:
            self._convert_in_place()
        self.epoch += 1
        net.train()
        order = torch.randperm(len(x_train), generator=self.gen).to(self.where)
        # Summed on the device in float64 (as Python floats were): read once per epoch.
        total = torch.zeros((), dtype=torch.float64, device=self.where)
        worst = torch.zeros((), device=self.where)
        for first in range(0, len(order), batch):
            idx = order[first : first + batch]
            if relu:
                out, _ = net.relu_forward(x_train[idx])
            else:
                out, _ = net(encode(x_train[idx], params["encoding"], steps, self.draw), steps)
            loss = loss_fn(out, y_train[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            detached = loss.detach()
            worst = torch.maximum(worst, detached)  # NaN propagates
            total += detached.double() * len(idx)
        worst_loss = float(worst)
        if not math.isfinite(worst_loss) or worst_loss > DIVERGED_LOSS:
            raise TrialFailedError(
                f"training diverged: loss is {worst_loss:.3g} in epoch {self.epoch} "
                f"(lr={float(params['lr']):.3g})"
            )
        self.loss_value = float(total) / len(order)
        logger.debug("epoch %d loss %.4f", self.epoch, self.loss_value)
        if int(params["patience"]) > 0 and not relu:
            net.eval()
            out, _ = _run(net, tensors["x_val"], params, self.draw)
            val = float(loss_fn(out, tensors["y_val"]))
            self.history.append(val)
            if val < self.best_val - 1e-6:
                self.best_val, self.stale = val, 0
                self.best_state = copy.deepcopy(net.state_dict())
            else:
                self.stale += 1
                self.stopped_early = self.stale >= int(params["patience"])

    def _converted(self) -> dict[str, torch.Tensor]:
        """The ReLU network's weights rescaled for integrate-and-fire neurons."""
        x_train = _on_device(self.data, self.device)["x_train"]
        percentile = float(_setting(self.params, "conversion_percentile"))
        return converted_state(self.net, x_train, percentile)

    def _convert_in_place(self) -> None:
        """Hybrid, before its first surrogate-gradient epoch: the network becomes the
        converted one, trained from here by a fresh optimizer."""
        with torch.no_grad():
            self.net.load_state_dict(self._converted())
        self.optimizer = self._optimizer(float(self.params["lr"]) * FINETUNE_LR_SCALE)

    def model(self) -> TrainedModel:
        """The network a stop now would give (the best epoch's under early stopping; the
        converted ReLU network under conversion), with CPU tensors whatever the device: what
        the model cache stores and any worker reads. A conversion's time counts as training
        time of the returned model."""
        start = time.perf_counter()
        if self.relu_phase:
            state = self._converted()
        else:
            state = self.best_state if self.best_state is not None else self.net.state_dict()
        converted_s = time.perf_counter() - start if self.relu_phase else 0.0
        return TrainedModel(
            arch=self.arch,
            params=dict(self.params),
            seed=self.seed,
            state={k: v.detach().to("cpu", copy=True) for k, v in state.items()},
            train_time_s=self.train_time_s + converted_s,
            epochs_run=self.epoch,
            final_loss=self.loss_value,
            history=list(self.history),
        )

    def checkpoint(self) -> dict[str, Any]:
        """Everything `Training(..., checkpoint=)` needs to go on from here; CPU tensors and
        plain values only (the model cache loads it with ``weights_only=True``)."""

        def cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}

        return {
            "epoch": self.epoch,
            "stopped_early": self.stopped_early,
            "net": cpu(self.net.state_dict()),
            "optimizer": self.optimizer.state_dict(),
            "gen": self.gen.get_state(),
            "draw": None if self.draw is self.gen else self.draw.get_state().cpu(),
            "best_state": None if self.best_state is None else cpu(self.best_state),
            "best_val": self.best_val,
            "stale": self.stale,
            "history": list(self.history),
            "train_time_s": self.train_time_s,
            "loss_value": self.loss_value,
        }

    def _restore(self, ckpt: dict[str, Any]) -> None:
        self.net.load_state_dict(ckpt["net"])
        self.epoch, self.stopped_early = int(ckpt["epoch"]), bool(ckpt["stopped_early"])
        if self.algorithm == "hybrid" and self.epoch > self.relu_epochs:  # fine-tuning
            self.optimizer = self._optimizer(float(self.params["lr"]) * FINETUNE_LR_SCALE)
        self.optimizer.load_state_dict(ckpt["optimizer"])  # type: ignore[arg-type]
        self.gen.set_state(ckpt["gen"])
        if ckpt["draw"] is not None and self.draw is not self.gen:
            self.draw.set_state(ckpt["draw"])
        best = ckpt["best_state"]
        self.best_state = None if best is None else {k: v.to(self.where) for k, v in best.items()}
        self.best_val, self.stale = float(ckpt["best_val"]), int(ckpt["stale"])
        self.history = [float(v) for v in ckpt["history"]]
        self.train_time_s = float(ckpt["train_time_s"])
        self.loss_value = float(ckpt["loss_value"])


def train(
    data: TaskData, params: dict[str, Any], seed: int, *, device: str = "cpu"
) -> TrainedModel:
    """Train the network of ``params`` on ``data`` (Adam or SGD, early stopping on the
    validation loss when ``patience`` > 0; by the point's ``training`` algorithm, see
    `Training`), on ``device``, to its last epoch.

    Raises:
        TrialFailedError: the training diverged (see `Training.advance`).
    """
    training = Training(data, params, seed, device=device)
    training.advance(training.epochs)
    return training.model()


def evaluate(
    model: TrainedModel,
    data: TaskData,
    hardware: HardwarePoint | None = None,
    *,
    split: str = "val",
    device: str = "cpu",
) -> EvalResult:
    """Score the trained network on a split, in float or on crossbars (``hardware``), on
    ``device``.

    The input encoding's randomness is seeded from the model seed, so the same model on the
    same hardware point and device gives the same numbers in every trial and worker.
    NeuroBench's workload metrics are counted in the same pass (not in the calibration).
    """
    start = time.perf_counter()
    params = model.params
    net = model.network(device)
    tensors = _on_device(data, device)
    gen = _generator(next(net.parameters()).device, model.seed + 1)
    synapses = None
    try:
        if hardware is not None:
            synapses = crossbar_synapses(net.weights, hardware)
            for s in synapses:
                s.start_calibration()
            _run(net, tensors["x_train"][:CALIBRATION_SAMPLES], params, gen, synapses)
            for s in synapses:
                s.finish_calibration()
        x, y = tensors[f"x_{split}"], getattr(data, f"y_{split}")
        counter = WorkloadCounter.for_network(net)
        out, events = _run(net, x, params, gen, synapses, counter)
    finally:
        snn.SpikingNeuron.init()
    if data.kind == "classification":
        metrics = data.metrics(y, out.argmax(dim=1).cpu().numpy())
    else:
        metrics = data.metrics(y, out.cpu().numpy())
    fan_in = np.array([ci * d * d for ci, _, _, d, _ in model.arch.crossbar_layers()], float)
    per_step = events.cpu().numpy() / (fan_in * len(x))
    neurobench = counter.metrics()
    return EvalResult(
        metrics=metrics,
        activity=[float(a) for a in np.clip(per_step.mean(axis=0), 0.0, 1.0)],
        activity_per_step=np.clip(per_step, 0.0, 1.0).round(6).tolist(),
        spikes_per_inference=float(events.sum() / len(x)),
        eval_time_s=time.perf_counter() - start,
        neurobench=neurobench,
    )
