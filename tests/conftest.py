import os

import pytest

os.environ.setdefault("UNLEARNKIT_PROGRESS", "0")


@pytest.fixture(scope="session")
def digits():
    import unlearnkit as uk

    return uk.datasets.load("digits", seed=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """For tiny problems: one thread avoids oversubscribing the shared cores (40x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
