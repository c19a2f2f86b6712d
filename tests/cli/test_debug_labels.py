"""``unlearnkit debug-labels``: flips, rankings, the curve's JSON and PNG, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_in_process import cli

import unlearnkit as uk
from unlearnkit.debugging import detection_curve, flip_labels
from unlearnkit.errors import ConfigError


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("debug")
    result = cli("debug-labels", "--dataset", "digits", "--hidden", "64", "--epochs", "10",
                 "--flip", "0.1", "--out", out, "--no-progress")  # fmt: skip
    return result, out


def test_writes_the_curve_and_its_areas(digits_run):
    result, out = digits_run
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "debug_labels.json").read_text())
    assert (out / "debug_labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record["n_flipped"] == round(0.1 * record["n_train"])
    assert set(record["auc"]) == {"puma", "loss", "self_influence", "random"}
    perfect = record["auc_perfect"]
    assert all(0 < a <= perfect for a in record["auc"].values())
    assert abs(record["auc"]["random"] - 0.5) < 0.1
    # A model that learned the clean majority finds flipped labels far above chance.
    assert record["auc"]["loss"] > 0.7 and record["auc"]["puma"] > record["auc"]["random"]
    for found in record["fraction_found"].values():
        assert found[0] == 0 and found[-1] == pytest.approx(1) and np.all(np.diff(found) >= 0)
    assert "puma" in result.stdout


def test_the_same_command_gives_the_same_numbers(digits_run, tmp_path):
    _, out = digits_run
    again = cli("debug-labels", "--dataset", "digits", "--hidden", "64", "--epochs", "10",
                "--flip", "0.1", "--out", tmp_path, "--no-progress")  # fmt: skip
    assert again.returncode == 0
    first = json.loads((out / "debug_labels.json").read_text())
    second = json.loads((tmp_path / "debug_labels.json").read_text())
    assert first["auc"] == second["auc"]


def test_flips_are_seeded_wrong_labels(digits):
    noisy, flipped = flip_labels(digits.train, 0.2, 10, seed=3)
    again, same = flip_labels(digits.train, 0.2, 10, seed=3)
    assert torch.equal(flipped, same) and torch.equal(noisy.y, again.y)
    assert int(flipped.sum()) == round(0.2 * len(digits.train))
    assert bool((noisy.y[flipped] != digits.train.y[flipped]).all())
    assert torch.equal(noisy.y[~flipped], digits.train.y[~flipped])


def test_detection_curve_areas():
    flipped = np.array([True, True, False, False, False, False, False, False, False, False])
    perfect = detection_curve(np.arange(10), flipped)[2]
    worst = detection_curve(np.arange(10)[::-1], flipped)[2]
    assert perfect == pytest.approx(1 - 0.2 / 2) and worst == pytest.approx(0.2 / 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--flip", "1.5"], "flip fraction"),
        (["--flip", "0"], "flip fraction"),
        (["--validation", "1.0"], "validation fraction"),
        (["--dataset", "nope"], "nope"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, message):
    base = {"--dataset": "digits", "--out": str(tmp_path / "out"), "--epochs": "1"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    result = cli("debug-labels", *[x for kv in base.items() for x in kv], "--no-progress")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing written for a refused run


def test_flip_rejects_a_fraction_that_flips_nothing(digits):
    with pytest.raises(ConfigError, match="flips no label"):
        flip_labels(digits.train.take(torch.arange(5)), 0.01, 10, seed=0)
    assert uk.datasets.load("digits").num_classes == 10
