"""``unlearnkit run``: compare unlearning methods against golden on one data set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app
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


@app.command("run")
def run(
    dataset: Annotated[
        str,
        typer.Option(
            help="Built-in data set name (see 'unlearnkit datasets') or a .csv/.npz path."
        ),
    ],
    methods: Annotated[
        str, typer.Option(help="Comma-separated method names (see 'unlearnkit methods').")
    ],
    out: Annotated[
        Path, typer.Option(help="Output folder: results.json, report.md and cached models.")
    ],
    model: Annotated[
        str, typer.Option(help="Model name: linear, logreg, mlp, cnn, resnet18.")
    ] = "mlp",
    forget: Annotated[
        list[str],
        typer.Option(
            help="Forget spec: random:<fraction|count>, class:<c>[,<c>], ids:<file>. Repeat for several."
        ),
    ] = ["random:0.1"],  # noqa: B006 (typer reads the default; it is never mutated)
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = "0",
    epochs: Annotated[
        int, typer.Option(help="Training epochs of the original and golden models.")
    ] = 20,
    lr: Annotated[float, typer.Option(help="Training learning rate.")] = 0.05,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 64,
    optimizer: Annotated[
        str, typer.Option(help="Training optimiser: sgd (momentum 0.9) or adam.")
    ] = "sgd",
    hidden: Annotated[str | None, typer.Option(help="MLP hidden widths, e.g. 256,128.")] = None,
    method_option: Annotated[
        list[str] | None,
        typer.Option("--method-option", "-o", help="METHOD.PARAM=VALUE, repeatable."),
    ] = None,
    data_seed: Annotated[
        int, typer.Option(help="Seed of the train/test split where the data set has none.")
    ] = 0,
    mia_max_samples: Annotated[
        int | None,
        typer.Option(help="Cap the MIA attack's training samples per class (default: test size)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
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
        method_options=parse_method_options(method_option or []),
        data_seed=data_seed,
        mia_max_samples=mia_max_samples,
    )
    run_experiment(exp, out=out, progress=None if progress else False)
    typer.echo((out / "report.md").read_text())
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.md'}")
