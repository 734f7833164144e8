"""An MLServer runtime for an ONNX file, so MLServer serves the very model ai4hep's server does.

MLServer ships no ONNX runtime of its own; this one runs onnxruntime on the file named by the model's
`parameters.uri` in model-settings.json. It decodes inputs and encodes outputs with MLServer's own NumpyCodec, the
same path its bundled runtimes take. Used by benchmarks/serving_compare.py (which writes settings.json and
model-settings.json and puts this folder on PYTHONPATH); it runs inside the MLServer virtualenv made by
benchmarks/peers/setup.sh, never in ai4hep's.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxModel(MLModel):
    """One onnxruntime session; inputs by name, every graph output returned."""

    async def load(self) -> bool:
        path = await get_model_uri(self._settings)
        options = ort.SessionOptions()
        threads = int(os.environ.get("ONNX_THREADS", "0"))  # 0: onnxruntime's default (one per core)
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feed = {i.name: np.ascontiguousarray(NumpyCodec.decode_input(i)) for i in payload.inputs}
        results = self.session.run(self.output_names, feed)
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(n, r) for n, r in zip(self.output_names, results, strict=True)],
        )
