import os

import pytest
from hypothesis import settings

os.environ.setdefault("UNLEARNKIT_PROGRESS", "0")

# Property tests draw the same examples on every run, so a CI result is reproducible;
# HYPOTHESIS_PROFILE=explore draws fresh examples when hunting for new failures.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
