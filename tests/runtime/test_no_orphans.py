"""No orphans: when the owner of a process executor is killed with SIGKILL, its workers,
the fork server and every other process it started end by themselves within seconds.

Processes are found through /proc (Linux): each is recorded with its start time, so a
recycled pid is never mistaken for a survivor. Every test kills what is left at the end,
whether it passes or not.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unlearnkit.exact.partitioned.store import PartStore

PROC = Path("/proc")

pytestmark = pytest.mark.skipif(
    not (PROC / "self" / "stat").exists(), reason="finds processes through Linux's /proc"
)

# A process that ended is reaped by the fork server or by pid 1; give both time.
GONE_WITHIN_S = 10


def _stat(pid: int) -> tuple[str, int, int] | None:
    """``(state, ppid, start time)`` of a process, or None if there is none."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and ')': the fields after it are safe.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """Every living process below ``root``: pid -> start time."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[1], []).append((int(entry.name), stat[2]))
    found, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def alive(processes: dict[int, int]) -> list[int]:
    """The recorded processes still running (a zombie has ended; it only awaits reaping)."""
    return [
        pid
        for pid, start in processes.items()
        if (stat := _stat(pid)) is not None and stat[2] == start and stat[0] not in "ZX"
    ]


def describe(pids: list[int]) -> str:
    def cmdline(pid: int) -> str:
        try:
            return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]
        except OSError:
            return "?"

    return "; ".join(f"{pid}: {cmdline(pid)}" for pid in pids)


def wait_until_gone(processes: dict[int, int]) -> list[int]:
    """Poll (bounded in time and count) until none of ``processes`` runs; the survivors."""
    deadline = time.monotonic() + GONE_WITHIN_S
    for _ in range(GONE_WITHIN_S * 20):
        if not alive(processes) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return alive(processes)


def kill_all(processes: dict[int, int]) -> None:
    for pid in alive(processes):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def kill_owner(owner: subprocess.Popen, seen: dict[int, int]) -> dict[int, int]:
    """SIGKILL ``owner`` and return everything it had started (``seen`` plus what runs now)."""
    processes = {**seen, **descendants(owner.pid)}
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=30)
    return processes


OWNER = """
import os
import sys
import time

from unlearnkit.runtime import ProcessExecutor


def note_and_sleep(path):
    with open(path, "a") as f:
        f.write(f"{os.getpid()} {os.getppid()}\\n")
    time.sleep(120)  # far longer than the test: only the owner's death may end it


if __name__ == "__main__":
    ProcessExecutor(2, start_method=sys.argv[1]).map(note_and_sleep, [sys.argv[2]] * 2)
"""


@pytest.mark.parametrize(
    "start_method",
    [m for m in ("forkserver", "spawn", "fork") if m in multiprocessing.get_all_start_methods()],
)
def test_workers_and_fork_server_end_when_the_owner_is_killed(tmp_path, start_method):
    script, notes, log = tmp_path / "owner.py", tmp_path / "workers.txt", tmp_path / "stderr"
    script.write_text(OWNER)
    env = {**os.environ, "UNLEARNKIT_PROGRESS": "0"}
    with log.open("wb") as stderr:
        owner = subprocess.Popen(
            [sys.executable, str(script), start_method, str(notes)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    processes: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 120
        while owner.poll() is None and time.monotonic() < deadline:
            if notes.exists() and len(notes.read_text().splitlines()) == 2:
                break
            time.sleep(0.05)
        assert owner.poll() is None, f"the owner ended early: {log.read_text()}"
        workers = [tuple(map(int, line.split())) for line in notes.read_text().splitlines()]
        assert len(workers) == 2, "the two jobs did not start in time"

        processes = kill_owner(owner, {})

        # Both jobs are running, each in its own worker, started by the owner or,
        # under forkserver, by the fork server, which the owner started.
        assert {pid for pid, _ in workers} <= processes.keys()
        parents = {ppid for _, ppid in workers}
        if start_method == "forkserver":
            assert len(parents) == 1 and parents <= processes.keys()
        else:
            assert parents == {owner.pid}
        survivors = wait_until_gone(processes)
        assert not survivors, f"still running {GONE_WITHIN_S} s after the owner: " + describe(
            survivors
        )
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(timeout=30)
        kill_all(processes)


CLI = "from unlearnkit.cli import main; main()"


def test_killing_the_cli_mid_forget_leaves_no_process_behind(digits, tmp_path):
    """The issue's case: ``kill -9`` of ``unlearnkit sisa forget --executor process``."""
    from unlearnkit.exact import SISA
    from unlearnkit.training import TrainConfig

    store = tmp_path / "store"
    # Forgetting from slice 0 retrains both steps of both shards, one shard per worker;
    # 64 hidden units and 40 epochs per step leave the second steps running at the kill.
    sisa = SISA(
        model="mlp",
        model_options={"hidden": [64]},
        shards=2,
        slices=2,
        epochs=40,
        training=TrainConfig(batch_size=32),
        seed=0,
        store=store,
        executor="serial",
    ).fit(digits.train)
    shard_of, slice_of = sisa.locate(digits.train.ids)
    ids = digits.train.ids.numpy()
    drop = [int(ids[(shard_of == shard) & (slice_of == 0)][0]) for shard in (0, 1)]

    env = {**os.environ, "UNLEARNKIT_PROGRESS": "0"}
    args = ["sisa", "forget", str(store), "--ids", ",".join(map(str, drop))]
    args += ["--executor", "process", "--workers", "2"]
    cli = subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, stdout=subprocess.DEVNULL)
    first_new = store / "shard-0000" / "step-001.r00001.safetensors"
    seen: dict[int, int] = {}
    processes: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 120
        while not first_new.exists() and cli.poll() is None and time.monotonic() < deadline:
            seen |= descendants(cli.pid)  # the workers may be replaced: keep all ever seen
            time.sleep(0.02)
        processes = kill_owner(cli, seen)
        assert first_new.exists() and cli.returncode == -signal.SIGKILL, (
            "the CLI was not killed mid-forget"
        )
        assert not PartStore(store).read_log(), "the forget finished before the kill"
        assert len(processes) >= 3, f"expected a fork server and 2 workers: {processes}"

        survivors = wait_until_gone(processes)
        assert not survivors, f"still running {GONE_WITHIN_S} s after the CLI: " + describe(
            survivors
        )
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=30)
        kill_all(processes)
