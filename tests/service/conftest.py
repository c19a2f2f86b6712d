"""A tiny SISA store on digits (logistic regression, 3 shards x 2 slices, 2 epochs).

It is fitted once per session; every test serves its own copy, so a test's deletions
never reach another test.
"""

from __future__ import annotations

import shutil
import time

import pytest

DATASET = {"name": "digits", "seed": 0, "options": {}}


def _fit(path, *, metadata=None, shards=3, slices=2):
    import unlearnkit as uk
    from unlearnkit.exact import SISA

    data = uk.datasets.load("digits", seed=0)
    with SISA(
        model="logreg", shards=shards, slices=slices, epochs=2, executor="serial",
        store=path, metadata=metadata,
    ) as sisa:  # fmt: skip
        sisa.fit(data.train)
    return path


@pytest.fixture(scope="session")
def fitted_store(tmp_path_factory):
    return _fit(tmp_path_factory.mktemp("fitted") / "store", metadata={"dataset": DATASET})


@pytest.fixture
def store(fitted_store, tmp_path):
    """A fresh copy of the fitted store for one test."""
    return shutil.copytree(fitted_store, tmp_path / "store")


@pytest.fixture(scope="session")
def train_ids(fitted_store):
    import unlearnkit as uk

    return [int(i) for i in uk.datasets.load("digits", seed=0).train.ids]


def _wait_for(predicate, *, timeout=20.0, what="condition"):
    """Poll ``predicate`` until it is truthy (returned), failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="session")
def wait_for():
    return _wait_for


@pytest.fixture(scope="session")
def fit_store():
    """``fit_store(path, metadata=None, shards=3, slices=2)``: fit another tiny store."""
    return _fit
