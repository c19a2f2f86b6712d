"""``unlearnkit theory`` end to end: files written, table content, errors, and the time budget."""

import csv
import io
import json
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from unittest import mock

import pytest

from unlearnkit.cli import main
from unlearnkit.theory import MODELS, run_sweep
from unlearnkit.theory.sweeps import SWEEPS


def cli_subprocess(*args):
    """As a user runs it: a fresh interpreter (imports included in the time)."""
    return subprocess.run(
        [sys.executable, "-c", "from unlearnkit.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def cli(*args):
    """In-process through the real entry point (``main``), which maps errors to exit 2."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    argv = mock.patch.object(sys, "argv", ["unlearnkit", *args])
    with argv, redirect_stdout(out), redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


@pytest.mark.slow
def test_overlap_sweep_at_defaults_writes_outputs_within_a_minute(tmp_path):
    started = time.perf_counter()
    proc = cli_subprocess("theory", "--sweep", "overlap", "--out", str(tmp_path))
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60
    for name in ("theory.csv", "theory.json", "theory.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "theory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = list(csv.DictReader((tmp_path / "theory.csv").open()))
    assert len(rows) == len(SWEEPS["overlap"].values) * len(MODELS)
    by = {(float(r["value"]), r["model"]): r for r in rows}
    for v in SWEEPS["overlap"].values:  # every overlap value is overparameterised (n < d)
        assert float(by[v, "FT"]["UL_mean"]) < 1e-20
        assert float(by[v, "golden"]["UL_mean"]) > 0.1
        assert float(by[v, "projection"]["dist_golden_mean"]) < 1e-10
    # The printed table carries the same numbers.
    ft_line = next(line for line in proc.stdout.splitlines() if line.split()[:2] == ["0", "FT"])
    assert float(ft_line.split()[3]) < 1e-20

    data = json.loads((tmp_path / "theory.json").read_text())
    assert data["sweep"] == "overlap" and data["seeds"] == [0, 1, 2, 3, 4]
    assert len(data["records"]) == len(rows) * 5


@pytest.mark.parametrize("sweep", sorted(SWEEPS))
def test_every_sweep_runs_and_keeps_its_identities(sweep):
    spec = SWEEPS[sweep]
    values = [spec.values[0], spec.values[-1]]
    r = run_sweep(sweep, values=values, seeds=[0], n_test=50)
    by = {(x["value"], x["model"]): x for x in r.summary}
    for v in values:
        # Projection then FT is golden in every regime (at convergence, or with ridge's
        # finite budget starting from golden's row-space component).
        if spec.ft_steps is None:
            assert by[v, "projection"]["dist_golden_mean"] < 1e-8
        assert by[v, "golden"]["RL_mean"] < 1e-20 or sweep in ("width", "ridge")


def test_width_sweep_shows_ft_equal_golden_only_when_underparameterised():
    r = run_sweep("width", values=[0.5, 2.0], seeds=[0, 1], n_test=50)
    by = {(x["value"], x["model"]): x for x in r.summary}
    assert by[0.5, "FT"]["dist_golden_mean"] < 1e-10  # n_r = 80 >= d = 50
    assert by[2.0, "FT"]["dist_golden_mean"] > 0.1  # n = 100 < d = 200
    assert by[2.0, "FT"]["UL_mean"] < 1e-20 < by[2.0, "golden"]["UL_mean"]


def test_cli_reports_bad_options_in_one_line(tmp_path):
    proc = cli("theory", "--sweep", "noise", "--out", str(tmp_path), "--seeds", "x")
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --seeds must be comma-separated integers; got 'x'"
    proc = cli("theory", "--sweep", "nope", "--out", str(tmp_path))
    assert proc.returncode == 2 and "overlap" in proc.stderr


def test_cli_small_gd_run(tmp_path):
    proc = cli(
        "theory", "--sweep", "ridge", "--out", str(tmp_path), "--seeds", "0",
        "--values", "0,10", "--solver", "gd", "--n-test", "50",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "theory.json").read_text())
    assert data["settings"] == {**data["settings"], "solver": "gd", "ft_steps": 100}
    ft = [r for r in data["records"] if r["model"] == "FT"]
    assert [r["gd_steps"] for r in ft] == [100, 100]
    golden = [r for r in data["records"] if r["model"] == "golden"]
    assert all(r["gd_converged"] for r in golden)
