"""Cutting trailing padding off a batch before session.run: requests pad every jet to the model's maximum object
count (so that they can be batched), but a masked model gives the same answer on only as many objects as the
longest jet of the batch holds. Attention and pair features cost the square of that count: for ParT on `top` jets
(54 of 100 slots filled on average) a batch-1 request runs 2.5x faster cut.

Opt-in per model with the config.pbtxt parameter `ai4hep.trim_padding` = the name of the boolean mask input
(`ai4hep export triton` writes it for models with a `mask` input and only per-jet outputs; Triton ignores it). Every
input that shares the mask's object axis (same ONNX symbolic dimension) is cut with it; no output may have that
axis, since a client expects one entry per object it sent. At load the server checks on a probe batch that
cutting leaves the outputs unchanged, and serves the model uncut, with a warning, where it does not.
"""

from __future__ import annotations

import sys

import numpy as np

from ai4hep.errors import UserError
from ai4hep.serve.tensors import TensorSpec

TRIM_KEY = "ai4hep.trim_padding"
# The probe's padded length and its jets' real objects: the second jet is short, so padding follows its objects
# even after the cut (a model that lets padded slots into a kNN graph or a mean shows it there).
PROBE_OBJECTS, PROBE_REAL, PROBE_SHORT = 12, 7, 2
TOLERANCE = 1e-4
BUCKET_OBJECTS = 16  # requests batched together differ by less than this in their cut length


class PaddingTrim:
    """The inputs to cut (name, axes: every axis of it that is the mask's object axis) and the mask that decides
    where."""

    def __init__(self, mask: str, cut: list[tuple[str, tuple[int, ...]]]) -> None:
        self.mask = mask
        self.cut = cut

    @classmethod
    def from_config(cls, config, inputs: list[TensorSpec], outputs: list[TensorSpec], where: str) -> PaddingTrim | None:
        if TRIM_KEY not in config.parameters:
            return None
        name = config.parameters[TRIM_KEY].string_value.strip()
        specs = {s.name: s for s in inputs}
        spec = specs.get(name)
        if spec is None or spec.datatype != "BOOL":
            bools = [s.name for s in inputs if s.datatype == "BOOL"] or ["none"]
            raise UserError(
                f"{where}: parameter {TRIM_KEY} names '{name}', which is not a BOOL input (BOOL inputs: "
                f"{', '.join(bools)}); name the mask input or remove the parameter"
            )
        axis_name = spec.axes[-1] if spec.axes else None
        if axis_name is None:
            raise UserError(
                f"{where}: parameter {TRIM_KEY}: the last axis of '{name}' has a fixed size in the ONNX file, so "
                "nothing can be cut; remove the parameter"
            )
        per_object = [s.name for s in outputs if axis_name in s.axes]
        if per_object:
            raise UserError(
                f"{where}: parameter {TRIM_KEY}: output(s) {', '.join(per_object)} have one entry per object, and a "
                "client expects as many as it sent; remove the parameter"
            )
        cut = [
            (s.name, tuple(i for i, a in enumerate(s.axes) if a == axis_name)) for s in inputs if axis_name in s.axes
        ]
        return cls(name, cut)

    def used(self, feed: dict[str, np.ndarray]) -> int:
        """Objects up to the last one that any jet of the feed holds (at least one)."""
        mask = feed[self.mask]  # checked against its spec: it has the object axis
        if mask.shape[-1] <= 1:
            return mask.shape[-1]
        held = mask.reshape(-1, mask.shape[-1]).any(axis=0)
        return max(len(held) - int(np.argmax(held[::-1])), 1) if held.any() else 1

    def bucket(self, feed: dict[str, np.ndarray]) -> int:
        """The dynamic batcher puts requests of one bucket together: a batch is cut to its longest jet, so a long
        jet among short ones would make every one of them cost as much as it."""
        return -(-self.used(feed) // BUCKET_OBJECTS)

    def apply(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feed cut after the last object that any jet of the batch holds."""
        keep = self.used(feed)
        if keep == feed[self.mask].shape[-1]:
            return feed
        out = dict(feed)
        for name, axes in self.cut:
            index = [slice(None)] * feed[name].ndim
            for axis in axes:
                index[axis] = slice(0, keep)
            out[name] = np.ascontiguousarray(feed[name][tuple(index)])
        return out

    def probe(self, run, inputs: list[TensorSpec], batching: bool) -> float:
        """Largest relative change of any output when a probe batch (2 jets, PROBE_REAL and PROBE_SHORT real objects
        padded to PROBE_OBJECTS) is cut: random inputs, zeros in the padding, as ai4hep's loader pads."""
        rng = np.random.default_rng(0)
        axes = dict(self.cut)
        feed = {}
        for spec in inputs:
            shape = [2] if batching else []
            shape += [d if d > 0 else 1 for d in spec.dims]
            for axis in axes.get(spec.name, ()):
                shape[axis] = PROBE_OBJECTS
            if spec.name == self.mask:
                values = np.zeros(shape, bool)
                values[..., :PROBE_REAL] = True
                if batching:
                    values[1, ..., PROBE_SHORT:] = False
            elif spec.datatype == "BOOL":
                values = np.ones(shape, bool)
            elif spec.dtype.kind == "f":
                values = rng.normal(size=shape).astype(spec.dtype)
            else:
                values = np.zeros(shape, spec.dtype)
            if spec.name != self.mask:
                for axis in axes.get(spec.name, ()):
                    index = [slice(None)] * len(shape)
                    index[axis] = slice(PROBE_REAL, None)
                    values[tuple(index)] = 0
                    if batching:
                        index[0], index[axis] = 1, slice(PROBE_SHORT, None)
                        values[tuple(index)] = 0
            feed[spec.name] = values
        full, cut = run(feed), run(self.apply(feed))
        return max(
            float(np.max(np.abs(a - b)) / (1.0 + float(np.max(np.abs(a))))) for a, b in zip(full, cut, strict=True)
        )


def trimmable(onnx_file) -> bool:
    """Whether an exported model qualifies: a BOOL input `mask` whose last axis is symbolic and no output on it."""
    import onnx

    graph = onnx.load(str(onnx_file), load_external_data=False).graph

    def axes(value) -> list[str]:
        return [d.dim_param for d in value.type.tensor_type.shape.dim]

    mask = next((i for i in graph.input if i.name == "mask"), None)
    if mask is None or mask.type.tensor_type.elem_type != onnx.TensorProto.BOOL or not axes(mask)[-1:]:
        return False
    axis = axes(mask)[-1]
    return bool(axis) and all(axis not in axes(o) for o in graph.output)


def load_trim(
    config, inputs: list[TensorSpec], outputs: list[TensorSpec], batching: bool, run, where: str
) -> PaddingTrim | None:
    """The model's PaddingTrim, or None where none is asked for or the probe finds that cutting changes outputs."""
    trim = PaddingTrim.from_config(config, inputs, outputs, where)
    if trim is None:
        return None
    try:
        change = trim.probe(run, inputs, batching)
        what = f"change by up to {change:.2g} (relative)"
    except Exception as exc:  # onnxruntime's own exception types: the model does not run cut at all
        change, what = float("inf"), f"cannot be computed ({(str(exc).strip().splitlines() or ['?'])[0]})"
    if not change <= TOLERANCE:  # NaN too: outputs that are not numbers are never cut
        print(
            f"ai4hep serve: warning: {where}: its outputs {what} when padded objects are cut off, so it is served "
            f"uncut; remove parameter {TRIM_KEY} from its config.pbtxt",
            file=sys.stderr,
            flush=True,
        )
        return None
    return trim
