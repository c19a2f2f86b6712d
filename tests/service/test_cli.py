"""``unlearnkit serve`` from the command line: tokens, verify, argument errors, a real server."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import urllib.request

from cli_in_process import cli

from unlearnkit.service.auth import token_sha256
from unlearnkit.service.journal import default_path


def test_token_create_prints_the_token_once_and_stores_its_hash(store):
    done = cli("serve", "token", "create", "--store", store, "--role", "deleter")
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert len(token) >= 43 and "not shown again" in done.stderr
    db = sqlite3.connect(default_path(store))
    assert db.execute("SELECT sha256, role FROM tokens").fetchall() == [
        (token_sha256(token), "deleter")
    ]
    db.close()
    bad = cli("serve", "token", "create", "--store", store, "--role", "root")
    assert bad.returncode == 2 and "unknown role 'root'" in bad.stderr


def test_verify_passes_then_names_tampering_and_exits_1(store, train_ids):
    from unlearnkit.service.journal import Journal

    journal = Journal(default_path(store))
    journal.submit(key="k", ids=train_ids[:1])
    batch = journal.claim_batch(max_batch=1, version_before=None)
    from unlearnkit.service.serving import open_engine

    with open_engine(store) as engine:
        engine.forget(batch.ids, request_id=batch.key)
    journal.complete_batch(batch, outcome={"engine": "sisa"}, committed=batch.requests[0].received)
    journal.close()
    ok = cli("serve", "verify", "--store", store)
    assert ok.returncode == 0 and "receipts   1" in ok.stdout and "ok" in ok.stdout

    db = sqlite3.connect(default_path(store))
    db.execute("UPDATE receipts SET body = replace(body, '\"sisa\"', '\"other\"')")
    db.commit()
    db.close()
    broken = cli("serve", "verify", "--store", store)
    assert broken.returncode == 1 and "problem    receipt #1 " in broken.stdout


def test_serve_needs_a_store(tmp_path):
    done = cli("serve")
    assert done.returncode == 2 and "--store" in done.stderr
    done = cli("serve", "--store", tmp_path / "missing")
    assert done.returncode == 2 and "not a directory" in done.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_server_starts_as_a_subprocess_on_loopback(store, wait_for):
    token = cli("serve", "token", "create", "--store", store, "--role", "reader").stdout.strip()
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from unlearnkit.cli import main; main()", "serve",
         "--store", str(store), "--port", str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def ready():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return server.poll() is not None  # stop polling a server that died

        wait_for(ready, timeout=60, what="the server to be ready")
        assert server.poll() is None, server.stdout.read().decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/model", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["engine"] == "sisa"
    finally:
        server.terminate()
        server.wait(20)


def test_serve_help_loads_neither_torch_nor_fastapi():
    probe = (
        "import sys\n"
        "from unlearnkit.cli import main\n"
        "for argv in (['serve', '--help'], ['serve', 'token', 'create', '--help'], "
        "['serve', 'verify', '--help']):\n"
        "    sys.argv = ['unlearnkit', *argv]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'fastapi', 'uvicorn', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stderr, done.stderr
    assert "--batch-window" in done.stdout and "--role" in done.stdout
