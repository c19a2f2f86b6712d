"""``unlearnkit run`` (and ``sisa fit``) on the user's own CSV, as a user runs them."""

import json

import pytest
from cli_in_process import cli

import unlearnkit as uk
from unlearnkit.exact import SISA


def pets_csv(path):
    """Excel-style "CSV UTF-8": a BOM, a padded header, a blank line, string labels."""
    rows = [" weight ,kind,colour,target"]
    for i in range(48):
        rows.append(
            f"{i % 11}.5,{'ab'[i % 2]},{('red', 'green', 'blue')[i % 3]},{('dog', 'cat')[i % 2]}"
        )
        if i == 20:
            rows.append("")
    path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    return path


RUN = ["run", "--model", "mlp", "--hidden", "8", "--epochs", "1", "--seeds", "0"]


def test_bom_csv_with_string_labels_and_categories_runs_end_to_end(tmp_path):
    data, out = pets_csv(tmp_path / "pets.csv"), tmp_path / "out"
    done = cli(
        *RUN, "--dataset", data, "--target", "target", "--forget", "class:dog",
        "--methods", "golden,finetune", "--out", out,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = (out / "report.md").read_text()
    assert "Classes: 0 = cat, 1 = dog" in report
    assert "One-hot encoded `colour`: blue, green, red" in report
    assert "One-hot encoded `kind`: a, b" in report
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["golden", "finetune"]
    config = records[0]["config"]
    assert config["dataset_options"] == {"target": "target"}
    assert config["data"]["label_names"] == ["cat", "dog"]
    assert config["data"]["categories"] == {"colour": ["blue", "green", "red"], "kind": ["a", "b"]}
    loaded = uk.datasets.load(str(data), target="target")
    dogs = int((loaded.train.y == 1).sum())  # class:dog named class 1, every dog of train
    assert records[0]["n_forget"] == dogs and records[0]["forget"] == "class:dog"


def test_categorical_list_and_id_column(tmp_path):
    rows = ["key,size,label"] + [f"{500 + i},{i % 3},{i % 2}" for i in range(30)]
    (tmp_path / "d.csv").write_text("\n".join(rows))
    train_ids = uk.datasets.load(str(tmp_path / "d.csv"), id_column="key").train.ids
    assert int(train_ids.min()) >= 500
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(map(str, train_ids[:2].tolist())))
    done = cli(
        *RUN, "--dataset", tmp_path / "d.csv", "--id-column", "key", "--categorical", "size",
        "--forget", f"ids:{ids}", "--methods", "golden", "--out", tmp_path / "out",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / "results.json").read_text())[0]
    assert record["n_forget"] == 2 and record["config"]["data"]["categories"] == {
        "size": ["0", "1", "2"]
    }


GOOD = ["a,b,label", "1,2,0", "3,4,1", "5,6,0", "7,8,1"]


def _bad(line: int, text: str) -> str:
    rows = list(GOOD)
    rows[line - 1] = text
    return "\n".join(rows) + "\n"


@pytest.mark.parametrize(
    "text,options,where",
    [
        (_bad(3, "3,4"), [], "line 3"),
        (_bad(3, "3,,1"), [], "line 3, column 'b'"),
        (_bad(4, "NA,6,0"), [], "line 4, column 'a'"),
        (_bad(2, "1,two,0"), ["--categorical", "none"], "line 2, column 'b'"),
        (_bad(1, "a,b,y"), [], "no target column 'label'"),
        ("id,a,label\n1,2,0\n2,3,1\n1,4,0\n3,5,1\n", [], "column 'id': id 1 is on lines 2, 4"),
        (_bad(1, "a,a,label"), [], "line 1: column name 'a'"),
    ],
    ids=["ragged", "empty", "NA", "non-numeric", "no target", "duplicate ids", "duplicate header"],
)
def test_bad_csv_exits_2_with_one_line(tmp_path, text, options, where):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    out = tmp_path / "out"
    done = cli(*RUN, "--dataset", path, *options, "--methods", "golden", "--out", out)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr
    assert str(path) in lines[0] and where in lines[0]
    assert not out.exists()


def test_csv_options_with_a_builtin_data_set_exit_2():
    done = cli(*RUN, "--dataset", "digits", "--target", "kind", "--methods", "golden", "--out", "x")
    assert done.returncode == 2 and "apply to .csv/.npz files" in done.stderr


def test_sisa_fit_records_csv_options_for_status(tmp_path):
    data, store = pets_csv(tmp_path / "pets.csv"), tmp_path / "store"
    done = cli(
        "sisa", "fit", "--dataset", data, "--target", "target", "--model", "mlp",
        "--model-options", '{"hidden": [8]}', "--shards", "2", "--epochs", "1",
        "--executor", "serial", "--out", store,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = SISA.load(store, executor="serial").config_
    assert config["metadata"]["dataset"]["options"] == {"target": "target"}
    status = cli("sisa", "status", store)
    assert status.returncode == 0 and "% on test" in status.stdout, status.stderr
