"""The exceptions robofail raises on bad input.

Every error a user can cause derives from :class:`RobofailError`; the ``robofail`` command prints
its message as one line (``robofail VERB: error: ...``) and exits with status 2, without a
traceback. Each subclass also derives from the matching built-in, so callers that catch those keep
working::

    Exception
    └── RobofailError                  anything a user can cause; catch this one
        ├── InvalidInputError          (ValueError) a wrong value, shape, dtype, NaN/inf, a
        │                              calibration set too small for alpha, alpha outside (0, 1)
        ├── IncompatibleArtifactError  (ValueError) an intact artifact (calibration, ONNX model,
        │                              policy) made for another policy, task, action layout or
        │                              schema version
        ├── UnknownNameError           (KeyError) a task, spec, perturbation, method or filter
        │                              name robofail does not know
        ├── IndexOutOfRangeError       (IndexError) an episode position outside a dataset
        ├── CorruptFileError           (OSError) a file to read is missing, truncated, corrupt,
        │                              not in the expected layout, or not the kind of file it
        │                              should be (a pickle where weights are expected)
        └── OutputPathError            (OSError) an output path that cannot be written

Messages say what was wrong and how to fix it, and name the file, field or argument concerned.
Errors that are not the user's (a bug, the machine running out of memory) are not wrapped.
"""


class RobofailError(Exception):
    """Base class of every error robofail raises on bad user input."""


class InvalidInputError(RobofailError, ValueError):
    """An argument or array has the wrong value, shape or dtype, or is not finite."""


class UnknownNameError(RobofailError, KeyError):
    """A task, perturbation, method or other name is not one robofail knows."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class IndexOutOfRangeError(RobofailError, IndexError):
    """A position outside a sequence, e.g. an episode index past the end of a dataset."""


class CorruptFileError(RobofailError, OSError):
    """A file robofail should read is truncated, corrupt or not in the expected layout."""


class OutputPathError(RobofailError, OSError):
    """An output path cannot be written (missing permission, a file where a folder is needed...)."""


class IncompatibleArtifactError(RobofailError, ValueError):
    """A saved artifact (calibration, ONNX model, policy) is intact but belongs to another policy,
    task or schema version than the one it is used with."""
