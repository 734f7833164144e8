"""Export of trained runs: ONNX for the neural taggers (more formats follow)."""
