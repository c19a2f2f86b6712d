"""User data held in torch: tensors or a ``torch.utils.data.Dataset`` with the user's own ids.

>>> import torch
>>> from torch.utils.data import TensorDataset
>>> X, y = torch.randn(30, 4), torch.arange(30) % 3
>>> data = from_torch(TensorDataset(X, y), ids=torch.arange(100, 130), seed=0)
>>> len(data.train), len(data.test), int(data.train.ids.min()) >= 100
(24, 6, True)
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import TensorDataset

from unlearnkit.data.dataset import Dataset
from unlearnkit.data.loaders import from_arrays
from unlearnkit.errors import DatasetError


def _stack(source, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) arrays from a ``(X, y)`` tensor pair or a map-style dataset of ``(x, y)`` items."""
    if isinstance(source, tuple | list) and len(source) == 2:
        X, y = source
    elif isinstance(source, TensorDataset) and len(source.tensors) == 2:
        X, y = source.tensors  # no per-item loop for the common case
    elif isinstance(source, TorchDataset):
        try:
            n = len(source)
        except TypeError:
            raise DatasetError(
                f"{what} must have a length (a map-style torch Dataset); "
                "iterable-style datasets cannot be split by id"
            ) from None
        items = [source[i] for i in range(n)]
        if not items or not all(isinstance(it, tuple | list) and len(it) == 2 for it in items):
            raise DatasetError(f"{what} must yield (features, label) pairs")
        X = torch.stack([torch.as_tensor(x) for x, _ in items])
        y = torch.stack([torch.as_tensor(t) for _, t in items])
    else:
        raise DatasetError(
            f"{what} must be a (X, y) pair of tensors or a torch.utils.data.Dataset; "
            f"got {type(source).__name__}"
        )
    as_np = lambda t: t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return as_np(X), as_np(y)


def from_torch(
    train,
    test=None,
    *,
    ids=None,
    ids_test=None,
    name: str = "torch",
    task: str = "classification",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """A :class:`Dataset` from user tensors, without going through the built-in loaders.

    ``train`` (and ``test``) is a ``(X, y)`` pair of tensors or a map-style
    ``torch.utils.data.Dataset`` of ``(x, y)`` items. ``ids`` are the user's own
    sample ids (one unique integer per sample; default ``0..n-1``): forget
    requests and reports name samples by them. Without ``test`` a seeded
    stratified split is made. Features are kept as given: a model built by
    :func:`unlearnkit.models.make` fits its own preprocessing when it is trained.
    """
    X, y = _stack(train, "train")
    X_test = y_test = None
    if test is not None:
        X_test, y_test = _stack(test, "test")
    as_ids = lambda v: None if v is None else np.asarray(torch.as_tensor(v).cpu(), dtype=np.int64)
    return from_arrays(
        X, y, ids=as_ids(ids), X_test=X_test, y_test=y_test, ids_test=as_ids(ids_test),
        name=name, task=task, test_fraction=test_fraction, seed=seed,
    )  # fmt: skip


__all__ = ["from_torch"]
