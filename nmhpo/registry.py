"""What nmhpo knows by name: searchable parameters (with their domains and classes) and metrics.

Config validation, the search space, the objective and the reports all read these tables, so a
new knob or metric is added in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from nmhpo.crossbar import HARDWARE_KNOBS
from nmhpo.crossbar._knobs import int_in, is_integer, is_number, one_of, positive

ParamKind = Literal["float", "int", "categorical"]
ParamClass = Literal["encoding", "training", "neuron", "architecture", "hardware"]

SURROGATES: tuple[str, ...] = ("fast_sigmoid", "atan", "sigmoid")
ENCODINGS: tuple[str, ...] = ("rate", "latency", "delta", "direct", "events")
#: The encoding of event tasks, whose samples are already spikes; only they may use it.
EVENT_ENCODING = "events"
NEURONS: tuple[str, ...] = ("leaky", "synaptic")
RESETS: tuple[str, ...] = ("subtract", "zero", "none")
READOUTS: tuple[str, ...] = ("membrane", "spikes")
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")
TRAININGS: tuple[str, ...] = ("bptt", "conversion", "hybrid")
#: Parameters added after studies had been run: a study that does not name them leaves them
#: out of its software points, so those points (their training seeds and model-cache keys)
#: stay what they were. Their defaults apply when they are absent.
#: Each group comes in whole when a study names one of its parameters.
OPTIONAL_GROUPS: tuple[tuple[str, ...], ...] = (
    ("training", "finetune_epochs", "conversion_percentile"),
    ("decoder_layers",),
)
OPTIONAL_SOFTWARE: tuple[str, ...] = tuple(name for group in OPTIONAL_GROUPS for name in group)


@dataclass(frozen=True)
class Param:
    """A searchable knob: its value kind, its class (for importance by class) and its domain."""

    kind: ParamKind
    cls: ParamClass
    domain: str  # stated in error messages, e.g. "an integer >= 1"
    check: Callable[[Any], bool]
    default: Any = None  # software defaults; hardware defaults come from the preset


SOFTWARE: dict[str, Param] = {
    "lr": Param("float", "training", "a number > 0", positive, 1e-3),
    "epochs": Param("int", "training", "an integer >= 1", int_in(1), 5),
    "batch_size": Param("int", "training", "an integer >= 1", int_in(1), 64),
    "optimizer": Param(
        "categorical", "training", f"one of {', '.join(OPTIMIZERS)}", one_of(OPTIMIZERS), "adam"
    ),
    "patience": Param(
        "int", "training", "an integer >= 0 (epochs without improvement; 0: off)", int_in(0), 0
    ),
    # bptt: surrogate gradients through time; conversion: a ReLU network trained for `epochs`
    # epochs, converted to integrate-and-fire neurons; hybrid: conversion, then
    # `finetune_epochs` epochs of surrogate gradients (nmhpo/snn/_convert.py).
    "training": Param(
        "categorical", "training", f"one of {', '.join(TRAININGS)}", one_of(TRAININGS), "bptt"
    ),
    "finetune_epochs": Param(
        "int", "training", "an integer >= 0 (hybrid's surrogate-gradient epochs)", int_in(0), 2
    ),
    "conversion_percentile": Param(
        "float",
        "training",
        "a number in (50, 100] (percentile of a layer's ReLU activations)",
        lambda v: is_number(v) and 50 < v <= 100,
        99.9,
    ),
    "neuron": Param(
        "categorical", "neuron", f"one of {', '.join(NEURONS)}", one_of(NEURONS), "leaky"
    ),
    "alpha": Param(
        "float", "neuron", "a number in (0, 1]", lambda v: is_number(v) and 0 < v <= 1, 0.8
    ),
    "reset": Param(
        "categorical", "neuron", f"one of {', '.join(RESETS)}", one_of(RESETS), "subtract"
    ),
    "readout": Param(
        "categorical",
        "architecture",
        f"one of {', '.join(READOUTS)}",
        one_of(READOUTS),
        "membrane",
    ),
    "conv_layers": Param("int", "architecture", "an integer in 0-4", int_in(0, 4), 0),
    "conv_channels": Param("int", "architecture", "an integer in 1-256", int_in(1, 256), 8),
    "decoder_layers": Param(
        "int",
        "architecture",
        "an integer in 0-4 (upsampling conv layers after the dense ones; image outputs only)",
        int_in(0, 4),
        0,
    ),
    "kernel_size": Param(
        "int",
        "architecture",
        "an odd integer in 1-7",
        lambda v: is_integer(v) and v in (1, 3, 5, 7),
        3,
    ),
    "beta": Param(
        "float", "neuron", "a number in (0, 1]", lambda v: is_number(v) and 0 < v <= 1, 0.9
    ),
    "threshold": Param("float", "neuron", "a number > 0", positive, 1.0),
    "surrogate": Param(
        "categorical",
        "neuron",
        f"one of {', '.join(SURROGATES)}",
        one_of(SURROGATES),
        "fast_sigmoid",
    ),
    "surrogate_slope": Param("float", "neuron", "a number > 0", positive, 25.0),
    "num_steps": Param("int", "encoding", "an integer in 1-1000", int_in(1, 1000), 10),
    "encoding": Param(
        "categorical", "encoding", f"one of {', '.join(ENCODINGS)}", one_of(ENCODINGS), "rate"
    ),
    "hidden_size": Param("int", "architecture", "an integer in 1-4096", int_in(1, 4096), 64),
    "hidden_layers": Param("int", "architecture", "an integer in 1-8", int_in(1, 8), 1),
}

#: Derived from the crossbar's knob table, so every knob a study file may set is searchable.
HARDWARE: dict[str, Param] = {
    k.name: Param(k.kind, "hardware", k.domain, k.check) for k in HARDWARE_KNOBS
}


@dataclass(frozen=True)
class Metric:
    """A number each trial records; any of them can be an objective."""

    direction: Literal["maximize", "minimize"]
    unit: str
    description: str
    #: What sets it: "price" (the crossbar cost model alone, so priced-only knobs such as
    #: device or node move it), "network" (the trained network alone: no hardware point
    #: moves it), "inference" (what the crossbars compute: inference's knobs move it).
    source: Literal["price", "network", "inference"] = "inference"


METRICS: dict[str, Metric] = {
    "energy_pj": Metric(
        "minimize", "pJ", "energy per inference on the crossbar model", source="price"
    ),
    "energy_uj": Metric(
        "minimize", "uJ", "energy per inference on the crossbar model", source="price"
    ),
    "latency_ns": Metric("minimize", "ns", "latency per inference", source="price"),
    "latency_us": Metric("minimize", "us", "latency per inference", source="price"),
    "area_um2": Metric("minimize", "um^2", "chip area", source="price"),
    "area_mm2": Metric("minimize", "mm^2", "chip area", source="price"),
    "edp_pj_ns": Metric("minimize", "pJ*ns", "energy-delay product", source="price"),
    "train_time_s": Metric("minimize", "s", "training wall time of the trial", source="network"),
    "num_steps": Metric("minimize", "", "SNN time steps per inference", source="network"),
    "spikes_per_inference": Metric("minimize", "", "input spikes into all layers per sample"),
    "n_pe": Metric("minimize", "", "processing elements the network occupies", source="price"),
    "n_tiles": Metric("minimize", "", "tiles the network occupies", source="price"),
    # NeuroBench's complexity metrics, per inference (nmhpo/snn/_neurobench.py).
    "syn_ops_dense": Metric(
        "minimize", "", "synaptic operations per sample, every weight", source="network"
    ),
    "syn_ops_effective_ac": Metric(
        "minimize", "", "accumulates per sample: nonzero spike x nonzero weight"
    ),
    "syn_ops_effective_mac": Metric(
        "minimize", "", "multiply-accumulates per sample: nonzero analog input x nonzero weight"
    ),
    "activation_sparsity": Metric(
        "maximize", "", "fraction of spiking-neuron outputs that are zero"
    ),
    "membrane_updates": Metric("minimize", "", "membrane potential updates per sample"),
    "parameter_count": Metric("minimize", "", "parameters of the network", source="network"),
    "footprint_bytes": Metric(
        "minimize", "B", "parameters and buffers as stored (float32)", source="network"
    ),
    "footprint_bytes_crossbar": Metric(
        "minimize", "B", "parameters and buffers, weights at weight_bits"
    ),
}


#: Metrics the crossbar cost model alone sets, and those the trained network alone sets.
PRICED_METRICS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.source == "price")
NETWORK_METRICS: tuple[str, ...] = tuple(k for k, m in METRICS.items() if m.source == "network")


def total_epochs(software: dict[str, Any]) -> int:
    """Epochs a software point trains for: ``epochs`` (a ReLU network's under conversion and
    hybrid), plus hybrid's ``finetune_epochs``. Rungs and early stopping count all of them."""
    epochs = int(software["epochs"])
    if software.get("training", "bptt") == "hybrid":
        epochs += int(software.get("finetune_epochs", SOFTWARE["finetune_epochs"].default))
    return epochs


def param_class(name: str) -> ParamClass:
    """The class a parameter counts towards in importance-by-class summaries."""
    return (SOFTWARE.get(name) or HARDWARE[name]).cls
