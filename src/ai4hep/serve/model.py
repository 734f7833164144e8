"""One served model version: an onnxruntime session, its tensor specs (config.pbtxt checked against the ONNX file)
and the policy for running it.

session.run releases the GIL, so long runs go to a thread (one per instance in config.pbtxt's instance_group). A
thread hand-off costs tens of microseconds, more than a small network takes at batch 1, so runs whose recent
duration at that batch size is below INLINE_NS run directly on the event loop: the loop stalls no longer than the
hand-off would have cost.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ai4hep.errors import UserError
from ai4hep.serve.padding import load_trim
from ai4hep.serve.repository import ModelSource
from ai4hep.serve.stats import ModelStats
from ai4hep.serve.tensors import ONNX, InferError, TensorSpec, config_datatype

INLINE_NS = 100_000
IDLE_DISPATCH_KEY = "ai4hep.idle_dispatch"  # see ai4hep.serve.batcher
THREAD_KEYS = ("intra_op_thread_count", "inter_op_thread_count")  # the keys Triton's onnxruntime backend reads
MAX_OBJECTS_KEY = "ai4hep.max_objects"  # overrides the object cap taken from the training's preprocessing
PREPROCESSING_KEY = "ai4hep.preprocessing"  # written by 'ai4hep export triton' (and in the ONNX file's metadata)


def _bool_parameter(config, key: str, where: str, default: bool) -> bool:
    if key not in config.parameters:
        return default
    value = config.parameters[key].string_value.strip().lower()
    if value not in ("true", "false"):
        raise UserError(f'{where}: parameter {key} must be "true" or "false", got \'{value}\'')
    return value == "true"


def _int_parameter(config, key: str, where: str) -> int | None:
    if key not in config.parameters:
        return None
    value = config.parameters[key].string_value
    if not value.isdigit():
        raise UserError(f"{where}: parameter {key} must be a whole number of threads, got '{value}'")
    return int(value)


def object_cap(config, metadata: dict[str, str], where: str) -> tuple[int | None, str]:
    """The most objects a request may send per jet, and where that number comes from: config.pbtxt's
    `ai4hep.max_objects`, else `max_objects` of the training's preprocessing (config.pbtxt parameter
    `ai4hep.preprocessing`, else the ONNX file's metadata). None: the model states none, nothing is capped."""
    if MAX_OBJECTS_KEY in config.parameters:
        value = config.parameters[MAX_OBJECTS_KEY].string_value.strip()
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"{where}: parameter {MAX_OBJECTS_KEY} must be a positive whole number, got '{value}'")
        return int(value), f"parameter {MAX_OBJECTS_KEY} in its config.pbtxt"
    texts = (config.parameters[PREPROCESSING_KEY].string_value if PREPROCESSING_KEY in config.parameters else "",
             metadata.get(PREPROCESSING_KEY, ""))  # fmt: skip
    for text in texts:
        try:
            n = json.loads(text).get("max_objects") if text else None
        except (ValueError, AttributeError, RecursionError):
            n = None
        if type(n) is int and n > 0:
            return n, f"the max_objects it was trained with; parameter {MAX_OBJECTS_KEY} in config.pbtxt changes it"
    return None, ""


def session_options(config, threads: int, where: str, spin: bool = True):
    """Thread counts from config.pbtxt parameters (Triton's keys), else the server's --threads (0: onnxruntime's
    default, one per core). spin=False stops idle workers spinning (onnxruntime spins by default): it frees the cores
    for the event loop and other jobs, but wakes threads slower, which costs small-batch latency on deep graphs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    intra, inter = (_int_parameter(config, k, where) for k in THREAD_KEYS)
    intra = threads if intra is None else intra
    if intra:
        options.intra_op_num_threads = intra
    if inter:
        options.inter_op_num_threads = inter
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3
    return options


def onnx_tensors(args, where: str) -> dict[str, tuple[str, list]]:
    """{name: (protocol datatype, ONNX shape)} of an onnxruntime session's inputs or outputs (numeric tensors only)."""
    out = {}
    for a in args:
        if a.type not in ONNX:
            raise UserError(f"{where}: '{a.name}' has type {a.type}; only numeric tensors are served")
        out[a.name] = (ONNX[a.type], list(a.shape))
    return out


def _specs(config_tensors, onnx: dict[str, tuple[str, list]], batching: bool, where: str, kind: str):
    """Tensor specs in the config's order, each checked against the ONNX file; an empty config list takes every ONNX
    tensor (Triton's auto-complete)."""
    from tritonclient.grpc import model_config_pb2

    type_name = model_config_pb2.DataType.Name
    declared = [(t.name, config_datatype(type_name(t.data_type)), list(t.dims)) for t in config_tensors]
    if not declared:
        declared = [(n, dt, [-1] * (len(shape) - batching)) for n, (dt, shape) in onnx.items()]
    specs = []
    for name, datatype, dims in declared:
        if name not in onnx:
            raise UserError(f"{where}: {kind} '{name}' is not in the ONNX file, which has {', '.join(onnx)}")
        want, shape = onnx[name]
        if datatype != want:
            raise UserError(f"{where}: {kind} '{name}' is {datatype} in config.pbtxt but {want} in the ONNX file")
        if batching:
            if isinstance(shape[0] if shape else 1, int):
                raise UserError(
                    f"{where}: {kind} '{name}' has a fixed first dimension {shape[:1]}; max_batch_size > 0 needs a "
                    "dynamic batch axis (or set max_batch_size: 0)"
                )
            shape = shape[1:]
        if len(dims) != len(shape):
            raise UserError(f"{where}: {kind} '{name}' has dims {dims} in config.pbtxt but the ONNX file has {shape}")
        merged = []
        for d, s in zip(dims, shape, strict=True):
            if isinstance(s, int) and d not in (-1, s):
                raise UserError(f"{where}: {kind} '{name}' dims {dims} in config.pbtxt disagree with ONNX {shape}")
            merged.append(s if isinstance(s, int) and s > 0 else d)
        axes = tuple(a if isinstance(a, str) else None for a in onnx[name][1])
        specs.append(TensorSpec(name, datatype, tuple(merged), axes))
    return specs


class LoadedModel:
    """A model version ready to run; `infer` is what the protocol front ends call."""

    def __init__(self, source: ModelSource, version: int, path: Path, threads: int = 0, spin: bool = True) -> None:
        import onnxruntime as ort

        self.name, self.version, self.config = source.name, version, source.config
        where = f"{path.parent.parent.name}/{version}"
        try:
            self.session = ort.InferenceSession(
                str(path), session_options(self.config, threads, where, spin), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable graphs
            first = (str(exc).strip().splitlines() or [""])[0]
            fix = "re-export it with 'ai4hep export triton'"
            raise UserError(f"{path}: onnxruntime cannot load it ({first}); {fix}") from None
        self.max_batch_size = int(self.config.max_batch_size)
        self.idle_dispatch = _bool_parameter(self.config, IDLE_DISPATCH_KEY, where, True)
        batching = self.max_batch_size > 0
        onnx_in = onnx_tensors(self.session.get_inputs(), where)
        self.inputs = _specs(self.config.input, onnx_in, batching, where, "input")
        onnx_inputs = {i.name for i in self.session.get_inputs()}
        missing = onnx_inputs - {s.name for s in self.inputs}
        if missing:
            raise UserError(f"{where}: config.pbtxt lacks input(s) {sorted(missing)} that the ONNX file needs")
        self.outputs = _specs(
            self.config.output, onnx_tensors(self.session.get_outputs(), where), batching, where, "output"
        )
        self.input_map = {s.name: s for s in self.inputs}
        self.output_map = {s.name: s for s in self.outputs}
        # The object axes (dynamic, after the batch axis) of each input, capped at max_objects per request.
        metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.max_objects, self.max_objects_source = object_cap(self.config, metadata, where)
        first = 1 if batching else 0
        self.object_axes = {
            s.name: tuple(i + first for i, d in enumerate(s.dims) if d == -1) for s in self.inputs
        } if self.max_objects is not None else {}  # fmt: skip
        self.output_names = [s.name for s in self.outputs]
        self.trim = load_trim(
            self.config, self.inputs, self.outputs, batching, lambda f: self.session.run(self.output_names, f), where
        )
        self.instances = max(1, sum(g.count for g in self.config.instance_group))
        self.executor = ThreadPoolExecutor(self.instances, thread_name_prefix=f"ort-{self.name}-{version}")
        self.stats = ModelStats()
        self.batcher = None  # set by the engine when config.pbtxt has dynamic_batching
        self._recent_ns: dict[int, float] = {}  # batch-size bucket -> smoothed session.run time

    def metadata_shape(self, spec: TensorSpec) -> list[int]:
        return [-1, *spec.dims] if self.max_batch_size else list(spec.dims)

    async def execute(self, feed: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
        """One session.run, on the loop when recent runs at this size were short, else in the model's threads."""
        if self.trim is not None:
            feed = self.trim.apply(feed)
        bucket = batch.bit_length()
        recent = self._recent_ns.get(bucket)
        try:
            if recent is not None and recent < INLINE_NS:
                out, ns = self._timed_run(feed)
            else:
                out, ns = await asyncio.get_running_loop().run_in_executor(self.executor, self._timed_run, feed)
        except Exception as exc:
            if isinstance(exc, InferError | asyncio.CancelledError):
                raise
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            invalid = exc.__class__.__name__ in ("InvalidArgument", "Fail", "RuntimeException")
            raise InferError(
                f"model '{self.name}' failed on this request: {first}", "invalid" if invalid else "internal"
            ) from None
        self._recent_ns[bucket] = ns if recent is None else 0.8 * recent + 0.2 * ns
        return out

    def _timed_run(self, feed: dict[str, np.ndarray]) -> tuple[list[np.ndarray], int]:
        """session.run and its own duration: timed inside the worker thread, so that the hop to it (tens of µs on
        an idle loop) does not count, or short runs would never qualify for running on the loop."""
        start = time.perf_counter_ns()
        out = self.session.run(self.output_names, feed)
        return out, time.perf_counter_ns() - start

    async def infer(self, feed: dict[str, np.ndarray], batch: int) -> list[np.ndarray]:
        """All outputs (in self.outputs order) for one request, through the dynamic batcher when there is one."""
        if self.batcher is not None:
            return await self.batcher.submit(feed, batch)
        start = time.perf_counter_ns()
        out = await self.execute(feed, batch)
        self.stats.executed(batch, 1, 0, time.perf_counter_ns() - start, 0)
        return out

    def close(self) -> None:
        self.executor.shutdown(wait=True)
