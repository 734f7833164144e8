"""Torch graphs to ONNX, shared by the kinds whose ONNX file is a torch graph (networks, the templates' look-up):
torch's dynamo exporter, with the TorchScript exporter as a fallback when it fails (the file records which), dynamic
batch and object-count axes, the weights inside the file."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings

from ai4hep.data.loader import OBJECT_KEYS
from ai4hep.errors import UserError

OPSET = 18


@contextlib.contextmanager
def quiet():
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


def export_graph(module, sample: tuple, path, inputs: list[str], outputs: list[str]) -> str:
    """Write `module` (positional inputs) with the dynamo exporter, else the TorchScript one; returns the exporter."""
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
            with warnings.catch_warnings(), quiet():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, sample, str(path), input_names=inputs, output_names=outputs, **options)
            return f"torch.onnx {name} (torch {torch.__version__})"
        except Exception as exc:
            error = exc
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    raise UserError(
        f"torch could not export this model to ONNX ({error.__class__.__name__}: {first}); report it with the run's "
        "model_card.json"
    )
