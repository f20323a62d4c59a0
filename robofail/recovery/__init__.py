"""Recovery: a policy trained on generated failures, exported to ONNX, run by onnxruntime.

``from robofail.recovery import RecoveryPolicy`` imports numpy and onnxruntime only; training and
export (:mod:`robofail.recovery.model`) need torch and onnx.
"""

from robofail.recovery.runtime import RecoveryPolicy

__all__ = ["RecoveryPolicy"]
