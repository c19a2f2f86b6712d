"""The store of a partitioned engine: one SQLite database plus one folder of tensor files.

Layout of a store directory (``part``/``block`` are the engine's words: SISA
says ``shard``/``slice``)::

    store.db                  SQLite (WAL): config, state, membership, request log, pending marker
    shard-0003/slice-002.r00000.safetensors   ids, X, y of one block (minus deleted ids)
    shard-0003/step-002.r00001.safetensors    a part's learner after step 2

The database holds every small, changing thing as rows:

- ``meta``: the configuration (written once, by the fit);
- ``state``: the engine state (the current file of every block and step, sizes);
- ``membership``: every fitted id with its part and block, the request that
  deleted it (``0`` = excluded at fit) and an optional per-sample priority (ARCANE's
  deletion probability; cleared on deletion). A request may move ids between blocks.
- ``requests``: the request log, one row per served request (keyed by number and
  by the caller's ``request_id``);
- ``pending``: present while a fit or a forget is under way.

File names carry the request that wrote them (``r00000`` = the fit), so new
files never overwrite the ones the state points to. A forget writes its new
files, then changes state, membership, log and marker **in one transaction**
(the commit), then deletes the files no longer referenced (those trained on a
deleted sample) and clears the marker. A crash before the commit leaves the old
state whole, one after it the new state; the marker tells the next open what to
finish. Tensor files are written to a temporary file, fsync'd and renamed.

Every durable change (a file landing, a transaction committing, a superseded
file deleted) goes through :func:`durably`, so a test can make the k-th of them
fail as a crash would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save as tensors_to_bytes

from unlearnkit.checkpoint import atomic_write_bytes, fsync_directory
from unlearnkit.errors import (
    StoreBusyError,
    StoreFormatError,
    StoreNotFoundError,
)

DATABASE = "store.db"
SCHEMA_VERSION = 2  # format 1 was JSON files (config.json, state.json, ...)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS membership (
    id INTEGER PRIMARY KEY, part INTEGER NOT NULL, block INTEGER NOT NULL, deleted_by INTEGER,
    priority REAL
);
CREATE TABLE IF NOT EXISTS requests (
    request INTEGER PRIMARY KEY, request_id TEXT UNIQUE, record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    only INTEGER PRIMARY KEY CHECK (only = 1), marker TEXT NOT NULL
);
"""


SQLITE_FILES = (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal")


def snapshot(root: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every file of a store; the database by its content.

    SQLite's own files change under reads (the ``-shm`` index) and when a
    connection closes (the write-ahead log folds into ``store.db``) without the
    stored content changing, so ``store.db`` stands for a hash of its SQL dump.
    Two snapshots are equal exactly when the store holds the same things.
    """
    root = Path(root)
    files = {
        p.relative_to(root).as_posix(): sha256_bytes(p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in (*SQLITE_FILES, ".lock")
    }
    if (root / DATABASE).is_file():
        db = sqlite3.connect(root / DATABASE)
        try:
            files[DATABASE] = sha256_bytes("\n".join(db.iterdump()).encode())
        finally:
            db.close()
    return files


def create_schema(db: sqlite3.Connection) -> None:
    """Create the tables of a store in ``db`` (inside the caller's transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def durably(action: Callable[[], object], what: str):
    """Perform one durable change of a store (``what`` names it for fault injection)."""
    return action()


def sha256_bytes(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def dumps(value) -> str:
    # Sorted keys: the same state is the same bytes, whatever order it was built in.
    return json.dumps(value, sort_keys=True)


class PartStore:
    """Reads and writes one store directory; holds no engine logic.

    ``part_label`` and ``block_label`` name the folders and files (``shard`` /
    ``slice`` for SISA); ``engine`` names the engine in error messages.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        part_label: str = "part",
        block_label: str = "block",
        engine: str = "partitioned",
    ) -> None:
        self.root = Path(root)
        self.part_label = part_label
        self.block_label = block_label
        self.engine = engine
        self._connection: sqlite3.Connection | None = None

    # -- names ------------------------------------------------------------------
    database_path = property(lambda self: self.root / DATABASE)
    lock_path = property(lambda self: self.root / ".lock")

    def part_folder(self, part: int) -> str:
        return f"{self.part_label}-{part:04d}"

    def block_name(self, part: int, block: int, tag: int) -> str:
        return f"{self.part_folder(part)}/{self.block_label}-{block:03d}.r{tag:05d}.safetensors"

    def step_name(self, part: int, step: int, tag: int) -> str:
        return f"{self.part_folder(part)}/step-{step:03d}.r{tag:05d}.safetensors"

    # -- the database ---------------------------------------------------------------
    def exists(self) -> bool:
        """Whether the directory holds a store whose fit has at least started."""
        return self.database_path.is_file() and self.read_config(missing_ok=True) is not None

    @property
    def db(self) -> sqlite3.Connection:
        if self._connection is None:
            if not self.database_path.is_file():
                self._missing("store.db is missing")
            self._connection = self._connect()
        return self._connection

    def create(self) -> None:
        """Create the database (an empty store) if it does not exist yet."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._connection is None:
            self._connection = self._connect()
        with self.transaction("create the schema") as db:
            create_schema(db)

    def _connect(self, path: Path | None = None) -> sqlite3.Connection:
        try:
            # Autocommit mode: transactions are opened explicitly (BEGIN IMMEDIATE).
            # One connection per engine, which a service may use from several threads
            # (one at a time: every write holds the store lock).
            db = sqlite3.connect(
                path or self.database_path,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a committed request survives a power cut
        except sqlite3.DatabaseError as exc:
            raise StoreFormatError(
                f"{self.database_path} is not a readable SQLite database ({exc}); restore it "
                "from a backup or fit again"
            ) from None
        return db

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    @contextlib.contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """One atomic change of the database: everything in the block, or nothing."""
        db = self._connection if self._connection is not None else self.db
        if not db.in_transaction:
            db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            durably(lambda: db.execute("COMMIT"), what)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _query(self, sql: str, args=()) -> list:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreFormatError(
                f"{self.database_path} cannot be read ({exc}); restore it from a backup or "
                "fit again"
            ) from None

    def _missing(self, why: str):
        raise StoreNotFoundError(
            f"no {self.engine} store at {self.root} ({why}); fit one first (for SISA: "
            "SISA(..., store=PATH).fit(train) or 'unlearnkit sisa fit --out PATH')"
        )

    def _json(self, table: str, key: str) -> dict | None:
        rows = self._query(f"SELECT value FROM {table} WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def read_config(self, *, missing_ok: bool = False) -> dict | None:
        if not self.root.is_dir():
            return None if missing_ok else self._missing("the directory does not exist")
        if not self.database_path.is_file():
            return None if missing_ok else self._missing("store.db is missing")
        config = self._json("meta", "config") if self._has_schema() else None
        if config is None and not missing_ok:
            self._missing("store.db holds no configuration")
        return config

    def _has_schema(self) -> bool:
        return bool(self._query("SELECT 1 FROM sqlite_master WHERE name = 'meta'"))

    def write_config(self, db: sqlite3.Connection, config: dict) -> None:
        db.execute("INSERT INTO meta VALUES ('config', ?)", (dumps(config),))

    def read_state(self) -> dict | None:
        return self._json("state", "engine")

    def write_state(self, db: sqlite3.Connection, state: dict) -> None:
        db.execute("INSERT OR REPLACE INTO state VALUES ('engine', ?)", (dumps(state),))

    def read_pending(self) -> dict | None:
        rows = self._query("SELECT marker FROM pending")
        return json.loads(rows[0][0]) if rows else None

    def write_pending(self, db: sqlite3.Connection, marker: dict | None) -> None:
        db.execute("DELETE FROM pending")
        if marker is not None:
            db.execute("INSERT INTO pending VALUES (1, ?)", (dumps(marker),))

    def clear_pending(self) -> None:
        if self.read_pending() is not None:
            with self.transaction("clear the pending marker") as db:
                self.write_pending(db, None)

    # -- membership ---------------------------------------------------------------------
    def write_membership(self, db, ids, parts, blocks, priorities=None) -> None:
        ids = np.asarray(ids).tolist()
        priorities = [None] * len(ids) if priorities is None else np.asarray(priorities).tolist()
        db.executemany(
            "INSERT INTO membership (id, part, block, priority) VALUES (?, ?, ?, ?)",
            zip(
                ids,
                np.asarray(parts).tolist(),
                np.asarray(blocks).tolist(),
                priorities,
                strict=True,
            ),
        )

    def read_membership(self) -> dict[str, np.ndarray]:
        """Every fitted id (sorted) with its part, block, whether it is deleted, and its
        priority (NaN where none)."""
        rows = self._query(
            "SELECT id, part, block, deleted_by IS NOT NULL, priority FROM membership ORDER BY id"
        )
        table = np.asarray([r[:4] for r in rows], dtype=np.int64).reshape(-1, 4)
        priority = np.asarray([np.nan if r[4] is None else r[4] for r in rows], dtype=np.float64)
        return {
            "ids": table[:, 0].copy(),
            "part": table[:, 1].copy(),
            "block": table[:, 2].copy(),
            "deleted": table[:, 3].astype(bool),
            "priority": priority,
        }

    def mark_deleted(self, db, ids, *, request: int) -> None:
        db.executemany(
            # The priority is a property of the sample: it goes with it.
            "UPDATE membership SET deleted_by = ?, priority = NULL WHERE id = ?",
            ((request, i) for i in np.asarray(ids).tolist()),
        )

    def move(self, db, moves: dict[int, tuple[int, int]]) -> None:
        db.executemany(
            "UPDATE membership SET part = ?, block = ? WHERE id = ?",
            ((p, b, i) for i, (p, b) in moves.items()),
        )

    # -- request log ----------------------------------------------------------------
    def log(self, db, record: dict) -> None:
        db.execute(
            "INSERT INTO requests VALUES (?, ?, ?)",
            (record["request"], record.get("request_id"), dumps(record)),
        )

    def read_log(self) -> list[dict]:
        return [
            json.loads(r[0]) for r in self._query("SELECT record FROM requests ORDER BY request")
        ]

    def logged(self, request_id: str) -> dict | None:
        rows = self._query("SELECT record FROM requests WHERE request_id = ?", (request_id,))
        return json.loads(rows[0][0]) if rows else None

    def check_integrity(self) -> list[str]:
        problems = [r[0] for r in self._query("PRAGMA quick_check")]
        return [] if problems == ["ok"] else [f"store.db: {p}" for p in problems]

    # -- tensor files -------------------------------------------------------------------
    # Each operation comes in two halves: encoding/decoding (Python work, holds the
    # GIL) and raw file I/O with hashing (releases it). The part worker runs the
    # second half on a background thread so that it overlaps training.
    @staticmethod
    def encode_tensors(tensors: dict[str, torch.Tensor], metadata: dict) -> bytes:
        """Tensors and metadata as safetensors bytes."""
        # One metadata entry holding sorted JSON: safetensors writes several entries
        # in a per-process random order, which would make identical content hash
        # differently in different worker processes.
        return tensors_to_bytes(
            {k: v.detach().contiguous() for k, v in tensors.items()},
            metadata={"unlearnkit": json.dumps(metadata, sort_keys=True)},
        )

    def write_bytes(self, name: str, blob: bytes) -> str:
        """Write encoded tensors atomically; return their SHA-256.

        The part folder is synced once per job (:meth:`sync_part`), not per file.
        """
        durably(lambda: atomic_write_bytes(self.root / name, blob, sync_directory=False), name)
        return sha256_bytes(blob)

    def read_bytes(self, name: str, *, sha256: str | None = None) -> bytes:
        """A file's bytes, checked against ``sha256`` when given."""
        path = self.root / name
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreFormatError(
                f"store file {path} is missing; the store is damaged, fit it again"
            ) from None
        if sha256 is not None and sha256_bytes(blob) != sha256:
            raise StoreFormatError(
                f"store file {path} is corrupt (its SHA-256 does not match the store's "
                "state); fit again"
            )
        return blob

    def decode_tensors(self, name: str, blob: bytes) -> tuple[dict[str, torch.Tensor], dict]:
        """Tensors and metadata from the bytes of file ``name`` (named in errors)."""
        try:
            tensors = tensors_from_bytes(blob)
            # safetensors layout: 8-byte little-endian header length, then a JSON header.
            size = int.from_bytes(blob[:8], "little")
            header = json.loads(blob[8 : 8 + size]).get("__metadata__") or {}
            metadata = json.loads(header.get("unlearnkit", "{}"))
        except (SafetensorError, ValueError) as exc:
            raise StoreFormatError(
                f"store file {self.root / name} cannot be read ({exc}); fit again"
            ) from None
        return tensors, metadata

    def read_tensors(
        self, name: str, *, sha256: str | None = None
    ) -> tuple[dict[str, torch.Tensor], dict]:
        return self.decode_tensors(name, self.read_bytes(name, sha256=sha256))

    def sha256_of(self, name: str) -> str:
        return sha256_bytes((self.root / name).read_bytes())

    # -- housekeeping -----------------------------------------------------------------
    def part_files(self, parts: list[int] | None = None) -> Iterator[Path]:
        if parts is None:
            folders = sorted(self.root.glob(f"{self.part_label}-*"))
        else:
            folders = [self.root / self.part_folder(p) for p in parts]
        for folder in folders:
            if folder.is_dir():
                yield from sorted(folder.iterdir())

    def sync_part(self, part: int) -> None:
        """Make the renames of a part's new files durable, before they are committed."""
        folder = self.root / self.part_folder(part)
        if folder.is_dir():
            fsync_directory(folder)

    def remove_temporaries(self, parts: list[int] | None = None) -> None:
        """Delete temporary files left by a write that a crash interrupted."""
        folders = [f"{self.part_label}-*"] if parts is None else map(self.part_folder, parts)
        for pattern in [".*.tmp", *(f"{folder}/.*.tmp" for folder in folders)]:
            for path in self.root.glob(pattern):
                path.unlink(missing_ok=True)

    def remove_unreferenced(
        self, referenced: set[str], *, parts: list[int] | None = None
    ) -> list[str]:
        """Delete part files the state does not name (superseded or partial work)."""
        removed = []
        for path in self.part_files(parts):
            name = path.relative_to(self.root).as_posix()
            if name not in referenced:  # temporary files included
                durably(lambda path=path: path.unlink(missing_ok=True), f"delete {name}")
                removed.append(name)
        self.remove_temporaries(parts=[])  # those at the top level
        return removed

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk: training data, checkpoints, and everything else."""
        sizes = {"data": 0, "checkpoints": 0, "other": 0}
        for path in self.root.rglob("*"):
            if path.is_file():
                posix = path.as_posix()
                kind = (
                    "data"
                    if f"/{self.block_label}-" in posix
                    else "checkpoints"
                    if "/step-" in posix
                    else "other"
                )
                sizes[kind] += path.stat().st_size
        sizes["total"] = sum(sizes.values())
        return sizes

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock while writing; the OS releases it if the process dies.

        The lock holds across processes (``flock`` on ``.lock``); a second writer is
        refused at once with :class:`~unlearnkit.errors.StoreBusyError` rather than
        queued behind a forget that may take hours.
        """
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform: single writer assumed
            yield
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusyError(
                    f"{self.engine} store {self.root} is being written by another process; "
                    "wait for it to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = [
    "DATABASE",
    "SCHEMA_VERSION",
    "PartStore",
    "create_schema",
    "snapshot",
    "durably",
    "now",
    "sha256_bytes",
]
