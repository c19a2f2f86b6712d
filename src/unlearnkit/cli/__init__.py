"""The ``unlearnkit`` command line. Thin by design: it parses, calls the library, prints.

Each sub-command lives in its own module and registers itself on ``app``.
Errors the user can cause (``UnlearnkitError``) print one line on stderr and
exit with status 2, without a traceback.

The command modules import the library (torch, scikit-learn, ...) inside their
functions, never at module level, so ``--help`` and argument errors answer
without loading it (``benchmarks/cli_startup.py`` measures this).
"""

from __future__ import annotations

import sys

import typer

from unlearnkit.errors import UnlearnkitError

app = typer.Typer(
    name="unlearnkit",
    help="Machine unlearning: approximate and exact methods, evaluated against the golden model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Importing a module registers its commands on `app`.
from unlearnkit.cli import arcane, audit, catalogue, debug, run, serve, sisa, theory  # noqa: E402,F401

# typer's own argument errors (a missing option, '--epochs abc'): the vendored click's
# UsageError, which typer exports only through its subclass BadParameter.
_UsageError = typer.BadParameter.__mro__[1]


def main() -> None:
    try:
        # Not standalone: argument errors reach us, to be printed on one line like ours.
        code = app(standalone_mode=False)
    except _UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "unlearnkit"
        message = " ".join(exc.format_message().split())
        if message:  # no message: a bare group name, whose help has been printed already
            print(f"error: {message} (see '{where} --help')", file=sys.stderr)
        sys.exit(exc.exit_code)
    except UnlearnkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("error: interrupted; completed steps are saved, rerun to resume", file=sys.stderr)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
