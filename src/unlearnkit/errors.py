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


class UnknownExecutorError(UnknownNameError):
    pass


class UnknownEngineError(UnknownNameError):
    """No exact engine of that name (``unlearnkit.exact.get``)."""


class UnknownLearnerError(UnknownNameError):
    """No learner of that name for a partitioned engine's parts."""


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


class StoreNotFoundError(StoreError):
    """No store at the given path."""


class StoreFormatError(StoreError):
    """The directory is not a store of this kind, is corrupt, or was written by a newer unlearnkit."""


class StoreMismatchError(StoreError):
    """The store was made with another configuration or other training data."""


class StoreBusyError(StoreError):
    """Another process is writing to the store."""


class PendingRequestError(StoreError):
    """An interrupted request must be completed before a new one is accepted."""


class NotFittedError(UnlearnkitError):
    """An engine was used before ``fit`` (or ``load``)."""


class UnknownIdsError(UnlearnkitError):
    """Sample ids that were never part of the training data."""


class AlreadyDeletedError(UnknownIdsError):
    """Sample ids that were already forgotten (each sample can be forgotten once)."""


class DuplicateIdsError(ForgetSelectionError):
    """The same sample id appears more than once in one forget request."""


class RequestIdConflictError(ForgetSelectionError):
    """A forget request's ``request_id`` was already used by a request for other ids."""


class NonFiniteOutputError(UnlearnkitError, ValueError):
    """A model produces NaN or infinite outputs (an unlearning step diverged)."""


class JobFailedError(UnlearnkitError):
    """A job could not finish because its worker died (killed, out of memory) or Ray failed."""


class InverseSolveError(UnlearnkitError):
    """An inverse curvature product did not converge or met negative curvature."""


class CertificationBudgetError(UnlearnkitError):
    """A certified removal would exceed its gradient-residual budget: retrain instead."""


class BankMismatchError(UnlearnkitError):
    """A model bank was opened with a setting (data, model, forget spec, recipe) it was not built for."""


class ServiceError(UnlearnkitError):
    """The deletion-request service cannot start or serve (``unlearnkit serve``)."""


class JournalError(ServiceError):
    """The service journal is unreadable, of another format, or held by another server."""


class IdempotencyConflictError(ServiceError):
    """A deletion request's idempotency key was already used for other ids."""


class IdsRefusedError(ServiceError):
    """A deletion request names unknown, repeated, already deleted or pending ids.

    ``refused`` maps each reason (``unknown``, ``repeated``, ``already_deleted``,
    ``pending``) to the ids refused for it, so an API can return them field by field.
    """

    def __init__(self, message: str, *, refused: dict[str, list[int]]):
        super().__init__(message)
        self.refused = refused


class AuthError(ServiceError):
    """A bearer token is missing, unknown or revoked, or its role may not do this."""
