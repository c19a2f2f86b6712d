import os

import pytest

os.environ.setdefault("UNLEARNKIT_PROGRESS", "0")


@pytest.fixture(scope="session")
def digits():
    import unlearnkit as uk

    return uk.datasets.load("digits", seed=0)
