"""Bad input on the command line: exit status 2, one line ``error: ...``, nothing changed on disk.

One row per case, across ``run``, ``theory`` and ``sisa``. Every case fails while the
input is checked, before any training, so the table runs in seconds. The output
folder each command names (or the store it reads) is compared before and after:
absent stays absent, and an existing file or folder stays byte-identical.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cli_in_process import cli

from unlearnkit.exact.partitioned.store import snapshot as store_snapshot

RUN = {"--dataset": "digits", "--epochs": "1", "--methods": "golden", "--out": "{out}"}
THEORY = {"--sweep": "overlap", "--seeds": "0", "--values": "0.5", "--n-test": "10"}
FIT = {
    "--dataset": "digits", "--model": "logreg", "--shards": "2", "--slices": "1",
    "--epochs": "1", "--executor": "serial", "--out": "{out}",
}  # fmt: skip


def run(**changes: str) -> list[str]:
    return _argv(["run"], RUN, changes)


def theory(**changes: str) -> list[str]:
    return _argv(["theory"], {**THEORY, "--out": "{out}"}, changes)


def fit(**changes: str) -> list[str]:
    return _argv(["sisa", "fit"], FIT, changes)


def _argv(command: list[str], base: dict, changes: dict) -> list[str]:
    options = {**base, **{"--" + k.replace("_", "-"): v for k, v in changes.items()}}
    extra = options.pop("---o", None)
    argv = [*command, *(x for k, v in options.items() for x in (k, v))]
    return argv + (["-o", extra] if extra else [])


# (id, argv, what the one line must say). "{out}" is a fresh path, "{file}" an existing
# file, "{dir}" an existing folder, "{store}" a fitted SISA store (digits).
CASES = [
    # --forget
    ("random-nan", run(forget="random:nan"), "'nan' in 'random:nan' is not a finite number"),
    ("random-inf", run(forget="random:inf"), "is not a finite number"),
    ("random-neg-inf", run(forget="random:-inf"), "is not a finite number"),
    ("random-1e400", run(forget="random:1e400"), "is not a finite number"),
    ("random-negative", run(forget="random:-0.5"), "random fraction must be in (0, 1)"),
    ("class-unknown", run(forget="class:99"), "not in this data set"),
    ("class-negative", run(forget="class:-1"), "is not a class of this data set"),
    ("ids-file-is-a-dir", run(forget="ids:{dir}"), "does not exist"),
    # -o METHOD.PARAM=VALUE
    ("seed-abc", run(methods="finetune", _o="finetune.seed=abc"), "finetune.seed must be an integer in [0, 4294967295]; got 'abc'"),
    ("epochs-float", run(methods="finetune", _o="finetune.epochs=1.5"), "finetune.epochs must be an integer >= 1; got 1.5"),
    ("epochs-list", run(methods="finetune", _o="finetune.epochs=[1,2]"), "finetune.epochs must be an integer >= 1; got [1, 2]"),
    ("epochs-zero", run(methods="finetune", _o="finetune.epochs=0"), "finetune.epochs must be an integer >= 1; got 0"),
    ("epochs-bool", run(methods="finetune", _o="finetune.epochs=true"), "finetune.epochs must be an integer >= 1; got True"),
    ("lr-abc", run(methods="finetune", _o="finetune.lr=abc"), "finetune.lr must be a finite number > 0; got 'abc'"),
    ("alpha-nan", run(methods="kl_ft", _o="kl_ft.alpha=nan"), "kl_ft.alpha must be a finite number in (0, 1]"),
    ("alpha-big", run(methods="kl_ft", _o="kl_ft.alpha=2"), "kl_ft.alpha must be a finite number in (0, 1]; got 2.0"),
    ("target-unknown", run(methods="kl_ft", _o="kl_ft.target=onehot"), "kl_ft.target must be one of"),
    ("unknown-param", run(methods="finetune", _o="finetune.nope=1"), "no parameter 'nope'; valid parameters: batch_size"),
    ("option-of-method-not-run", run(_o="finetune.epochs=1"), "options given for methods not being run"),
    ("malformed-option", run(_o="finetune"), "must look like METHOD.PARAM=VALUE"),
    ("sisa-shards-zero", run(methods="sisa", _o="sisa.shards=0"), "sisa.shards must be an integer >= 1; got 0"),
    ("sisa-too-many-shards", run(methods="sisa", _o="sisa.shards=1000"), "use fewer shards or slices"),
    ("sisa-unknown-param", run(methods="sisa", _o="sisa.shard=2"), "no parameter 'shard'"),
    # --seeds, --data-seed
    ("seeds-negative", run(seeds="-1"), "seeds entry must be an integer in [0, 4294967295]; got -1"),
    ("seeds-beyond-int64", run(seeds=str(2**64)), f"got {2**64}"),
    ("seeds-float", run(seeds="1.5"), "--seeds must be comma-separated integers; got '1.5'"),
    ("seeds-empty", run(seeds=""), "seeds is empty"),
    ("seeds-duplicates", run(seeds="0,1,0"), "seeds repeats 0; give each seed once"),
    ("data-seed-negative", run(data_seed="-1"), "data_seed must be an integer in [0, 4294967295]"),
    # the training recipe and the model
    ("train-epochs-zero", run(epochs="0"), "training epochs must be >= 1; got 0"),
    ("train-lr-negative", run(lr="-1"), "lr > 0"),
    ("train-batch-size-zero", run(batch_size="0"), "batch_size >= 1"),
    ("train-optimizer", run(optimizer="foo"), "optimizer must be one of"),
    ("train-lr-nan", run(lr="nan"), "training.lr must be a finite number; got nan"),
    ("train-lr-inf", run(lr="inf"), "training.lr must be a finite number; got inf"),
    ("golden-config-field", run(_o='golden.config={{"epochs": "a"}}'), "golden.config.epochs must be an integer; got 'a'"),
    ("mia-max-samples-zero", run(mia_max_samples="0"), "mia_max_samples must be >= 1"),
    ("hidden-zero", run(hidden="0"), "hidden widths must be positive integers"),
    ("hidden-abc", run(hidden="abc"), "--hidden must be comma-separated integers"),
    ("cnn-on-tabular", run(model="cnn"), "cnn needs image inputs"),
    ("no-methods", run(methods=""), "no methods given"),
    ("unknown-dataset", run(dataset="nope"), "unknown dataset 'nope'"),
    # --out
    ("run-out-is-a-file", run(out="{file}"), "it is an existing file; choose another --out"),
    ("run-out-under-a-file", run(out="{file}/sub"), "is a file, not a folder; choose another --out"),
    ("theory-out-is-a-file", theory(out="{file}"), "it is an existing file; choose another --out"),
    ("theory-out-under-a-file", theory(out="{file}/sub"), "is a file, not a folder"),
    ("fit-out-is-a-file", fit(out="{file}"), "it is an existing file; choose another --out"),
    ("fit-out-under-a-file", fit(out="{file}/sub"), "is a file, not a folder"),
    # theory
    ("theory-seeds-duplicates", theory(seeds="0,0"), "seeds repeats 0"),
    ("theory-seeds-too-big", theory(seeds=str(2**40)), "must be an integer in [0, 4294967295]"),
    ("theory-values-nan", theory(values="nan"), "sweep values must be finite numbers; got nan"),
    ("theory-values-inf", theory(sweep="forget-ratio", values="inf"), "must be finite numbers"),
    ("theory-values-abc", theory(values="abc"), "--values must be comma-separated numbers"),
    # sisa fit
    ("fit-seed-negative", fit(seed="-1"), "--seed must be an integer in [0, 4294967295]; got -1"),
    ("fit-data-seed-negative", fit(data_seed="-1"), "--data-seed must be an integer in"),
    ("fit-model-options-list", fit(model_options="[1]"), "--model-options must be a JSON object"),
    ("fit-model-options-json", fit(model_options="{{"), "--model-options is not valid JSON"),
    ("fit-shards-zero", fit(shards="0"), "shards must be a positive integer; got 0"),
    ("fit-too-many-shards", fit(shards="5000"), "use fewer shards or slices"),
    ("fit-aggregation", fit(aggregation="foo"), "aggregation must be one of"),
    ("fit-executor", fit(executor="foo"), "unknown executor 'foo'"),
    ("fit-optimizer", fit(optimizer="foo"), "optimizer must be one of"),
    ("fit-lr-nan", fit(lr="nan"), "training.lr must be a finite number; got nan"),
    # sisa forget | status | evaluate
    ("forget-ids-dir", ["sisa", "forget", "{store}", "--ids", "{dir}", "--executor", "serial"], "is not an integer id"),
    ("forget-unknown-id", ["sisa", "forget", "{store}", "--ids", "99999", "--executor", "serial"], "never part of the training data"),
    ("forget-no-store", ["sisa", "forget", "{out}", "--ids", "1"], "no SISA store"),
    ("status-other-shape", ["sisa", "status", "{store}", "--dataset", "wine"], "the store was fitted on data with input shape (64,) and 10 classes; name that data (digits)"),
    ("evaluate-other-shape", ["sisa", "evaluate", "{store}", "--dataset", "breast_cancer"], "--dataset breast_cancer has input shape (30,) and 2 classes"),
    # the parser's own errors, also on one line
    ("epochs-not-int", run(epochs="abc"), "Invalid value for '--epochs'"),
    ("missing-option", ["run", "--dataset", "digits"], "Missing option"),
    ("n-test-zero", theory(n_test="0"), "Invalid value for '--n-test'"),
    ("no-such-command", ["nosuch"], "No such command 'nosuch'"),
    ("fit-model-options-widths", fit(model="mlp", model_options='{{"hidden": ["a"]}}'), "mlp hidden widths must be positive integers"),
    ("fit-limit-on-digits", fit(limit="5"), "limit"),
    ("preprocessing-unknown", run(preprocessing="zscore"), "unknown preprocessing 'zscore'"),
    ("mia-feature-unknown", run(mia_feature="loss"), "unknown MIA feature 'loss'"),
]  # fmt: skip


def _cli(argv: list[str]) -> tuple[int, str]:
    done = cli(*argv)
    return done.returncode, done.stderr


def _snapshot(path: Path) -> dict[str, str] | None:
    """Every file under ``path`` by its SHA-256, a store's database by its content (a file
    maps to itself); None when absent."""
    if not path.exists():
        return None
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return store_snapshot(path)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sisa") / "store"
    code, err = _cli([*fit()[:-1], str(path)])
    assert code == 0, err
    return path


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_exits_2_with_one_line_and_changes_nothing(tmp_path, store, argv, message):
    places = {
        "out": tmp_path / "out",
        "file": tmp_path / "a-file",
        "dir": tmp_path / "a-dir",
        "store": store,
    }
    places["file"].write_text("keep me\n")
    places["dir"].mkdir()
    argv = [a.format(**places) for a in argv]
    before = {name: _snapshot(p) for name, p in places.items()}

    code, err = _cli(argv)

    lines = err.strip().splitlines()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert message in lines[0], lines[0]
    assert {name: _snapshot(p) for name, p in places.items()} == before


def test_earlier_results_survive_a_bad_option(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("[]")
    code, err = _cli(run(out=str(out), methods="finetune", _o="finetune.epochs=0"))
    assert code == 2 and "finetune.epochs" in err
    assert _snapshot(out) == {"results.json": hashlib.sha256(b"[]").hexdigest()}
