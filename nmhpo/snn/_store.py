"""The train-once cache: trained models on disk, keyed by what decides the training.

Hardware knobs never change training, so every hardware point of a software point reuses one
trained network, in this process and in other workers sharing the folder.

Files hold CPU tensors and are read onto the CPU, whatever device trained the network: a model
trained on a GPU serves a CPU worker and back (`TrainedModel.network` places it). The device is
not part of the key: across devices a point's network differs by float rounding only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from nmhpo.snn._model import Architecture
from nmhpo.snn._train import TrainedModel

logger = logging.getLogger(__name__)


def model_key(task_identity: dict[str, Any], software: dict[str, Any], seed: int) -> str:
    """Stable hash of the task (name, options, data seed), software point and training seed."""
    blob = json.dumps(
        {"task": task_identity, "software": software, "seed": seed}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


class ModelStore:
    """Trained models under ``root`` (one ``<key>.pt`` each), plus a small in-process cache."""

    def __init__(self, root: Path, keep_in_memory: int = 4) -> None:
        self.root = root
        self.keep_in_memory = keep_in_memory
        self._memory: dict[str, TrainedModel] = {}

    def path(self, key: str) -> Path:
        return self.root / f"{key}.pt"

    def load(self, key: str) -> TrainedModel | None:
        if key in self._memory:
            return self._memory[key]
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as exc:
            logger.warning("model cache %s is unreadable (%s); training again", path, exc)
            return None
        # JSON gives back lists where save() wrote the Architecture's shape tuples
        arch: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(blob["arch"]).items()
        }
        model = TrainedModel(
            arch=Architecture(**arch),
            params=json.loads(blob["params"]),
            seed=int(blob["seed"]),
            state=blob["state"],
            train_time_s=float(blob["train_time_s"]),
            epochs_run=int(blob["epochs_run"]),
            final_loss=float(blob["final_loss"]),
            history=[float(v) for v in blob["history"]],
        )
        self._remember(key, model)
        return model

    def save(self, key: str, model: TrainedModel) -> None:
        """Write atomically (temporary file + rename): a concurrent reader sees the whole
        file or none, and two workers training the same point both leave a valid file."""
        blob = {
            "arch": json.dumps(asdict(model.arch)),
            "params": json.dumps(model.params, default=str),
            "seed": model.seed,
            "state": {k: v.detach().cpu() for k, v in model.state.items()},
            "train_time_s": model.train_time_s,
            "epochs_run": model.epochs_run,
            "final_loss": model.final_loss,
            "history": torch.tensor(model.history, dtype=torch.float64),
        }
        self._write(self.path(key), blob)
        self._remember(key, model)

    # --- checkpoints: a point's training stopped at a rung of a multi-fidelity study -------

    def checkpoint_path(self, key: str, epoch: int) -> Path:
        return self.root / f"{key}.epoch{epoch}.ckpt"

    def checkpoint_epochs(self, key: str) -> list[int]:
        """Epochs at which ``key``'s training has a checkpoint, ascending."""
        if not self.root.is_dir():
            return []
        out = []
        for path in self.root.glob(f"{key}.epoch*.ckpt"):
            tail = path.name[len(key) + len(".epoch") : -len(".ckpt")]
            if tail.isdigit():
                out.append(int(tail))
        return sorted(out)

    def load_checkpoint(self, key: str, epoch: int) -> dict[str, Any] | None:
        """The checkpoint of ``key`` at ``epoch``, or None (missing or unreadable: a
        checkpoint only saves time, so a bad one means training from an earlier one)."""
        path = self.checkpoint_path(key, epoch)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            logger.warning("checkpoint %s is unreadable (%s); ignoring it", path, exc)
            return None

    def save_checkpoint(self, key: str, epoch: int, checkpoint: dict[str, Any]) -> None:
        self._write(self.checkpoint_path(key, epoch), checkpoint)

    def drop_checkpoints(self, key: str) -> None:
        """Once the whole training is stored, its checkpoints serve nothing."""
        for epoch in self.checkpoint_epochs(key):
            self.checkpoint_path(key, epoch).unlink(missing_ok=True)

    def _write(self, path: Path, blob: dict[str, Any]) -> None:
        """Atomically (temporary file + rename), for concurrent readers and writers."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(blob, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _remember(self, key: str, model: TrainedModel) -> None:
        self._memory[key] = model
        while len(self._memory) > self.keep_in_memory:
            self._memory.pop(next(iter(self._memory)))
