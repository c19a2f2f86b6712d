"""The service journal on its own: durability settings, idempotency, id claims, the hash chain."""

from __future__ import annotations

import json
import sqlite3

import pytest

from unlearnkit.errors import IdempotencyConflictError, IdsRefusedError, JournalError
from unlearnkit.service.journal import GENESIS, Journal


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "service.sqlite3")
    yield j
    j.close()


def _outcome(version="v1"):
    return {"engine": "fake", "model_version_before": "v0", "model_version_after": version}


def _rows(journal, table):
    return journal._read(f"SELECT COUNT(*) FROM {table}")[0][0]


def test_an_acknowledged_request_is_on_disk_in_wal_with_full_sync(journal):
    assert journal._read("PRAGMA journal_mode")[0][0] == "wal"
    assert journal._read("PRAGMA synchronous")[0][0] == 2  # FULL
    request, created = journal.submit(key="k", ids=[4, 2])
    # Another connection (another process after a crash) sees the committed row.
    other = sqlite3.connect(journal.path)
    assert other.execute("SELECT status, ids FROM requests").fetchall() == [("queued", "[2, 4]")]
    other.close()
    assert created and request.ids == (2, 4)


def test_the_same_key_returns_the_same_request_and_other_ids_conflict(journal):
    first, _ = journal.submit(key="k", ids=[1, 2])
    again, created = journal.submit(key="k", ids=[2, 1])
    assert (again.id, created) == (first.id, False)
    with pytest.raises(IdempotencyConflictError, match="'k'"):
        journal.submit(key="k", ids=[1, 3])
    assert _rows(journal, "requests") == 1


def test_pending_and_deleted_ids_are_refused_and_nothing_is_journaled(journal):
    journal.submit(key="a", ids=[1, 2])
    with pytest.raises(IdsRefusedError, match="ids 2 are already in a pending") as refused:
        journal.submit(key="b", ids=[2, 3])
    assert refused.value.refused == {"pending": [2]}
    batch = journal.claim_batch(max_batch=10, version_before="v0")
    journal.complete_batch(batch, outcome=_outcome(), committed=batch.requests[0].received + 1)
    with pytest.raises(IdsRefusedError, match="ids 1 were already deleted"):
        journal.submit(key="c", ids=[1, 3])
    assert _rows(journal, "requests") == 1
    assert _rows(journal, "claimed_ids") == 2


def test_a_check_refusal_journals_nothing(journal):
    def check(ids):
        raise IdsRefusedError("no", refused={"unknown": ids})

    with pytest.raises(IdsRefusedError):
        journal.submit(key="k", ids=[9], check=check)
    assert _rows(journal, "requests") == 0 and _rows(journal, "claimed_ids") == 0


def test_batches_take_the_oldest_requests_and_failure_releases_the_ids(journal):
    for k in range(5):
        journal.submit(key=f"k{k}", ids=[10 + k])
    batch = journal.claim_batch(max_batch=3, version_before="v0")
    assert [r.idempotency_key for r in batch.requests] == ["k0", "k1", "k2"]
    assert batch.ids == [10, 11, 12] and journal.journal_id[:12] in batch.key
    assert journal.count("queued") == 2 and journal.count("running") == 3
    assert [b.id for b in journal.running_batches()] == [batch.id]
    journal.fail_batch(batch, error="ConfigError: boom")
    assert journal.get(batch.requests[0].id).error == "ConfigError: boom"
    journal.submit(key="retry", ids=[10, 11])  # a failed request's ids may be sent again
    assert journal.running_batches() == []


def test_receipts_chain_and_verify_names_the_first_broken_link(journal):
    for k in range(3):
        journal.submit(key=f"k{k}", ids=[k])
        batch = journal.claim_batch(max_batch=1, version_before="v0")
        journal.complete_batch(batch, outcome=_outcome(), committed=batch.requests[0].received)
    assert journal.verify_chain() == []
    bodies = journal._read("SELECT body, sha256, previous_sha256 FROM receipts ORDER BY seq")
    assert bodies[0][2] == GENESIS and bodies[1][2] == bodies[0][1]

    db = sqlite3.connect(journal.path)
    body = json.loads(bodies[1][0])
    body["ids"] = [99]
    db.execute("UPDATE receipts SET body = ? WHERE seq = 2", (json.dumps(body),))
    db.commit()
    problems = journal.verify_chain()
    assert problems and problems[0].startswith("receipt #2 ")
    assert "does not match its sha256" in problems[0]

    db.execute("UPDATE receipts SET body = ? WHERE seq = 2", (bodies[1][0],))
    db.execute("UPDATE requests SET ids = '[7]' WHERE seq = 3")
    db.commit()
    assert journal.verify_chain() == [
        f"receipt #3 (request {journal._read('SELECT id FROM requests WHERE seq = 3')[0][0]}): "
        "its request row (ids or status) was changed"
    ]
    db.execute("UPDATE requests SET ids = '[2]' WHERE seq = 3")
    db.execute("DELETE FROM receipts WHERE seq = 2")
    db.commit()
    db.close()
    problems = journal.verify_chain()
    assert problems[0] == "receipt #2 is missing (the next one is #3)"
    assert any("has no receipt" in p for p in problems)


def test_a_foreign_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="not a service journal"):
        Journal(path)
    (tmp_path / "garbage.sqlite3").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a usable service journal"):
        Journal(tmp_path / "garbage.sqlite3")
