"""`nmhpo export`: one trial's trained network as NIR and its hardware design as JSON.

The network goes to ``network.nir`` (``nir.write``; built by `nmhpo.snn.to_nir`), the design to
``hardware.json``: the knobs, each layer's crossbar mapping (`nmhpo.crossbar.layer_mapping`),
the energy and area breakdowns and the objective values the trial stored, and under ``limits``
what the NIR graph does not hold (quantization, bit slicing, ADCs, variation, encoding and
readout). Every check runs before anything is written, so a refused export writes nothing.

The network comes from the study's model cache (``run.model_key``); when the file is gone (the
cache was deleted, or the study was copied to another machine) it is trained again from the
trial's software point and training seed, as the objective trained it.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nmhpo import __version__
from nmhpo.errors import ExportError
from nmhpo.record import TrialRecord

if TYPE_CHECKING:
    from nmhpo.api import Study
    from nmhpo.snn import TrainedModel

logger = logging.getLogger(__name__)

NIR_FILE = "network.nir"
HARDWARE_FILE = "hardware.json"


@dataclass(frozen=True)
class ExportResult:
    """What `export_trial` wrote, and where the network came from.

    ``network_source`` is ``"cache"`` (the trained network the trial scored) or
    ``"retrained"`` (trained again from the trial's point and seed: the cache had no file).
    """

    study_name: str
    trial: int
    out_dir: Path
    files: tuple[Path, ...]
    network_source: str
    nir_nodes: tuple[str, ...]
    limits: tuple[str, ...]


def export_trial(study: Study, trial_number: int, out_dir: str | Path) -> ExportResult:
    """Write ``network.nir`` and ``hardware.json`` of trial ``trial_number`` into ``out_dir``.

    Raises:
        ConfigError: the data is needed (a network to train again, a regression's scaling)
            and is not here.
        ExportError: nir is not installed; the study was not made by nmhpo; the trial does not
            exist or did not complete; its network has no exact NIR graph (synaptic neurons,
            beta = 1); or it must be retrained and the study file no longer matches the study.
    """
    try:
        import nir
    except ImportError:
        raise ExportError('nmhpo export needs nir: pip install "nmhpo[export]"') from None
    record = _completed_trial(study, trial_number)
    assert record.result is not None
    from nmhpo.database import data_changed
    from nmhpo.objective import refresh_data_stamps

    refresh_data_stamps()
    changed = data_changed(study.optuna_study, study.config)
    if changed:  # its scaling (and a retrained network) would not be the trial's
        raise ExportError(f"{changed}; restore the data the trial was trained on")
    software = dict(record.result.point.software)

    from nmhpo.snn import nir_problem, to_nir

    reason = nir_problem(software)
    if reason is not None:
        raise ExportError(f"trial {trial_number}: {reason}")
    model, source = _trained_network(study, record)
    design = hardware_design(study, record, model, source)
    graph = to_nir(
        model,
        metadata={
            "producer": f"nmhpo {__version__}",
            "study": study.name,
            "trial": trial_number,
            "dt": design["network"]["dt_s"],
            "num_steps": int(software["num_steps"]),
            "encoding": str(software["encoding"]),
            "readout": design["network"]["readout"],
        },
    )
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    nir_path, json_path = folder / NIR_FILE, folder / HARDWARE_FILE
    _atomic(nir_path, lambda tmp: nir.write(tmp, graph))
    design["network"]["nir_nodes"] = list(graph.nodes)
    text = json.dumps(_jsonable(design), indent=2, allow_nan=False)
    _atomic(json_path, lambda tmp: Path(tmp).write_text(text + "\n"))
    return ExportResult(
        study_name=study.name,
        trial=trial_number,
        out_dir=folder,
        files=(nir_path, json_path),
        network_source=source,
        nir_nodes=tuple(graph.nodes),
        limits=tuple(design["limits"]),
    )


def _completed_trial(study: Study, number: int) -> TrialRecord:
    """The trial's record, refused unless the study is nmhpo's and the trial completed."""
    optuna_study = study.optuna_study
    if "nmhpo_identity_hash" not in optuna_study.user_attrs:
        raise ExportError(
            f"study {study.name!r} in {study.storage_url} was not created by nmhpo; "
            "only nmhpo's trials have a trained network and a hardware design to export"
        )
    trials = {t.number: t for t in optuna_study.get_trials(deepcopy=False)}
    if number not in trials:
        top = max(trials, default=-1)
        span = f"0-{top}" if top >= 0 else "it has no trials"
        raise ExportError(
            f"trial: expected a trial number of study {study.name!r} ({span}); got {number}"
        )
    record = TrialRecord.from_trial(trials[number])
    if record.state != "COMPLETE":
        why = f" ({record.fail_reason})" if record.fail_reason else ""
        raise ExportError(
            f"trial {number} of study {study.name!r} is {record.state}{why}; only a COMPLETE "
            "trial has a trained network and a priced design"
        )
    if record.result is None or not record.result.point.software:
        raise ExportError(
            f"trial {number} of study {study.name!r} stored no nmhpo result to export"
        )
    return record


def _trained_network(study: Study, record: TrialRecord) -> tuple[TrainedModel, str]:
    """The trial's network from the model cache, else trained again (logged)."""
    from nmhpo.objective import task_data, task_identity
    from nmhpo.snn import ModelStore, model_key, train

    assert record.result is not None
    run, software = record.result.run, dict(record.result.point.software)
    cfg = study.config
    store = ModelStore(cfg.cache_dir / "models")
    model = store.load(run.model_key) if run.model_key else None
    if model is not None:
        return model, "cache"
    if study.optuna_study.user_attrs.get("nmhpo_identity_hash") != cfg.identity_hash():
        raise ExportError(
            f"trial {record.number}: its trained network is not in {store.root} and the study "
            f"file no longer defines study {study.name!r} as it was run (task, space or "
            "hardware changed), so it cannot be trained again as the trial trained it"
        )
    seed = int(run.training_seed)
    device = _device(run.device)
    data = task_data(cfg)  # (refused in one line when it is not here, before the log line)
    logger.info(
        "trial %d: trained network %s is not in %s; training it again from the trial's "
        "software point and training seed %d (%s epochs, on %s)",
        record.number,
        run.model_key or "(no key)",
        store.root,
        seed,
        software.get("epochs"),
        device,
    )
    model = train(data, software, seed, device=device)
    key = model_key(task_identity(cfg), software, seed)
    if key == run.model_key:
        store.save(key, model)  # the next export (or trial of this point) reuses it
    else:
        logger.warning(
            "trial %d: the network was trained again with cache key %s, not the trial's %s "
            "(the task data or nmhpo's version changed): it may differ from the scored one",
            record.number,
            key,
            run.model_key,
        )
    return model, "retrained"


def _device(recorded: str | None) -> str:
    """Train again where the trial ran when this machine can (the same seed on the same kind
    of device gives the same network), else on the CPU."""
    if recorded is None or not recorded.startswith("cuda"):
        return "cpu"
    from nmhpo.devices import gpu_count

    return "cuda:0" if gpu_count() > 0 else "cpu"


def hardware_design(
    study: Study, record: TrialRecord, model: TrainedModel, source: str
) -> dict[str, Any]:
    """``hardware.json``'s content: the trial's knobs, mapping, costs and objective values."""
    import numpy as np

    from nmhpo.crossbar import Layer, Network, layer_mapping
    from nmhpo.objective import task_data
    from nmhpo.snn import NIR_DT

    assert record.result is not None
    result, cfg = record.result, study.config
    software, knobs = dict(result.point.software), dict(result.point.hardware)
    shapes = model.arch.crossbar_layers()
    network = Network(tuple(Layer(*shape) for shape in shapes))
    mapping = layer_mapping(network, cfg.preset(), knobs, mode=cfg.hardware.mode)
    n_conv = len(model.arch.conv_channels)
    by_layer = list(result.breakdown.energy_by_layer_pj)
    layers = []
    for i, (c_in, c_out, k, d_in, d_out) in enumerate(shapes):
        conv = i < n_conv
        layers.append(
            {
                "index": i,
                "kind": "conv" if conv else "dense",
                "nir_node": f"conv{i}" if conv else f"fc{i}",
                "c_in": c_in,
                "c_out": c_out,
                "kernel": k,
                "d_in": d_in,
                "d_out": d_out,
                "weight_shape": [c_out, c_in, k, k] if conv else [c_out, c_in],
                "crossbar_rows": c_in * k * k,
                "crossbar_cols": c_out,
                "row_blocks": int(mapping.row_blocks[i]),
                "col_blocks": int(mapping.col_blocks[i]),
                "pes": int(mapping.pes[i]),
                "crossbars": int(mapping.crossbars[i]),
                "pe_cycles_per_step": int(mapping.pe_cycles_per_step[i]),
                "input_activity": _at(result.point.activity, i),
                "energy_pj": _at(by_layer, i),
            }
        )
    names = study.objectives
    directions = study.directions
    values = record.values or ()
    # How a regression task scaled inputs and targets: a network trained on scaled data is of
    # no use on raw data without it (classification needs none; its data is not read here).
    meta = dict(task_data(cfg).splits.meta) if cfg.task_info().kind == "regression" else {}
    if "x_high" in meta and "x_low" in meta:  # pbl's fixed physical ranges
        meta["x_span"] = np.asarray(meta["x_high"]) - np.asarray(meta["x_low"])
    keys = ("y_mean", "y_std", *(("x_low", "x_span") if "x_span" in meta else ()))
    scaling = {k: np.asarray(meta[k]).tolist() for k in keys if k in meta}
    readout = (
        "mean over the time steps of the 'readout' LI node's membrane"
        if software["readout"] == "membrane"
        else "mean over the time steps of the output spikes (spike count / num_steps)"
    )
    return {
        "nmhpo_version": __version__,
        "study": study.name,
        "trial": record.number,
        "objectives": [
            {"name": n, "direction": d, "value": v}
            for n, d, v in zip(names, directions, values, strict=False)
        ],
        "feasible": record.feasible,
        "constraints": dict(record.constraints),
        "metrics": dict(result.metrics),
        "metrics_std": dict(result.metrics_std),
        "hardware": {
            "preset": cfg.hardware.preset,
            "mode": cfg.hardware.mode,
            "inference": result.point.inference,
            "knobs": knobs,
        },
        "software": software,
        "network": {
            "file": NIR_FILE,
            "source": source,
            "model_key": result.run.model_key,
            "training_seed": result.run.training_seed,
            "repeats": max(1, len(result.repeats)),
            "dt_s": NIR_DT,
            "num_steps": int(software["num_steps"]),
            "encoding": software["encoding"],
            "input_shape": list(model.arch.image_shape if n_conv else (model.arch.flat_size(),)),
            "readout": readout,
        },
        "layers": layers,
        "chip": {
            "n_pe": mapping.n_pe,
            "n_tiles": mapping.n_tiles,
            "pe_per_tile": mapping.pe_per_tile,
            "crossbars_per_pe": mapping.crossbars_per_pe,
            "weight_slices": mapping.weight_slices,
        },
        "energy_pj": {
            "total": result.metrics.get("energy_pj"),
            "by_component": dict(result.breakdown.energy_pj),
            "by_layer": by_layer,
        },
        "area_um2": {
            "total": result.metrics.get("area_um2"),
            "by_component": dict(result.breakdown.area_um2),
        },
        "latency_ns": result.metrics.get("latency_ns"),
        "data": {"task": cfg.task.name, "scaling": scaling},
        "limits": limits(software, knobs, result.point.inference, len(result.repeats), scaling),
    }


def limits(
    software: Mapping[str, Any],
    knobs: Mapping[str, Any],
    inference: str,
    repeats: int = 1,
    scaling: Mapping[str, Any] | None = None,
) -> list[str]:
    """What ``network.nir`` does not hold, worded for the trial's own knobs."""
    from nmhpo.snn import NIR_DT

    wb, cb = knobs.get("weight_bits"), knobs.get("cell_bits")
    slices = math.ceil(wb / cb) if wb and cb else None
    out = [
        f"Weights are the trained float32 weights: their quantization to weight_bits={wb} "
        "levels (sign by a differential pair of arrays) is not applied.",
        f"Bit slicing is not represented: each weight over {slices} cells of cell_bits={cb} "
        "bits, recombined by shift-and-add.",
        f"Each weight layer is one Affine or Conv2d node computing exact sums: the split of "
        f"its rows into xbar_size={knobs.get('xbar_size')} partial sums, each converted by an "
        f"adc_bits={knobs.get('adc_bits')} ADC with a range calibrated on training inputs, is "
        "not represented.",
        f"Conductance variation (conductance_sigma={knobs.get('conductance_sigma', 0.0)}) is "
        "not applied.",
        f"The input encoding ({software['encoding']}) happens before the graph: feed it each "
        "step's encoded input (direct encoding: the same analog input at every step).",
        f"The readout happens after the graph: nmhpo predicts from the mean over the "
        f"num_steps={software['num_steps']} steps of the output node's values.",
        f"One nmhpo time step is one NIR step of dt={NIR_DT:g} s (snnTorch's convention): "
        "tau = dt / (1 - beta), r = tau / dt, so an Euler step gives v = beta v + I.",
        "Energy, latency, area and the crossbar mapping are nmhpo's crossbar model "
        "(hardware.json), not part of NIR.",
    ]
    if int(software.get("conv_layers", 0)) > 0:
        out.append(
            "Max pooling of spikes is SumPool2d followed by Threshold(0.5) (NIR has no max "
            "pooling); it equals the maximum because spikes are 0 or 1. A flat input is fed "
            "as the (channels, height, width) image the conv layers read."
        )
    if software["reset"] == "subtract":
        out.append(
            "Reset by subtraction has no NIR neuron: each layer is an LI node, a Threshold "
            "node and a recurrent Scale(-threshold) edge into the LI node, exact when a "
            "recurrent edge carries the previous step's value (nirtorch's interpreter)."
        )
    elif software["reset"] == "none":
        out.append("Neurons without reset are an LI node followed by a Threshold node.")
    if inference == "crossbar":
        out.append(
            "The trial's task metrics come from crossbar-aware inference; the graph computes "
            "the float network, whose outputs differ by the effects listed above."
        )
    if repeats > 1:
        out.append(
            f"The trial's metrics are means over {repeats} training seeds; the graph is the "
            "network of the first seed."
        )
    scaling = scaling or {}
    if "x_low" in scaling:
        out.append(
            "Inputs are scaled before the encoding: clip((x - x_low) / x_span, 0, 1) with "
            "data.scaling's x_low and x_span."
        )
    if "y_mean" in scaling:
        out.append(
            "The outputs are standardised targets: y = output * y_std + y_mean with "
            "data.scaling's y_mean and y_std (one per output)."
        )
    return out


def _at(values: Any, i: int) -> float | None:
    return float(values[i]) if i < len(values) else None


def _jsonable(value: Any) -> Any:
    """Strict JSON: NaN and infinities become null; NumPy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _atomic(path: Path, write: Any) -> None:
    """``write(tmp)`` into a temporary file beside ``path``, then rename it to ``path``: a
    reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
