"""Datatypes, tensor specs and request checks shared by the HTTP and gRPC front ends.

Every check raises `InferError` with a message that names the input, what was sent and what the model expects: the
protocol layers only translate its `kind` into an HTTP status or a gRPC code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# Open Inference Protocol datatype -> numpy. BYTES (strings) is not served: no ai4hep model takes strings.
NUMPY = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
DATATYPE = {v: k for k, v in NUMPY.items()}

# onnxruntime's type strings -> protocol datatype.
ONNX = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
}

# gRPC InferTensorContents field per datatype (FP16 travels only as raw bytes).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
}


def config_datatype(data_type: str) -> str:
    """model_config's TYPE_FP32 -> FP32 (TYPE_STRING is the protocol's BYTES)."""
    name = data_type.removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


class InferError(Exception):
    """A request the server refuses; `kind` is one of KINDS and picks the HTTP status / gRPC code."""

    KINDS = ("invalid", "not_found", "too_large", "unauthenticated", "unavailable", "unsupported", "internal")

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: dims exclude the batch dimension when the model batches (-1 = any size); `axes`
    holds the ONNX symbolic dimension names (batch included) so inputs that share an axis can be checked."""

    name: str
    datatype: str
    dims: tuple[int, ...]
    axes: tuple[str | None, ...]

    @property
    def dtype(self) -> np.dtype:
        return NUMPY[self.datatype]


def check_shape(spec: TensorSpec, shape: list, max_batch_size: int) -> int:
    """The request's batch size for this input (1 for a model without a batch dimension)."""
    if not isinstance(shape, list | tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise InferError(f"input '{spec.name}': shape must be a list of non-negative integers, got {shape!r}")
    expect = [-1, *spec.dims] if max_batch_size else list(spec.dims)
    if len(shape) != len(expect):
        raise InferError(
            f"input '{spec.name}' has shape {list(shape)}; the model expects {len(expect)} dimensions {expect}"
            + (" (batch first)" if max_batch_size else "")
        )
    rest = shape[1:] if max_batch_size else shape
    for got, want in zip(rest, spec.dims, strict=True):
        if want != -1 and got != want:
            raise InferError(f"input '{spec.name}' has shape {list(shape)}; the model expects {expect}")
    if not max_batch_size:
        return 1
    if not 1 <= shape[0] <= max_batch_size:
        raise InferError(
            f"input '{spec.name}' has batch size {shape[0]}; this model takes 1 to {max_batch_size} per request "
            "(max_batch_size in its config.pbtxt)"
        )
    return shape[0]


def check_input(model, feed: dict, name, datatype, shape, batch: int | None) -> tuple[TensorSpec, int]:
    """What every input of a request is checked for, whatever the protocol: a name the model has, given once, its
    datatype, its shape (object axes within the model's max_objects), and a batch size that agrees with the inputs
    before it. Returns its spec and batch size."""
    if not isinstance(name, str):
        raise InferError(f"input names are strings; got {type(name).__name__} {_short(name)}")
    spec = model.input_map.get(name)
    if spec is None:
        raise InferError(f"model '{model.name}' has no input {name!r}; it takes {', '.join(model.input_map)}")
    if name in feed:
        raise InferError(f"input '{name}' is given twice")
    if datatype != spec.datatype:
        raise InferError(f"input '{name}' is {datatype!r}; the model expects {spec.datatype}")
    n = check_shape(spec, shape, model.max_batch_size)
    for axis in model.object_axes.get(name, ()):
        if shape[axis] > model.max_objects:
            raise InferError(
                f"input '{name}' has {shape[axis]} objects per jet (axis {axis} of shape {list(shape)}); model "
                f"'{model.name}' takes at most {model.max_objects} ({model.max_objects_source}); send fewer objects"
            )
    if batch is not None and n != batch:
        raise InferError(f"inputs disagree on the batch size ({batch} vs {n} for '{name}')")
    return spec, n


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def output_index(model, name) -> int:
    """Where a requested output stands in the model's outputs, whatever the protocol."""
    if not isinstance(name, str):
        raise InferError(f"output names are strings; got {type(name).__name__} {_short(name)}")
    if name not in model.output_map:
        raise InferError(f"model '{model.name}' has no output {name!r}; it has {', '.join(model.output_names)}")
    return model.output_names.index(name)


def check_complete(model, feed: dict) -> None:
    missing = [s.name for s in model.inputs if s.name not in feed]
    if missing:
        raise InferError(f"model '{model.name}' needs input(s) {', '.join(missing)}")


def check_axes(specs: dict[str, TensorSpec], feed: dict[str, np.ndarray]) -> None:
    """Inputs that share a named axis (batch, objects) must agree on its length: say so before onnxruntime fails."""
    seen: dict[str, tuple[str, int]] = {}
    for name, arr in feed.items():
        for axis, n in zip(specs[name].axes, arr.shape, strict=False):
            if axis is None:
                continue
            if axis in seen and seen[axis][1] != n:
                other, m = seen[axis]
                raise InferError(f"inputs '{other}' and '{name}' must agree on axis '{axis}' ({m} vs {n})")
            seen.setdefault(axis, (name, n))


def element_count(shape: list[int]) -> int:
    return math.prod(shape)


def from_buffer(spec: TensorSpec, shape: list[int], buf, offset: int = 0, size: int | None = None) -> np.ndarray:
    """Zero-copy view of raw little-endian bytes as the input's array, after checking the byte count."""
    count = element_count(shape)
    need = count * spec.dtype.itemsize
    have = len(buf) - offset if size is None else size
    if have != need:
        raise InferError(
            f"input '{spec.name}': {have} bytes of data for shape {list(shape)} {spec.datatype}, which needs {need}"
        )
    return np.frombuffer(buf, spec.dtype, count, offset).reshape(shape)


def from_values(spec: TensorSpec, shape: list[int], values) -> np.ndarray:
    """An input sent as a list of numbers (JSON `data`, gRPC typed contents); nested lists are flattened.

    The rule for values: floating-point inputs take NaN and +-Infinity (JSON's NaN / Infinity / -Infinity, which
    Python's json and tritonclient write), as binary data can carry them; a finite value beyond the datatype's range
    (1e39 for FP32) is refused rather than turned into infinity, and so is an integer beyond an integer datatype's
    range (300 for INT8), rather than wrapped."""
    try:
        raw = np.asarray(values)
        kind = raw.dtype.kind
        if raw.size and (kind not in "biuf" or (kind == "f" and spec.dtype.kind != "f")):
            raise TypeError(f"got {raw.dtype} values")
        with np.errstate(over="ignore", invalid="ignore"):
            arr = raw.astype(spec.dtype, copy=False)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        message = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise InferError(f"input '{spec.name}': data must be a list of {spec.datatype} values ({message})") from None
    if raw.size and arr.dtype != raw.dtype and spec.dtype.kind in "iuf":
        if spec.dtype.kind == "f":
            beyond = bool(np.any(np.isinf(arr) & np.isfinite(raw)))
        else:
            info = np.iinfo(spec.dtype)
            beyond = kind in "iu" and (raw.min() < info.min or raw.max() > info.max)
        if beyond:
            raise InferError(f"input '{spec.name}': a value lies beyond the range of {spec.datatype}")
    count = element_count(shape)
    if arr.size != count:
        raise InferError(f"input '{spec.name}': {arr.size} values for shape {list(shape)}, which needs {count}")
    return arr.reshape(shape)
