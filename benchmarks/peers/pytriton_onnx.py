"""A real Triton Inference Server (the one bundled with nvidia-pytriton) serving ONNX files through onnxruntime.

PyTriton's tritonserver has only the Python backend, so the ONNX file runs in a bound Python callable; the protocol
side (HTTP/REST, gRPC, health, metadata, errors) is Triton's own. tests/test_triton_conformance.py uses it as the
reference that `ai4hep serve` must answer like. Runs in the virtualenv made by `benchmarks/peers/setup.sh --triton`
(pytriton pins numpy<2); tritonserver needs the Python library on LD_LIBRARY_PATH, which the caller sets:

    python pytriton_onnx.py --model NAME=PATH.onnx --http-port P --grpc-port Q
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

ONNX_NUMPY = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}


def bind(triton: Triton, name: str, path: str, max_batch_size: int) -> None:
    """One onnxruntime session behind a batched Python callable; tensors declared from the ONNX file's own."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outputs = [o.name for o in session.get_outputs()]

    def tensors(args) -> list[Tensor]:
        return [
            Tensor(
                name=a.name, dtype=ONNX_NUMPY[a.type], shape=tuple(d if isinstance(d, int) else -1 for d in a.shape[1:])
            )
            for a in args
        ]

    @batch
    def infer(**feed: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(outputs, session.run(outputs, feed), strict=True))

    triton.bind(
        name,
        infer,
        tensors(session.get_inputs()),
        tensors(session.get_outputs()),
        config=ModelConfig(max_batch_size=max_batch_size),
        strict=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", required=True, help="NAME=PATH of an ONNX file (repeatable)")
    ap.add_argument("--http-port", type=int, required=True)
    ap.add_argument("--grpc-port", type=int, required=True)
    ap.add_argument("--max-batch-size", type=int, default=1024)
    args = ap.parse_args()
    config = TritonConfig(
        http_address="127.0.0.1",
        http_port=args.http_port,
        grpc_address="127.0.0.1",
        grpc_port=args.grpc_port,
        allow_metrics=False,
    )
    with Triton(config=config) as triton:
        for spec in args.model:
            bind(triton, *spec.split("=", 1), args.max_batch_size)
        triton.serve()


if __name__ == "__main__":
    main()
