"""ANN-to-SNN conversion: a trained ReLU network's weights, rescaled for integrate-and-fire
neurons (data-based normalisation).

A ReLU unit's activation a is approximated by the firing rate of an integrate-and-fire neuron
(no leak, reset by subtraction, threshold 1) driven by the same weights, as long as a stays
below the rate of one spike per step. Each spiking layer l is therefore scaled by lambda_l, a
high percentile of its ReLU activations on training data (Diehl et al., IJCNN 2015, used the
maximum; Rueckauer et al., Front. Neurosci. 2017, the 99.9th percentile, robust to outliers):
W_l <- W_l lambda_{l-1} / lambda_l, b_l <- b_l / lambda_l, lambda_0 = 1 for inputs in [0, 1].
A membrane readout takes W_L lambda_{L-1} and b_L unscaled, and reads the mean of its currents,
the ReLU network's output in expectation; a spike readout is scaled like a hidden layer.

Max pooling stays max pooling of spikes (any spike in the window), which overestimates the
pooled rate: Rueckauer et al.'s gated pooling is not done, so conv networks lose more.
"""

from __future__ import annotations

import numpy as np
import torch

from nmhpo.snn._model import SpikingNet

#: Training samples whose activations set each layer's scale (the first ones of the split:
#: deterministic, so a resumed training converts to the same network).
NORMALISATION_SAMPLES = 2048
#: Samples per forward pass while collecting activations.
_BATCH = 512


def layer_scales(net: SpikingNet, x: torch.Tensor, percentile: float) -> list[float]:
    """lambda_l of each weight layer: the ``percentile`` of its positive ReLU activations on
    ``x`` (1.0 for a layer that never activates); the membrane readout's is 1.

    Zeros are left out, as the SNN toolbox does (a sparse layer's percentile would be 0).
    """
    spiking = len(net.neurons)
    chunks: list[list[torch.Tensor]] = [[] for _ in range(net.n_layers)]
    with torch.inference_mode():
        for first in range(0, len(x), _BATCH):
            _, acts = net.relu_forward(x[first : first + _BATCH], keep=True)
            for i, a in enumerate(acts):
                chunks[i].append(a[a > 0].to("cpu", torch.float64))
    scales = []
    for i, parts in enumerate(chunks):
        values = torch.cat(parts).numpy()
        if i >= spiking or values.size == 0:
            scales.append(1.0)
        else:
            scales.append(float(np.percentile(values, percentile)))
    return scales


def converted_state(
    net: SpikingNet, x: torch.Tensor, percentile: float
) -> dict[str, torch.Tensor]:
    """The state dict of ``net`` (whose weight layers hold a trained ReLU network) as a
    spiking network of integrate-and-fire neurons with threshold 1; ``net`` is unchanged."""
    scales = layer_scales(net, x[:NORMALISATION_SAMPLES], percentile)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    previous = 1.0
    for i, scale in enumerate(scales):
        state[f"weights.{i}.weight"].mul_(previous / scale)
        state[f"weights.{i}.bias"].div_(scale)
        previous = scale
    return state
