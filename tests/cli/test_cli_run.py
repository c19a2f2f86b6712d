"""The command line end to end, as a user runs it: the real entry point, exit codes and stderr."""

import json
import os
import subprocess
import sys

import pytest
from cli_in_process import cli

KEYS = {
    "method",
    "seed",
    "forget",
    "UA",
    "RA",
    "TA",
    "MIA",
    "avg_gap",
    "tow",
    "kl_forget",
    "time_s",
    "speedup",
}
RUN = [
    "run",
    "--dataset",
    "digits",
    "--model",
    "mlp",
    "--hidden",
    "32",
    "--epochs",
    "5",
    "--seeds",
    "0",
]
THREE_METHODS = [*RUN, "--forget", "random:0.1", "--methods", "golden,finetune,gradient_ascent"]


def subprocess_cli(*args):
    env = {**os.environ, "UNLEARNKIT_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-c", "from unlearnkit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def _metrics(path):
    records = json.loads((path / "results.json").read_text())
    drop = {"time_s", "speedup", "golden_time_s", "versions"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "a"
    done = cli(
        *THREE_METHODS,
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    return out, done


def test_run_writes_results_and_report(first_run):
    out, done = first_run
    records = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in records] == ["golden", "finetune", "gradient_ascent"]
    assert all(r.keys() >= KEYS for r in records)
    golden = records[0]
    assert golden["avg_gap"] == 0 and golden["tow"] == 1
    report = (out / "report.md").read_text()
    assert report.index("| golden") < report.index("| finetune")
    assert "| method | UA | RA | TA | MIA | avg_gap" in done.stdout


def test_rerun_into_a_new_folder_gives_identical_metrics(first_run, tmp_path):
    out, _ = first_run
    again = cli(
        *THREE_METHODS,
        "--out",
        str(tmp_path),
    )
    assert again.returncode == 0, again.stderr
    assert _metrics(out) == _metrics(tmp_path)


def test_rerun_into_the_same_folder_reuses_cached_models(first_run):
    out, _ = first_run
    cached = sorted((out / "cache").rglob("*.safetensors"))
    stamps = [p.stat().st_mtime_ns for p in cached]
    before = _metrics(out)
    again = cli(
        *THREE_METHODS,
        "--out",
        str(out),
    )
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in cached] == stamps
    assert _metrics(out) == before


def test_listing_commands():
    assert "mnist5k" in cli("datasets").stdout
    listing = cli("methods").stdout.splitlines()
    assert any(line.startswith("finetune") for line in listing)
    assert "Usage" in cli("run", "--help").stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "nope"], "unknown dataset 'nope'; valid names:"),
        (["--model", "vgg"], "unknown model 'vgg'; valid names:"),
        (["--methods", "golden,forgetall"], "unknown method 'forgetall'; valid names:"),
        (["--forget", "random:"], "malformed forget spec"),
        (["--forget", "class:99"], "not in this data set"),
        (["--forget", "random:5000"], "count must be in"),
        (["-o", "finetune.nope=1"], "bad options for method 'finetune'"),
    ],
)
def test_bad_input_is_one_clear_line_and_keeps_earlier_results(first_run, args, message):
    out, _ = first_run
    before = (out / "results.json").read_bytes()
    base = dict(zip(RUN[1::2], RUN[2::2], strict=True))
    base.update({"--forget": "random:0.1", "--methods": "golden,finetune", "--out": str(out)})
    extra = dict(zip(args[::2], args[1::2], strict=True))
    argv = ["run"] + [x for k, v in {**base, **extra}.items() for x in (k, v)]
    done = cli(*argv)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert (out / "results.json").read_bytes() == before


def test_ids_file_errors(tmp_path, digits):
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{int(digits.test.ids[0])}\n")
    done = cli(*RUN, "--forget", f"ids:{ids}", "--methods", "golden", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "not in this data set" in done.stderr
    ids.write_text("\n".join(str(i) for i in digits.train.ids.tolist()))
    done = cli(*RUN, "--forget", f"ids:{ids}", "--methods", "golden", "--out", str(tmp_path / "o"))
    assert done.returncode == 2 and "selects all" in done.stderr


def test_unwritable_out(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = subprocess_cli(
        *RUN, "--forget", "class:3", "--methods", "golden", "--out", str(blocker / "sub")
    )
    assert done.returncode == 2 and "cannot write to output folder" in done.stderr


def test_missing_fashion_mnist_files(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNKIT_FASHION_MNIST_DIR", str(tmp_path))
    done = cli(
        "run", "--dataset", "fashion_mnist", "--methods", "golden", "--out", str(tmp_path / "o")
    )
    assert done.returncode == 2 and "apt-get install dataset-fashion-mnist" in done.stderr


def test_corrupt_cached_checkpoint_is_reported(first_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(first_run[0], out)
    before = (out / "results.json").read_bytes()
    weights = next((out / "cache").rglob("original.safetensors"))
    weights.write_bytes(weights.read_bytes()[:-10])
    done = cli(*RUN, "--forget", "random:0.1", "--methods", "golden,finetune", "--out", str(out))
    assert done.returncode == 2 and "corrupt" in done.stderr and "Traceback" not in done.stderr
    assert (out / "results.json").read_bytes() == before
