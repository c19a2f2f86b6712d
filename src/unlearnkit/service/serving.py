"""The engine behind the service, and the frozen model version that answers predictions.

The service writes through one engine object (the worker's) and answers
predictions from a :class:`Snapshot`: the engine's ``as_module()`` taken right
after a commit. The module holds its weights in memory, so it keeps answering
from the old version while the engine retrains and deletes the old files, and it
is replaced as a whole, by one reference swap, when the next version commits.

**Model version.** The SHA-256 of the served module: its class, its plain
attributes (SISA's aggregation and class count) and every parameter and buffer
(name, dtype, shape and bytes, sorted by name), prefixed with the engine's name.
It is a content hash of exactly what answers predictions, so it changes iff the
served model changes (a deletion that retrains nothing leaves it as it was), and
two stores that hold the same weights have the same version.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from unlearnkit.errors import StoreFormatError, StoreNotFoundError

VERSION_PREFIX = b"unlearnkit-model-version-1"


def persistent_engines() -> list[type]:
    """The registered engines whose state lives in a store directory."""
    from unlearnkit import exact

    return [exact.get(name) for name in exact.names() if exact.get(name).persistent]


def open_engine(store: str | os.PathLike, *, executor: str = "serial"):
    """Load the persistent engine whose store is ``store`` (SISA, ARCANE, ...).

    Each persistent engine is asked in turn; one that finds another engine's store
    refuses it with :class:`~unlearnkit.errors.StoreFormatError`.
    """
    store = Path(store)
    if not store.is_dir():
        raise StoreNotFoundError(
            f"no store at {store}; fit one first, e.g. 'unlearnkit sisa fit --dataset digits "
            f"--out {store}'"
        )
    refusals = []
    for engine_class in persistent_engines():
        try:
            return engine_class.load(store, executor=executor, progress=False)
        except StoreFormatError as exc:
            refusals.append(f"{engine_class.name}: {exc}")
    raise StoreFormatError(
        f"{store} is not the store of a persistent engine ({'; '.join(refusals)}); point "
        "--store to a directory made by 'unlearnkit sisa fit' or 'unlearnkit arcane fit'"
    )


def fitted_ids(engine):
    """Every id the engine was fitted on (deleted ones included), sorted int64.

    The partitioned engines (SISA, ARCANE) keep it as ``fitted_ids_``; for any other
    engine it is its retained ids plus its deleted ones.
    """
    import numpy as np

    fitted = getattr(engine, "fitted_ids_", None)
    if fitted is not None:
        return np.asarray(fitted, dtype=np.int64)
    retained = engine.retained().ids.numpy()
    return np.union1d(retained, np.asarray(engine.deleted_ids_, dtype=np.int64))


def model_version(module, *, engine_name: str) -> str:
    """The content hash of a served module (see the module docstring)."""
    import torch

    digest = hashlib.sha256(VERSION_PREFIX)
    digest.update(engine_name.encode() + b"\0" + type(module).__qualname__.encode() + b"\0")
    plain = sorted(
        (k, repr(v))
        for k, v in vars(module).items()
        if isinstance(v, (str, int, float, bool)) and not k.startswith("_") and k != "training"
    )
    digest.update(repr(plain).encode())
    for name, tensor in sorted(module.state_dict().items()):
        shape = tuple(tensor.shape)
        tensor = (
            tensor.detach().cpu().contiguous().reshape(-1)
        )  # 0-d tensors cannot be viewed as bytes
        digest.update(f"{name}|{tensor.dtype}|{shape}\0".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


@dataclass
class Snapshot:
    """One committed model version: the module answering predictions, and its numbers."""

    module: object
    version: str
    samples: int
    deleted: int
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    accuracy: float | None = None
    accuracy_done: bool = False
    _accuracy_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def predict_proba(self, features):
        import torch

        X = torch.as_tensor(features, dtype=torch.float32)
        if self.input_shape is not None:
            X = X.reshape(len(X), *self.input_shape)
        with torch.inference_mode():
            return torch.softmax(self.module(X), dim=1)

    def score(self, test) -> float | None:
        """Percentage of ``test`` this version classifies correctly, computed once."""
        if test is None:
            return None
        with self._accuracy_lock:
            if not self.accuracy_done:
                correct = 0
                for start in range(0, len(test), 4096):
                    probabilities = self.predict_proba(test.X[start : start + 4096])
                    correct += int((probabilities.argmax(1) == test.y[start : start + 4096]).sum())
                self.accuracy = 100.0 * correct / len(test) if len(test) else None
                self.accuracy_done = True
        return self.accuracy


def snapshot(engine) -> Snapshot:
    """Freeze the engine's current model as a :class:`Snapshot` (loads its weights)."""
    module = engine.as_module()
    module.eval()
    status = engine.status()
    config = getattr(engine, "config_", {}) or {}
    data = config.get("data", {})
    shape = data.get("input_shape")
    return Snapshot(
        module=module,
        version=model_version(module, engine_name=engine.name),
        samples=int(status.get("samples", 0)),
        deleted=len(engine.deleted_ids_),
        input_shape=tuple(shape) if shape is not None else None,
        num_classes=data.get("num_classes"),
    )


def held_out(engine) -> tuple[object | None, str]:
    """The test split of the data set the store records, and a note saying what it is.

    ``unlearnkit sisa fit`` records the data set (name, split seed, options) in the
    store's metadata, as ``sisa status`` uses it; a store fitted from Python without
    that metadata has no held-out data, and the note says why accuracy is missing.
    """
    reference = (engine.status().get("metadata") or {}).get("dataset")
    if not reference:
        return None, (
            "the store records no data set (fit it with 'unlearnkit sisa fit' or 'arcane fit', or pass "
            "metadata={'dataset': {'name': ..., 'seed': ...}}), so there is no held-out data"
        )
    from unlearnkit import data

    try:
        loaded = data.load(
            reference["name"], seed=reference["seed"], **reference.get("options", {})
        )
    except Exception as exc:  # a missing file must not stop the service: report it instead
        return None, f"the store's data set {reference['name']!r} cannot be loaded here ({exc})"
    return loaded.test, (
        f"test split of {reference['name']} (seed {reference['seed']}, {len(loaded.test)} samples)"
    )


__all__ = [
    "Snapshot",
    "fitted_ids",
    "held_out",
    "model_version",
    "open_engine",
    "persistent_engines",
    "snapshot",
]
