"""Spiking networks, encodings and training; the only package that imports torch or snnTorch."""

from nmhpo.snn._model import SpikingMLP, make_surrogate
from nmhpo.snn._train import TrainResult, encode, train_and_evaluate

__all__ = ["SpikingMLP", "TrainResult", "encode", "make_surrogate", "train_and_evaluate"]
