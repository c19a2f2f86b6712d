"""``unlearnkit sisa``: fit, forget (list and file), status and evaluate on digits."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

import unlearnkit as uk
from unlearnkit.cli import app, main
from unlearnkit.exact import SISA
from unlearnkit.exact.partitioned.store import snapshot

runner = CliRunner()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_round_trip_on_digits(tmp_path):
    store = tmp_path / "store"
    out = invoke(
        "sisa", "fit", "--dataset", "digits", "--model", "mlp", "--model-options", '{"hidden": [16]}',
        "--shards", "3", "--slices", "2", "--epochs", "3", "--executor", "serial", "--out", str(store),
    )  # fmt: skip
    assert "fitted 3 shards x 2 slices" in out and "test accuracy" in out

    out = invoke("sisa", "forget", str(store), "--ids", "0,1,2", "--executor", "serial")
    assert "request #1: forgot 3 id(s)" in out
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# more deletions\n10\n11\n")
    out = invoke("sisa", "forget", str(store), "--ids", str(ids_file), "--executor", "serial")
    assert "request #2: forgot 2 id(s)" in out

    out = invoke("sisa", "status", str(store))
    assert "3 shards x 2 slices" in out and "2 served" in out and "5 forgotten" in out
    assert "% on test" in out

    report = json.loads(invoke("sisa", "evaluate", str(store), "--json"))
    assert report["integrity"] == "ok" and report["retained"] == 1437 - 5
    assert set(report["TA_constituents"]) == {"0", "1", "2"}
    sisa = SISA.load(store, executor="serial")
    assert report["TA_vote"] == pytest.approx(sisa.accuracy(uk.datasets.load("digits").test))
    assert [r["request"] for r in sisa.requests()] == [1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forget", "{store}", "--ids", "0"], "already forgotten"),
        (["forget", "{store}", "--ids", "0,zero"], "not an integer id"),
        (["forget", "{store}"], "give --ids"),
        (["status", "{missing}"], "no SISA store"),
    ],
)
def test_errors_print_one_line_and_exit_2(tmp_path, monkeypatch, capsys, args, message):
    store = tmp_path / "store"
    SISA(model="logreg", shards=2, slices=1, epochs=1, executor="serial", store=store).fit(
        uk.datasets.load("digits").train
    ).forget([0])
    argv = [a.format(store=store, missing=tmp_path / "missing") for a in args]
    monkeypatch.setattr(sys, "argv", ["unlearnkit", "sisa", *argv])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and err.startswith("error: ") and message in err
    assert "\n" not in err


def test_a_retried_request_id_exits_0_and_says_it_was_served(tmp_path):
    store = tmp_path / "store"
    SISA(model="logreg", shards=2, slices=1, epochs=1, executor="serial", store=store).fit(
        uk.datasets.load("digits").train
    )
    forget = ("sisa", "forget", str(store), "--ids", "3,4", "--request-id", "T-1", "--executor", "serial")  # fmt: skip
    assert "request #1: forgot 2 id(s)" in invoke(*forget)
    files = snapshot(store)
    assert "already served as request 1" in invoke(*forget)
    assert snapshot(store) == files
    assert SISA.load(store, executor="serial").requests()[0]["request_id"] == "T-1"
