"""Data: labelled splits with stable ids, built-in loaders, forget selection."""

from unlearnkit.data.dataset import Dataset, Split, sha256_of_ids
from unlearnkit.data.forget import ForgetSplit, select_forget
from unlearnkit.data.loaders import describe, from_arrays, from_file, load, names
from unlearnkit.data.torch_data import from_torch

__all__ = [
    "Dataset",
    "ForgetSplit",
    "Split",
    "describe",
    "from_arrays",
    "from_file",
    "from_torch",
    "load",
    "names",
    "select_forget",
    "sha256_of_ids",
]
