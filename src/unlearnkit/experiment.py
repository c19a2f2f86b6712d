"""The comparison pipeline behind ``unlearnkit run``.

For every seed it trains the original model on train and the golden model on
retain (both cached as checkpoints under ``out/cache`` and reused on a rerun),
runs each method on the original, evaluates it against golden, and writes
``results.json``, ``report.md`` and a self-contained ``report.html`` (inline
figures). A name in ``methods`` may also be a registered exact engine
(:mod:`unlearnkit.exact`); it trains its own model and is run through
:func:`unlearnkit.engine_runner.run_engine`, compared with its own golden.

Everything the user gave is validated before anything is written, and the
result files are replaced atomically at the end, so a bad input or an
interruption leaves earlier results in ``out`` as they were.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from unlearnkit import checkpoint, data, exact, methods, models
from unlearnkit.data.forget import ForgetSplit
from unlearnkit.engine_runner import run_engine, run_options
from unlearnkit.errors import ConfigError, NonFiniteOutputError, UnknownMethodError
from unlearnkit.evaluation import evaluate
from unlearnkit.evaluation.report import render_report
from unlearnkit.params import check_seed, check_seeds, validate
from unlearnkit.paths import check_writable  # noqa: F401  (also re-exported)
from unlearnkit.training import TrainConfig, progress_enabled, train


@dataclass
class Experiment:
    """What to compare. ``method_options`` maps a method name to keyword arguments.

    >>> Experiment(dataset="digits", model="mlp", forget=["class:3"], methods=["golden"]).seeds
    [0]
    """

    dataset: str
    model: str
    forget: list[str]
    methods: list[str]
    seeds: list[int] = field(default_factory=lambda: [0])
    train: TrainConfig = field(default_factory=TrainConfig)
    model_options: dict = field(default_factory=dict)
    preprocessing: str = "auto"
    method_options: dict[str, dict] = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    data_seed: int = 0
    mia_feature: str = "confidence"
    mia_max_samples: int | None = None
    # Fraction of the training part held out as a validation split (never trained on);
    # None: DEFAULT_VALIDATION when a method that needs one is run, else none.
    validation: float | None = None

    def held_out_fraction(self) -> float:
        """The validation fraction this experiment holds out of training."""
        if self.validation is not None:
            return self.validation
        needed = any(getattr(resolve(name), "needs_validation", False) for name in self.methods)
        return DEFAULT_VALIDATION if needed else 0.0

    def describe(self) -> dict:
        held_out = self.held_out_fraction()
        return {
            "dataset": self.dataset,
            "dataset_options": self.dataset_options,
            "model": self.model,
            "model_options": self.model_options,
            "preprocessing": self.preprocessing,
            "train": self.train.to_dict(),
            "data_seed": self.data_seed,
            "mia_feature": self.mia_feature,
            "mia_max_samples": self.mia_max_samples,
            # Only when there is one, so caches written before validation splits still match.
            **({"validation": held_out} if held_out else {}),
        }


DEFAULT_VALIDATION = 0.1  # (choice) the held-out share when a method needs one


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


def resolve(name: str):
    """The method class or exact-engine class called ``name``; unknown names list both kinds."""
    if name in exact.ENGINES:
        return exact.get(name)
    if name in methods.REGISTRY:
        return methods.get(name)
    valid = ", ".join(sorted([*methods.names(), *exact.names()]))
    raise UnknownMethodError(f"unknown method {name!r}; valid names: {valid}")


def prepare(exp: Experiment):
    """Validate the experiment; return the data set, the forget splits per (spec, seed), classes.

    The classes map each name of ``exp.methods`` to its method or engine class.
    """
    if not exp.methods:
        raise ConfigError("no methods given; name at least one (see 'unlearnkit methods')")
    check_seeds(exp.seeds, what="seeds")
    check_seed(exp.data_seed, what="data_seed")
    if not exp.forget:
        raise ConfigError("no forget spec given")
    if exp.train.epochs < 1:  # allowed by TrainConfig, but 0 epochs compares untrained models
        raise ConfigError(f"training epochs must be >= 1; got {exp.train.epochs}")
    if exp.mia_max_samples is not None and exp.mia_max_samples < 1:
        raise ConfigError(
            f"mia_max_samples must be >= 1 (or None for the test size); got {exp.mia_max_samples}"
        )
    from unlearnkit.evaluation.mia import FEATURES

    if exp.mia_feature not in FEATURES:
        raise ConfigError(f"unknown MIA feature {exp.mia_feature!r}; valid: {', '.join(FEATURES)}")
    classes = {name: resolve(name) for name in exp.methods}
    validation = exp.held_out_fraction()
    for name, cls in classes.items():
        kinds = getattr(cls, "model_kinds", None)
        if kinds and exp.model not in kinds:
            raise ConfigError(
                f"method {name!r} works on model(s) {', '.join(kinds)} only; got "
                f"{exp.model!r} (choose --model {kinds[0]}, or drop {name})"
            )
        if getattr(cls, "needs_validation", False) and not validation:
            raise ConfigError(
                f"method {name!r} needs a validation split; give a fraction in (0, 1) "
                "such as --validation 0.1"
            )
    unknown_options = set(exp.method_options) - set(exp.methods)
    if unknown_options:
        raise ConfigError(f"options given for methods not being run: {sorted(unknown_options)}")
    for name, cls in classes.items():  # bad hyper-parameters fail before any data is loaded
        options = exp.method_options.get(name, {})
        if name in exact.ENGINES:
            run_options(name, options)
        else:
            validate(cls, options, name=name)
    dataset = data.load(exp.dataset, seed=exp.data_seed, **exp.dataset_options)
    # Fails now on a bad model name, option or preprocessing.
    models.make(exp.model, dataset, preprocessing=exp.preprocessing, **exp.model_options)
    splits = {
        (spec, seed): data.select_forget(dataset, spec, seed=seed, validation=validation)
        for spec in exp.forget
        for seed in exp.seeds
    }
    for name in exp.methods:  # what only the data can refute (samples per shard, ...)
        if name in exact.ENGINES:
            classes[name].check_run(
                train_size=min(len(s.train) for s in splits.values()),
                options=exp.method_options.get(name, {}),
            )
    return dataset, splits, classes


def _cached_train(
    path: Path, *, model_template, split, seed: int, config: TrainConfig, tag: dict, progress
):
    """Load the checkpoint at ``path`` if it matches ``tag``; else train and save it."""
    if checkpoint.exists(path):
        model, meta = checkpoint.load(path, expect=tag)
        model.train_info = meta["train_info"]
        return model
    model = train(model_template, split, seed=seed, config=config, progress=progress)
    checkpoint.save(model, path, metadata={**tag, "train_info": model.train_info})
    return model


def run_experiment(exp: Experiment, *, out: str | Path, progress: bool | None = None) -> list[dict]:
    """Run ``exp``, write ``out/results.json``, ``report.md`` and ``report.html``; return the records."""
    out = Path(out)
    dataset, splits, classes = prepare(exp)
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    template = models.make(exp.model, dataset, preprocessing=exp.preprocessing, **exp.model_options)
    config = exp.describe()
    if dataset.schema():  # a file's class names and category vocabularies, to read results back
        config["data"] = dataset.schema()
    base_tag = {"experiment": config}
    records: list[dict] = []
    environment = checkpoint.environment()
    jobs = [(spec, seed) for spec in exp.forget for seed in exp.seeds]
    bar = tqdm(
        total=len(jobs) * len(exp.methods), desc="run", disable=not progress_enabled(progress)
    )
    for spec, seed in jobs:
        split: ForgetSplit = splits[(spec, seed)]
        trained = {}
        for role, part, name in (
            ("original", split.train, "original"),
            ("golden", split.retain, f"golden-{_slug(spec)}"),
        ):
            tag = {**base_tag, "role": role, "seed": seed, "train_ids_sha256": part.ids_sha256()}
            trained[role] = _cached_train(
                out / "cache" / f"seed{seed}" / name,
                model_template=template,
                split=part,
                seed=seed,
                config=exp.train,
                tag=tag,
                progress=progress,
            )
        original, golden = trained["original"], trained["golden"]
        golden_seconds = golden.train_info["seconds"]
        eval_options = {
            "mia_feature": exp.mia_feature,
            "mia_max_samples": exp.mia_max_samples,
            "seed": seed,
        }
        golden_metrics = evaluate(golden, split, **eval_options)
        for name in exp.methods:
            bar.set_description(f"{name} seed {seed}")
            reference, reference_metrics, extra = golden, golden_metrics, {}
            reference_seconds = golden_seconds
            if name in exact.ENGINES:
                # An engine trains its own model; its golden is the same engine fitted
                # without the forget set, and its TA is also set beside the monolithic golden's.
                run = run_engine(
                    name,
                    split,
                    model=template,
                    training=exp.train,
                    seed=seed,
                    options=exp.method_options.get(name, {}),
                    progress=progress,
                )
                result, seconds, params = run.unlearned, run.forget_seconds, run.options
                reference, reference_seconds = run.reference, run.reference_seconds
                reference_metrics = evaluate(run.reference, split, **eval_options)
                extra = {
                    "TA_monolithic_golden": golden_metrics["TA"],
                    "speedup_vs_monolithic": golden_seconds / seconds
                    if seconds > 0
                    else float("inf"),
                    "identical_to_golden": run.identical_to_reference,
                    # None where the models differ in structure (strict JSON has no inf).
                    "max_relative_difference": run.max_relative_difference
                    if math.isfinite(run.max_relative_difference)
                    else None,
                    "engine": {
                        **classes[name].capabilities(),
                        "fit_time_s": run.fit_seconds,
                        # The ids are named by forget_sha256; the deleted files are counted.
                        "forget": {
                            **{k: v for k, v in run.result.to_dict().items() if k != "ids"},
                            "files_deleted": len(run.result.files_deleted),
                        },
                    },
                }
            else:
                method = classes[name](**{"seed": seed, **exp.method_options.get(name, {})})
                params = method.get_params()
                if name == "golden":
                    # Golden is the reference itself: its time is the retraining already done.
                    result, seconds = golden, golden_seconds
                else:
                    prepared = method.setup(original, split)
                    started = time.perf_counter()
                    result = method.unlearn(prepared, split)
                    seconds = time.perf_counter() - started
            try:
                metrics = evaluate(
                    result,
                    split,
                    golden=reference,
                    golden_metrics=reference_metrics,
                    **eval_options,
                )
                diverged = False
            except NonFiniteOutputError:
                # One diverged method must not abort the comparison: record it, say so.
                metrics = dict.fromkeys(
                    (
                        "UA",
                        "RA",
                        "TA",
                        "MIA",
                        "MIA_attack_acc",
                        "avg_gap",
                        "tow",
                        "kl_forget",
                        "LT_AUC",
                        "LT_TPR1",
                        "LT_TPR01",
                    )
                )
                diverged = True
                tqdm.write(
                    f"warning: {name} diverged on forget {spec!r}, seed {seed}; its metrics are empty"
                )
            records.append(
                {
                    "method": name,
                    "seed": seed,
                    "forget": spec,
                    **metrics,
                    "diverged": diverged,
                    "time_s": seconds,
                    "speedup": reference_seconds / seconds if seconds > 0 else float("inf"),
                    "golden_time_s": reference_seconds,
                    "forget_sha256": split.forget_sha256,
                    "n_forget": len(split.forget),
                    "n_retain": len(split.retain),
                    "params": {k: _jsonable(v) for k, v in params.items()},
                    "config": config,
                    "versions": environment["versions"],
                    "torch_threads": environment["torch_threads"],
                    **extra,
                }
            )
            bar.update()
    bar.close()
    write_results(records, out, exp)
    return records


def _jsonable(value):
    if isinstance(value, TrainConfig):
        return value.to_dict()
    if isinstance(value, (str, int, float, bool, type(None), list, dict)):
        return value
    return repr(value)


def write_results(records: list[dict], out: Path, exp: Experiment) -> None:
    from unlearnkit.evaluation.html import render_run_html

    options = {
        "title": f"Unlearning on {exp.dataset} ({exp.model})",
        "config": {
            "dataset": exp.dataset,
            "model": exp.model,
            "seeds": exp.seeds,
            **exp.train.to_dict(),
        },
        "schema": records[0]["config"].get("data") if records else None,
    }
    # Both reports are rendered before any file is replaced, so a failure while
    # drawing leaves the earlier results in ``out`` as they were.
    report = render_report(records, **options)
    page = render_run_html(records, **options)
    checkpoint.atomic_write_text(out / "results.json", json.dumps(records, indent=2))
    checkpoint.atomic_write_text(out / "report.md", report)
    checkpoint.atomic_write_text(out / "report.html", page)
