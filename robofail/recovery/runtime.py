"""The recovery policy on the robot: one self-contained ONNX file run by onnxruntime.

Imports numpy and onnxruntime only. The file carries what a controller needs to check that it is
the right model (``metadata_props``): the task, the observation and action names, the failure
types it was conditioned on, the chunk horizon, the number of states it looks at
(``obs_horizon``) and the fingerprint of its weights::

    recovery = RecoveryPolicy.load("models/pick_place/recovery.onnx", state_names=env_names)
    chunk = recovery.act(state, failure_type="slip")     # (H, A) float32 actions

A model with ``obs_horizon`` K > 1 takes the last K states, oldest first, as a (K, S) array
(:class:`~robofail.recovery.supervisor.Supervisor` keeps that window).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from robofail.errors import CorruptFileError, IncompatibleArtifactError, InvalidInputError
from robofail.ort import load_session

RECOVERY_KIND = "robofail_recovery_policy"
RECOVERY_SCHEMA = "2"
"""Schema written by this version; "1" (no ``obs_horizon``: one state per input) is still read."""
READABLE_SCHEMAS = ("1", RECOVERY_SCHEMA)


class RecoveryPolicy:
    """An exported recovery policy: ``act(state, failure_type) -> (H, A)`` action chunk; ``state``
    is (S,), or the (K, S) window of the last ``obs_horizon`` states for K > 1."""

    def __init__(self, session, metadata: dict, source: str) -> None:
        self.session = session
        self.source = source
        self.task = metadata["task"]
        self.state_names = list(metadata["state_names"])
        self.action_names = list(metadata["action_names"])
        self.failure_types = list(metadata["failure_types"])
        self.horizon = int(metadata["horizon"])
        self.exec_horizon = int(metadata["exec_horizon"])
        self.fingerprint = metadata["fingerprint"]
        self.obs_horizon = int(metadata.get("obs_horizon", 1))
        s = len(self.state_names)
        self.input_shape = (s,) if self.obs_horizon == 1 else (self.obs_horizon, s)
        self._state = np.zeros((1, *self.input_shape), dtype=np.float32)
        self._failure = np.zeros((1, max(1, len(self.failure_types))), dtype=np.float32)
        self._chunk = np.zeros((1, self.horizon, len(self.action_names)), dtype=np.float32)
        self._binding = session.io_binding()
        self._binding.bind_cpu_input("state", self._state)
        if self.failure_types:
            self._binding.bind_cpu_input("failure", self._failure)
        self._binding.bind_output(
            "chunk", "cpu", 0, np.float32, list(self._chunk.shape), self._chunk.ctypes.data
        )
        self.act(np.zeros(self.input_shape, dtype=np.float32))  # warm up

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        task: str | None = None,
        state_names: list[str] | None = None,
        action_names: list[str] | None = None,
    ) -> RecoveryPolicy:
        """Load and check an exported recovery policy.

        Args:
            path: the ``.onnx`` file written by ``robofail export --recovery``.
            task, state_names, action_names: what the controller runs; a model made for
                something else is refused.

        Raises:
            CorruptFileError: missing, truncated or not a robofail recovery model.
            IncompatibleArtifactError: made for another task, observation or action layout.
        """
        session = load_session(path)
        raw = session.get_modelmeta().custom_metadata_map
        if raw.get("robofail_kind") != RECOVERY_KIND:
            raise CorruptFileError(f"{path}: not a robofail recovery policy (no metadata)")
        if raw.get("schema") not in READABLE_SCHEMAS:
            raise IncompatibleArtifactError(
                f"{path}: recovery schema {raw.get('schema')!r}, this robofail reads "
                f"{RECOVERY_SCHEMA}; export it again with this version"
            )
        try:
            metadata = {key: json.loads(raw[key]) for key in (
                "task", "state_names", "action_names", "failure_types", "horizon",
                "exec_horizon", "fingerprint",
            )}  # fmt: skip
        except (KeyError, json.JSONDecodeError) as exc:
            raise CorruptFileError(f"{path}: recovery metadata incomplete ({exc})") from None
        try:
            metadata["obs_horizon"] = int(json.loads(raw.get("obs_horizon", "1")))
        except (TypeError, ValueError) as exc:
            raise CorruptFileError(f"{path}: bad obs_horizon metadata ({exc})") from None
        if metadata["obs_horizon"] < 1:
            raise CorruptFileError(f"{path}: obs_horizon {metadata['obs_horizon']} < 1")
        window = [metadata["obs_horizon"]] if metadata["obs_horizon"] > 1 else []
        shapes = {node.name: list(node.shape[1:]) for node in session.get_inputs()}
        shapes.update({node.name: list(node.shape[1:]) for node in session.get_outputs()})
        wanted = {
            "state": [*window, len(metadata["state_names"])],
            "chunk": [metadata["horizon"], len(metadata["action_names"])],
            **({"failure": [len(metadata["failure_types"])]} if metadata["failure_types"] else {}),
        }
        if any(shapes.get(name) != shape for name, shape in wanted.items()):
            raise CorruptFileError(
                f"{path}: the graph's inputs/outputs {shapes} do not match its metadata "
                f"{wanted}; export it again"
            )
        for what, expected in (
            ("task", task),
            ("state_names", state_names),
            ("action_names", action_names),
        ):
            if expected is not None and list(np.atleast_1d(expected)) != list(
                np.atleast_1d(metadata[what])
            ):
                raise IncompatibleArtifactError(
                    f"{path} was exported for {what} {metadata[what]}, the controller has "
                    f"{expected}; export a recovery policy trained for this setup"
                )
        return cls(session, metadata, str(path))

    def act(self, state: np.ndarray, failure_type: str | None = None) -> np.ndarray:
        """Action chunk (H, A) float32 for the current state (S,), or for a model with
        ``obs_horizon`` K > 1 the last K states (K, S), oldest first, and, for a model conditioned
        on failure types, the type the monitor or the operator names (None: unknown)."""
        if (
            type(state) is not np.ndarray
            or state.shape != self.input_shape
            or state.dtype.kind != "f"
        ):
            got = (
                f"{state.dtype} array of shape {state.shape}"
                if isinstance(state, np.ndarray)
                else type(state).__name__
            )
            window = "" if self.obs_horizon == 1 else f" (the last {self.obs_horizon} states)"
            raise InvalidInputError(
                f"state: expected a float array of shape {self.input_shape}{window} "
                f"({', '.join(self.state_names[:3])}, ...), got {got}"
            )
        if not np.isfinite(state).all():
            raise InvalidInputError("state: contains NaN or inf")
        self._state[0] = state
        if self.failure_types:
            self._failure[0] = 0.0
            if failure_type is not None:
                if failure_type not in self.failure_types:
                    raise InvalidInputError(
                        f"unknown failure type {failure_type!r}; this model knows "
                        f"{', '.join(self.failure_types)} (or pass None)"
                    )
                self._failure[0, self.failure_types.index(failure_type)] = 1.0
        self.session.run_with_iobinding(self._binding)
        return self._chunk[0].copy()
