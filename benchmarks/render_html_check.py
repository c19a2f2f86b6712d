"""Render an HTML report to a PNG screenshot with headless Chromium, to look at it.

Not part of the test suite (it needs a browser): the tests check the reports'
structure; this shows whether a real browser draws the tables and figures.

    python benchmarks/render_html_check.py runs/demo/report.html --out /tmp/run.png

Exits 2 when no Chromium is installed (``apt-get install -y chromium``), 1 when
Chromium fails or writes no screenshot. Network access is switched off, so a
report that needed any outside resource would show it missing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The first Chromium-like executable on PATH, else None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(
    html: Path, *, out: Path, width: int = 1280, height: int = 2400, timeout: float = 120
) -> Path:
    """Write a ``width`` × ``height`` screenshot of ``html`` to ``out`` (PNG)."""
    browser = find_browser()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH; install it with: apt-get install -y chromium")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="render-check-") as profile:
        command = [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",  # root in a container has no user namespace for the sandbox
            "--hide-scrollbars",
            f"--user-data-dir={profile}",  # a throwaway profile: nothing is left behind
            # A self-contained report needs no network; make sure it gets none.
            "--proxy-server=127.0.0.1:9",
            "--proxy-bypass-list=<-loopback>",
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            html.resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the report.html to render")
    parser.add_argument("--out", type=Path, help="screenshot path (default: beside the html)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    if not args.html.is_file():
        print(f"error: no such file: {args.html}", file=sys.stderr)
        return 1
    out = args.out or args.html.with_suffix(".png")
    try:
        path = screenshot(args.html, out=out, width=args.width, height=args.height)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
