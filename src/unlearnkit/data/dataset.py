"""Labelled sample sets with stable ids.

Every sample carries an ``int64`` id that never changes: forget requests,
checkpoint metadata and reports all name samples by id, never by position.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from unlearnkit.errors import DatasetError, UnknownIdsError


@dataclass(frozen=True, eq=False)
class Split:
    """An ordered set of samples: ``ids`` (int64), features ``X`` and targets ``y``.

    ``y`` is int64 class labels for classification and float for regression.

    >>> s = Split(ids=torch.arange(4), X=torch.zeros(4, 2), y=torch.tensor([0, 1, 0, 1]))
    >>> len(s), s.select([3, 1]).ids.tolist()
    (4, [3, 1])
    """

    ids: torch.Tensor
    X: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.ids.dtype != torch.int64 or self.ids.ndim != 1:
            raise DatasetError("sample ids must be a 1-D int64 tensor")
        if len(self.X) != n or len(self.y) != n:
            raise DatasetError(
                f"ids, X and y must have the same length; got {n}, {len(self.X)}, {len(self.y)}"
            )
        if n and torch.unique(self.ids).numel() != n:
            raise DatasetError("sample ids must be unique; found duplicates")

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: torch.Tensor) -> Split:
        """Rows by position (an index tensor or a boolean mask)."""
        return Split(ids=self.ids[index], X=self.X[index], y=self.y[index])

    def positions(self, ids) -> torch.Tensor:
        """Positions of ``ids`` in this split, in the order given; unknown ids raise."""
        wanted = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        order = torch.argsort(self.ids)
        sorted_ids = self.ids[order]
        where = torch.searchsorted(sorted_ids, wanted).clamp(max=max(len(self) - 1, 0))
        found = (sorted_ids[where] == wanted) if len(self) else torch.zeros_like(wanted, dtype=bool)
        if not bool(found.all()):
            missing = wanted[~found][:5].tolist()
            raise UnknownIdsError(
                f"{int((~found).sum())} id(s) are not in this data set (first: {missing}); "
                "use ids from the train part"
            )
        return order[where]

    def select(self, ids) -> Split:
        """Rows with the given ids, in the order given."""
        return self.take(self.positions(ids))

    def without(self, ids) -> Split:
        """This split minus the given ids, keeping the original order."""
        drop = torch.isin(self.ids, torch.as_tensor(np.asarray(ids, dtype=np.int64)))
        return self.take(~drop)

    def ids_sha256(self) -> str:
        """SHA-256 of the sorted ids: names *which* samples, independent of order."""
        return sha256_of_ids(self.ids)


def sha256_of_ids(ids) -> str:
    arr = np.sort(np.asarray(ids, dtype=np.int64))
    return hashlib.sha256(arr.astype("<i8").tobytes()).hexdigest()


# The keys of ``Dataset.info`` that describe the schema (see :meth:`Dataset.schema`).
SCHEMA_KEYS = ("label_names", "labels_remapped", "categories")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named data set with ``train`` and ``test`` parts.

    ``input_shape`` is the shape of one sample (``(64,)`` for digits, ``(1, 28, 28)``
    for MNIST images); ``num_classes`` is 0 for regression.
    """

    name: str
    train: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    task: str = "classification"
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        overlap = torch.isin(self.train.ids, self.test.ids)
        if bool(overlap.any()):
            raise DatasetError("train and test share sample ids; ids must be unique across parts")

    def schema(self) -> dict:
        """What a results record needs to read class indices and encoded features back.

        The original labels of the classes (``label_names``, index = class) and whether
        they were remapped to 0..K-1, and the vocabulary of each one-hot encoded column;
        empty for data sets whose classes are already 0..K-1 and have no such columns.
        """
        return {key: self.info[key] for key in SCHEMA_KEYS if self.info.get(key)}

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, test={len(self.test)}, "
            f"classes={self.num_classes}, input_shape={self.input_shape})"
        )
