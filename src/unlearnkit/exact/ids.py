"""One policy for the ids of a forget request, shared by every exact engine.

- an empty request, or ids that are not integers, is a :class:`ForgetSelectionError`;
- the same id twice in one request is a :class:`DuplicateIdsError` naming it (a
  repeated id is more likely a caller's bug than an intent, so it is not merged);
- an id that was never trained on is an :class:`UnknownIdsError`;
- an id forgotten by an earlier request is an :class:`AlreadyDeletedError`.

>>> import numpy as np
>>> coerce_forget_ids([7, 3], known=np.array([1, 3, 7]), deleted=np.array([1])).tolist()
[3, 7]
>>> coerce_forget_ids([3, 3], known=np.array([3]), deleted=np.array([], dtype=np.int64))
Traceback (most recent call last):
...
unlearnkit.errors.DuplicateIdsError: id 3 appears more than once in this request; name each sample once
"""

from __future__ import annotations

import numpy as np

from unlearnkit.errors import (
    AlreadyDeletedError,
    DuplicateIdsError,
    ForgetSelectionError,
    UnknownIdsError,
)


def _first(values: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in values[:k])
    return shown + (f" (and {len(values) - k} more)" if len(values) > k else "")


def as_id_array(ids) -> np.ndarray:
    """``ids`` (an int, a sequence, a NumPy array or a torch tensor) as a 1-D int64 array."""
    if hasattr(ids, "detach"):  # a torch tensor, without importing torch here
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ForgetSelectionError(f"sample ids must be a flat list; got shape {list(arr.shape)}")
    if arr.size == 0:
        raise ForgetSelectionError("the id list is empty; pass at least one sample id to forget")
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise ForgetSelectionError(
            f"sample ids must be integers; got values of type {arr.dtype} (e.g. {arr[0]!r})"
        )
    if arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max:
        raise UnknownIdsError("sample ids must fit in int64")
    return arr.astype(np.int64)


def coerce_forget_ids(ids, *, known: np.ndarray, deleted: np.ndarray) -> np.ndarray:
    """The request's ids, sorted, after the policy checks above.

    ``known`` holds every id the engine was fitted on (deleted ones included),
    ``deleted`` those forgotten so far.
    """
    arr = np.sort(as_id_array(ids))
    repeated = np.unique(arr[1:][arr[1:] == arr[:-1]])
    if repeated.size:
        raise DuplicateIdsError(
            f"id{'s' if repeated.size > 1 else ''} {_first(repeated)} "
            f"appear{'' if repeated.size > 1 else 's'} more than once in this request; "
            "name each sample once"
        )
    unknown = arr[~np.isin(arr, known)]
    if unknown.size:
        raise UnknownIdsError(
            f"{unknown.size} id(s) were never part of the training data (first: {_first(unknown)}); "
            "use ids of the training samples"
        )
    gone = arr[np.isin(arr, deleted)]
    if gone.size:
        raise AlreadyDeletedError(
            f"{gone.size} id(s) were already forgotten (first: {_first(gone)}); "
            "each sample can be forgotten once"
        )
    return arr


__all__ = ["as_id_array", "coerce_forget_ids"]
