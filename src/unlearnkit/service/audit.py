"""``unlearnkit serve verify``: the journal, the store and whether they tell one story.

Three checks, each a list of problems:

- the receipt chain recomputes end to end (:meth:`Journal.verify_chain`);
- the store verifies (``engine.verify()``: its database and every file's SHA-256);
- every id the journal records as deleted is forgotten by the engine. The converse
  is only a note: ids forgotten outside the service (excluded at fit, or by
  ``unlearnkit sisa forget``) are the store's business, not a broken promise.

Batches left running (a server that was killed) are notes too: the next start of
the server applies them.
"""

from __future__ import annotations

import os

import numpy as np

from unlearnkit.service.journal import Journal, default_path
from unlearnkit.service.serving import open_engine


def verify_service(store: str | os.PathLike, *, db: str | os.PathLike | None = None) -> dict:
    """``{"problems", "notes", "receipts", "head_sha256"}`` for a served store."""
    journal = Journal(db if db is not None else default_path(store))
    try:
        problems = journal.verify_chain()
        receipts, head = journal.head()
        journaled = np.asarray(journal.deleted_ids(), dtype=np.int64)
        running = journal.running_batches()
    finally:
        journal.close()
    notes = [
        f"batch {b.key} ({len(b.requests)} request(s)) is running; the next server start applies it"
        for b in running
    ]
    with open_engine(store) as engine:
        problems += [f"store: {p}" for p in engine.verify()]
        forgotten = np.asarray(engine.deleted_ids_, dtype=np.int64)
    missing = np.setdiff1d(journaled, forgotten)
    if missing.size:
        problems.append(
            f"{missing.size} id(s) the journal records as deleted are not forgotten by the store "
            f"(first: {missing[:10].tolist()}); the store was replaced or rolled back"
        )
    outside = np.setdiff1d(forgotten, journaled)
    running_ids = np.asarray([i for b in running for i in b.ids], dtype=np.int64)
    outside = np.setdiff1d(outside, running_ids)
    if outside.size:
        notes.append(f"{outside.size} id(s) were forgotten outside the service")
    return {"problems": problems, "notes": notes, "receipts": receipts, "head_sha256": head}


__all__ = ["verify_service"]
