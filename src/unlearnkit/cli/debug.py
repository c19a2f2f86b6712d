"""``unlearnkit debug-labels``: find flipped labels by influence, against simpler rankings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app
from unlearnkit.cli.options import BatchSize, Epochs, Hidden, LearningRate, Progress
from unlearnkit.cli.run import _ints


@app.command("debug-labels")
def debug_labels(
    dataset: Annotated[str, typer.Option(help="Built-in data set name, or a .csv / .npz path.")],
    out: Annotated[Path, typer.Option(help="Folder for debug_labels.json and .png.")],
    model: Annotated[str, typer.Option(help="Model name (see 'unlearnkit models').")] = "mlp",
    flip: Annotated[float, typer.Option(help="Fraction of training labels to flip.")] = 0.1,
    validation: Annotated[
        float,
        typer.Option(
            help="Fraction of the training data held out, with true labels, as the criterion's validation split."
        ),
    ] = 0.1,
    seed: Annotated[
        int, typer.Option(help="Seed of the flips, validation split and training.")
    ] = 0,
    epochs: Epochs = 20,
    lr: LearningRate = 0.05,
    batch_size: BatchSize = 64,
    hidden: Hidden = None,
    data_seed: Annotated[
        int, typer.Option(help="Seed of the train/test split where the data set has none.")
    ] = 0,
    progress: Progress = True,
) -> None:
    """Flip labels (seeded), train, rank samples by harm (PUMA), loss, self-influence, random."""
    from unlearnkit.debugging import LabelDebugging, run_label_debugging
    from unlearnkit.training import TrainConfig

    job = LabelDebugging(
        dataset=dataset,
        model=model,
        flip=flip,
        validation=validation,
        seed=seed,
        train=TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size),
        model_options={"hidden": _ints(hidden, "--hidden")} if hidden else {},
        data_seed=data_seed,
    )
    record = run_label_debugging(job, out=out, progress=None if progress else False)
    typer.echo(f"{record['n_flipped']} of {record['n_train']} labels flipped; area under "
               f"found-vs-inspected (perfect {record['auc_perfect']:.3f}, random 0.5):")  # fmt: skip
    for name, area in sorted(record["auc"].items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {name:<15} {area:.3f}")
    typer.echo(f"wrote {out / 'debug_labels.json'} and {out / 'debug_labels.png'}")
