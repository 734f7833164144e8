"""The hls4ml route: an MLP run -> hls4ml project (Vitis backend, io_parallel) -> bit-accurate C++ emulation (g++).

ai4hep's configuration (granularity 'model') gives every weight, bias, accumulator and activation the requested
precision and pins what the softmax needs, so that it cannot collapse and keeps close classes apart (measured on the
hlf5 MLP, docs/fastml.md):
- the logit layer's result: ap_fixed<max(W,16),6> (saturating), whatever W and I are asked for;
- the softmax's own types: hls4ml indexes its exp table by the top bits of (x_max - x_i) in a type derived from the
  logit type; left so, a wide integer part sends every jet to one table entry (the collapse), and a difference beyond
  the type's range wraps around. ai4hep gives it ap_ufixed<16,4> with saturation (exp(-16) is 1e-7), 4096 table
  entries (1024 left ties between classes closer than 1/32), [0,1)-ranged exp and inverse tables, and a sum type
  just wide enough for n classes.
granularity 'name' is hls4ml's own per-layer automatic typing, unpinned, for experts; the validation step catches the
collapse it can cause.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import shutil
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ai4hep.errors import UserError
from ai4hep.export.precision import FixedPoint

BACKEND = "Vitis"
IO_TYPE = "io_parallel"
PRE_SOFTMAX_INTEGER = 6
SOFTMAX_TABLE_SIZE = 4096
SOFTMAX_OUTPUT = "ap_ufixed<16,0,AP_RND,AP_SAT>"
SOFTMAX_DIFFERENCE = "ap_ufixed<16,4,AP_RND,AP_SAT>"
SOFTMAX_TABLE = "ap_ufixed<18,1,AP_RND,AP_SAT>"
SYNTHESIS_TOOLS = ("vitis-run", "vitis_hls", "vivado_hls", "vivado")
BOPS_DEFINITION = (
    "bit operations: sum over layers of (non-zero weights after quantisation) x (weight bits) x (input bits); "
    "multiplications: the non-zero weights (one multiplier each at reuse factor 1)"
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """hls4ml and brevitas print topologies and warnings on stdout; the CLI prints its own table instead."""
    loggers = [logging.getLogger(n) for n in ("hls4ml", "qonnx", "conifer", "brevitas", "torch.onnx")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def logit_type(precision: FixedPoint) -> str:
    return f"ap_fixed<{max(precision.width, 16)},{PRE_SOFTMAX_INTEGER},AP_RND,AP_SAT>"


def softmax_pins(n_classes: int) -> dict:
    """The softmax layer's configuration (the `*_t` keys become hls4ml type attributes)."""
    total = f"ap_ufixed<18,{max(1, math.ceil(math.log2(n_classes + 1)))},AP_RND,AP_SAT>"  # sum of n values <= 1
    return {
        "Precision": {"result": SOFTMAX_OUTPUT},
        "TableSize": SOFTMAX_TABLE_SIZE,
        "inp_norm_t": SOFTMAX_DIFFERENCE,
        "exp_table_t": SOFTMAX_TABLE,
        "inv_table_t": SOFTMAX_TABLE,
        "inv_inp_t": total,
        "accum_t": total,
    }


def hls_network(model):
    """The run's MLP as a flat, named nn.Sequential ending in nn.Softmax(dim=-1), the form hls4ml parses."""
    from torch import nn

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    n = 0
    for m in model.net:
        if isinstance(m, nn.Linear):
            n += 1
            layers[f"fc{n}"] = m
        elif isinstance(m, nn.ReLU):
            layers[f"relu{n}"] = m
        elif not isinstance(m, nn.Dropout):  # dropout is the identity at inference
            raise UserError(f"layer {m.__class__.__name__} of the MLP has no hls4ml conversion here")
    layers["softmax"] = nn.Softmax(dim=-1)
    return nn.Sequential(layers).eval()


def linear_layers(net) -> list:
    from torch import nn

    return [m for m in net if isinstance(m, nn.Linear)]


def torch_config(net, n_inputs: int, precision: FixedPoint, granularity: str, reuse_factor: int) -> dict:
    import hls4ml

    cfg = hls4ml.utils.config_from_pytorch_model(
        net,
        (n_inputs,),
        granularity=granularity,
        backend=BACKEND,
        default_precision=precision.hls(),
        default_reuse_factor=reuse_factor,
    )
    if granularity == "model":
        last = linear_layers(net)[-1]
        names = cfg.setdefault("LayerName", {})
        names[f"fc{len(linear_layers(net))}"] = {"Precision": {"result": logit_type(precision)}}
        names["softmax"] = softmax_pins(last.out_features)
    return cfg


@dataclass
class Emulation:
    """A compiled hls4ml model: predict() runs the bit-accurate C++ on numpy inputs."""

    model: object
    n_outputs: int
    compile_s: float
    project: Path
    pinned: dict = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        with quiet():
            y = self.model.predict(np.ascontiguousarray(x, dtype=np.float32))
        return np.asarray(y, dtype=np.float64).reshape(len(x), self.n_outputs)

    def layers(self) -> list[dict]:
        out = []
        for layer in self.model.get_layers():
            types = {k: str(v.precision) for k, v in layer.types.items() if hasattr(v, "precision")}
            out.append({"name": layer.name, "class": layer.class_name, "types": types})
        return out

    def softmax_input(self) -> str | None:
        """The type the softmax lookup is indexed with (its input layer's result)."""
        for layer in self.model.get_layers():
            if layer.class_name == "Softmax":
                return str(layer.get_input_variable().type.precision)
        return None


def _compile(hls_model, out_dir: Path, n_outputs: int, start: float, pinned: dict) -> Emulation:
    with quiet():
        try:
            hls_model.compile()
        except Exception as exc:
            raise RuntimeError(f"g++ could not compile the hls4ml project in {out_dir} ({exc})") from None
    return Emulation(hls_model, n_outputs, round(time.perf_counter() - start, 2), out_dir, pinned)


def convert_torch(
    net, n_inputs: int, precision: FixedPoint, out_dir: Path, granularity: str = "model", reuse_factor: int = 1
) -> Emulation:
    """Write and compile the hls4ml project of `net` (from hls_network) in out_dir."""
    import hls4ml

    start = time.perf_counter()
    with quiet():
        cfg = torch_config(net, n_inputs, precision, granularity, reuse_factor)
        hls_model = hls4ml.converters.convert_from_pytorch_model(
            net, hls_config=cfg, output_dir=str(out_dir), backend=BACKEND, io_type=IO_TYPE
        )
    n_out = linear_layers(net)[-1].out_features
    pinned = (
        {"pre_softmax": logit_type(precision), "softmax": _flat(softmax_pins(n_out))} if granularity == "model" else {}
    )
    return _compile(hls_model, out_dir, n_out, start, pinned)


def _flat(pins: dict) -> dict:
    return {"result_t": pins["Precision"]["result"], **{k: v for k, v in pins.items() if k != "Precision"}}


def convert_qonnx(path: Path, input_type: str, out_dir: Path, n_outputs: int, reuse_factor: int = 1) -> Emulation:
    """A brevitas model exported as QONNX -> hls4ml; the quantisers set the types, ai4hep pins input and softmax.

    hls4ml reads QONNX with per-layer ('name') configuration, so the logits reach the softmax in a wide automatic type
    (exact, which keeps the emulation bit-equal to brevitas); left alone, that type would index the softmax table and
    collapse it, so the softmax gets the same pinned types as on the float route. The input layer gets the input
    quantiser's type, so a float input is rounded once, as brevitas rounds it.
    """
    import hls4ml
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    start = time.perf_counter()
    with quiet():
        model = cleanup_model(ModelWrapper(str(path)))
        model = cleanup_model(model.transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul()))
        cfg = hls4ml.utils.config.config_from_onnx_model(
            model, granularity="name", backend=BACKEND, default_reuse_factor=reuse_factor
        )
        names = cfg["LayerName"]
        softmax = [n.name for n in model.graph.node if n.op_type == "Softmax"]
        if len(softmax) != 1:
            raise RuntimeError(f"the QONNX graph has {len(softmax)} Softmax nodes, not one; cannot pin its types")
        names["global_in"]["Precision"]["result"] = input_type
        names[softmax[0]] = {**names[softmax[0]], **softmax_pins(n_outputs)}
        hls_model = hls4ml.converters.convert_from_onnx_model(
            model, output_dir=str(out_dir), io_type=IO_TYPE, backend=BACKEND, hls_config=cfg
        )
    pinned = {"input": input_type, "softmax": _flat(softmax_pins(n_outputs))}
    return _compile(hls_model, out_dir, n_outputs, start, pinned)


def bops(weights: list[np.ndarray], weight_bits: list[int], input_bits: list[int]) -> dict:
    """The resource proxy (no synthesis here): multiplications and bit operations per layer and in all."""
    layers = []
    for w, bw, ba in zip(weights, weight_bits, input_bits, strict=True):
        nz = int(np.count_nonzero(w))
        layers.append(
            {"weights": int(w.size), "nonzero": nz, "weight_bits": bw, "input_bits": ba, "bops": nz * bw * ba}
        )
    return {
        "multiplications": sum(r["nonzero"] for r in layers),
        "bops": sum(r["bops"] for r in layers),
        "layers": layers,
        "definition": BOPS_DEFINITION,
    }


def ptq_proxy(net, precision: FixedPoint, reuse_factor: int = 1) -> dict:
    """Post-training quantisation: weights on the precision's grid (zeros do not cost), W-bit inputs everywhere.
    `multiplier_limit` is hls4ml's own bound for its Latency dense layers at this reuse factor."""
    weights = [precision.quantise(m.weight.detach().numpy().astype(np.float64)) for m in linear_layers(net)]
    n = len(weights)
    proxy = bops(weights, [precision.width] * n, [precision.width] * n)
    proxy["reuse_factor"] = reuse_factor
    proxy["multiplier_limit"] = sum(
        -(-w.size // reuse_factor) - (w.size - int(np.count_nonzero(w))) // reuse_factor for w in weights
    )
    return proxy


def synthesis_tool() -> str | None:
    return next((t for t in SYNTHESIS_TOOLS if shutil.which(t)), None)


def synthesis_unavailable(tool: str | None) -> str | None:
    """Why hls4ml cannot synthesise with `tool` (from synthesis_tool()); None when it can (vitis-run)."""
    if tool is None:
        return "no Vitis/Vivado HLS (vitis-run, vitis_hls, vivado_hls) on PATH"
    if tool != "vitis-run":
        return f"found {tool}, but hls4ml's Vitis backend synthesises with vitis-run (Vitis 2024.2 or newer)"
    return None


def synthesise(emulation: Emulation) -> dict:
    """Vitis HLS synthesis when vitis-run is on PATH (hls4ml 1.3's Vitis backend calls it); otherwise say why not."""
    tool = synthesis_tool()
    why = synthesis_unavailable(tool)
    if why is not None:
        return {
            "ran": False,
            "message": f"synthesis skipped: {why}; the resource proxies (multiplications, bit operations) are "
            "reported instead",
        }
    start = time.perf_counter()
    with quiet():
        report = emulation.model.build(csim=False, synth=True, vsynth=False, log_to_stdout=False)
    return {"ran": True, "tool": tool, "seconds": round(time.perf_counter() - start, 1), "report": report}
