"""The real command-line entry point, run in-process: fast, and as a user sees it."""

from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

from unlearnkit.cli import main


def cli(*args) -> subprocess.CompletedProcess:
    """Run ``unlearnkit ARGS...``; exit code, stdout and stderr as a user sees them."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.object(sys, "argv", ["unlearnkit", *map(str, args)]),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
