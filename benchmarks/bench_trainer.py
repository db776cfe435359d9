"""nmhpo's trainer against a plain snnTorch tutorial-style loop, on a quickstart-sized training.

Same data (digits, the quickstart split), architecture (64-128-10 Leaky, fast-sigmoid surrogate),
rate encoding, time steps and epochs. The baseline is the snnTorch tutorial's loop (tutorial 5):
`spikegen.rate`, a Python loop over time steps calling `snn.Leaky` on every layer, the
cross-entropy of the output membrane summed over steps, and accuracy from output spike counts.
nmhpo's trainer computes the first layer for all steps in one call, reads out a non-spiking
output integrator with one loss per batch, and evaluates in large batches under
`torch.inference_mode`.

Writes benchmarks/results/trainer.json (speedup_vs_snntorch_loop, both accuracies).
Goal: nmhpo at least 3x faster at equal accuracy (within 1 point), on 2 cores.
Run: .venv/bin/python benchmarks/bench_trainer.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import snntorch as snn
import torch
from snntorch import spikegen, surrogate
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result  # noqa: E402

from nmhpo.registry import SOFTWARE  # noqa: E402
from nmhpo.snn import evaluate, train  # noqa: E402
from nmhpo.tasks import load_task  # noqa: E402

HIDDEN, STEPS, EPOCHS, BATCH, LR, BETA = 128, 8, 6, 64, 5e-3, 0.9
REPEATS = 3  # seeds; the figure is the median time and the mean accuracy


class TutorialNet(nn.Module):
    """snnTorch tutorial 5's network, unchanged in spirit: Linear -> Leaky, twice."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        grad = surrogate.fast_sigmoid(slope=25)
        self.fc1 = nn.Linear(n_in, HIDDEN)
        self.lif1 = snn.Leaky(beta=BETA, spike_grad=grad)
        self.fc2 = nn.Linear(HIDDEN, n_out)
        self.lif2 = snn.Leaky(beta=BETA, spike_grad=grad)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec, mem2_rec = [], []
        for step in range(STEPS):
            cur1 = self.fc1(x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec), torch.stack(mem2_rec)


def tutorial_train(data: Any, seed: int) -> tuple[float, float]:
    torch.manual_seed(seed)
    net = TutorialNet(data.n_features, data.n_classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=LR, betas=(0.9, 0.999))
    loss_fn = nn.CrossEntropyLoss()
    x = torch.from_numpy(data.x_train)
    y = torch.from_numpy(data.y_train)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        order = torch.randperm(len(x))
        for first in range(0, len(x), BATCH):
            idx = order[first : first + BATCH]
            spikes = spikegen.rate(x[idx], num_steps=STEPS)
            net.train()
            _, mem_rec = net(spikes)
            loss = torch.zeros(())
            for step in range(STEPS):
                loss += loss_fn(mem_rec[step], y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        net.eval()
        correct = 0
        xv, yv = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
        for first in range(0, len(xv), BATCH):
            spk_rec, _ = net(spikegen.rate(xv[first : first + BATCH], num_steps=STEPS))
            correct += int((spk_rec.sum(0).argmax(1) == yv[first : first + BATCH]).sum())
    seconds = time.perf_counter() - start
    snn.SpikingNeuron.init()
    return seconds, correct / len(xv)


def nmhpo_train(data: Any, seed: int) -> tuple[float, float]:
    params = {k: p.default for k, p in SOFTWARE.items()}
    params.update(
        hidden_size=HIDDEN,
        num_steps=STEPS,
        epochs=EPOCHS,
        batch_size=BATCH,
        lr=LR,
        beta=BETA,
        encoding="rate",
    )
    start = time.perf_counter()
    model = train(data, params, seed)
    accuracy = evaluate(model, data).metrics["accuracy"]
    return time.perf_counter() - start, accuracy


def main() -> None:
    torch.set_num_threads(1)
    data = load_task("digits")
    runs: dict[str, list[tuple[float, float]]] = {"snntorch_loop": [], "nmhpo": []}
    for seed in range(REPEATS):
        runs["snntorch_loop"].append(tutorial_train(data, seed))
        runs["nmhpo"].append(nmhpo_train(data, seed))
    summary = {
        name: {
            "seconds_median": round(statistics.median(t for t, _ in r), 3),
            "seconds": [round(t, 3) for t, _ in r],
            "accuracy_mean": round(float(np.mean([a for _, a in r])), 4),
            "accuracy": [round(a, 4) for _, a in r],
        }
        for name, r in runs.items()
    }
    speedup = summary["snntorch_loop"]["seconds_median"] / summary["nmhpo"]["seconds_median"]
    gap = summary["nmhpo"]["accuracy_mean"] - summary["snntorch_loop"]["accuracy_mean"]
    for name, s in summary.items():
        print(f"{name:>14}: {s['seconds_median']:.2f} s, accuracy {s['accuracy_mean']:.4f}")
    print(f"speedup {speedup:.2f}x, accuracy difference {gap:+.4f}")
    path = write_result(
        "trainer",
        {
            "setup": {
                "task": "digits",
                "n_train": len(data.x_train),
                "n_val": len(data.x_val),
                "layers": [data.n_features, HIDDEN, data.n_classes],
                "num_steps": STEPS,
                "epochs": EPOCHS,
                "batch_size": BATCH,
                "lr": LR,
                "beta": BETA,
                "encoding": "rate",
                "torch_threads": 1,
                "repeats": REPEATS,
            },
            "snntorch_loop": summary["snntorch_loop"],
            "nmhpo": summary["nmhpo"],
            "speedup_vs_snntorch_loop": round(speedup, 2),
            "accuracy_difference": round(gap, 4),
            "goal_speedup": 3.0,
            # "Equal accuracy within 1 point": nmhpo may not be more than 1 point worse.
            "meets_goal": bool(speedup >= 3.0 and gap >= -0.01),
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
