"""``unlearnkit sisa fit | forget | status | evaluate``: a SISA store from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app
from unlearnkit.cli.run import file_options
from unlearnkit.errors import ConfigError

# A copy of unlearnkit.exact.sisa.AGGREGATIONS for the help text: importing that module
# would import torch. tests/exact/test_sisa_cli.py keeps the two equal.
SISA_AGGREGATIONS = ("vote", "softmax")

sisa_app = typer.Typer(
    name="sisa",
    help="SISA exact unlearning: fit a sharded, sliced store; forget ids; inspect it.",
    no_args_is_help=True,
)
app.add_typer(sisa_app, name="sisa")

ExecutorName = Annotated[str, typer.Option(help="serial, process (local cores) or ray")]
Workers = Annotated[
    int | None, typer.Option(help="processes (process) or CPUs of a local Ray cluster (ray)")
]
RayAddress = Annotated[
    str | None, typer.Option(help="connect Ray to this running cluster, e.g. auto")
]
Store = Annotated[Path, typer.Argument(help="store directory made by 'sisa fit'")]


def _executor(name: str, workers: int | None, ray_address: str | None):
    from unlearnkit.runtime import get_executor

    return get_executor(name, workers=workers, address=ray_address)


def parse_ids(text: str) -> list[int]:
    """``--ids``: a file with one id per line (``#`` comments allowed), or ``3,17,42``.

    >>> parse_ids("3, 17,42")
    [3, 17, 42]
    """
    path = Path(text)
    if path.is_file():
        tokens = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
        source = str(path)
    else:
        tokens = [t.strip() for t in text.split(",")]
        source = "--ids"
    tokens = [t for t in tokens if t]
    try:
        return [int(t) for t in tokens]
    except ValueError:
        bad = next(t for t in tokens if not t.lstrip("-").isdigit())
        raise ConfigError(
            f"{source}: {bad!r} is not an integer id; --ids takes a file with one id per line "
            "or a comma-separated list such as 3,17,42"
        ) from None


def _test_split(sisa, dataset: str | None):
    """The test part of the data the store was fitted on (recorded by ``sisa fit``)."""
    from unlearnkit import data

    reference = sisa.config_.get("metadata", {}).get("dataset")
    if dataset is None:
        if reference is None:
            return None
        return data.load(
            reference["name"], seed=reference["seed"], **reference.get("options", {})
        ).test
    loaded = data.load(dataset, seed=reference["seed"] if reference else 0)
    fitted = sisa.config_["data"]
    shape, classes = tuple(fitted["input_shape"]), fitted["num_classes"]
    if loaded.input_shape != shape or loaded.num_classes != classes:
        # Scoring other data would fail inside the model (or score nonsense): say why.
        name = f"; name that data ({reference['name']})" if reference else ""
        raise ConfigError(
            f"--dataset {dataset} has input shape {loaded.input_shape} and "
            f"{loaded.num_classes} classes, but the store was fitted on data with input shape "
            f"{shape} and {classes} classes{name}, or leave --dataset out"
        )
    return loaded.test


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
    executor: ExecutorName = "process",
    workers: Workers = None,
    ray_address: RayAddress = None,
) -> None:
    """Shard, slice and train a SISA ensemble; the store holds everything forget needs."""
    from unlearnkit import data
    from unlearnkit.exact.sisa import SISA
    from unlearnkit.params import check_seed
    from unlearnkit.paths import check_writable
    from unlearnkit.training import TrainConfig

    try:
        options = json.loads(model_options)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model-options is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise ConfigError(
            f'--model-options must be a JSON object such as {{"hidden": [64]}}; got {model_options}'
        )
    check_seed(seed, what="--seed")
    check_seed(data_seed, what="--data-seed")
    check_writable(out)
    training = TrainConfig(batch_size=batch_size, lr=lr, optimizer=optimizer)
    dataset_options = {"limit": limit} if limit is not None else {}
    # Recorded in the store's metadata, so status and evaluate reload the same data.
    dataset_options |= file_options(target=target, id_column=id_column, categorical=categorical)
    loaded = data.load(dataset, seed=data_seed, **dataset_options)
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
        executor=_executor(executor, workers, ray_address),
        num_classes=loaded.num_classes,
        metadata={"dataset": {"name": dataset, "seed": data_seed, "options": dataset_options}},
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
    ids: Annotated[
        str | None, typer.Option(help="file with one id per line, or a list such as 3,17,42")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="finish an interrupted request")] = False,
    request_id: Annotated[
        str | None,
        typer.Option(
            help="idempotency key recorded with the request: retrying with the same key and "
            "ids changes nothing and exits 0 ('already served as request N')"
        ),
    ] = None,
    executor: ExecutorName = "process",
    workers: Workers = None,
    ray_address: RayAddress = None,
) -> None:
    """Forget ids: retrain only the shards that saw them, from their earliest affected slice."""
    from unlearnkit.exact.sisa import SISA

    if (ids is None) == (not resume):
        raise ConfigError("give --ids FILE|LIST, or --resume to finish an interrupted request")
    if resume and request_id is not None:
        raise ConfigError(
            "--resume finishes the interrupted request under its own key; drop --request-id"
        )
    with SISA.load(store, executor=_executor(executor, workers, ray_address)) as sisa:
        report = sisa.resume() if resume else sisa.forget(parse_ids(ids), request_id=request_id)
        if report is None:
            typer.echo("nothing to resume: no request was interrupted")
            return
        if report.already_served:
            typer.echo(
                f"already served as request {report.request} (request id {report.request_id!r}): "
                f"{report.forgotten} id(s) forgotten then; nothing changed"
            )
            return
        shards = ", ".join(f"{s} (from step {k})" for s, k in report.parts.items())
        typer.echo(
            f"request #{report.request}{' (resumed)' if report.resumed else ''}: forgot "
            f"{report.forgotten} id(s); retrained shards {shards}: {report.steps_retrained} "
            f"steps, {report.sample_passes} sample-passes, {report.seconds:.2f} s"
        )


@sisa_app.command("status")
def status(
    store: Store,
    dataset: Annotated[
        str | None, typer.Option(help="data set for the accuracy (default: the fitted one)")
    ] = None,
) -> None:
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
    pending = info["pending_request"]
    typer.echo(
        f"requests   {info['requests_served']} served"
        + (f"; request #{pending} interrupted (finish it with --resume)" if pending else "")
    )
    disk = info["disk_bytes"]
    typer.echo(
        f"disk       {disk['total'] / 1e6:.1f} MB (checkpoints {disk['checkpoints'] / 1e6:.1f}, "
        f"data {disk['data'] / 1e6:.1f})"
    )
    test = _test_split(sisa, dataset)
    typer.echo(
        f"accuracy   {sisa.accuracy(test):.2f}% on test"
        if test is not None
        else "accuracy   n/a (the store names no data set; pass --dataset)"
    )


@sisa_app.command("evaluate")
def evaluate(
    store: Store,
    dataset: Annotated[
        str | None, typer.Option(help="data set for test accuracy (default: the fitted one)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Accuracy of the aggregate (vote and softmax) and of each constituent; file integrity."""
    from unlearnkit.exact.sisa import AGGREGATIONS, SISA
    from unlearnkit.training import accuracy as model_accuracy

    sisa = SISA.load(store, executor="serial")
    problems = sisa.verify()
    test = _test_split(sisa, dataset)
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
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            if isinstance(value, float):
                value = f"{value:.2f}%"
            elif isinstance(value, dict):
                value = " ".join(f"{s}:{v:.1f}" for s, v in value.items())
            typer.echo(f"{key:<16} {value}")
    if problems:
        raise typer.Exit(1)
