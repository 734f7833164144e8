"""Export of trained runs: ONNX for every model, Triton-ready; hls4ml / conifer firmware emulation (fastml)."""
