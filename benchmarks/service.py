"""Load test of the deletion-request service (issue 15), loopback only, bounded in count and time.

Three parts, each on a real ``unlearnkit serve`` process on 127.0.0.1:

- **crash**: 20 kill-and-restart trials (the loop of ``tests/service/test_crash.py``,
  from ``tests/support/service_driver.py``) on a digits MLP store: SIGKILL at seeded
  random moments, half of them while a batch runs; target 0 lost or duplicated
  requests (every acknowledged request done exactly once, store and journal agree,
  ``unlearnkit serve verify`` passes);
- **predict**: N concurrent clients send one-row predictions on an MNIST-5k MLP store
  (2 shards, 30 epochs: one batch retrains for seconds); p99 latency idle, then
  during batch retrains (only predictions that began after a batch started and ended
  before it committed, from the receipts' timestamps); target p99 during <= 3x idle;
- **submit**: N concurrent clients submit deletion requests of one id each on the
  MNIST-5k store (4000 ids); the worker runs but with a batch window of an hour, so
  no batch starts and the number measured is the journaling path (auth, id checks, one
  fsync'd SQLite transaction per request); target >= 200 accepted (202) per second.

Run: ``python benchmarks/service.py`` (a few minutes on 2 cores); ``--quick`` runs
fewer trials and requests (a smoke run; it writes nothing). Results:
``benchmarks/results/service.{json,md}``; exit code 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests" / "support"))
from _common import machine, write  # noqa: E402
from service_driver import Server, crash_trials, create_token, fit_store  # noqa: E402

TARGETS = {"lost_or_duplicated": 0, "crash_trials": 20, "p99_ratio": 3.0, "submissions_per_s": 200}


def log(message: str) -> None:
    print(message, flush=True)


def percentile(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if len(values) else None


def ms(value: float | None) -> float | None:
    return None if value is None else round(1000 * value, 3)


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


# -- part (a): crash trials -------------------------------------------------------------
def bench_crash(work: Path, *, trials: int) -> dict:
    store, train_ids, _ = fit_store(work / "crash-store", model="mlp", shards=2, epochs=3)
    report = crash_trials(
        store, trials=trials, seed=2015, workdir=work / "crash", train_ids=train_ids,
        requests_per_trial=40, most_ids=2, pause=0.08, time_limit=600.0, log=log,
    )  # fmt: skip
    report.pop("server_log", None)
    return report


# -- part (b): prediction latency idle and while a batch retrains -----------------------
class Predictors:
    """``clients`` threads sending one-row predictions; each latency with its start and end."""

    def __init__(self, url: str, token: str, rows: list[list[float]], *, clients: int):
        self.url, self.token, self.rows, self.clients = url, token, rows, clients
        self.samples: list[tuple[float, float]] = []  # (start, end) wall clock
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def _loop(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30.0) as client:
            i = n
            while not self._stop.is_set():
                row = self.rows[i % len(self.rows)]
                i += self.clients
                began = time.time()
                response = client.post("/v1/predict", json={"features": [row]})
                ended = time.time()
                with self._lock:
                    if response.status_code == 200:
                        self.samples.append((began, ended))
                    else:
                        self.errors.append(f"{response.status_code}: {response.text[:200]}")

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(self.clients)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def between(self, start: float, end: float) -> list[float]:
        with self._lock:
            return [b - a for a, b in self.samples if a >= start and b <= end]


def bench_predict(store: Path, train_ids, test, work: Path, *, clients: int, idle_seconds: float,
                  batches: int, executor: str) -> dict:  # fmt: skip
    reader = create_token(store, "reader")
    deleter = create_token(store, "deleter")
    rows = [test.X[i].reshape(-1).tolist() for i in range(64)]
    server = Server(store, log_path=work / f"predict-{executor}.log", batch_window=0.0,
                    max_batch=64, executor=executor)  # fmt: skip
    server.start()
    predictors = Predictors(server.url, reader, rows, clients=clients)
    windows, retrain_seconds = [], []
    rng = np.random.default_rng(7)
    try:
        predictors.start()
        time.sleep(1.0)  # warm up: connections, first calls
        idle_from = time.time()
        time.sleep(idle_seconds)
        idle_to = time.time()
        headers = {"Authorization": f"Bearer {deleter}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
            retained = np.asarray(train_ids)
            for b in range(batches):
                ids = sorted(int(i) for i in rng.choice(retained, size=4, replace=False))
                retained = np.setdiff1d(retained, ids)
                submitted = client.post(
                    "/v1/deletions", json={"ids": ids, "idempotency_key": f"bench-predict-{b}"}
                )
                assert submitted.status_code == 202, submitted.text
                request_id = submitted.json()["id"]
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    status = client.get(f"/v1/deletions/{request_id}").json()
                    if status["status"] in ("done", "failed"):
                        break
                    time.sleep(0.2)
                assert status["status"] == "done", status
                receipt = status["receipt"]
                windows.append((epoch(receipt["started"]), epoch(receipt["committed"])))
                retrain_seconds.append(receipt["batch"]["seconds"])
                time.sleep(1.0)  # let the clients settle on the new version
        predictors.stop()
    finally:
        predictors.stop()
        server.stop()
    idle = predictors.between(idle_from, idle_to)
    during = [lat for start, end in windows for lat in predictors.between(start, end)]
    idle_p99, during_p99 = percentile(idle, 99), percentile(during, 99)
    return {
        "executor": executor,
        "clients": clients,
        "idle": {"n": len(idle), "p50_ms": ms(percentile(idle, 50)), "p99_ms": ms(idle_p99),
                 "per_s": round(len(idle) / (idle_to - idle_from), 1)},
        "during_retrain": {"n": len(during), "p50_ms": ms(percentile(during, 50)),
                           "p99_ms": ms(during_p99),
                           "per_s": round(len(during) / sum(e - s for s, e in windows), 1)},
        "batches": batches,
        "retrain_seconds": [round(s, 3) for s in retrain_seconds],
        "p99_ratio": round(during_p99 / idle_p99, 3) if idle_p99 and during_p99 else None,
        "errors": predictors.errors[:5],
    }  # fmt: skip


# -- part (c): deletion submissions per second -------------------------------------------
def bench_submit(
    store: Path, train_ids, work: Path, *, clients: int, requests: int, limit_s: float
) -> dict:
    deleter = create_token(store, "deleter")
    reader = create_token(store, "reader")
    server = Server(store, log_path=work / "submit.log", batch_window=3600.0,
                    max_batch=1_000_000)  # fmt: skip
    server.start()
    headers = {"Authorization": f"Bearer {deleter}"}
    ids = list(train_ids)[:requests]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(ids)))
    deadline = time.monotonic() + limit_s

    def loop():
        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as c:
            while time.monotonic() < deadline:
                with lock:
                    n = next(cursor, None)
                if n is None:
                    return
                body = {"ids": [ids[n]], "idempotency_key": f"bench-submit-{n}"}
                began = time.perf_counter()
                response = c.post("/v1/deletions", json=body)
                took = time.perf_counter() - began
                with lock:
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 202:
                        latencies.append(took)

    try:
        threads = [threading.Thread(target=loop, daemon=True) for _ in range(clients)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(limit_s + 60)
        seconds = time.perf_counter() - began
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            answer = client.get("/v1/model", headers={"Authorization": f"Bearer {reader}"})
            queued = answer.json()["requests"]["queued"]
    finally:
        server.stop()
    accepted = statuses.get(202, 0)
    return {
        "clients": clients,
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "accepted": accepted,
        "journaled_queued": queued,
        "seconds": round(seconds, 3),
        "per_s": round(accepted / seconds, 1),
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "mean_ms": ms(statistics.fmean(latencies)) if latencies else None,
        "worker": "running, batch window 3600 s and max batch 10^6: no batch starts",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=TARGETS["crash_trials"])
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients")
    parser.add_argument("--predict-clients", type=int, default=4)
    parser.add_argument("--submissions", type=int, default=3000)
    parser.add_argument("--executor", default="serial", help="the server's --executor")
    parser.add_argument("--quick", action="store_true", help="smoke run: small, writes nothing")
    parser.add_argument("--work", type=Path, default=None, help="(default: a temporary folder)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.submissions = 2, 300
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-service-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    try:
        log(f"crash: {args.trials} kill-and-restart trials")
        crash = bench_crash(work, trials=args.trials)
        log("fitting the MNIST-5k store (MLP, 2 shards, 30 epochs)")
        big, big_ids, test = fit_store(work / "mnist-store", dataset="mnist5k", model="mlp", shards=2,
                                 epochs=30)  # fmt: skip
        predict_store = shutil.copytree(big, work / "predict-store")
        log(f"predict: {args.predict_clients} clients, idle then during batch retrains")
        predict = bench_predict(predict_store, big_ids, test, work, clients=args.predict_clients,
                                idle_seconds=4.0 if args.quick else 10.0,
                                batches=1 if args.quick else 3, executor=args.executor)  # fmt: skip
        log(f"submit: {args.clients} clients, {args.submissions} requests of one id")
        submit = bench_submit(shutil.copytree(big, work / "submit-store"), big_ids, work,
                              clients=args.clients, requests=args.submissions,
                              limit_s=120.0)  # fmt: skip
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    lost = len(crash["problems"])
    checks = [
        {"target": f"lost or duplicated requests across {TARGETS['crash_trials']} kill-and-restart "
                   f"trials = {TARGETS['lost_or_duplicated']}",
         "measured": f"{lost} problem(s) in {crash['trials']} trials "
                     f"({crash['kills_during_batch']} killed during a batch, "
                     f"{crash['requests_acknowledged']} requests acknowledged)",
         "pass": lost == 0 and crash["trials"] >= TARGETS["crash_trials"]},
        {"target": f"prediction p99 while a batch retrains <= {TARGETS['p99_ratio']}x idle p99",
         "measured": f"{predict['during_retrain']['p99_ms']} ms vs {predict['idle']['p99_ms']} ms "
                     f"idle = {predict['p99_ratio']}x",
         "pass": predict["p99_ratio"] is not None
                 and predict["p99_ratio"] <= TARGETS["p99_ratio"]},
        {"target": f">= {TARGETS['submissions_per_s']} deletion submissions/s accepted (journaled)",
         "measured": f"{submit['per_s']}/s ({submit['accepted']} accepted in "
                     f"{submit['seconds']} s, p50 {submit['p50_ms']} ms, p99 {submit['p99_ms']} ms)",
         "pass": submit["per_s"] >= TARGETS["submissions_per_s"]},
    ]  # fmt: skip
    payload = {
        "benchmark": "service",
        "machine": machine(),
        "targets": TARGETS,
        "crash": crash,
        "predict": predict,
        "submit": submit,
        "checks": checks,
        "pass": all(c["pass"] for c in checks),
        "seconds": round(time.monotonic() - began, 1),
    }
    for c in checks:
        log(f"{'PASS' if c['pass'] else 'FAIL'}  {c['target']}: {c['measured']}")
    if args.quick:
        log("quick run: nothing written")
    else:
        json_path, md_path = write("service", payload, render(payload))
        log(f"wrote {json_path} and {md_path} in {payload['seconds']:.0f} s")
    return 0 if payload["pass"] else 1


def render(payload: dict) -> str:
    crash, predict, submit = payload["crash"], payload["predict"], payload["submit"]
    m = payload["machine"]
    lines = [
        "# Deletion-request service under load (issue 15)",
        "",
        f"Measured by `benchmarks/service.py` on {m['cpus']} CPUs ({m['platform']}, Python "
        f"{m['python']}, torch {m['torch']}), a real `unlearnkit serve` process on 127.0.0.1, "
        f"clients in threads of the benchmark process. Total {payload['seconds']:.0f} s.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for c in payload["checks"]:
        lines.append(f"| {c['target']} | {c['measured']} | {'pass' if c['pass'] else 'FAIL'} |")
    lines += [
        "",
        "## Crash trials",
        "",
        f"Digits, MLP, 2 shards, 3 epochs; batch window 0.05 s, max batch 8; 2 clients "
        f"sending requests of 1-2 ids (at most 40 new per trial, 0.08 s apart per client); "
        f"SIGKILL 0.3-3 s after ready, half the trials while a batch runs. "
        f"{crash['trials']} trials, {crash['server_starts']} server starts, "
        f"{crash['kills_during_batch']} kills while the journal showed a batch running; "
        f"{crash['requests_sent']} requests sent, {crash['requests_acknowledged']} acknowledged, "
        f"{crash['resent_found_journaled']} resent after a lost answer and found journaled, "
        f"{crash['requests_in_resumed_batches']} done in a batch resumed after a kill; "
        f"{crash['ids_deleted']} ids deleted by {crash['engine_requests']} engine requests. "
        f"`unlearnkit serve verify`: {crash['verify']['stdout']}",
        "",
        "Problems: " + ("none" if not crash["problems"] else "; ".join(crash["problems"])),
        "",
        "## Prediction latency",
        "",
        f"MNIST-5k, MLP, 2 shards x 1 slice, 30 epochs; server `--executor "
        f"{predict['executor']}`; {predict['clients']} clients sending one-row predictions "
        f"back to back. {predict['batches']} batches of 4 ids, retraining "
        f"{', '.join(map(str, predict['retrain_seconds']))} s.",
        "",
        "| phase | predictions | per s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for name, key in (("idle", "idle"), ("during a batch retrain", "during_retrain")):
        p = predict[key]
        lines.append(f"| {name} | {p['n']} | {p['per_s']} | {p['p50_ms']} | {p['p99_ms']} |")
    lines += [
        "",
        "## Deletion submissions",
        "",
        f"MNIST-5k store; {submit['clients']} clients, one id per request, each its own "
        f"idempotency key; worker {submit['worker']}. {submit['accepted']} accepted "
        f"(statuses {submit['statuses']}; {submit['journaled_queued']} queued in the journal "
        f"after) in {submit['seconds']} s: **{submit['per_s']}/s**; latency p50 "
        f"{submit['p50_ms']} ms, p99 {submit['p99_ms']} ms, mean {submit['mean_ms']} ms.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
