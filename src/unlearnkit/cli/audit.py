"""``unlearnkit audit``: the strong privacy evaluation (ε-score, U-LiRA, LiRA) on a model bank."""

from __future__ import annotations

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
from unlearnkit.cli.run import _csv, _ints, parse_method_options


@app.command("audit")
def audit(
    dataset: Annotated[str, typer.Option(help="Built-in data set name, or a .csv / .npz path.")],
    methods: Annotated[
        str, typer.Option(help="Comma-separated method names; 'golden' is the reference.")
    ],
    out: Annotated[
        Path, typer.Option(help="Output folder: audit.json, report.md, report.html, the bank.")
    ],
    model: Annotated[str, typer.Option(help="Model name (see 'unlearnkit models').")] = "mlp",
    forget: Annotated[
        str, typer.Option(help="Forget spec: random:<fraction|count>, class:<c>, ids:<file>.")
    ] = "random:0.1",
    models: Annotated[
        int,
        typer.Option(
            help="Models per side (unlearned and golden), per protocol; the ε-score works from 16."
        ),
    ] = 16,
    bank: Annotated[
        Path | None,
        typer.Option(help="Model bank folder, reusable across audits (default: OUT/bank)."),
    ] = None,
    executor: Annotated[
        str, typer.Option(help="Where the bank's trainings run: process, serial or ray.")
    ] = "process",
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: one per core).")
    ] = None,
    fixed_variance: Annotated[
        bool,
        typer.Option(help="U-LiRA / LiRA: one pooled variance instead of one per sample."),
    ] = False,
    epsilon_rates: Annotated[
        str,
        typer.Option(
            help="ε-score rates: clopper_pearson (upper confidence bounds; works from 16 "
            "models) or point (the challenge's rule as measured; needs hundreds of models)."
        ),
    ] = "clopper_pearson",
    epochs: Epochs = 20,
    lr: LearningRate = 0.05,
    batch_size: BatchSize = 64,
    optimizer: Optimizer = "sgd",
    hidden: Hidden = None,
    method_option: MethodOptions = None,
    split_seed: Annotated[int, typer.Option(help="Seed of the forget selection.")] = 0,
    data_seed: Annotated[
        int, typer.Option(help="Seed of the train/test split where the data set has none.")
    ] = 0,
    progress: Progress = True,
) -> None:
    """Build (or resume) a bank of models, then score each method against golden."""
    from unlearnkit.audit import run_audit
    from unlearnkit.evaluation.bank import BankSetting

    setting = BankSetting(
        dataset=dataset,
        model=model,
        forget=forget,
        model_options={"hidden": _ints(hidden, "--hidden")} if hidden else {},
        train={"epochs": epochs, "lr": lr, "batch_size": batch_size, "optimizer": optimizer},
        data_seed=data_seed,
        split_seed=split_seed,
    )
    payload = run_audit(
        setting,
        methods=_csv(methods),
        out=out,
        models=models,
        method_options=parse_method_options(method_option or []),
        bank=bank,
        executor=executor,
        workers=workers,
        fixed_variance=fixed_variance,
        epsilon_rates=epsilon_rates,
        progress=None if progress else False,
        on_plan=lambda plan: typer.echo(plan.describe()),
    )
    typer.echo((out / "report.md").read_text())
    typer.echo(
        f"wrote {out / 'audit.json'}, {out / 'report.md'} and {out / 'report.html'} "
        f"in {payload['seconds'] / 60:.1f} min"
    )
