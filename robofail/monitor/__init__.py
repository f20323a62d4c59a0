"""The runtime failure monitor: scores, conformal calibration, streaming Monitor (numpy, scipy,
onnxruntime only)."""
