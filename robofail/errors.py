"""The exceptions robofail raises on bad input.

Every error a user can cause derives from :class:`RobofailError`; the CLI prints its message as
one line and exits with status 2. Each subclass also derives from the matching built-in
(``ValueError``, ``KeyError``, ``OSError``) so callers that catch those keep working.
"""


class RobofailError(Exception):
    """Base class of every error robofail raises on bad user input."""


class InvalidInputError(RobofailError, ValueError):
    """An argument or array has the wrong value, shape or dtype, or is not finite."""


class UnknownNameError(RobofailError, KeyError):
    """A task, perturbation, method or other name is not one robofail knows."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CorruptFileError(RobofailError, OSError):
    """A file robofail should read is truncated, corrupt or not in the expected layout."""


class OutputPathError(RobofailError, OSError):
    """An output path cannot be written (missing permission, a file where a folder is needed...)."""


class IncompatibleArtifactError(RobofailError, ValueError):
    """A saved artifact (calibration, ONNX model, policy) is intact but belongs to another policy,
    task or schema version than the one it is used with."""
