"""`ai4hep serve`: ONNX models from a Triton-layout repository over the Open Inference Protocol (v2), REST and gRPC.

One asyncio process: HTTP/1.1 on the httptools parser (http_wire.py), gRPC on ai4hep's HTTP/2 layer (grpc_wire.py),
onnxruntime sessions run inline when they are fast and in a thread otherwise, a dynamic batcher per model where
config.pbtxt asks for one.
See docs/serving.md.
"""
