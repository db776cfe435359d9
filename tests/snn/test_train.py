from __future__ import annotations

import pytest
import snntorch as snn
import torch

from nmhpo.errors import TrialFailedError
from nmhpo.objective import training_seed
from nmhpo.registry import SOFTWARE
from nmhpo.snn import encode, train_and_evaluate
from nmhpo.tasks import load_task

DATA = load_task("digits", n_train=600)


def _params(**kw: object) -> dict[str, object]:
    base = {k: p.default for k, p in SOFTWARE.items()}
    base.update(epochs=2, batch_size=32, hidden_size=32, num_steps=3, lr=0.02)
    base.update(kw)
    return base


def test_encodings_have_the_documented_shapes() -> None:
    x = torch.rand(5, 7)
    gen = torch.Generator().manual_seed(0)
    spikes = encode(x, "rate", 4, gen)
    assert spikes.shape == (4, 5, 7)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert encode(x, "direct", 4, gen).shape == (1, 5, 7)


@pytest.mark.parametrize("encoding", ["rate", "direct"])
def test_training_learns_and_measures_activity(encoding: str) -> None:
    result = train_and_evaluate(DATA, _params(encoding=encoding), seed=1)
    assert result.accuracy > 0.5  # chance is 0.1
    assert result.layer_sizes == [64, 32, 10]
    assert len(result.activity) == 2
    assert all(0.0 < a < 1.0 for a in result.activity)
    assert result.spikes_per_inference > 0
    assert result.train_time_s > 0


def test_same_seed_same_network_and_no_neuron_leak() -> None:
    a = train_and_evaluate(DATA, _params(), seed=7)
    b = train_and_evaluate(DATA, _params(), seed=7)
    assert a.accuracy == b.accuracy and a.activity == b.activity
    assert snn.SpikingNeuron.instances == []  # snntorch#328: cleared after each trial


def test_more_time_steps_mean_more_input_events() -> None:
    few = train_and_evaluate(DATA, _params(num_steps=2), seed=3)
    many = train_and_evaluate(DATA, _params(num_steps=8), seed=3)
    assert many.spikes_per_inference > few.spikes_per_inference


def test_diverging_run_fails_with_its_reason() -> None:
    with pytest.raises(TrialFailedError, match="training diverged"):
        train_and_evaluate(DATA, _params(lr=1e20), seed=0)


def test_training_seed_depends_on_the_software_point_only() -> None:
    p = _params()
    assert training_seed(0, p) == training_seed(0, dict(p))
    assert training_seed(0, p) != training_seed(1, p)
    assert training_seed(0, p) != training_seed(0, {**p, "lr": 0.5})
