"""Crossbar (compute-in-memory) energy, latency and area model; pure NumPy, no torch."""

from nmhpo.crossbar._knobs import HARDWARE_KNOBS, Knob
from nmhpo.crossbar._model import (
    AREA_COMPONENTS,
    ENERGY_COMPONENTS,
    MODES,
    CrossbarResult,
    LayerMapping,
    buildable,
    evaluate,
    layer_mapping,
    tech_factors,
)
from nmhpo.crossbar._network import Layer, Network, dense_network, vgg9_cifar10
from nmhpo.crossbar._presets import DEVICES, KNOBS, Preset, load_preset, preset_names
from nmhpo.crossbar._sweep import (
    Priced,
    parse_network,
    parse_setting,
    parse_sweep,
    price,
)

__all__ = [
    "AREA_COMPONENTS",
    "DEVICES",
    "ENERGY_COMPONENTS",
    "HARDWARE_KNOBS",
    "KNOBS",
    "MODES",
    "CrossbarResult",
    "Knob",
    "Layer",
    "LayerMapping",
    "Network",
    "Preset",
    "Priced",
    "dense_network",
    "buildable",
    "evaluate",
    "layer_mapping",
    "load_preset",
    "parse_network",
    "parse_setting",
    "parse_sweep",
    "preset_names",
    "price",
    "tech_factors",
    "vgg9_cifar10",
]
