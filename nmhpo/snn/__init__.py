"""Spiking networks, encodings, training and crossbar-aware inference; the only package that
imports torch or snnTorch."""

from nmhpo.snn._encode import bin_time, encode
from nmhpo.snn._hardware import CrossbarSynapse, HardwarePoint, crossbar_synapses
from nmhpo.snn._model import Architecture, SpikingNet, make_surrogate
from nmhpo.snn._neurobench import (
    WORKLOAD_METRICS,
    StepwiseNet,
    WorkloadCounter,
    static_metrics,
)
from nmhpo.snn._nir import DT as NIR_DT
from nmhpo.snn._nir import nir_problem, to_nir
from nmhpo.snn._store import ModelStore, model_key
from nmhpo.snn._train import (
    EvalResult,
    TrainedModel,
    Training,
    architecture,
    evaluate,
    train,
)

__all__ = [
    "Architecture",
    "CrossbarSynapse",
    "EvalResult",
    "HardwarePoint",
    "NIR_DT",
    "ModelStore",
    "SpikingNet",
    "StepwiseNet",
    "TrainedModel",
    "Training",
    "WORKLOAD_METRICS",
    "WorkloadCounter",
    "architecture",
    "bin_time",
    "crossbar_synapses",
    "encode",
    "evaluate",
    "make_surrogate",
    "model_key",
    "nir_problem",
    "static_metrics",
    "to_nir",
    "train",
]
