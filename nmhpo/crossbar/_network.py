"""Layer shapes as the crossbar model sees them: channels, kernel size, square feature maps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nmhpo.errors import HardwareModelError


@dataclass(frozen=True)
class Layer:
    """One weight layer. A dense layer is ``k = 1`` with ``d_in = d_out = 1``."""

    c_in: int
    c_out: int
    k: int = 1
    d_in: int = 1
    d_out: int = 1

    def __post_init__(self) -> None:
        for name in ("c_in", "c_out", "k", "d_in", "d_out"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise HardwareModelError(f"layer {name} must be a positive integer; got {value!r}")


@dataclass(frozen=True)
class Network:
    """An ordered stack of layers; the model accepts any order and any sizes."""

    layers: tuple[Layer, ...]

    def __post_init__(self) -> None:
        if not self.layers:
            raise HardwareModelError("a network needs at least one layer")

    def column(self, name: str) -> np.ndarray:
        """One layer attribute for every layer, shape (n_layers,), as float64."""
        return np.array([getattr(layer, name) for layer in self.layers], dtype=np.float64)

    @property
    def n_layers(self) -> int:
        return len(self.layers)


def dense_network(sizes: Sequence[int]) -> Network:
    """A fully connected network from its layer widths, e.g. ``[784, 128, 10]`` (2 layers)."""
    if len(sizes) < 2:
        raise HardwareModelError(f"a dense network needs at least two sizes; got {list(sizes)}")
    return Network(
        tuple(Layer(int(a), int(b)) for a, b in zip(sizes[:-1], sizes[1:], strict=False))
    )


def vgg9_cifar10() -> Network:
    """SpikeSim's check network: VGG9 on 32x32 CIFAR-10 inputs, 3x3 kernels (its ELA example,
    written out in shared/crossbar-model.md)."""
    shapes = zip(
        [3, 64, 64, 128, 128, 256, 256],
        [64, 64, 128, 128, 256, 256, 256],
        [32, 32, 16, 16, 8, 8, 8],
        [32, 16, 16, 8, 8, 8, 4],
        strict=True,
    )
    return Network(tuple(Layer(ci, co, 3, di, do) for ci, co, di, do in shapes))
