"""`ai4hep export onnx RUN`: a self-contained ONNX file, checked against PyTorch on real test jets before it is kept.

The file has dynamic batch and object-count axes, and carries the run's preprocessing (variables, transforms,
normalisation, classes) and config as metadata, so a user of the file needs nothing else. Multi-task models export
every head's inference output (jet probabilities first, then e.g. track-origin and vertexing probabilities).
torch's dynamo exporter is used, with the TorchScript exporter as a fallback when it fails (the file records which).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ai4hep.atomic import atomic_path
from ai4hep.data.inspect import dataset_files
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
    dynamo = {"opset_version": OPSET, "dynamic_shapes": {"args": tuple(shapes[n] for n in inputs)}, "dynamo": True}
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


def _add_metadata(path: Path, meta: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path), load_external_data=True)
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(path))


def compare(path: Path, wrapper, batches: list[dict[str, np.ndarray]], inputs: list[str], outputs: list[str]) -> dict:
    """Largest absolute difference per output between onnxruntime and PyTorch over the given batches."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(outputs, 0.0)
    for batch in batches:
        feed = {n: batch[n] for n in inputs}
        got = session.run(outputs, feed)
        with torch.no_grad():
            want = wrapper(*(torch.from_numpy(feed[n]) for n in inputs))
        for name, a, b in zip(outputs, got, want, strict=True):
            worst[name] = max(worst[name], float(np.abs(a - b.numpy()).max()) if a.size else 0.0)
    return worst


def export_onnx(
    run: Path, out: Path | None = None, data: list[Path] | None = None, batches: int = 2, tolerance: float = TOLERANCE
) -> dict:
    """Export RUN's network to ONNX (default RUN/export/model.onnx); the file is kept only if onnxruntime matches
    PyTorch within `tolerance` on `batches` batches of real test jets."""
    import torch

    from ai4hep.metrics.evaluate import TrainedRun
    from ai4hep.train.run import PREPROCESSING

    tagger = TrainedRun(run)
    if tagger.entry.kind != "torch":
        raise UserError(
            f"{run} holds a '{tagger.entry.name}' model ({tagger.entry.kind}); ONNX export covers the neural "
            "taggers so far: mlp, pfn, efn, particlenet, part, dips, gn2"
        )
    files = [f for p in data for f in dataset_files(Path(p))] if data else tagger.test_files()
    stream = tagger.stream(files)
    sample_batches = []
    for batch in stream:
        if "mask" in batch and batch["mask"].shape[1] < 2:
            continue  # a one-object batch would let the exporter fix the object axis
        sample_batches.append(batch)
        if len(sample_batches) == batches:
            break
    if not sample_batches:
        raise UserError(f"no test jets to validate the export on; pass --data PATHS with shards of {run}'s dataset")
    model = tagger.model
    inputs = [*model.inputs, *model.extras]
    sample = tuple(torch.from_numpy(sample_batches[0][n]) for n in inputs)
    outputs = output_names(model, sample)
    wrapper = _wrapper(model)
    out = Path(out) if out else Path(run) / "export" / "model.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        exporter = _export(wrapper, sample, tmp, inputs, outputs)
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
        diffs = compare(tmp, wrapper, sample_batches, inputs, outputs)
        bad = {k: v for k, v in diffs.items() if not v <= tolerance}
        if bad:
            name, diff = next(iter(bad.items()))
            raise UserError(
                f"ONNX export of {run} differs from PyTorch by {diff:.2e} on '{name}' (tolerance {tolerance:g}); "
                "nothing written. Report it with the run's model_card.json, or raise --tolerance"
            )
    n_jets = sum(len(b["label"]) for b in sample_batches)
    return {
        "file": str(out),
        "inputs": inputs,
        "outputs": outputs,
        "exporter": exporter,
        "max_abs_diff": diffs,
        "validated_jets": n_jets,
        "tolerance": tolerance,
    }
