import json

import pytest

from unlearnkit.errors import ConfigError
from unlearnkit.experiment import Experiment, run_experiment
from unlearnkit.training import TrainConfig

SMALL = TrainConfig(epochs=3)


def test_a_diverging_method_is_recorded_not_fatal(tmp_path):
    exp = Experiment(
        dataset="digits",
        model="mlp",
        forget=["class:3"],
        methods=["golden", "gradient_ascent", "finetune"],
        train=SMALL,
        model_options={"hidden": [16]},
        method_options={"gradient_ascent": {"lr": 1e6, "epochs": 3}},
    )
    records = run_experiment(exp, out=tmp_path, progress=False)
    by_method = {r["method"]: r for r in records}
    assert by_method["gradient_ascent"]["diverged"] is True
    assert by_method["gradient_ascent"]["UA"] is None
    assert by_method["finetune"]["diverged"] is False and by_method["finetune"]["UA"] is not None
    assert "gradient_ascent on `class:3`, seed 0" in (tmp_path / "report.md").read_text()
    json.loads((tmp_path / "results.json").read_text())  # strict JSON: no NaN tokens
    page = (tmp_path / "report.html").read_text()  # beside report.md, figures inline
    assert "gradient_ascent on class:3, seed 0" in page and 'src="data:image/png;base64,' in page
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cache", "report.html", "report.md", "results.json"
    ]  # fmt: skip


def test_options_for_methods_not_run_are_refused(tmp_path):
    exp = Experiment(dataset="digits", model="mlp", forget=["class:3"], methods=["golden"],
                     method_options={"kl_ft": {"alpha": 0.5}})  # fmt: skip
    with pytest.raises(ConfigError, match="not being run"):
        run_experiment(exp, out=tmp_path)
    assert not (tmp_path / "results.json").exists()


def test_sisa_runs_beside_the_approximate_methods(tmp_path):
    exp = Experiment(
        dataset="digits",
        model="mlp",
        forget=["random:5"],
        methods=["golden", "sisa"],
        train=SMALL,
        model_options={"hidden": [16]},
        method_options={"sisa": {"shards": 3, "slices": 2}},
    )
    records = run_experiment(exp, out=tmp_path, progress=False)
    sisa = records[-1]
    assert sisa["method"] == "sisa" and sisa["identical_to_golden"] is True
    assert sisa["avg_gap"] == 0  # compared with its own golden, SISA is exact
    assert sisa["TA_monolithic_golden"] == records[0]["TA"]
    with pytest.raises(ConfigError, match="bad options for method .sisa.: no parameter .shard."):
        run_experiment(
            Experiment(dataset="digits", model="mlp", forget=["random:5"], methods=["sisa"],
                       method_options={"sisa": {"shard": 3}}),
            out=tmp_path,
        )  # fmt: skip


def test_every_engine_runs_beside_golden_on_the_linear_model(tmp_path):
    exp = Experiment(
        dataset="digits",
        model="linear",
        forget=["random:5"],
        methods=["golden", "sisa", "exact_ridge", "arcane"],
        train=TrainConfig(epochs=2),
        method_options={"sisa": {"shards": 2, "slices": 2}, "arcane": {"blocks": 2}},
    )
    by_method = {r["method"]: r for r in run_experiment(exp, out=tmp_path, progress=False)}
    for name in ("sisa", "exact_ridge", "arcane"):
        record = by_method[name]
        assert record["identical_to_golden"] is True
        assert record["TA_monolithic_golden"] == by_method["golden"]["TA"]
        assert record["engine"]["forget"]["request"] == 1 and record["n_forget"] == 5
        assert record["speedup_vs_monolithic"] > 0
    assert by_method["sisa"]["max_relative_difference"] == 0.0
    assert by_method["sisa"]["params"] == {"shards": 2, "slices": 2, "aggregation": "vote", "executor": "serial"}  # fmt: skip
    assert by_method["exact_ridge"]["max_relative_difference"] <= 1e-8
    assert by_method["arcane"]["max_relative_difference"] == 0.0
    assert by_method["exact_ridge"]["params"] == {"ridge": 1.0}
    assert by_method["exact_ridge"]["engine"]["bit_exact"] is False
    json.loads((tmp_path / "results.json").read_text())


def test_an_unknown_name_lists_methods_and_engines(tmp_path):
    from unlearnkit.errors import UnknownMethodError

    exp = Experiment(dataset="digits", model="mlp", forget=["class:3"], methods=["nope"])
    with pytest.raises(UnknownMethodError, match="unknown method 'nope'; valid names: .*exact_ridge.*golden.*sisa"):  # fmt: skip
        run_experiment(exp, out=tmp_path)


def test_a_method_that_needs_validation_gets_one_held_out_of_every_training(tmp_path):
    exp = Experiment(dataset="digits", model="mlp", forget=["class:3", "random:0.05"],
                     methods=["golden", "puma"], train=SMALL, model_options={"hidden": [16]})  # fmt: skip
    assert exp.held_out_fraction() == 0.1
    records = run_experiment(exp, out=tmp_path, progress=False)
    assert {r["method"] for r in records} == {"golden", "puma"}
    assert all(r["config"]["validation"] == 0.1 for r in records)
    # One original per seed serves every spec: the training set is shared.
    assert sum(1 for _ in (tmp_path / "cache" / "seed0").glob("original*.safetensors")) == 1
    assert all(r["n_retain"] + r["n_forget"] < 1437 for r in records)
    plain = Experiment(dataset="digits", model="mlp", forget=["class:3"], methods=["golden"])
    assert plain.held_out_fraction() == 0 and "validation" not in plain.describe()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": ["puma"], "validation": 0.0}, "needs a validation split"),
        ({"methods": ["certified_logreg"]}, "--model logreg"),
    ],
)
def test_method_needs_are_checked_before_any_work(tmp_path, changes, message):
    options = {"dataset": "digits", "model": "mlp", "forget": ["class:3"], **changes}
    with pytest.raises(ConfigError, match=message):
        run_experiment(Experiment(**options), out=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
