"""The one error family of vaekit: a message that names the value, the place and the fix.

Each class also inherits the matching builtin, so ``except ValueError`` keeps working.
The command line prints the message of any :class:`VaekitError` on one line and exits 2.
"""


class VaekitError(Exception):
    """Base class of every error vaekit raises on purpose."""


class DataError(VaekitError, ValueError):
    """The input data cannot be used as it is (empty, non-numeric, NaN, wrong columns...)."""


class ModelFileError(VaekitError, ValueError):
    """A model directory is missing, corrupt, truncated, foreign or of another format version."""


class TrainingError(VaekitError, RuntimeError):
    """Training cannot go on (the loss became NaN or infinite, a checkpoint does not match...)."""


class ParameterError(VaekitError, ValueError):
    """A setting is out of its allowed range or not one of its choices."""
