"""`ai4hep export onnx RUN`: a self-contained ONNX file, checked against the original model on real test jets before
it is kept.

Every model of the project exports: the networks (mlp, pfn, efn, particlenet, part, dips, gn2) through torch's dynamo
exporter, with the TorchScript exporter as a fallback when it fails (the file records which); LightGBM BDTs through
onnxmltools (ai4hep.export.bdt_onnx); the IP3D-like templates as a small look-up graph (ai4hep.export.templates_onnx).
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
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.data.loader import OBJECT_KEYS
from ai4hep.errors import UserError

OPSET = 18
TOLERANCE = 1e-4


def _wrapper(model):
    import torch

    class Exported(torch.nn.Module):
        """Positional inputs in the model's order, and a tuple of inference outputs (probabilities)."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.names = (*model.inputs, *model.extras)

        def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
            kw = dict(zip(self.names, args, strict=True))
            out = self.model(**kw)
            if isinstance(out, dict):
                return tuple(self.model.infer(out, kw["mask"]).values())
            return (torch.softmax(out, -1),)

    return Exported().eval()


def output_names(model, sample: tuple) -> list[str]:
    import torch

    with torch.no_grad():
        kw = dict(zip((*model.inputs, *model.extras), sample, strict=True))
        out = model(**kw)
    return list(model.infer(out, kw["mask"])) if isinstance(out, dict) else ["probs"]


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and, on failure, whole graphs, partly from C++: silence file descriptors 1 and 2
    themselves, not just sys.stdout and sys.stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)


def _export(wrapper, sample: tuple, path: Path, inputs: list[str], outputs: list[str]) -> str:
    """Write the graph with the dynamo exporter, else the TorchScript one; returns the exporter's name."""
    import torch

    batch, objects = torch.export.Dim("batch"), torch.export.Dim("objects")
    shapes = {n: ({0: batch, 1: objects} if n in OBJECT_KEYS else {0: batch}) for n in inputs}
    axes = {n: ({0: "batch", 1: "objects"} if n in OBJECT_KEYS else {0: "batch"}) for n in inputs}
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # registry notes (e.g. "torchvision is not installed")
    # weights inside the file: the dynamo exporter otherwise leaves a `.data` file beside it (ai4hep's models are far
    # below protobuf's 2 GB limit)
    dynamo = {
        "opset_version": OPSET,
        "dynamic_shapes": {"args": tuple(shapes[n] for n in inputs)},
        "dynamo": True,
        "external_data": False,
    }
    torchscript = {"opset_version": 17, "dynamic_axes": axes, "dynamo": False}
    for name, options in (("dynamo", dynamo), ("torchscript", torchscript)):
        try:
            with warnings.catch_warnings(), _quiet():
                warnings.simplefilter("ignore")
                torch.onnx.export(wrapper, sample, str(path), input_names=inputs, output_names=outputs, **options)
            return f"torch.onnx {name} (torch {torch.__version__})"
        except Exception as exc:
            error = exc
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    raise UserError(
        f"torch could not export this model to ONNX ({error.__class__.__name__}: {first}); report it with the run's "
        "model_card.json"
    )


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


def _sample_batches(tagger, files: list[Path], n: int, run: Path) -> list[dict[str, np.ndarray]]:
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


def _write_torch(tagger, sample: dict[str, np.ndarray], path: Path) -> tuple[list[str], list[str], str, Callable]:
    import torch

    model = tagger.model
    inputs = [*model.inputs, *model.extras]
    example = tuple(torch.from_numpy(sample[n]) for n in inputs)
    outputs = output_names(model, example)
    wrapper = _wrapper(model)
    exporter = _export(wrapper, example, path, inputs, outputs)

    def reference(feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.no_grad():
            return [t.numpy() for t in wrapper(*(torch.from_numpy(feed[n]) for n in inputs))]

    return inputs, outputs, exporter, reference


def _write_bdt(tagger, sample: dict[str, np.ndarray], path: Path) -> tuple[list[str], list[str], str, Callable]:
    import onnx

    from ai4hep.export.bdt_onnx import INPUT, OUTPUT, convert

    model, exporter = convert(tagger.model.booster, sample[INPUT].shape[1])
    onnx.save(model, str(path))
    return [INPUT], [OUTPUT], exporter, lambda feed: [tagger.model.predict_proba(feed[INPUT])]


def _write_templates(tagger, sample: dict[str, np.ndarray], path: Path) -> tuple[list[str], list[str], str, Callable]:
    import torch

    from ai4hep.export.templates_onnx import graph

    inputs, outputs = ["objects", "mask"], ["probs"]
    exporter = _export(graph(tagger.model), tuple(torch.from_numpy(sample[n]) for n in inputs), path, inputs, outputs)
    return inputs, outputs, exporter, lambda feed: [tagger.model.predict_proba(feed["objects"], feed["mask"])]


# One writer per model kind: it writes the file and returns (inputs, outputs, exporter, reference), the reference
# being the original model as a function of the inputs: what the file is checked against.
WRITERS = {"torch": _write_torch, "bdt": _write_bdt, "templates": _write_templates}


def export_onnx(
    run: Path, out: Path | None = None, data: list[Path] | None = None, batches: int = 2, tolerance: float = TOLERANCE
) -> dict:
    """Export RUN's model to ONNX (default RUN/export/model.onnx); the file is kept only if onnxruntime matches the
    original (PyTorch, LightGBM, numpy templates) within `tolerance` on `batches` batches of real test jets."""
    from ai4hep.metrics.evaluate import TrainedRun
    from ai4hep.train.run import PREPROCESSING

    tagger = TrainedRun(run)
    if tagger.entry.kind not in WRITERS:  # a model kind added without an exporter
        raise UserError(f"{run} holds a '{tagger.entry.name}' model, which has no ONNX exporter yet; report it")
    files = tagger.files(data)
    sample_batches = _sample_batches(tagger, files, batches, run)
    out = Path(out) if out else Path(run) / "export" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, _no_sidecar(tmp):
        inputs, outputs, exporter, reference = WRITERS[tagger.entry.kind](tagger, sample_batches[0], tmp)
        _add_metadata(
            tmp,
            {
                "ai4hep.model": tagger.entry.name,
                "ai4hep.inputs": json.dumps(inputs),
                "ai4hep.outputs": json.dumps(outputs),
                "ai4hep.preprocessing": (Path(run) / PREPROCESSING).read_text(),
                "ai4hep.config": (Path(run) / "config.yaml").read_text(),
                "ai4hep.exporter": exporter,
            },
        )
        diffs = compare(tmp, reference, sample_batches, inputs, outputs)
        bad = {k: v for k, v in diffs.items() if not v <= tolerance}
        if bad:
            name, diff = next(iter(bad.items()))
            raise UserError(
                f"ONNX export of {run} differs from {_framework(tagger)} by {diff:.2e} on '{name}' (tolerance "
                f"{tolerance:g}); nothing written. Report it with the run's model_card.json, or raise --tolerance"
            )
    n_jets = sum(len(b["label"]) for b in sample_batches)
    return {
        "file": str(out),
        "inputs": inputs,
        "outputs": outputs,
        "exporter": exporter,
        "checked_against": _framework(tagger),
        "max_abs_diff": diffs,
        "validated_jets": n_jets,
        "tolerance": tolerance,
    }


def _framework(tagger) -> str:
    return {"bdt": "LightGBM", "templates": "the numpy templates"}.get(tagger.entry.kind, "PyTorch")
