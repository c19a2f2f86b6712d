"""``unlearnkit serve --store DIR``: the deletion-request service, its tokens and its audit.

- ``unlearnkit serve --store DIR [--host 127.0.0.1 --port 8000 --db PATH ...]`` serves
  the store over HTTP (uvicorn) until interrupted;
- ``unlearnkit serve token create --store DIR --role ROLE`` prints a new token, once;
- ``unlearnkit serve verify --store DIR`` checks the receipt chain, the store's files
  and that the journal and the store agree; exits 1 on a problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app

serve_app = typer.Typer(
    name="serve",
    help="The deletion-request HTTP service on a persistent engine store (SISA, ARCANE).",
    invoke_without_command=True,
)
token_app = typer.Typer(name="token", help="Bearer tokens of the service.", no_args_is_help=True)
serve_app.add_typer(token_app, name="token")
app.add_typer(serve_app, name="serve")

Store = Annotated[Path, typer.Option(help="store directory made by 'sisa fit' or 'arcane fit'")]
Db = Annotated[Path | None, typer.Option(help="journal database (default: STORE/service.sqlite3)")]


@serve_app.callback()
def serve(
    ctx: typer.Context,
    store: Annotated[
        Path | None, typer.Option(help="store directory made by 'sisa fit' or 'arcane fit'")
    ] = None,
    host: Annotated[str, typer.Option(help="address to bind; keep loopback behind a proxy")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    db: Db = None,
    batch_window: Annotated[
        float, typer.Option(help="seconds a queued request waits for others to batch with")
    ] = 0.5,
    max_batch: Annotated[int, typer.Option(help="most requests applied in one batch")] = 64,
    max_ids: Annotated[int, typer.Option(help="most ids in one deletion request (else 413)")] = (
        10_000
    ),
    max_body_bytes: Annotated[int, typer.Option(help="largest request body (else 413)")] = (
        1 << 20
    ),
    executor: Annotated[
        str, typer.Option(help="how retraining runs: serial or process (local cores)")
    ] = "serial",
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    docs: Annotated[
        bool,
        typer.Option(
            help="serve the OpenAPI docs (/docs, /redoc, /openapi.json) without a token; "
            "they describe the API and hold no data"
        ),
    ] = True,
) -> None:
    """Serve deletion requests, predictions and receipts for the store at --store."""
    if ctx.invoked_subcommand is not None:
        return
    from unlearnkit.errors import ConfigError

    if store is None:
        raise ConfigError("give --store DIR, the engine store to serve")
    if batch_window < 0 or max_batch < 1 or max_ids < 1 or max_body_bytes < 1:
        raise ConfigError(
            "--batch-window must be >= 0 and --max-batch, --max-ids, --max-body-bytes >= 1"
        )
    if not store.is_dir():
        raise ConfigError(f"--store {store} is not a directory; fit a store first")
    import uvicorn

    from unlearnkit.service.app import create_app

    service = create_app(
        store, db=db, batch_window=batch_window, max_batch=max_batch, max_ids=max_ids,
        max_body_bytes=max_body_bytes, executor=executor, docs=docs,
    )  # fmt: skip
    uvicorn.run(service, host=host, port=port, log_level=log_level)


@token_app.command("create")
def token_create(
    store: Store,
    role: Annotated[str, typer.Option(help="admin, deleter or reader")],
    label: Annotated[str | None, typer.Option(help="a note kept with the token")] = None,
    db: Db = None,
) -> None:
    """Create a bearer token and print it; it is shown this once (only its hash is kept)."""
    from unlearnkit.errors import ConfigError
    from unlearnkit.service.auth import check_role, create_token
    from unlearnkit.service.journal import Journal, default_path

    check_role(role)
    if not store.is_dir():
        raise ConfigError(f"--store {store} is not a directory; fit a store first")
    journal = Journal(db if db is not None else default_path(store))
    try:
        token_id, token = create_token(journal, role=role, label=label)
    finally:
        journal.close()
    typer.echo(token)
    typer.echo(f"token #{token_id} ({role}); store it now, it is not shown again", err=True)


@serve_app.command("verify")
def verify(store: Store, db: Db = None) -> None:
    """Check the receipt chain, the store's files, and that the journal and store agree."""
    from unlearnkit.service.audit import verify_service

    report = verify_service(store, db=db)
    for line in report["notes"]:
        typer.echo(f"note       {line}")
    for line in report["problems"]:
        typer.echo(f"problem    {line}")
    typer.echo(
        f"receipts   {report['receipts']} (head {report['head_sha256']}); "
        + ("ok" if not report["problems"] else f"{len(report['problems'])} problem(s)")
    )
    if report["problems"]:
        raise typer.Exit(1)
