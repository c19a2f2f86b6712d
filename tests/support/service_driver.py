"""Drive a real ``unlearnkit serve`` process: start it, ``kill -9`` it, restart it, check it.

Shared by the crash test (``tests/service/test_crash.py``, 3 trials) and the load
test (``benchmarks/service.py``, 20 trials), so both run the same loop:

1. start the server on loopback (a free port the OS picked) and wait for ``/readyz``;
2. client threads submit deletion requests (1-3 ids each, every one with its own
   idempotency key); a 202 (or 200: the same key again) means *acknowledged*;
3. at a seeded random moment (every second trial: once the journal shows a
   batch running) the server is killed with SIGKILL, by its own PID;
4. it is restarted, and every request whose answer was lost is sent again under
   the same key before new ones;
5. after the last restart, wait (bounded) until every acknowledged request is done,
   then check: each acknowledged request done exactly once, its receipt naming its
   ids; the engine's deleted ids equal the union of the acknowledged requests' ids,
   each deleted by one engine request; one journal row per key; the journal and the
   store agree; ``unlearnkit serve verify`` passes.

:func:`crash_trials` returns a report whose ``problems`` list is empty when all of
that holds; callers fail on any problem (nothing here retries a wrong answer away).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The entry point the console script runs, in this interpreter (no PATH lookup).
CLI = [sys.executable, "-c", "from unlearnkit.cli import main; main()"]
HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on loopback that the OS says is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cli(*args, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """``unlearnkit ARGS...`` in a subprocess (text output, bounded in time)."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


def create_token(store, role: str, *, db=None) -> str:
    """A new bearer token of ``role``, made by ``unlearnkit serve token create``."""
    extra = ["--db", db] if db is not None else []
    done = cli("serve", "token", "create", "--store", store, "--role", role, *extra)
    if done.returncode != 0:
        raise RuntimeError(f"token create failed ({done.returncode}): {done.stderr}")
    return done.stdout.strip()


def fit_store(
    path, *, dataset: str = "digits", model: str = "mlp", shards: int = 2, slices: int = 1,
    epochs: int = 1, model_options: dict | None = None, executor: str = "serial",
):  # fmt: skip
    """Fit a SISA store at ``path`` recording its data set (so /v1/model has accuracy)."""
    import unlearnkit as uk
    from unlearnkit.exact import SISA

    data = uk.datasets.load(dataset, seed=0)
    with SISA(
        model=model, model_options=model_options or {}, shards=shards, slices=slices,
        epochs=epochs, executor=executor, store=path,
        metadata={"dataset": {"name": dataset, "seed": 0, "options": {}}},
    ) as sisa:  # fmt: skip
        sisa.fit(data.train)
    return Path(path), [int(i) for i in data.train.ids], data.test


class Server:
    """One ``unlearnkit serve`` process on loopback; its output goes to ``log_path``.

    Each :meth:`start` picks a fresh free port (a killed server's port may linger).
    """

    def __init__(
        self, store, *, log_path, db=None, batch_window: float = 0.05, max_batch: int = 8,
        executor: str = "serial", extra: tuple = (),
    ):  # fmt: skip
        self.store = Path(store)
        self.log_path = Path(log_path)
        self.db = db
        self.batch_window = batch_window
        self.max_batch = max_batch
        self.executor = executor
        self.extra = tuple(map(str, extra))
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, *, ready_timeout: float = 90.0) -> float:
        """Start and wait until ``/readyz`` answers 200; the seconds that took."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.port = free_port()
        command = [
            *CLI, "serve", "--store", str(self.store), "--host", HOST, "--port", str(self.port),
            "--batch-window", str(self.batch_window), "--max-batch", str(self.max_batch),
            "--executor", self.executor, "--log-level", "warning", *self.extra,
        ]  # fmt: skip
        if self.db is not None:
            command += ["--db", str(self.db)]
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- start #{self.starts + 1} on port {self.port}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1
        deadline = began + ready_timeout
        with httpx.Client(base_url=self.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {self.process.returncode} while starting:\n"
                        + self.log_tail()
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/readyz").status_code == 200:
                        return time.monotonic() - began
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the server was not ready in {ready_timeout} s:\n" + self.log_tail())

    def kill(self) -> None:
        """``kill -9`` the server by its PID and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        if self.process is not None:
            self.process.wait(30)

    def stop(self, *, timeout: float = 20.0) -> None:
        """Ask the server to stop (SIGTERM); SIGKILL it if it has not within ``timeout``."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def journal_path(store, db=None) -> Path:
    return Path(db) if db is not None else Path(store) / "service.sqlite3"


def batches_by_status(journal: Path) -> dict[str, int]:
    """The journal's batches by status now (read from this process: WAL readers don't block)."""
    try:
        db = sqlite3.connect(journal, timeout=1.0)
        try:
            return dict(db.execute("SELECT status, COUNT(*) FROM batches GROUP BY status"))
        finally:
            db.close()
    except sqlite3.Error:
        return {}


def running_batches(journal: Path) -> int:
    return batches_by_status(journal).get("running", 0)


# -- the crash loop --------------------------------------------------------------------


@dataclass
class Ledger:
    """What the client side knows: the plan, and which keys were acknowledged as what."""

    plan: dict[str, list[int]]  # key -> ids, in submission order
    acked: dict[str, str] = field(default_factory=dict)  # key -> request id
    unacked: list[str] = field(default_factory=list)  # sent, answer lost: send again
    sent: set[str] = field(default_factory=set)
    resent_found: int = 0  # resent keys answered 200: journaled before the crash
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def outcome(self, key: str, response: httpx.Response, *, resend: bool) -> None:
        with self.lock:
            if response.status_code in (200, 202):
                body = response.json()
                if response.status_code == 200 and not resend:
                    self.problems.append(f"key {key} sent for the first time was answered 200")
                if response.status_code == 200 and resend:
                    self.resent_found += 1
                previous = self.acked.get(key)
                if previous is not None and previous != body["id"]:
                    self.problems.append(
                        f"key {key} was acknowledged as two requests: {previous} and {body['id']}"
                    )
                self.acked[key] = body["id"]
            else:
                self.problems.append(
                    f"key {key} ids {self.plan[key]} answered {response.status_code}: "
                    f"{response.text[:300]}"
                )


def _submit(client: httpx.Client, ledger: Ledger, key: str, *, resend: bool) -> bool:
    """POST one request; False when the server did not answer (it is dead)."""
    with ledger.lock:
        ledger.sent.add(key)
    try:
        response = client.post(
            "/v1/deletions", json={"ids": ledger.plan[key], "idempotency_key": key}
        )
    except httpx.TransportError:
        with ledger.lock:
            if key not in ledger.acked and key not in ledger.unacked:
                ledger.unacked.append(key)
        return False
    ledger.outcome(key, response, resend=resend)
    return True


def _client_loop(url, token, ledger: Ledger, queue: list[str], stop: threading.Event, pause):
    """Send ``queue``'s keys (shared, popped under the ledger lock) until stopped or refused."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10.0) as client:
        while not stop.is_set():
            with ledger.lock:
                if not queue:
                    return
                key = queue.pop(0)
                resend = key in ledger.unacked
                if resend:
                    ledger.unacked.remove(key)
            if not _submit(client, ledger, key, resend=resend):
                return
            time.sleep(pause)


def make_plan(ids: list[int], *, requests: int, seed: int, most: int = 3) -> dict[str, list[int]]:
    """``requests`` disjoint deletion requests of 1..``most`` ids drawn from ``ids``."""
    rng = random.Random(seed)
    pool = list(ids)
    rng.shuffle(pool)
    plan, at = {}, 0
    for n in range(requests):
        k = rng.randint(1, most)
        if at + k > len(pool):
            raise ValueError(
                f"{len(ids)} ids are too few for {requests} requests of 1..{most} ids; "
                "ask for fewer requests per trial or fit a larger store"
            )
        plan[f"crash-{seed}-{n:05d}"] = sorted(pool[at : at + k])
        at += k
    return plan


def crash_trials(
    store, *, trials: int, seed: int, workdir, train_ids: list[int], db=None,
    batch_window: float = 0.05, max_batch: int = 8, clients: int = 2, pause: float = 0.02,
    kill_window: tuple[float, float] = (0.3, 3.0), requests_per_trial: int = 60,
    most_ids: int = 3,
    drain_timeout: float = 120.0, time_limit: float = 600.0, log=lambda message: None,
) -> dict:  # fmt: skip
    """Run ``trials`` kill-and-restart trials against a server on ``store``; a report.

    The report's ``problems`` list names every broken promise (empty: none).
    ``time_limit`` bounds the trials' loop (later trials are skipped and counted).
    Each trial offers at most ``requests_per_trial`` new requests of 1..``most_ids``
    ids, sent by ``clients`` threads with ``pause`` seconds between a thread's requests
    (so that requests keep arriving until the kill); the ids must suffice for
    ``trials + 1`` such shares.
    """
    rng = random.Random(seed)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    journal = journal_path(store, db)
    deleter = create_token(store, "deleter", db=db)
    admin = create_token(store, "admin", db=db)
    plan = make_plan(
        train_ids, requests=requests_per_trial * (trials + 1), seed=seed, most=most_ids
    )
    ledger = Ledger(plan=plan)
    fresh = list(ledger.plan)  # keys not yet sent, in order
    server = Server(
        store, log_path=workdir / "server.log", db=db, batch_window=batch_window,
        max_batch=max_batch,
    )  # fmt: skip
    kills: list[dict] = []
    starts: list[float] = []
    try:
        for trial in range(trials):
            if time.monotonic() - began > time_limit:
                break
            starts.append(server.start())
            # resend lost answers first, then this trial's share of new keys
            with ledger.lock:
                queue = list(ledger.unacked) + fresh[:requests_per_trial]
                del fresh[:requests_per_trial]
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=_client_loop,
                    args=(server.url, deleter, ledger, queue, stop, pause),
                    daemon=True,
                )  # fmt: skip
                for _ in range(clients)
            ]
            for t in threads:
                t.start()
            mode = ("random", "in_batch")[trial % 2]
            delay = rng.uniform(*kill_window)
            if mode == "in_batch":  # after a while, wait (bounded) for a batch to run, then a bit
                time.sleep(rng.uniform(0.0, delay))
                deadline = time.monotonic() + 5.0
                while running_batches(journal) < 1 and time.monotonic() < deadline:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 0.15))
            else:
                time.sleep(delay)
            at_kill = batches_by_status(journal)
            in_batch = at_kill.get("running", 0) > 0
            server.kill()
            stop.set()
            for t in threads:
                t.join(15)
            with ledger.lock:  # keys popped by a thread but never sent stay fresh
                never = [k for k in queue if k not in ledger.sent]
                fresh[:0] = never
                kills.append(
                    {"trial": trial, "mode": mode, "batch_running": in_batch,
                     "batches_done": at_kill.get("done", 0), "acked": len(ledger.acked),
                     "unacked": len(ledger.unacked)}
                )  # fmt: skip
            log(
                f"trial {trial + 1}/{trials}: killed ({mode}, batch running: {in_batch}, "
                f"{at_kill.get('done', 0)} batches done); "
                f"{len(ledger.acked)} acknowledged, {len(ledger.unacked)} to resend"
            )
        # the last restart: resend what is unanswered, then wait for every request
        starts.append(server.start())
        headers = {"Authorization": f"Bearer {deleter}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10.0) as client:
            for key in list(ledger.unacked):
                with ledger.lock:
                    ledger.unacked.remove(key)
                if not _submit(client, ledger, key, resend=True):
                    ledger.problems.append(f"the restarted server did not answer key {key}")
            statuses = _drain(client, ledger, timeout=drain_timeout)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30.0
        ) as client:
            model = client.get("/v1/model").json()
            chain = client.get("/v1/receipts/verify").json()
    finally:
        server.stop()
    report = {
        "trials": len(kills),
        "trials_asked": trials,
        "kills": kills,
        "kills_during_batch": sum(k["batch_running"] for k in kills),
        "server_starts": server.starts,
        "ready_seconds": [round(s, 3) for s in starts],
        "requests_sent": len(ledger.sent),
        "requests_acknowledged": len(ledger.acked),
        "resent_found_journaled": ledger.resent_found,
        "seconds": round(time.monotonic() - began, 3),
    }
    problems = list(ledger.problems)
    problems += _check(store, db, ledger, statuses, model, chain, report)
    verify = cli("serve", "verify", "--store", store, *(["--db", db] if db else []))
    report["verify"] = {"returncode": verify.returncode, "stdout": verify.stdout.strip()}
    if verify.returncode != 0:
        problems.append(f"unlearnkit serve verify failed ({verify.returncode}): {verify.stdout}")
    report["problems"] = problems
    report["server_log"] = str(server.log_path)
    return report


def _drain(client: httpx.Client, ledger: Ledger, *, timeout: float) -> dict[str, dict]:
    """Poll every acknowledged request until done or failed (bounded); key -> last status."""
    deadline = time.monotonic() + timeout
    statuses: dict[str, dict] = {}
    waiting = dict(ledger.acked)
    while waiting and time.monotonic() < deadline:
        for key, request_id in list(waiting.items()):
            response = client.get(f"/v1/deletions/{request_id}")
            if response.status_code != 200:
                statuses[key] = {"http": response.status_code, "text": response.text[:300]}
                continue
            body = statuses[key] = response.json()
            if body["status"] in ("done", "failed"):
                del waiting[key]
        if waiting:
            time.sleep(0.1)
    for key in waiting:
        ledger.problems.append(
            f"acknowledged key {key} (request {ledger.acked[key]}) not done after {timeout} s: "
            f"{statuses.get(key)}"
        )
    return statuses


def _check(store, db, ledger: Ledger, statuses, model, chain, report) -> list[str]:
    """The exactly-once checks against the journal, the engine and the HTTP answers."""
    from unlearnkit.service.serving import open_engine

    problems = []
    unanswered = ledger.sent - set(ledger.acked)
    if unanswered:
        problems.append(
            f"{len(unanswered)} sent key(s) never acknowledged: {sorted(unanswered)[:5]}"
        )
    # every acknowledged request is done, its receipt names its ids
    expected: set[int] = set()
    last_receipt = None
    for key, request_id in ledger.acked.items():
        ids = ledger.plan[key]
        expected.update(ids)
        body = statuses.get(key, {})
        if body.get("status") != "done":
            problems.append(f"key {key} (request {request_id}) ended {body.get('status') or body}")
            continue
        receipt = body.get("receipt") or {}
        if body.get("ids") != ids or receipt.get("ids") != ids:
            problems.append(f"key {key}: ids {ids}, status says {body.get('ids')}, receipt "
                            f"{receipt.get('ids')}")  # fmt: skip
        if last_receipt is None or receipt.get("receipt", 0) > last_receipt.get("receipt", 0):
            last_receipt = receipt
    # the journal: one row per key, only acknowledged keys, none failed
    jdb = sqlite3.connect(journal_path(store, db))
    try:
        rows = jdb.execute("SELECT idempotency_key, id, ids, status FROM requests").fetchall()
        journal_deleted = {
            r[0] for r in jdb.execute("SELECT id FROM claimed_ids WHERE deleted = 1")
        }
        batches = jdb.execute("SELECT key, status FROM batches").fetchall()
        receipts_per_request = Counter(r[0] for r in jdb.execute("SELECT request FROM receipts"))
    finally:
        jdb.close()
    per_key = Counter(r[0] for r in rows)
    duplicated = [k for k, n in per_key.items() if n > 1]
    if duplicated:
        problems.append(f"journal rows duplicated for keys {duplicated[:5]}")
    by_key = {r[0]: r for r in rows}
    for key, request_id in ledger.acked.items():
        row = by_key.get(key)
        if row is None:
            problems.append(f"acknowledged key {key} (request {request_id}) is not in the journal")
        elif row[1] != request_id or json.loads(row[2]) != ledger.plan[key]:
            problems.append(f"journal row of key {key} differs: {row}")
    stray = set(by_key) - set(ledger.acked)
    if stray:
        problems.append(f"journal holds requests no client was acknowledged: {sorted(stray)[:5]}")
    failed = [r for r in rows if r[3] != "done"]
    if failed:
        problems.append(f"{len(failed)} journal request(s) not done: {failed[:3]}")
    twice = [r for r, n in receipts_per_request.items() if n > 1]
    if twice:
        problems.append(f"requests with more than one receipt: {twice[:5]}")
    if journal_deleted != expected:
        problems.append(
            f"journal deleted ids differ from the acknowledged ids: "
            f"{len(journal_deleted - expected)} extra, {len(expected - journal_deleted)} missing"
        )
    # the engine: deleted ids == union of acknowledged ids, each by exactly one engine request
    with open_engine(store) as engine:
        engine_deleted = {int(i) for i in engine.deleted_ids_}
        log = engine.requests()
    times_deleted = Counter(int(i) for record in log for i in record.get("ids", []))
    again = [i for i, n in times_deleted.items() if n > 1]
    if again:
        problems.append(f"ids deleted by more than one engine request: {sorted(again)[:10]}")
    if engine_deleted != expected:
        problems.append(
            f"engine deleted ids differ from the union of acknowledged requests' ids: "
            f"{sorted(engine_deleted - expected)[:10]} extra, "
            f"{sorted(expected - engine_deleted)[:10]} missing"
        )
    served_keys = Counter(record.get("request_id") for record in log)
    for key, status in batches:
        if status == "done" and served_keys.get(key, 0) != 1:
            problems.append(
                f"journal batch {key} is in the engine's log {served_keys.get(key, 0)}x"
            )
        if status != "done":
            problems.append(f"journal batch {key} ended {status}")
    # what the server said at the end
    pending = model.get("pending_deletions", {})
    if pending != {"requests": 0, "ids": 0}:
        problems.append(f"/v1/model still shows pending deletions: {pending}")
    if model.get("deleted") != len(expected):
        problems.append(f"/v1/model deleted {model.get('deleted')} != {len(expected)}")
    if last_receipt and model.get("version") != last_receipt.get("model_version_after"):
        problems.append("/v1/model serves another version than the last receipt's")
    if not chain.get("ok"):
        problems.append(f"/v1/receipts/verify: {chain}")
    report["ids_deleted"] = len(engine_deleted)
    report["engine_requests"] = len(log)
    report["batches"] = len(batches)
    resumed = 0
    for body in statuses.values():
        batch = (body.get("receipt") or {}).get("batch") or {}
        resumed += bool(batch.get("resumed"))
    report["requests_in_resumed_batches"] = resumed
    return problems
