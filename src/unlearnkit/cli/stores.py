"""What the store commands of the partitioned engines share (``sisa``, ``arcane``).

Options, id parsing, the fitted data set, and the lines ``forget`` and ``status``
print, in the engine's own words for its parts (shards, classes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli.run import file_options
from unlearnkit.errors import ConfigError

ExecutorName = Annotated[str, typer.Option(help="serial, process (local cores) or ray")]
Workers = Annotated[
    int | None, typer.Option(help="processes (process) or CPUs of a local Ray cluster (ray)")
]
RayAddress = Annotated[
    str | None, typer.Option(help="connect Ray to this running cluster, e.g. auto")
]
Ids = Annotated[
    str | None, typer.Option(help="file with one id per line, or a list such as 3,17,42")
]
Resume = Annotated[bool, typer.Option("--resume", help="finish an interrupted request")]
RequestId = Annotated[
    str | None,
    typer.Option(
        help="idempotency key recorded with the request: retrying with the same key and "
        "ids changes nothing and exits 0 ('already served as request N')"
    ),
]
DatasetForAccuracy = Annotated[
    str | None, typer.Option(help="data set for the accuracy (default: the fitted one)")
]


def executor(name: str, workers: int | None, ray_address: str | None):
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


def model_options(text: str) -> dict:
    """``--model-options``: a JSON object."""
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--model-options is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise ConfigError(
            f'--model-options must be a JSON object such as {{"hidden": [64]}}; got {text}'
        )
    return options


def load_for_fit(
    dataset: str, *, out: Path, seed: int, data_seed: int, limit, target, id_column, categorical
):
    """The data set of a ``fit`` command and the metadata that lets status reload it."""
    from unlearnkit import data
    from unlearnkit.params import check_seed
    from unlearnkit.paths import check_writable

    check_seed(seed, what="--seed")
    check_seed(data_seed, what="--data-seed")
    check_writable(out)
    options = {"limit": limit} if limit is not None else {}
    # Recorded in the store's metadata, so status and evaluate reload the same data.
    options |= file_options(target=target, id_column=id_column, categorical=categorical)
    loaded = data.load(dataset, seed=data_seed, **options)
    return loaded, {"dataset": {"name": dataset, "seed": data_seed, "options": options}}


def test_split(engine, dataset: str | None):
    """The test part of the data the store was fitted on (recorded by ``fit``)."""
    from unlearnkit import data

    reference = engine.config_.get("metadata", {}).get("dataset")
    if dataset is None:
        if reference is None:
            return None
        return data.load(
            reference["name"], seed=reference["seed"], **reference.get("options", {})
        ).test
    loaded = data.load(dataset, seed=reference["seed"] if reference else 0)
    fitted = engine.config_["data"]
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


def forget(engine_class, store: Path, *, ids, resume, request_id, executor_) -> None:
    """Serve one request on a store and print what it did."""
    if (ids is None) == (not resume):
        raise ConfigError("give --ids FILE|LIST, or --resume to finish an interrupted request")
    if resume and request_id is not None:
        raise ConfigError(
            "--resume finishes the interrupted request under its own key; drop --request-id"
        )
    with engine_class.load(store, executor=executor_) as engine:
        report = engine.resume() if resume else engine.forget(parse_ids(ids), request_id=request_id)
        if report is None:
            typer.echo("nothing to resume: no request was interrupted")
            return
        if report.already_served:
            typer.echo(
                f"already served as request {report.request} (request id {report.request_id!r}): "
                f"{report.forgotten} id(s) forgotten then; nothing changed"
            )
            return
        part = engine.part_label
        last = len(engine.step_epochs_)
        retrained = [f"{p} (from step {k})" for p, k in report.parts.items() if k <= last]
        typer.echo(
            f"request #{report.request}{' (resumed)' if report.resumed else ''}: forgot "
            f"{report.forgotten} id(s); "
            + (
                f"retrained {part} {', '.join(retrained)}: {report.steps_retrained} steps, "
                f"{report.sample_passes} sample-passes"
                if retrained
                else "nothing retrained (no trained block changed)"
            )
            + f", {report.seconds:.2f} s"
        )


def status_tail(engine, info: dict, dataset: str | None) -> None:
    """The lines of ``status`` after the engine's own: requests, disk, accuracy."""
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
    test = test_split(engine, dataset)
    typer.echo(
        f"accuracy   {engine.accuracy(test):.2f}% on test"
        if test is not None
        else "accuracy   n/a (the store names no data set; pass --dataset)"
    )


def print_report(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.2f}%"
        elif isinstance(value, dict):
            value = " ".join(f"{s}:{v:.1f}" for s, v in value.items())
        typer.echo(f"{key:<16} {value}")
