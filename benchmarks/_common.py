"""Helpers shared by the benchmark scripts: machine description and result writing."""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def write(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, default=float))
    md_path.write_text(markdown)
    return json_path, md_path


def cpu_counters() -> tuple[int, int] | None:
    """Cumulative ``(steal, total)`` CPU ticks of this machine (Linux), else ``None``.

    Steal is time the hypervisor gave our virtual CPUs to someone else: on a shared
    host it is the part of timing noise no benchmark can control, so it is reported.
    """
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def steal_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Share of CPU time stolen between two :func:`cpu_counters` readings."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def linked_copy(source: Path, target: Path) -> Path:
    """An independent copy of an engine store at almost no I/O cost.

    Tensor files are never changed in place (new names, atomic renames), so hard
    links do; the SQLite database is changed in place, so it is copied.
    """
    from unlearnkit.exact.partitioned.store import SQLITE_FILES

    def link_or_copy(src, dst):
        if Path(src).name in SQLITE_FILES:
            return shutil.copy2(src, dst)
        return os.link(src, dst)

    shutil.copytree(source, target, copy_function=link_or_copy)
    return target
