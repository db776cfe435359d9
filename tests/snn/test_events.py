from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nmhpo import load_config, run_study
from nmhpo.registry import SOFTWARE
from nmhpo.snn import bin_time, encode, evaluate, train
from nmhpo.tasks import load_task


@pytest.mark.parametrize("num_steps", [1, 3, 5, 8, 12])
def test_bin_time_keeps_every_event_and_orders_frames(num_steps: int) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 4, (6, 8, 2, 3, 3), generator=gen, dtype=torch.uint8)
    frames = bin_time(x, num_steps)
    assert frames.shape == (num_steps, 6, 2, 3, 3)
    assert torch.equal(frames.sum(dim=0).long(), x.long().sum(dim=1))
    # frame j sums fine bins floor(j 8 / T) .. floor((j + 1) 8 / T) - 1
    bounds = [j * 8 // num_steps for j in range(num_steps + 1)]
    for j in range(num_steps):
        expected = x[:, bounds[j] : bounds[j + 1]].long().sum(dim=1)
        assert torch.equal(frames[j].long(), expected)
    # the encoding's frames are spikes exactly where the summed frames hold an event
    spikes = encode(x, "events", num_steps, gen)
    assert torch.equal(spikes, (frames > 0).to(torch.float32))


def test_events_encoding_is_binary_frames_of_the_binned_events() -> None:
    x = torch.zeros(1, 4, 2, 1, 1, dtype=torch.uint8)
    x[0, 0, 1] = 3  # three ON events in the first fine bin
    x[0, 3, 0] = 1  # one OFF event in the last
    spikes = encode(x, "events", 2, torch.Generator())
    assert spikes.dtype == torch.float32
    assert spikes[:, 0, :, 0, 0].tolist() == [[0.0, 1.0], [1.0, 0.0]]  # clipped to one spike


def _params(**kw: object) -> dict[str, object]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=2, batch_size=32, hidden_size=32, num_steps=6, lr=0.01, encoding="events")
    base.update(kw)
    return base


def test_conv_network_learns_from_event_frames_and_measures_their_activity() -> None:
    data = load_task("events-digits", n_train=300, time_bins=12, size=16, saccade_px=3.0)
    model = train(data, _params(conv_layers=1, conv_channels=4), seed=1)
    assert model.arch.crossbar_layers()[0] == (2, 4, 3, 16, 16)  # 2 polarity channels
    result = evaluate(model, data)
    assert result.metrics["accuracy"] > 0.3  # chance is 0.1
    # the input layer's activity is the event frames' own: measured, not assumed
    frames = encode(torch.from_numpy(data.x_val), "events", 6, torch.Generator())
    assert result.activity[0] == pytest.approx(float(frames.mean()), rel=1e-6)
    assert 0.0 < result.activity[0] < 0.5


STUDY = """
[study]
name = "tiny-events"
sampler = "random"
n_trials = 1
seed = 0
objectives = [
  { name = "accuracy", direction = "maximize" },
  { name = "energy_uj", direction = "minimize" },
]

[task]
name = "events-digits"
n_train = 200
time_bins = 8
size = 16
saccade_px = 3.0

[hardware]
preset = "spikesim-65nm"

[space.software]
epochs = 1
batch_size = 32
hidden_size = 16
lr = 0.01
num_steps = { type = "int", low = 2, high = 4 }

[space.hardware]
adc_bits = { type = "int", low = 3, high = 5 }
"""


def test_a_study_on_event_data_prices_the_measured_event_activity(tmp_path: Path) -> None:
    path = tmp_path / "events.toml"
    path.write_text(STUDY)  # no encoding key: the task's own, "events"
    study = run_study(load_config(path), progress=False)
    (trial,) = study.trials()
    result = trial.result
    assert result is not None
    assert result.point.software["encoding"] == "events"
    activity = result.point.activity
    assert len(activity) == 2 and 0.0 < activity[0] < 0.5
    assert result.metrics["energy_uj"] > 0
    assert np.isfinite(result.metrics["accuracy"])


def test_a_dense_network_takes_one_dimensional_event_frames() -> None:
    from nmhpo.tasks import Splits, TaskData, get_task

    rng = np.random.default_rng(0)
    x = (rng.random((60, 10, 700)) < 0.02).astype(np.uint8)  # SHD-shaped: no image, no polarity
    y = np.arange(60) % 20
    data = TaskData(get_task("shd"), Splits(x, y, x, y, x, y))
    model = train(data, _params(epochs=1, hidden_size=16, num_steps=5), seed=0)
    assert model.arch.crossbar_layers() == [(700, 16, 1, 1, 1), (16, 20, 1, 1, 1)]
    result = evaluate(model, data)
    frames = encode(torch.from_numpy(x), "events", 5, torch.Generator())
    assert result.activity[0] == pytest.approx(float(frames.mean()), rel=1e-6)
