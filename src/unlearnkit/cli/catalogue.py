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
    """List the registered methods and exact engines, one per line, with their capabilities."""
    from unlearnkit import exact, methods

    for name in methods.names():
        cls = methods.get(name)
        flags = ",".join(
            f
            for f, on in (
                ("exact", cls.exact),
                ("forget", cls.needs_forget),
                ("retain", cls.needs_retain),
                ("validation", cls.needs_validation),
            )
            if on
        )
        if cls.model_kinds:
            flags += ",models=" + "|".join(cls.model_kinds)
        typer.echo(f"{name:<16} [{flags}] {cls.summary}")
    for name in exact.names():
        typer.echo(exact_engine_line(exact.get(name)))


def exact_engine_line(cls) -> str:
    """One listing line: name, capabilities, summary and the ``-o`` options it takes.

    >>> from unlearnkit import exact
    >>> exact_engine_line(exact.get("exact_ridge")).split("]")[0]
    'exact_ridge      [exact,tolerance=1e-08,classification'
    """
    from unlearnkit.params import declared

    flags = [
        "exact",
        "bit-exact" if cls.bit_exact else f"tolerance={cls.tolerance:g}",
        *(["persistent"] if cls.persistent else []),
        *cls.tasks,
    ]
    options = ", ".join(declared(cls.run_options)) or "none"
    return f"{cls.name:<16} [{','.join(flags)}] {cls.summary}; options: {options}"
