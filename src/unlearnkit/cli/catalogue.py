"""``unlearnkit datasets`` and ``unlearnkit methods``: what can be named on the command line."""

from __future__ import annotations

import typer

from unlearnkit.cli import app


@app.command("datasets")
def list_datasets() -> None:
    """List the built-in data sets, one per line (a .csv or .npz path also works)."""
    from unlearnkit import data

    for name, text in data.describe().items():
        typer.echo(f"{name:<15} {text}")


@app.command("methods")
def list_methods() -> None:
    """List the registered unlearning methods, one per line, with their capabilities."""
    from unlearnkit import methods
    from unlearnkit.engines import EXACT_ENGINES

    for name in methods.names():
        cls = methods.get(name)
        flags = ",".join(
            f
            for f, on in (
                ("exact", cls.exact),
                ("forget", cls.needs_forget),
                ("retain", cls.needs_retain),
            )
            if on
        )
        typer.echo(f"{name:<16} [{flags}] {cls.summary}")
    for name, options in EXACT_ENGINES.items():
        typer.echo(f"{name:<16} [exact,own-training] exact engine; options: {', '.join(options)}")
