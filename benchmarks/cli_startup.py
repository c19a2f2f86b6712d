"""How fast the command line answers when it has no real work to do.

Each command runs ``--repeats`` times in a fresh interpreter (a subprocess, as a
user runs it), round-robin so that machine load falls on all commands alike;
the median and the slowest wall time are reported. Two baselines are timed in
the same run: ``python -c pass`` (the interpreter alone) and ``python -c
"import torch"`` (what every command paid before imports were deferred); each
command's median is also given as a ratio to the torch import, which says how
the result would move on a faster or slower machine.

Target: every command's median is under 1.5 s.

    .venv/bin/python benchmarks/cli_startup.py              # 7 repeats (about a minute)
    .venv/bin/python benchmarks/cli_startup.py --repeats 3

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write  # noqa: E402

TARGET_S = 1.5
COMMANDS = {
    "unlearnkit --help": ["--help"],
    "unlearnkit run --help": ["run", "--help"],
    "unlearnkit datasets": ["datasets"],
    "unlearnkit methods": ["methods"],
    "unlearnkit run (missing options)": ["run"],
    "unlearnkit theory --help": ["theory", "--help"],
    "unlearnkit sisa fit --help": ["sisa", "fit", "--help"],
}
BASELINES = {
    "python -c pass": ["-c", "pass"],
    'python -c "import torch"': ["-c", "import torch"],
}


def entry_point() -> list[str]:
    """The installed ``unlearnkit`` script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "unlearnkit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from unlearnkit.cli import main; main()"]


def timed(argv: list[str]) -> tuple[float, int]:
    env = {**os.environ, "UNLEARNKIT_PROGRESS": "0"}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, env=env)
    return time.perf_counter() - started, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    cli = entry_point()
    runs = {**{k: cli + v for k, v in COMMANDS.items()}}
    runs.update({k: [sys.executable, *v] for k, v in BASELINES.items()})
    times: dict[str, list[float]] = {name: [] for name in runs}
    codes: dict[str, set[int]] = {name: set() for name in runs}
    for _ in range(args.repeats):
        for name, argv in runs.items():
            seconds, code = timed(argv)
            times[name].append(seconds)
            codes[name].add(code)

    torch_median = statistics.median(times['python -c "import torch"'])
    rows = []
    for name in runs:
        median, slowest = statistics.median(times[name]), max(times[name])
        is_target = name in COMMANDS
        rows.append(
            {
                "command": name,
                "median_s": median,
                "max_s": slowest,
                "runs_s": times[name],
                "exit_codes": sorted(codes[name]),
                "ratio_to_import_torch": median / torch_median,
                "target_s": TARGET_S if is_target else None,
                "pass": (median < TARGET_S) if is_target else None,
            }
        )
    ok = all(r["pass"] is not False for r in rows)

    lines = [
        "# Command-line start-up",
        "",
        f"Wall time of each command in a fresh interpreter, {args.repeats} runs each "
        "(round-robin), median and slowest. Baselines timed in the same run; "
        "ratio = median / median of `import torch`.",
        "",
        f"Target: every command's median < {TARGET_S} s.",
        "",
        "| command | median | max | ÷ import torch | target | pass |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = f"< {r['target_s']} s" if r["target_s"] else "baseline"
        verdict = {True: "yes", False: "**no**", None: "—"}[r["pass"]]
        lines.append(
            f"| `{r['command']}` | {r['median_s']:.2f} s | {r['max_s']:.2f} s | "
            f"{r['ratio_to_import_torch']:.2f} | {target} | {verdict} |"
        )
    info = machine()
    lines += [
        "",
        f"Overall: {'PASS' if ok else 'FAIL'}. Machine: {info['platform']}, "
        f"{info['cpus']} CPUs, {info['date']}.",
        "",
    ]
    markdown = "\n".join(lines)
    json_path, md_path = write(
        "cli_startup",
        {"target_s": TARGET_S, "repeats": args.repeats, "rows": rows, "machine": info},
        markdown,
    )
    print(markdown)
    print(f"wrote {json_path} and {md_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
