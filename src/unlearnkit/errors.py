"""Exception types. Every error a user can cause derives from :class:`UnlearnkitError`.

The command line prints ``str(error)`` on one line and exits non-zero, so each
message names the problem *and* the fix.
"""


class UnlearnkitError(Exception):
    """Base class of every error caused by input, state or configuration."""


class UnknownNameError(UnlearnkitError, KeyError):
    """A registry lookup failed; the message lists the valid names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class UnknownDatasetError(UnknownNameError):
    pass


class UnknownModelError(UnknownNameError):
    pass


class UnknownMethodError(UnknownNameError):
    pass


class DatasetError(UnlearnkitError):
    """Data could not be loaded or is malformed (missing files, bad shapes)."""


class ForgetSelectionError(UnlearnkitError):
    """A forget specification is malformed, empty, covers all of train, or names unknown ids."""


class CheckpointError(UnlearnkitError):
    """A checkpoint is missing, corrupt, or does not match what the caller expects."""


class ConfigError(UnlearnkitError):
    """A hyper-parameter or option has an invalid value."""


class OutputError(UnlearnkitError):
    """An output folder (``--out``) is a file, or cannot be created or written."""


class StoreError(UnlearnkitError):
    """A persistent store (SISA, linear engine, ...) is missing, corrupt or incompatible."""


class UnknownIdsError(UnlearnkitError):
    """Sample ids that are not in the data set (or were already deleted)."""


class NonFiniteOutputError(UnlearnkitError, ValueError):
    """A model produces NaN or infinite outputs (an unlearning step diverged)."""
