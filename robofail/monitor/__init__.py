"""The runtime failure monitor: scores, conformal calibration, streaming Monitor.

``from robofail.monitor import Monitor`` imports numpy and onnxruntime only; calibration
(:mod:`robofail.monitor.calibrate`, torch and onnx) and evaluation live in their own modules.
"""

from robofail.monitor.runtime import Monitor, Verdict

__all__ = ["Monitor", "Verdict"]
