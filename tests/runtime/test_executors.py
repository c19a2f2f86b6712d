"""Executors: same results in job order, errors surface as themselves, dead workers do not hang."""

from __future__ import annotations

import math
import operator
import os
import time

import pytest

from unlearnkit.errors import ConfigError
from unlearnkit.runtime import (
    JobFailedError,
    ProcessExecutor,
    SerialExecutor,
    UnknownExecutorError,
    get_executor,
    names,
)


def test_registry_names_and_lookup():
    assert names() == ["process", "ray", "serial"]
    assert isinstance(get_executor("serial"), SerialExecutor)
    assert get_executor("process", workers=3).workers == 3
    executor = SerialExecutor()
    assert get_executor(executor) is executor
    with pytest.raises(UnknownExecutorError, match="valid names: process, ray, serial"):
        get_executor("gpu")
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        ProcessExecutor(0)


def test_serial_runs_in_order_and_names_the_failing_job():
    executor = SerialExecutor()
    assert executor.map(operator.neg, [1, 2, 3]) == [-1, -2, -3]
    assert executor.map(operator.neg, []) == []
    with pytest.raises(ValueError, match="math domain error") as info:
        executor.map(math.sqrt, [4, -1, 9], labels=["a", "b", "c"])
    assert "raised by b on the serial executor" in info.value.__notes__[0]


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(2) as executor:
        yield executor


def test_process_results_keep_job_order_and_run_elsewhere(pool):
    assert pool.map(math.sqrt, [float(i * i) for i in range(20)]) == [float(i) for i in range(20)]
    assert pool.map(math.sqrt, []) == []
    # Jobs must be importable functions (workers unpickle them), hence operator.call.
    pids = set(pool.map(operator.call, [os.getpid] * 8))
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_process_job_error_surfaces_with_its_own_type(pool):
    started = time.monotonic()
    with pytest.raises(ValueError, match="math domain error") as info:
        pool.map(math.sqrt, [1.0, -1.0, 4.0], labels=["x", "y", "z"])
    assert "raised by y on the process executor" in info.value.__notes__[0]
    assert time.monotonic() - started < 30
    assert pool.map(abs, [-5]) == [5]  # the pool is still usable


def test_dead_worker_raises_instead_of_hanging(pool):
    started = time.monotonic()
    with pytest.raises(JobFailedError, match="worker process died"):
        pool.map(os._exit, [3, 3, 3])
    assert time.monotonic() - started < 30
    assert pool.map(abs, [-7]) == [7]  # a fresh pool replaces the broken one
