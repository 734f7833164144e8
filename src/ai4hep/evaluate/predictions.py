"""A run's predictions on a set of shards: every model output, the labels and per-object truth beside them, and their
write-out (predictions.h5)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.run.reader import TrainedRun


@dataclass
class Predictions:
    probs: np.ndarray
    labels: np.ndarray
    pt: np.ndarray
    classes: list[str]
    name: str
    # Auxiliary-task outputs by output name (e.g. origin_probs (N, T, 5), vertex_probs (N, T, T)), the per-object
    # truth they are compared with (origin, vertex) and the object mask, all padded to the run's max_objects.
    aux: dict[str, np.ndarray] = field(default_factory=dict)
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    mask: np.ndarray | None = None
    task: str | None = None  # the run's task (ai4hep.evaluate.tasks); None: from the classes
    weights: np.ndarray | None = None  # per-jet weights for the metrics (None: every jet counts once)


def _pad_objects(arrays: list[np.ndarray], n: int, axes: tuple[int, ...], fill: float = 0) -> np.ndarray:
    """Concatenate batches whose object axes were trimmed to different lengths, padded back to n."""
    out = []
    for a in arrays:
        widths = [(0, n - a.shape[k]) if k in axes else (0, 0) for k in range(a.ndim)]
        out.append(np.pad(a, widths, constant_values=fill))
    return np.concatenate(out)


def predict(run: TrainedRun, files: list[Path], aux: bool = True) -> Predictions:
    """Predictions on every jet of `files`; aux=False keeps only the jet probabilities (the auxiliary outputs of a
    large sample, e.g. jets x 40 x 40 pair scores, can outgrow memory)."""
    parts: dict[str, list[np.ndarray]] = {}
    targets = run.spec.targets if aux else ()
    for batch in run.stream(files):
        for k, v in run.outputs(batch).items():
            if aux or k == "probs":
                parts.setdefault(k, []).append(v)
        for k in ("label", "pt", *targets, *(("mask",) if targets else ())):
            parts.setdefault(k, []).append(batch[k])
    n = run.cfg.data.max_objects
    axes = run.object_axes()
    aux_outputs = {k: _pad_objects(v, n, axes[k]) for k, v in parts.items() if k in axes and k != "probs"}
    truth = {t: _pad_objects(parts[t], n, (1,), fill=-1) for t in targets}
    return Predictions(
        np.concatenate(parts["probs"]),
        np.concatenate(parts["label"]),
        np.concatenate(parts["pt"]),
        run.classes,
        run.name,
        aux=aux_outputs,
        truth=truth,
        mask=_pad_objects(parts["mask"], n, (1,), fill=False) if "mask" in parts else None,
        task=run.task,
    )


def write_predictions(path: Path, pred: Predictions) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("probs", data=pred.probs.astype(np.float32), compression="gzip")
        f.create_dataset("label", data=pred.labels)
        f.create_dataset("pt", data=pred.pt)
        for name, values in pred.aux.items():  # one dataset per auxiliary task, padded to max_objects
            f.create_dataset(name, data=values.astype(np.float32), compression="gzip")
        f.attrs["classes"] = json.dumps(pred.classes)
        f.attrs["model"] = pred.name
