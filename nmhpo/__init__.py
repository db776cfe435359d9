"""nmhpo: co-design search of spiking neural networks and crossbar hardware with Optuna."""

__version__ = "0.1.0"
