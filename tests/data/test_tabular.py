"""User files: CSV parsing, label mapping, one-hot encoding fitted on train, NPZ checks."""

import numpy as np
import pytest
import torch

import unlearnkit as uk
from unlearnkit.data.loaders import split_indices
from unlearnkit.errors import DatasetError


def write(path, text, *, bom=False):
    path.write_text(text, encoding="utf-8-sig" if bom else "utf-8")
    return str(path)


def table(n=30, *, labels=("cat", "dog"), header="x1,x2,label"):
    rows = [header] + [f"{i % 7},{(i * 3) % 5},{labels[i % len(labels)]}" for i in range(n)]
    return "\n".join(rows) + "\n"


def test_bom_blank_lines_and_padded_header(tmp_path):
    text = table().replace("x1,x2,label", " x1 , x2,label ").replace("\n", "\n\n", 3)
    data = uk.datasets.load(write(tmp_path / "d.csv", text, bom=True))
    assert len(data.train) + len(data.test) == 30
    assert data.info["feature_names"] == ["x1", "x2"]


def test_string_labels_map_to_sorted_indices(tmp_path):
    data = uk.datasets.load(write(tmp_path / "d.csv", table(labels=("dog", "cat", "eel"))))
    assert data.num_classes == 3
    assert data.info["label_names"] == ["cat", "dog", "eel"]
    assert data.info["labels_remapped"] is True
    assert data.schema()["label_names"] == ["cat", "dog", "eel"]


@pytest.mark.parametrize(
    "labels,names", [((1, 2, 3), ["1", "2", "3"]), ((0, 2, 5), ["0", "2", "5"])]
)
def test_gapped_integer_labels_are_remapped(tmp_path, labels, names):
    data = uk.datasets.load(write(tmp_path / "d.csv", table(labels=labels)))
    assert data.num_classes == 3
    assert sorted(torch.unique(data.train.y).tolist()) == [0, 1, 2]
    assert data.info["label_names"] == names and data.info["labels_remapped"] is True


def test_labels_already_0_to_k_are_not_remapped(tmp_path):
    data = uk.datasets.load(write(tmp_path / "d.csv", table(labels=(0, 1))))
    assert data.info["labels_remapped"] is False
    assert "labels_remapped" not in data.schema()


def test_target_and_id_columns_by_name(tmp_path):
    rows = ["kind,a,key"] + [f"{'xy'[i % 2]},{i},{1000 + i}" for i in range(20)]
    data = uk.datasets.load(
        write(tmp_path / "d.csv", "\n".join(rows)), target="kind", id_column="key"
    )
    ids = sorted(torch.cat([data.train.ids, data.test.ids]).tolist())
    assert ids == list(range(1000, 1020)) and data.input_shape == (1,)


def test_without_id_column_ids_are_row_positions(tmp_path):
    data = uk.datasets.load(write(tmp_path / "d.csv", table(n=20)))
    assert sorted(torch.cat([data.train.ids, data.test.ids]).tolist()) == list(range(20))


def test_numeric_csv_split_matches_from_arrays(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 2)).round(3), np.arange(40) % 2
    rows = ["a,b,label"] + [f"{a},{b},{t}" for (a, b), t in zip(X, y, strict=True)]
    from_csv = uk.datasets.load(write(tmp_path / "d.csv", "\n".join(rows)), seed=3)
    from_arrays = uk.datasets.from_arrays(X, y, seed=3)
    assert torch.equal(from_csv.train.ids, from_arrays.train.ids)
    assert torch.equal(from_csv.train.X, from_arrays.train.X)


def colour_csv(tmp_path, colours):
    rows = ["colour,size,label"] + [f"{c},{i % 4},{'ab'[i % 2]}" for i, c in enumerate(colours)]
    return write(tmp_path / "c.csv", "\n".join(rows))


def test_categorical_auto_one_hot_encodes_sorted_training_categories(tmp_path):
    colours = ["red", "green", "blue"] * 10
    data = uk.datasets.load(colour_csv(tmp_path, colours))
    assert data.info["categories"] == {"colour": ["blue", "green", "red"]}
    assert data.info["feature_names"] == ["colour=blue", "colour=green", "colour=red", "size"]
    assert data.input_shape == (4,)
    assert torch.equal(data.train.X[:, :3].sum(1), torch.ones(len(data.train)))
    for row, sample in enumerate(data.train.ids.tolist()):  # ids are data row positions
        expected = [float(colours[sample] == c) for c in ("blue", "green", "red")]
        assert data.train.X[row, :3].tolist() == expected


def test_vocabulary_comes_from_training_rows_only(tmp_path):
    labels = np.arange(30) % 2
    _, test_rows = split_indices(labels, test_fraction=0.2, seed=0, stratify=True)
    colours = ["red"] * 30
    colours[int(test_rows[0])] = "violet"  # only in a test row
    data = uk.datasets.load(colour_csv(tmp_path, colours))
    assert data.info["categories"] == {"colour": ["red"]}
    assert "colour=violet" not in data.info["feature_names"]
    unseen = int(torch.nonzero(data.test.ids == int(test_rows[0]))[0, 0])
    assert data.test.X[unseen, 0].item() == 0.0  # an unseen test category encodes to zeros
    assert data.test.X[:, 0].sum().item() == len(data.test) - 1


def test_categorical_by_name_encodes_a_numeric_column(tmp_path):
    data = uk.datasets.load(
        colour_csv(tmp_path, ["red", "blue"] * 10), categorical=["colour", "size"]
    )
    assert data.info["categories"]["size"] == ["0", "1", "2", "3"]
    assert data.input_shape == (6,)


def test_unknown_categorical_column_lists_feature_columns(tmp_path):
    with pytest.raises(DatasetError, match="'shape'.*feature columns: colour, size"):
        uk.datasets.load(colour_csv(tmp_path, ["red"] * 10), categorical=["shape"])


BAD = {
    "ragged": ("a,b,label\n1,2,0\n3,4\n5,6,1\n7,8,0\n", {}, "line 3: 2 values.*'label'"),
    "extra": ("a,b,label\n1,2,0\n3,4,1,9\n5,6,1\n", {}, "line 3: 4 values.*extra value '9'"),
    "empty": ("a,b,label\n1,2,0\n\n3,,1\n5,6,1\n", {}, "line 4, column 'b': missing value ''"),
    "NA": ("a,b,label\n1,2,0\n3,4,1\nNA,6,1\n", {}, "line 4, column 'a': missing value 'NA'"),
    "NaN": ("a,b,label\n1,2,0\n3,NaN,1\n5,6,1\n", {}, "line 3, column 'b': missing value 'NaN'"),
    "N/A text": (
        "a,b,label\nx,2,0\nn/a,4,1\ny,6,1\n",
        {},
        "line 3, column 'a': missing value 'n/a'",
    ),
    "null label": ("a,b,label\n1,2,0\n3,4,null\n5,6,1\n", {}, "line 3, column 'label'"),
    "text": (
        "a,b,label\n1,2,0\n3,x4,1\n5,6,1\n",
        {"categorical": "none"},
        "line 3, column 'b': 'x4' is not a number.*--categorical b",
    ),
    "inf": ("a,b,label\n1,2,0\n3,inf,1\n5,6,1\n", {}, "line 3, column 'b': 'inf' is not a finite"),
    "no target": ("a,b,y\n1,2,0\n3,4,1\n", {}, "no target column 'label'.*a, b, y.*--target"),
    "duplicate ids": (
        "id,a,label\n1,2,0\n2,2,1\n1,4,1\n",
        {},
        "column 'id': id 1 is on lines 2, 4",
    ),
    "non-integer id": ("id,a,label\n1,2,0\n2.5,2,1\n3,4,1\n", {}, "line 3, column 'id': '2.5'"),
    "duplicate header": (
        "a,b,a,label\n1,2,3,0\n4,5,6,1\n",
        {},
        "line 1: column name 'a' appears twice",
    ),
    "fractional label": ("a,label\n1,0\n2,0.5\n3,1\n", {}, "line 3, column 'label': '0.5'"),
    "regression text": (
        "a,label\n1,0.1\n2,high\n3,1\n",
        {"task": "regression"},
        "line 3, column 'label': 'high' is not a number; a regression target must be numeric",
    ),
    "semicolons": ("a;b;label\n1;2;0\n3;4;1\n", {}, "separated by semicolons"),
    "latin-1": (b"a,b,label\n1,2,0\n3,\xe9,1\n", {}, "not UTF-8"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_csv_names_file_line_and_column(tmp_path, case):
    text, options, match = BAD[case]
    path = tmp_path / "bad.csv"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(DatasetError, match=match) as info:
        uk.datasets.load(str(path), **options)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_builtin_data_set_refuses_file_options():
    with pytest.raises(DatasetError, match="does not take.*target"):
        uk.datasets.load("digits", target="kind")


# --- NPZ ---------------------------------------------------------------------------------


def test_npz_string_labels_and_test_part(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        X=rng.normal(size=(20, 3)),
        y=np.array(["b", "c"] * 10),
        X_test=rng.normal(size=(6, 3)),
        y_test=np.array(["a", "b", "c"] * 2),
    )
    data = uk.datasets.load(str(tmp_path / "d.npz"))
    assert data.info["label_names"] == ["a", "b", "c"] and data.num_classes == 3
    assert sorted(torch.unique(data.train.y).tolist()) == [1, 2]
    assert len(data.test) == 6


def test_npz_gapped_labels_are_remapped(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((20, 2)), y=np.array([1, 3] * 10))
    data = uk.datasets.load(str(tmp_path / "d.npz"))
    assert data.num_classes == 2 and data.info["label_names"] == ["1", "3"]


@pytest.mark.parametrize(
    "arrays,match",
    [
        ({"X": np.zeros(10), "y": np.zeros(10, int)}, "X must be .n, features"),
        ({"X": np.zeros((10, 2)), "y": np.zeros(9, int)}, "X must be .n, features"),
        ({"X": np.full((10, 2), "a"), "y": np.zeros(10, int)}, "features must be numbers"),
        ({"X": np.zeros((10, 2)), "y": np.full(10, 0.5)}, "non-integer"),
        ({"X": np.zeros((10, 2)), "Y": np.zeros(10, int)}, "unexpected arrays \\['Y'\\]"),
        ({"X": np.zeros((10, 2)), "y": np.zeros(10, int), "X_test": np.zeros((2, 2))}, "together"),
        (
            {"X": np.zeros((10, 2)), "y": np.zeros(10, int), "ids": np.zeros(10)},
            "ids must be 10 integers",
        ),
        ({"X": np.array([[0.0], [np.nan]] * 5), "y": np.zeros(10, int)}, "X\\[1\\] holds NaN"),
        (
            {
                "X": np.zeros((10, 2)),
                "y": np.zeros(10, int),
                "X_test": np.zeros((2, 3)),
                "y_test": np.zeros(2, int),
            },
            "must match",
        ),
    ],
)
def test_bad_npz_is_refused_clearly(tmp_path, arrays, match):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=match):
        uk.datasets.load(str(tmp_path / "d.npz"))


def test_npz_object_arrays_stay_refused(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.zeros((4, 2)), y=np.array([0, "a", None, 1], dtype=object))
    with pytest.raises(DatasetError, match="'y' cannot be read without pickle"):
        uk.datasets.load(str(tmp_path / "d.npz"))
