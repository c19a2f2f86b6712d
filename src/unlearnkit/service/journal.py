"""The service journal: one SQLite database holding every deletion request's life.

Why a journal beside the engine's own store: the engine records what it has
*done* (its request log), the journal records what the service has *promised*.
A request is acknowledged (202) only after its row is committed here, so an
acknowledged request survives ``kill -9`` and a power cut (WAL with
``synchronous=FULL``: a commit returns after its log frame is fsync'd). Every
state change is one transaction, so a crash leaves each request in exactly one
of the states queued / running / done / failed.

Tables:

- ``meta``: the journal's own id (a random UUID, part of every batch key, so a
  journal made afresh never reuses a key the engine already served) and format;
- ``requests``: one row per deletion request: its id, the caller's idempotency key
  (unique), the ids (JSON), status, the received / started / committed times
  (Unix seconds), an error, its batch and the token that submitted it;
- ``claimed_ids``: every id a request holds, pending until its batch commits, then
  deleted; this is what refuses an id twice, and a failed request releases its ids;
- ``batches``: the requests one engine call serves, the key it was called with and the
  model version before it;
- ``receipts``: one per done request, a JSON body with its SHA-256 and the previous
  receipt's SHA-256 (a hash chain: editing or removing any receipt breaks every link
  after it; :meth:`Journal.verify_chain` recomputes it);
- ``tokens``: the SHA-256 of each bearer token (never the token), its role, label,
  creation and revocation times.

The journal keeps sample ids and request metadata, never features.

>>> import tempfile, pathlib
>>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "service.sqlite3")
>>> request, created = j.submit(key="ticket-1", ids=[5, 3])
>>> request.ids, request.status, created
((3, 5), 'queued', True)
>>> j.submit(key="ticket-1", ids=[3, 5])[1]  # the same key again: the same request
False
>>> j.verify_chain()
[]
>>> j.close()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from unlearnkit.errors import IdempotencyConflictError, IdsRefusedError, JournalError

FORMAT = "unlearnkit-service-journal"
FORMAT_VERSION = 1
DEFAULT_NAME = "service.sqlite3"
GENESIS = "0" * 64  # the "previous hash" of the first receipt
STATUSES = ("queued", "running", "done", "failed")
# SQLite limits host parameters per statement; ids are looked up in chunks of this size.
_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    ids TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    received REAL NOT NULL,
    started REAL,
    committed REAL,
    error TEXT,
    batch INTEGER REFERENCES batches (id),
    token INTEGER REFERENCES tokens (id)
);
CREATE INDEX IF NOT EXISTS requests_by_status ON requests (status, seq);
CREATE TABLE IF NOT EXISTS claimed_ids (
    id INTEGER PRIMARY KEY,
    request TEXT NOT NULL REFERENCES requests (id),
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    created REAL NOT NULL,
    committed REAL,
    version_before TEXT
);
CREATE TABLE IF NOT EXISTS receipts (
    seq INTEGER PRIMARY KEY,
    request TEXT NOT NULL UNIQUE REFERENCES requests (id),
    body TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    previous_sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    label TEXT,
    created REAL NOT NULL,
    revoked REAL
);
"""


def iso(seconds: float | None) -> str | None:
    """Unix seconds as an ISO 8601 UTC timestamp with microseconds (``None`` stays)."""
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC).isoformat(timespec="microseconds")


def canonical_json(value) -> str:
    """The one text of a JSON value that its hash is taken over (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def default_path(store: str | os.PathLike) -> Path:
    """Where the journal of a store lives unless ``--db`` says otherwise."""
    return Path(store) / DEFAULT_NAME


@dataclass(frozen=True)
class Request:
    """One deletion request as the journal holds it (times in Unix seconds)."""

    id: str
    idempotency_key: str
    ids: tuple[int, ...]
    status: str
    received: float
    started: float | None = None
    committed: float | None = None
    error: str | None = None
    batch: int | None = None
    token: int | None = None


@dataclass(frozen=True)
class Batch:
    """Requests served by one engine call under ``key`` (the engine's ``request_id``)."""

    id: int
    key: str
    requests: tuple[Request, ...]
    version_before: str | None

    @property
    def ids(self) -> list[int]:
        """The union of the requests' ids, sorted (they are disjoint by construction)."""
        return sorted(i for r in self.requests for i in r.ids)


@dataclass(frozen=True)
class Token:
    id: int
    role: str
    label: str | None
    created: float
    revoked: float | None


_REQUEST_COLUMNS = (
    "id, idempotency_key, ids, status, received, started, committed, error, batch, token"
)


def _request(row) -> Request:
    return Request(
        id=row[0],
        idempotency_key=row[1],
        ids=tuple(json.loads(row[2])),
        status=row[3],
        received=row[4],
        started=row[5],
        committed=row[6],
        error=row[7],
        batch=row[8],
        token=row[9],
    )


def _chunks(values: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class Journal:
    """The journal at ``path`` (created with its folder if missing).

    One connection, shared by the server's threads under a lock: SQLite serialises
    writers anyway, and one connection keeps every read consistent with the last
    commit of this process. Other processes (``unlearnkit serve token create``) may
    open the same file; the busy timeout makes them wait for a lock, not fail.
    """

    def __init__(self, path: str | os.PathLike, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit is on disk when it returns, so a 202 survives kill -9 and power loss.
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._init_meta()
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"{self.path} is not a usable service journal ({exc}); point --db to another "
                "file, or restore this one from a backup"
            ) from None
        self.journal_id = self._meta("journal_id")

    # -- plumbing ------------------------------------------------------------------------
    def _init_meta(self) -> None:
        found = self._meta("format")
        if found is None:
            self._db.execute("INSERT INTO meta VALUES ('format', ?)", (FORMAT,))
            self._db.execute("INSERT INTO meta VALUES ('format_version', ?)", (FORMAT_VERSION,))
            self._db.execute("INSERT INTO meta VALUES ('journal_id', ?)", (uuid.uuid4().hex,))
            return
        version = int(self._meta("format_version") or 0)
        if found != FORMAT or version > FORMAT_VERSION:
            raise JournalError(
                f"{self.path} is a {found!r} database of version {version}, not a service journal "
                f"this unlearnkit reads ({FORMAT} {FORMAT_VERSION}); point --db to another file"
            )

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: everything in the block is committed, or nothing."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _read(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- submitting ----------------------------------------------------------------------
    def by_key(self, key: str) -> Request | None:
        rows = self._read(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE idempotency_key = ?", (key,)
        )
        return _request(rows[0]) if rows else None

    def get(self, request_id: str) -> Request | None:
        rows = self._read(f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,))
        return _request(rows[0]) if rows else None

    def submit(
        self,
        *,
        key: str,
        ids: Sequence[int],
        token: int | None = None,
        check: Callable[[list[int]], None] | None = None,
    ) -> tuple[Request, bool]:
        """Journal a request for ``ids`` under idempotency ``key``; ``(request, created)``.

        The same key with the same ids returns the existing request (``created`` is
        False) whatever its state, before any id check: a retry of a done request
        names ids that are deleted by then. The same key with other ids is an
        :class:`~unlearnkit.errors.IdempotencyConflictError`. Otherwise ``check`` (the
        caller's test against the engine: unknown ids) runs, and ids that another request
        holds, pending or deleted, are an :class:`~unlearnkit.errors.IdsRefusedError`;
        a refused request journals nothing. When this returns ``created`` the row is
        committed to disk.
        """
        wanted = sorted(int(i) for i in ids)
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE idempotency_key = ?", (key,)
            ).fetchall()
            if rows:
                existing = _request(rows[0])
                if list(existing.ids) != wanted:
                    raise IdempotencyConflictError(
                        f"idempotency_key {key!r} was already used by request {existing.id} for "
                        "other ids; a retry must send the same ids, and a new request needs a "
                        "new idempotency_key"
                    )
                return existing, False
            if check is not None:
                check(wanted)
            held = {"pending": [], "already_deleted": []}
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                for i, deleted in db.execute(
                    f"SELECT id, deleted FROM claimed_ids WHERE id IN ({marks})", tuple(chunk)
                ):
                    held["already_deleted" if deleted else "pending"].append(int(i))
            if held["pending"] or held["already_deleted"]:
                raise IdsRefusedError(
                    refused_message(held), refused={k: sorted(v) for k, v in held.items() if v}
                )
            request = Request(
                id=uuid.uuid4().hex,
                idempotency_key=key,
                ids=tuple(wanted),
                status="queued",
                received=time.time(),
                token=token,
            )
            db.execute(
                "INSERT INTO requests (id, idempotency_key, ids, status, received, token) "
                "VALUES (?, ?, ?, 'queued', ?, ?)",
                (request.id, key, json.dumps(wanted), request.received, token),
            )
            db.executemany(
                "INSERT INTO claimed_ids (id, request) VALUES (?, ?)",
                [(i, request.id) for i in wanted],
            )
        return request, True

    # -- the worker's side ---------------------------------------------------------------
    def oldest_queued(self) -> Request | None:
        rows = self._read(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE status = 'queued' ORDER BY seq LIMIT 1"
        )
        return _request(rows[0]) if rows else None

    def count(self, status: str) -> int:
        return self._read("SELECT COUNT(*) FROM requests WHERE status = ?", (status,))[0][0]

    def claim_batch(self, *, max_batch: int, version_before: str | None) -> Batch | None:
        """Mark the oldest ``max_batch`` queued requests running, as one new batch."""
        with self.transaction() as db:
            rows = db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE status = 'queued' "
                "ORDER BY seq LIMIT ?",
                (max_batch,),
            ).fetchall()
            if not rows:
                return None
            started = time.time()
            cursor = db.execute(
                "INSERT INTO batches (key, status, created, version_before) "
                "VALUES ('', 'running', ?, ?)",
                (started, version_before),
            )
            batch_id = int(cursor.lastrowid)
            # The key names this journal: a journal made afresh never repeats a served key.
            key = f"service-{self.journal_id[:12]}-batch-{batch_id}"
            db.execute("UPDATE batches SET key = ? WHERE id = ?", (key, batch_id))
            requests = [_request(row) for row in rows]
            db.executemany(
                "UPDATE requests SET status = 'running', started = ?, batch = ? WHERE id = ?",
                [(started, batch_id, r.id) for r in requests],
            )
        return self.batch(batch_id)

    def batch(self, batch_id: int) -> Batch:
        key, version_before = self._read(
            "SELECT key, version_before FROM batches WHERE id = ?", (batch_id,)
        )[0]
        rows = self._read(
            f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE batch = ? ORDER BY seq", (batch_id,)
        )
        return Batch(
            id=batch_id,
            key=key,
            requests=tuple(_request(r) for r in rows),
            version_before=version_before,
        )

    def running_batches(self) -> list[Batch]:
        """Batches a crash left running, oldest first: the worker applies them again."""
        rows = self._read("SELECT id FROM batches WHERE status = 'running' ORDER BY id")
        return [self.batch(int(r[0])) for r in rows]

    def complete_batch(self, batch: Batch, *, outcome: dict, committed: float) -> list[dict]:
        """In one transaction: the batch's requests done, their ids deleted, one receipt each.

        ``outcome`` holds what the engine call did (the same for every request of the
        batch); each receipt adds the request's own ids and times and the previous
        receipt's hash. Returns the receipts.
        """
        receipts = []
        with self.transaction() as db:
            row = db.execute(
                "SELECT seq, sha256 FROM receipts ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, previous = (row[0], row[1]) if row else (0, GENESIS)
            for request in batch.requests:
                seq += 1
                body = {
                    **outcome,
                    "receipt": seq,
                    "request": request.id,
                    "idempotency_key": request.idempotency_key,
                    "ids": list(request.ids),
                    "batch": {
                        **outcome.get("batch", {}),
                        "id": batch.id,
                        "key": batch.key,
                        "requests": [r.id for r in batch.requests],
                    },
                    "received": iso(request.received),
                    "started": iso(request.started),
                    "committed": iso(committed),
                    "seconds_to_compliance": round(committed - request.received, 6),
                    "previous_sha256": previous,
                }
                text = canonical_json(body)
                digest = sha256_text(text)
                db.execute(
                    "INSERT INTO receipts (seq, request, body, sha256, previous_sha256) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (seq, request.id, text, digest, previous),
                )
                db.execute(
                    "UPDATE requests SET status = 'done', committed = ?, error = NULL WHERE id = ?",
                    (committed, request.id),
                )
                db.execute("UPDATE claimed_ids SET deleted = 1 WHERE request = ?", (request.id,))
                receipts.append(body)
                previous = digest
            db.execute(
                "UPDATE batches SET status = 'done', committed = ? WHERE id = ?",
                (committed, batch.id),
            )
        return receipts

    def fail_batch(self, batch: Batch, *, error: str) -> None:
        """The batch's requests failed: record why and release their ids (one transaction)."""
        now = time.time()
        with self.transaction() as db:
            for request in batch.requests:
                db.execute(
                    "UPDATE requests SET status = 'failed', committed = NULL, error = ? "
                    "WHERE id = ?",
                    (error, request.id),
                )
                db.execute("DELETE FROM claimed_ids WHERE request = ?", (request.id,))
            db.execute(
                "UPDATE batches SET status = 'failed', committed = ? WHERE id = ?", (now, batch.id)
            )

    # -- reading -------------------------------------------------------------------------
    def receipt(self, request_id: str) -> tuple[dict, str] | None:
        """``(receipt body, its sha256)`` of a done request."""
        rows = self._read("SELECT body, sha256 FROM receipts WHERE request = ?", (request_id,))
        return (json.loads(rows[0][0]), rows[0][1]) if rows else None

    def counts(self) -> dict:
        """Requests by status, and the ids that queued or running requests hold."""
        by_status = dict.fromkeys(STATUSES, 0)
        for status, n in self._read("SELECT status, COUNT(*) FROM requests GROUP BY status"):
            by_status[status] = n
        pending_ids = self._read("SELECT COUNT(*) FROM claimed_ids WHERE deleted = 0")[0][0]
        return {"requests": by_status, "pending_ids": pending_ids}

    def deleted_ids(self) -> list[int]:
        return [
            r[0] for r in self._read("SELECT id FROM claimed_ids WHERE deleted = 1 ORDER BY id")
        ]

    def verify_chain(self) -> list[str]:
        """Recompute the receipt chain end to end; the problems found (empty: intact).

        Each receipt's stored text must hash to its stored SHA-256, name the previous
        receipt's hash, carry the next number, and agree with its request row (ids,
        status); every done request must have a receipt. The first message names the
        first broken link. A chain cannot reveal an edit that rewrites the *last*
        receipts consistently: keep the head hash (:meth:`head`) somewhere else too.
        """
        problems: list[str] = []
        previous, expected = GENESIS, 1
        rows = self._read(
            "SELECT r.seq, r.request, r.body, r.sha256, r.previous_sha256, q.ids, q.status "
            "FROM receipts r LEFT JOIN requests q ON q.id = r.request ORDER BY r.seq"
        )
        for seq, request, text, digest, stored_previous, ids, status in rows:
            where = f"receipt #{seq} (request {request})"
            if seq != expected:
                problems.append(f"receipt #{expected} is missing (the next one is #{seq})")
            if sha256_text(text) != digest:
                problems.append(f"{where}: its content does not match its sha256 (edited)")
            try:
                body = json.loads(text)
            except json.JSONDecodeError:
                problems.append(f"{where}: its content is not JSON")
                body = {}
            if stored_previous != previous or body.get("previous_sha256") != previous:
                problems.append(f"{where}: does not chain to the receipt before it")
            if body.get("receipt") != seq or body.get("request") != request:
                problems.append(f"{where}: its number or request differs from its row")
            if ids is None:
                problems.append(f"{where}: its request row is missing")
            elif json.loads(ids) != body.get("ids") or status != "done":
                problems.append(f"{where}: its request row (ids or status) was changed")
            previous, expected = digest, seq + 1
        missing = self._read(
            "SELECT id FROM requests WHERE status = 'done' AND id NOT IN "
            "(SELECT request FROM receipts) ORDER BY seq"
        )
        problems += [f"request {r[0]} is done but has no receipt" for r in missing]
        return problems

    def head(self) -> tuple[int, str]:
        """``(number of receipts, hash of the last one)``; publish it to anchor the chain."""
        row = self._read("SELECT seq, sha256 FROM receipts ORDER BY seq DESC LIMIT 1")
        return (row[0][0], row[0][1]) if row else (0, GENESIS)

    # -- tokens --------------------------------------------------------------------------
    def add_token(self, *, sha256: str, role: str, label: str | None = None) -> Token:
        created = time.time()
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO tokens (sha256, role, label, created) VALUES (?, ?, ?, ?)",
                (sha256, role, label, created),
            )
        return Token(
            id=int(cursor.lastrowid), role=role, label=label, created=created, revoked=None
        )

    def token_by_hash(self, sha256: str) -> Token | None:
        rows = self._read(
            "SELECT id, role, label, created, revoked FROM tokens WHERE sha256 = ?", (sha256,)
        )
        return Token(*rows[0]) if rows else None

    def tokens(self) -> list[Token]:
        rows = self._read("SELECT id, role, label, created, revoked FROM tokens ORDER BY id")
        return [Token(*r) for r in rows]

    def revoke_token(self, token_id: int) -> bool:
        """Revoke a token; False if there is no such (unrevoked) token."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
                (time.time(), token_id),
            )
        return cursor.rowcount == 1


def refused_message(refused: dict[str, list[int]]) -> str:
    """One sentence naming every refused id by reason (the first 20 of each)."""
    words = {
        "repeated": "appear more than once in the request",
        "unknown": "were never part of the training data",
        "already_deleted": "were already deleted",
        "pending": "are already in a pending deletion request",
    }
    parts = []
    for reason, ids in refused.items():
        if ids:
            shown = ", ".join(map(str, ids[:20]))
            more = f" and {len(ids) - 20} more" if len(ids) > 20 else ""
            parts.append(f"ids {shown}{more} {words[reason]}")
    return "; ".join(parts) + "; nothing was journaled: send only ids that can still be deleted"


__all__ = [
    "DEFAULT_NAME",
    "GENESIS",
    "Batch",
    "Journal",
    "Request",
    "Token",
    "canonical_json",
    "default_path",
    "iso",
    "refused_message",
]
