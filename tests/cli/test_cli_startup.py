"""The command line answers help, listings and argument errors without loading the heavy stack.

Measured in ``benchmarks/cli_startup.py``; here only the property behind the speed is
checked (which modules get imported), so the test does not depend on the machine's load.
"""

import json
import subprocess
import sys

import pytest

from unlearnkit.cli import theory as theory_cli

# Runs each command line in one fresh interpreter and prints the heavy modules it loaded.
PROBE = """
import json, sys
from unlearnkit.cli import main
HEAVY = ("torch", "sklearn", "scipy", "ray", "matplotlib", "pandas")
loaded = {}
for argv in json.loads(sys.argv[1]):
    sys.argv = ["unlearnkit", *argv]
    try:
        main()
    except SystemExit:
        pass
    loaded[" ".join(argv)] = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps(loaded), file=sys.stderr)
"""


def _loaded(commands: list[list[str]]) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(commands)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_help_and_argument_errors_do_not_import_torch():
    commands = [
        ["--help"],
        ["run", "--help"],
        ["run"],  # missing options: an argument error
        ["theory", "--help"],
        ["theory", "--sweep", "nope", "--out", "x"],
        ["sisa", "--help"],
        ["sisa", "fit", "--help"],
        ["sisa", "status", "--help"],
    ]
    # Commands run in order in one process, so any import shows up from then on.
    assert _loaded(commands) == {" ".join(c): [] for c in commands}


@pytest.mark.slow
def test_listings_import_torch_but_nothing_heavier():
    loaded = _loaded([["datasets"], ["methods"]])
    assert loaded == {"datasets": ["torch"], "methods": ["torch"]}


def test_copied_sweep_names_match_the_lab():
    from unlearnkit.theory import sweeps

    assert list(theory_cli.SWEEP_NAMES) == sweeps.names()
    assert theory_cli.DEFAULT_SEEDS == sweeps.DEFAULT_SEEDS
