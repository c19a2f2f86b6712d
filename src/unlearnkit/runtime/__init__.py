"""Runtime: executors that run independent jobs serially, in local processes, or on Ray."""

from unlearnkit.runtime.executors import (
    Executor,
    JobFailedError,
    ProcessExecutor,
    RayExecutor,
    SerialExecutor,
    UnknownExecutorError,
    get_executor,
    names,
)

__all__ = [
    "Executor",
    "JobFailedError",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "UnknownExecutorError",
    "get_executor",
    "names",
]
