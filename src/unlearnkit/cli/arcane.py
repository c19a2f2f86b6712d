"""``unlearnkit arcane fit | forget | status | evaluate``: an ARCANE store from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app, stores

# A copy of unlearnkit.exact.partitioned.one_class.KINDS for the help text (that module
# imports torch); tests/exact/test_arcane.py keeps the two equal.
ARCANE_LEARNERS = ("deep_svdd", "autoencoder")

arcane_app = typer.Typer(
    name="arcane",
    help="ARCANE exact unlearning: one one-class model per class; forget ids; inspect it.",
    no_args_is_help=True,
)
app.add_typer(arcane_app, name="arcane")

Store = Annotated[Path, typer.Argument(help="store directory made by 'arcane fit'")]


def _hidden(text: str) -> list[int]:
    from unlearnkit.errors import ConfigError

    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"--hidden takes widths such as 128 or 256,64; got {text!r}") from None


@arcane_app.command("fit")
def fit(
    dataset: Annotated[str, typer.Option(help="built-in data set name or a .csv/.npz path")],
    out: Annotated[Path, typer.Option(help="store directory to create (must be new or empty)")],
    model: Annotated[str, typer.Option(help="network of each class model: mlp")] = "mlp",
    learner: Annotated[
        str, typer.Option(help=f"one-class learner: {', '.join(ARCANE_LEARNERS)}")
    ] = "autoencoder",
    hidden: Annotated[str, typer.Option(help="hidden widths, e.g. 128 or 256,64")] = "128",
    rep_dim: Annotated[int, typer.Option(help="code size of the one-class network")] = 32,
    rho: Annotated[float, typer.Option(help="fraction of each class kept by the selection")] = 1.0,
    blocks: Annotated[int, typer.Option(help="blocks B per class (a checkpoint after each)")] = 5,
    reselect: Annotated[
        bool,
        typer.Option(
            "--reselect/--frozen-selection",
            help="re-run the selection on every deletion (strict) or freeze it at fit",
        ),
    ] = True,
    epochs: Annotated[int, typer.Option(help="epochs e0 of an unblocked model")] = 20,
    batch_size: Annotated[int, typer.Option()] = 64,
    lr: Annotated[float, typer.Option()] = 1e-3,
    optimizer: Annotated[str, typer.Option(help="sgd or adam")] = "adam",
    preprocessing: Annotated[
        str,
        typer.Option(help="auto (standardise tabular inputs), standardize or none; per class"),
    ] = "auto",
    temperature: Annotated[float, typer.Option(help="softmax temperature of the scores")] = 1.0,
    seed: Annotated[
        int, typer.Option(help="seed of the selection, orders and initialisations")
    ] = 0,
    data_seed: Annotated[int, typer.Option(help="seed of the data set's train/test split")] = 0,
    limit: Annotated[
        int | None, typer.Option(help="keep the first N train samples (fashion_mnist)")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="CSV: the label column (default: label)")
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(help="CSV: the optional column of unique integer ids (default: id)"),
    ] = None,
    categorical: Annotated[
        str | None, typer.Option(help="CSV: auto (default), none or columns to one-hot encode")
    ] = None,
    executor: stores.ExecutorName = "process",
    workers: stores.Workers = None,
    ray_address: stores.RayAddress = None,
) -> None:
    """Train one one-class model per class on its selected, sorted blocks."""
    from unlearnkit.exact.arcane import ARCANE
    from unlearnkit.training import TrainConfig

    widths = _hidden(hidden)
    loaded, metadata = stores.load_for_fit(
        dataset, out=out, seed=seed, data_seed=data_seed, limit=limit, target=target,
        id_column=id_column, categorical=categorical,
    )  # fmt: skip
    arcane = ARCANE(
        learner=learner,
        network=model,
        hidden=widths,
        rep_dim=rep_dim,
        preprocessing=preprocessing,
        rho=rho,
        blocks=blocks,
        reselect=reselect,
        epochs=epochs,
        training=TrainConfig(batch_size=batch_size, lr=lr, optimizer=optimizer),
        temperature=temperature,
        seed=seed,
        store=out,
        executor=stores.executor(executor, workers, ray_address),
        num_classes=loaded.num_classes,
        metadata=metadata,
    )
    with arcane:
        arcane.fit(loaded.train)
        typer.echo(
            f"fitted {len(arcane.part_sizes_)} class models x {blocks} blocks "
            f"({learner}, rho {rho}, {sum(arcane.selected_sizes())} of {len(loaded.train)} "
            f"samples selected) in {arcane.fit_seconds_:.1f} s; "
            f"test accuracy {arcane.accuracy(loaded.test):.2f}%; store {out}"
        )


@arcane_app.command("forget")
def forget(
    store: Store,
    ids: stores.Ids = None,
    resume: stores.Resume = False,
    request_id: stores.RequestId = None,
    executor: stores.ExecutorName = "process",
    workers: stores.Workers = None,
    ray_address: stores.RayAddress = None,
) -> None:
    """Forget ids: retrain only their classes, from the first block whose content changed."""
    from unlearnkit.exact.arcane import ARCANE

    stores.forget(
        ARCANE, store, ids=ids, resume=resume, request_id=request_id,
        executor_=stores.executor(executor, workers, ray_address),
    )  # fmt: skip


@arcane_app.command("status")
def status(store: Store, dataset: stores.DatasetForAccuracy = None) -> None:
    """Classes, their sizes and selections, requests served, pending work, disk, accuracy."""
    from unlearnkit.exact.arcane import ARCANE

    arcane = ARCANE.load(store, executor="serial")
    info = arcane.status()
    typer.echo(f"store      {info['store']}")
    typer.echo(
        f"model      {info['learner']} per class ({info['classes']} classes) x {info['blocks']} "
        f"blocks, {info['step_epochs'][0]} epochs per step, rho {info['rho']}, "
        + ("reselect on deletion" if info["reselect"] else "selection frozen at fit")
    )
    typer.echo(
        f"samples    {info['samples']} ({' '.join(map(str, info['class_sizes']))} per class; "
        f"selected {' '.join(map(str, info['selected_sizes']))}); {info['deleted']} forgotten"
    )
    stores.status_tail(arcane, info, dataset)


@arcane_app.command("evaluate")
def evaluate(
    store: Store,
    dataset: stores.DatasetForAccuracy = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Accuracy on the retained and test data, and per class; file integrity."""
    from unlearnkit.exact.arcane import ARCANE

    arcane = ARCANE.load(store, executor="serial")
    problems = arcane.verify()
    test = stores.test_split(arcane, dataset)
    retained = arcane.retained()
    result = {
        "integrity": problems or "ok",
        "retained": len(retained),
        "RA": arcane.accuracy(retained),
    }
    if test is not None:
        result["TA"] = arcane.accuracy(test)
        predicted = arcane.predict(test.X)
        result["TA_per_class"] = {
            str(c): 100.0 * float((predicted[test.y == c] == c).double().mean())
            for c in range(arcane.num_classes_)
            if bool((test.y == c).any())
        }
    stores.print_report(result, as_json)
    if problems:
        raise typer.Exit(1)
