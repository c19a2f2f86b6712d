"""``unlearnkit sisa fit | forget | status | evaluate``: a SISA store from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app, stores

# A copy of unlearnkit.exact.sisa.AGGREGATIONS for the help text: importing that module
# would import torch. tests/exact/test_sisa_cli.py keeps the two equal.
SISA_AGGREGATIONS = ("vote", "softmax")

sisa_app = typer.Typer(
    name="sisa",
    help="SISA exact unlearning: fit a sharded, sliced store; forget ids; inspect it.",
    no_args_is_help=True,
)
app.add_typer(sisa_app, name="sisa")

Store = Annotated[Path, typer.Argument(help="store directory made by 'sisa fit'")]
# Kept importable from here: they were defined in this module before ARCANE shared them.
parse_ids = stores.parse_ids


@sisa_app.command("fit")
def fit(
    dataset: Annotated[str, typer.Option(help="built-in data set name or a .csv/.npz path")],
    out: Annotated[Path, typer.Option(help="store directory to create (must be new or empty)")],
    model: Annotated[str, typer.Option(help="model name (see unlearnkit.models)")] = "mlp",
    model_options: Annotated[
        str, typer.Option(help='model options as JSON, e.g. {"hidden": [64]}')
    ] = "{}",
    shards: Annotated[int, typer.Option(help="number of shards S")] = 5,
    slices: Annotated[int, typer.Option(help="number of slices R per shard")] = 1,
    epochs: Annotated[int, typer.Option(help="epochs e0 of an unsliced model")] = 20,
    batch_size: Annotated[int, typer.Option()] = 64,
    lr: Annotated[float, typer.Option()] = 0.05,
    optimizer: Annotated[str, typer.Option(help="sgd or adam")] = "sgd",
    aggregation: Annotated[
        str, typer.Option(help=f"one of {', '.join(SISA_AGGREGATIONS)}")
    ] = "vote",
    preprocessing: Annotated[
        str,
        typer.Option(
            help="auto (standardise tabular inputs), standardize or none; each constituent "
            "fits it on its own data"
        ),
    ] = "auto",
    seed: Annotated[
        int, typer.Option(help="seed of the shuffle, initialisations and data order")
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
    """Shard, slice and train a SISA ensemble; the store holds everything forget needs."""
    from unlearnkit.exact.sisa import SISA
    from unlearnkit.training import TrainConfig

    options = stores.model_options(model_options)
    loaded, metadata = stores.load_for_fit(
        dataset, out=out, seed=seed, data_seed=data_seed, limit=limit, target=target,
        id_column=id_column, categorical=categorical,
    )  # fmt: skip
    training = TrainConfig(batch_size=batch_size, lr=lr, optimizer=optimizer)
    sisa = SISA(
        model=model,
        model_options=options,
        preprocessing=preprocessing,
        shards=shards,
        slices=slices,
        epochs=epochs,
        training=training,
        aggregation=aggregation,
        seed=seed,
        store=out,
        executor=stores.executor(executor, workers, ray_address),
        num_classes=loaded.num_classes,
        metadata=metadata,
    )
    with sisa:
        sisa.fit(loaded.train)
        typer.echo(
            f"fitted {shards} shards x {slices} slices ({sisa.step_epochs_[0]} epochs per step) "
            f"on {len(loaded.train)} samples in {sisa.fit_seconds_:.1f} s; "
            f"test accuracy {sisa.accuracy(loaded.test):.2f}%; store {out}"
        )


@sisa_app.command("forget")
def forget(
    store: Store,
    ids: stores.Ids = None,
    resume: stores.Resume = False,
    request_id: stores.RequestId = None,
    executor: stores.ExecutorName = "process",
    workers: stores.Workers = None,
    ray_address: stores.RayAddress = None,
) -> None:
    """Forget ids: retrain only the shards that saw them, from their earliest affected slice."""
    from unlearnkit.exact.sisa import SISA

    stores.forget(
        SISA, store, ids=ids, resume=resume, request_id=request_id,
        executor_=stores.executor(executor, workers, ray_address),
    )  # fmt: skip


@sisa_app.command("status")
def status(store: Store, dataset: stores.DatasetForAccuracy = None) -> None:
    """Shards, their sizes, requests served, pending work, disk use and test accuracy."""
    from unlearnkit.exact.sisa import SISA

    sisa = SISA.load(store, executor="serial")
    info = sisa.status()
    sizes = info["shard_sizes"]
    typer.echo(f"store      {info['store']}")
    typer.echo(
        f"model      {info['model']}, {info['shards']} shards x {info['slices']} slices, "
        f"{info['step_epochs'][0]} epochs per step, aggregation {info['aggregation']}"
    )
    typer.echo(
        f"samples    {info['samples']} (shard sizes {min(sizes)}..{max(sizes)}: "
        f"{' '.join(map(str, sizes))}); {info['deleted']} forgotten"
    )
    stores.status_tail(sisa, info, dataset)


@sisa_app.command("evaluate")
def evaluate(
    store: Store,
    dataset: stores.DatasetForAccuracy = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Accuracy of the aggregate (vote and softmax) and of each constituent; file integrity."""
    from unlearnkit.exact.sisa import AGGREGATIONS, SISA
    from unlearnkit.training import accuracy as model_accuracy

    sisa = SISA.load(store, executor="serial")
    problems = sisa.verify()
    test = stores.test_split(sisa, dataset)
    retained = sisa.retained()
    result = {"integrity": problems or "ok", "retained": len(retained)}
    for aggregation in AGGREGATIONS:
        sisa.aggregation = aggregation
        result[f"RA_{aggregation}"] = sisa.accuracy(retained)
        if test is not None:
            result[f"TA_{aggregation}"] = sisa.accuracy(test)
    if test is not None:
        result["TA_constituents"] = {
            s: model_accuracy(m, test) for s, m in sisa.constituents().items()
        }
    stores.print_report(result, as_json)
    if problems:
        raise typer.Exit(1)
