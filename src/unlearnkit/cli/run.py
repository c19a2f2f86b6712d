"""``unlearnkit run``: compare unlearning methods against golden on one data set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app
from unlearnkit.cli.options import (
    BatchSize,
    Epochs,
    Hidden,
    LearningRate,
    MethodOptions,
    Optimizer,
    Progress,
)
from unlearnkit.errors import ConfigError


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(t) for t in _csv(text)]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers; got {text!r}") from None


def parse_method_options(items: list[str]) -> dict[str, dict]:
    """``["kl_ft.alpha=0.5", "finetune.epochs=3"]`` -> ``{"kl_ft": {"alpha": 0.5}, ...}``.

    Values are read as JSON when they parse (numbers, true/false, lists), else as strings.

    >>> parse_method_options(["kl_ft.alpha=0.5", "kl_ft.target=uniform"])
    {'kl_ft': {'alpha': 0.5, 'target': 'uniform'}}
    """
    options: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        method, dot, param = key.partition(".")
        if not sep or not dot or not method or not param:
            raise ConfigError(f"method option {item!r} must look like METHOD.PARAM=VALUE")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(method, {})[param] = value
    return options


def file_options(*, target: str | None, id_column: str | None, categorical: str | None) -> dict:
    """The CSV options given on the command line, as ``data.load`` keywords.

    Only options the user gave are passed, so built-in data sets (which take none)
    load as before, and naming one with a built-in data set is an error there.

    >>> file_options(target="kind", id_column=None, categorical="colour, size")
    {'target': 'kind', 'categorical': ['colour', 'size']}
    """
    options: dict = {}
    if target is not None:
        options["target"] = target
    if id_column is not None:
        options["id_column"] = id_column
    if categorical is not None:
        options["categorical"] = (
            categorical if categorical in ("auto", "none") else _csv(categorical)
        )
    return options


@app.command("run")
def run(
    dataset: Annotated[
        str,
        typer.Option(
            help="Built-in data set name (see 'unlearnkit datasets') or a .csv/.npz path. "
            "CSV: UTF-8 with a header row, one sample per row; the --target column holds the "
            "labels (strings or integers, mapped to classes 0..K-1 in sorted order), an "
            "optional --id-column unique integer ids, every other column a feature. Missing "
            "values (empty, NA, NaN, null) are refused, not imputed. NPZ: arrays X, y and "
            "optional ids, X_test, y_test, ids_test."
        ),
    ],
    methods: Annotated[
        str,
        typer.Option(
            help="Comma-separated method or exact-engine names (see 'unlearnkit methods')."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Output folder: results.json, report.md, report.html (self-contained, with "
            "figures) and cached models."
        ),
    ],
    model: Annotated[
        str, typer.Option(help="Model name: linear, logreg, mlp, cnn, resnet18.")
    ] = "mlp",
    forget: Annotated[
        list[str],
        typer.Option(
            help="Forget spec: random:<fraction|count>, class:<c>[,<c>] (a class index, or a "
            "label of a CSV/NPZ with string labels), ids:<file>. Repeat for several."
        ),
    ] = ["random:0.1"],  # noqa: B006 (typer reads the default; it is never mutated)
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = "0",
    epochs: Epochs = 20,
    lr: LearningRate = 0.05,
    batch_size: BatchSize = 64,
    optimizer: Optimizer = "sgd",
    hidden: Hidden = None,
    method_option: MethodOptions = None,
    data_seed: Annotated[
        int, typer.Option(help="Seed of the train/test split where the data set has none.")
    ] = 0,
    preprocessing: Annotated[
        str,
        typer.Option(
            help="Preprocessing the models own, fitted on each model's own training data: "
            "auto (standardise tabular inputs; images as loaded), standardize or none."
        ),
    ] = "auto",
    mia_feature: Annotated[
        str,
        typer.Option(
            help="Per-sample feature of the MIA attack: confidence, correctness, entropy, "
            "m_entropy (Song & Mittal 2021) or prob."
        ),
    ] = "confidence",
    mia_max_samples: Annotated[
        int | None,
        typer.Option(help="Cap the MIA attack's training samples per class (default: test size)."),
    ] = None,
    validation: Annotated[
        float | None,
        typer.Option(
            help="Fraction of the training data held out as a validation split, trained on by "
            "no model (default: 0.1 when a method needs one, such as puma; else 0)."
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="CSV: name of the label column (default: label)."),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            help="CSV: name of the optional column of unique integer sample ids (default: id); "
            "without it a row's id is its position among the data rows, from 0."
        ),
    ] = None,
    categorical: Annotated[
        str | None,
        typer.Option(
            help="CSV: feature columns to one-hot encode: auto (every non-numeric column; the "
            "default), none (refuse non-numeric cells) or a comma-separated list of columns. "
            "Categories come from the training rows; an unseen test value encodes to zeros."
        ),
    ] = None,
    progress: Progress = True,
) -> None:
    """Train original and golden per seed (cached in OUT), run each method, evaluate, report."""
    from unlearnkit.experiment import Experiment, run_experiment
    from unlearnkit.training import TrainConfig

    model_options = {"hidden": _ints(hidden, "--hidden")} if hidden else {}
    exp = Experiment(
        dataset=dataset,
        model=model,
        forget=list(forget),
        methods=_csv(methods),
        seeds=_ints(seeds, "--seeds"),
        train=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer),
        model_options=model_options,
        preprocessing=preprocessing,
        method_options=parse_method_options(method_option or []),
        data_seed=data_seed,
        mia_feature=mia_feature,
        mia_max_samples=mia_max_samples,
        validation=validation,
        dataset_options=file_options(target=target, id_column=id_column, categorical=categorical),
    )
    run_experiment(exp, out=out, progress=None if progress else False)
    typer.echo((out / "report.md").read_text())
    typer.echo(f"wrote {out / 'results.json'}, {out / 'report.md'} and {out / 'report.html'}")
