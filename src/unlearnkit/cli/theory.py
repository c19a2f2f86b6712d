"""``unlearnkit theory``: the linear-regression lab (why fine-tuning does not forget)."""

from __future__ import annotations

import time
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated

import typer

from unlearnkit.cli import app
from unlearnkit.errors import ConfigError

# Copies of ``unlearnkit.theory.sweeps.names()`` and ``DEFAULT_SEEDS``: importing the lab to
# read them would load numpy and torch before `--help` can answer.
# tests/cli/test_cli_startup.py keeps them equal to the originals.
SWEEP_NAMES = ("overlap", "forget-ratio", "width", "noise", "ridge")
DEFAULT_SEEDS = (0, 1, 2, 3, 4)

SweepName = Enum("SweepName", {n.replace("-", "_"): n for n in SWEEP_NAMES}, type=str)


class Solver(StrEnum):
    closed = "closed"
    gd = "gd"


def _ints(text: str, what: str) -> list[int]:
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated integers; got {text!r}") from None
    if not out:
        raise ConfigError(f"{what} is empty; give at least one integer, e.g. 0,1,2")
    return out


def _floats(text: str, what: str) -> list[float]:
    try:
        out = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated numbers; got {text!r}") from None
    if not out:
        raise ConfigError(f"{what} is empty; give at least one number")
    return out


@app.command("theory")
def theory(
    sweep: Annotated[
        SweepName, typer.Option(help="Scenario parameter to vary.", case_sensitive=False)
    ],
    out: Annotated[Path, typer.Option(help="Folder for theory.csv, theory.json, theory.png.")],
    seeds: Annotated[str, typer.Option(help="Comma-separated scenario seeds.")] = ",".join(
        map(str, DEFAULT_SEEDS)
    ),
    values: Annotated[
        str | None,
        typer.Option(help="Comma-separated values of the swept quantity (default: the sweep's)."),
    ] = None,
    solver: Annotated[
        Solver, typer.Option(help="closed: closed forms; gd: run gradient descent.")
    ] = Solver.closed,
    ft_steps: Annotated[
        int | None,
        typer.Option(
            help="Limit fine-tuning to this many GD steps (default: to convergence; 100 "
            "for the ridge sweep).",
            min=0,
        ),
    ] = None,
    n_test: Annotated[int, typer.Option(help="Fresh test samples per part.", min=1)] = 1000,
) -> None:
    """Sweep the linear lab and report RL, UL, test losses and distance to golden per model.

    Models: pretrained, FT, golden, A (forget-feature reset), A+FT, B+FT
    (retention-based reset then FT) and projection (retain row space, then FT).
    """
    from unlearnkit.paths import check_writable
    from unlearnkit.theory import sweeps

    name = sweep.value
    check_writable(out)
    started = time.perf_counter()
    result = sweeps.run_sweep(
        name,
        values=None if values is None else _floats(values, "--values"),
        seeds=_ints(seeds, "--seeds"),
        solver=solver.value,
        ft_steps="default" if ft_steps is None else ft_steps,
        n_test=n_test,
    )
    paths = result.write(out)
    s = result.settings
    typer.echo(
        f"# {name} sweep: {s['description']}; mean over seeds {result.seeds}; "
        f"solver={s['solver']}, ft_steps={s['ft_steps'] or 'converged'}"
    )
    typer.echo(result.table())
    typer.echo(
        f"# wrote {', '.join(str(p) for p in paths.values())} "
        f"in {time.perf_counter() - started:.1f} s"
    )
