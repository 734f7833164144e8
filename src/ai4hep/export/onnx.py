"""`ai4hep export onnx RUN`: a self-contained ONNX file, checked against the original model on real test jets before
it is kept.

Every model exports through its kind's ONNX writer (ai4hep.models.kinds): the networks (mlp, pfn, efn, particlenet,
part, dips, gn2, users' own) through torch's dynamo exporter, with the TorchScript exporter as a fallback when it fails
(the file records which); LightGBM BDTs through onnxmltools (kinds/bdt_onnx.py); the IP3D-like templates as a small
look-up graph (kinds/templates_onnx.py).
The file has dynamic batch and object-count axes, and carries the run's preprocessing (variables, transforms,
normalisation, classes) and config as metadata, so a user of the file needs nothing else. Multi-task models export
every head's inference output (jet probabilities first, then e.g. track-origin and vertexing probabilities).

The check is one absolute tolerance on probabilities (default 1e-4), for every model: probabilities lie in [0, 1],
so an absolute bound means the same for every model and task, and float32 rounding alone stays near 1e-7. A larger
difference has been a real discrepancy each time (ParticleNet's kNN ties, ParT's pair indexing, float32 BDT
thresholds), so the export fails rather than keep such a file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ai4hep.atomic import atomic_path, check_target, make_dir
from ai4hep.errors import UserError
from ai4hep.run.layout import CONFIG, EXPORT, PREPROCESSING
from ai4hep.run.reader import TrainedRun

TOLERANCE = 1e-4


@contextlib.contextmanager
def _no_sidecar(path: Path):
    """Remove an external-data file an exporter may write beside `path`; the metadata step embeds its content."""
    try:
        yield
    finally:
        path.with_name(path.name + ".data").unlink(missing_ok=True)


def _add_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path), load_external_data=True)
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(path))


def compare(
    path: Path,
    reference: Callable[[dict], list[np.ndarray]],
    batches: list[dict],
    inputs: list[str],
    outputs: list[str],
) -> dict:
    """Largest absolute difference per output between onnxruntime and `reference` (the framework) over the batches."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(outputs, 0.0)
    for batch in batches:
        feed = {n: batch[n] for n in inputs}
        got = session.run(outputs, feed)
        for name, a, b in zip(outputs, got, reference(feed), strict=True):
            worst[name] = max(worst[name], float(np.abs(a - b).max()) if a.size else 0.0)
    return worst


def _sample_batches(tagger: TrainedRun, files: list[Path], n: int, run: Path) -> list[dict[str, np.ndarray]]:
    """The first n batches of real test jets (object models: batches with at least two objects)."""
    sample = []
    for batch in tagger.stream(files):
        if "mask" in batch and batch["mask"].shape[1] < 2:
            continue  # a one-object batch would let the exporter fix the object axis
        sample.append(batch)
        if len(sample) == n:
            break
    if not sample:
        raise UserError(f"no test jets to validate the export on; pass --data PATHS with shards of {run}'s dataset")
    return sample


def export_onnx(
    run: Path, out: Path | None = None, data: list[Path] | None = None, batches: int = 2, tolerance: float = TOLERANCE
) -> dict:
    """Export RUN's model to ONNX (default RUN/export/model.onnx); the file is kept only if onnxruntime matches the
    original (PyTorch, LightGBM, numpy templates) within `tolerance` on `batches` batches of real test jets."""
    tagger = TrainedRun(run)
    out = Path(out) if out else Path(run) / EXPORT / "model.onnx"
    check_target(out, "--out", kind="file", example="model.onnx")
    files = tagger.files(data)
    sample_batches = _sample_batches(tagger, files, batches, run)
    make_dir(out.parent)
    framework = tagger.kind.framework
    with atomic_path(out) as tmp, _no_sidecar(tmp):
        graph = tagger.kind.write_onnx(tagger.model, sample_batches[0], tmp)
        _add_metadata(
            tmp,
            {
                "ai4hep.model": tagger.entry.name,
                "ai4hep.inputs": json.dumps(graph.inputs),
                "ai4hep.outputs": json.dumps(graph.outputs),
                "ai4hep.preprocessing": (Path(run) / PREPROCESSING).read_text(),
                "ai4hep.config": (Path(run) / CONFIG).read_text(),
                "ai4hep.exporter": graph.exporter,
            },
        )
        diffs = compare(tmp, graph.reference, sample_batches, graph.inputs, graph.outputs)
        bad = {k: v for k, v in diffs.items() if not v <= tolerance}
        if bad:
            name, diff = next(iter(bad.items()))
            raise UserError(
                f"ONNX export of {run} differs from {framework} by {diff:.2e} on '{name}' (tolerance "
                f"{tolerance:g}); nothing written. Report it with the run's model_card.json, or raise --tolerance"
            )
    n_jets = sum(len(b["label"]) for b in sample_batches)
    return {
        "file": str(out),
        "inputs": graph.inputs,
        "outputs": graph.outputs,
        "exporter": graph.exporter,
        "checked_against": framework,
        "max_abs_diff": diffs,
        "validated_jets": n_jets,
        "tolerance": tolerance,
    }
