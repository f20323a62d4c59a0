"""onnxruntime sessions for the on-robot path: one thread, no spinning, errors that name the file.

A control loop shares its core with the controller; onnxruntime's default thread pool spins
waiting for work and would steal that core, so every session here runs on the calling thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robofail.errors import CorruptFileError

_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def load_session(path: str | Path):
    """An ``onnxruntime.InferenceSession`` for the ONNX file at ``path``, single-threaded.

    Raises:
        CorruptFileError: the file is missing, truncated or not a valid ONNX model.
    """
    import onnxruntime as ort

    path = Path(path)
    if path.is_dir():
        raise CorruptFileError(
            f"{path} is a folder; give the .onnx file (`robofail export` writes one)"
        )
    if not path.is_file():
        raise CorruptFileError(f"{path}: ONNX model not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            path.read_bytes(), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptFileError(f"{path}: not a valid ONNX model ({first_line})") from None


def input_dtype(session, index: int = 0) -> type:
    """The numpy dtype of a session's input (float32 or float64)."""
    onnx_type = session.get_inputs()[index].type
    if onnx_type not in _ONNX_TYPES:
        raise CorruptFileError(f"unsupported ONNX input type {onnx_type}")
    return _ONNX_TYPES[onnx_type]
