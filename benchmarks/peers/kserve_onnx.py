"""A KServe Python model server for ONNX files (Open Inference Protocol v2 over REST and gRPC), for the benchmark.

KServe's Python SDK has no ONNX runtime (its ONNX serving goes through Triton); this one runs onnxruntime behind
`kserve.Model`, decoding and encoding tensors with KServe's own InferInput / InferOutput. Used by
benchmarks/serving_compare.py inside the KServe virtualenv made by benchmarks/peers/setup.sh:

    python kserve_onnx.py --model NAME=PATH.onnx [--model ...] --http_port P --grpc_port Q

KServe 0.21 binds its REST server to 0.0.0.0 and its gRPC server to [::] with no option to change it; the benchmark
connects through 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os

import kserve
import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse
from kserve.utils.numpy_codec import from_np_dtype


class OnnxModel(kserve.Model):
    """One onnxruntime session; every graph output returned, as binary data where the request allows it."""

    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("ONNX_THREADS", "0"))
        self.session = ort.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        feed = {i.name: np.ascontiguousarray(i.as_numpy()) for i in payload.inputs}
        results = self.session.run(self.output_names, feed)
        outputs = []
        for name, array in zip(self.output_names, results, strict=True):
            out = InferOutput(name=name, shape=list(array.shape), datatype=from_np_dtype(array.dtype))
            out.set_data_from_numpy(array, binary_data=True)
            outputs.append(out)
        return InferResponse(
            response_id=payload.id or "", model_name=self.name, infer_outputs=outputs, use_binary_outputs=True
        )


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser], conflict_handler="resolve")
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of an ONNX file (repeatable)")
    args, _ = parser.parse_known_args()
    models = [OnnxModel(*spec.split("=", 1)) for spec in args.model]
    kserve.ModelServer(http_port=args.http_port, grpc_port=args.grpc_port, enable_latency_logging=False).start(models)


if __name__ == "__main__":
    main()
