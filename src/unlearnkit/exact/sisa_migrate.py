"""One-way migration of SISA stores from format 1 (JSON files) to format 2 (SQLite).

Format 1 kept its small state in files: ``config.json``, ``state.json`` (the
commit point), ``split.safetensors`` (every id's shard and slice),
``requests.jsonl`` (the log) and ``pending.json``. Format 2 keeps all of it as rows
of ``store.db`` (:mod:`unlearnkit.exact.partitioned.store`); the shard folders
and their files are the same in both, so nothing is retrained or rewritten.

The migration runs when a format-1 store is opened (``SISA.load``, the CLI, a
fit into it). It builds the database under a temporary name, makes it durable,
renames it to ``store.db`` (the switch: from then on the store is format 2), and
only then deletes the JSON files. A crash before the rename leaves the old store
as it was; one after it leaves leftovers that the next open deletes. An
interrupted request carries over: its marker is kept, and the next
``forget --resume`` (or ``load``, if it had committed) finishes it. A fit that
never finished in format 1 cannot be carried over: fit again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from unlearnkit.checkpoint import fsync_directory
from unlearnkit.errors import StoreError, StoreFormatError
from unlearnkit.exact.partitioned.store import (
    DATABASE,
    SCHEMA_VERSION,
    PartStore,
    create_schema,
)

FORMAT = "unlearnkit-sisa"
V1_FILES = ("config.json", "state.json", "split.safetensors", "requests.jsonl", "pending.json")


def migrate(root: str | os.PathLike) -> bool:
    """Convert the format-1 store at ``root`` in place; ``True`` if it did.

    A directory that is not a format-1 store is left alone (``False``).
    """
    root = Path(root)
    store = PartStore(root, part_label="shard", block_label="slice", engine="SISA")
    if store.database_path.is_file():
        _remove_leftovers(store)
        return False
    if not (root / "config.json").is_file():
        return False
    with store.lock():
        if store.database_path.is_file():  # another process migrated it meanwhile
            _remove_leftovers(store)
            return False
        tables = _convert(root)
        temporary = root / f".{DATABASE}.migrating"
        temporary.unlink(missing_ok=True)
        db = store._connect(temporary)
        try:
            db.execute("BEGIN IMMEDIATE")
            create_schema(db)
            store.write_config(db, tables["config"])
            store.write_state(db, tables["state"])
            store.write_membership(db, *tables["membership"])
            for request, ids in tables["deleted"].items():
                store.mark_deleted(db, ids, request=request)
            for record in tables["log"]:
                store.log(db, record)
            store.write_pending(db, tables["pending"])
            db.execute("COMMIT")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        with open(temporary, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(temporary, store.database_path)  # the switch to format 2
        fsync_directory(root)
        _remove_leftovers(store)
    return True


def _remove_leftovers(store: PartStore) -> None:
    """Delete format-1 files beside a migrated database (a crash cut the migration short)."""
    leftovers = [store.root / name for name in V1_FILES if (store.root / name).exists()]
    if not leftovers or store.read_config(missing_ok=True) is None:
        return
    for path in leftovers:
        path.unlink(missing_ok=True)
    (store.root / f".{DATABASE}.migrating").unlink(missing_ok=True)
    fsync_directory(store.root)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreFormatError(
            f"{path} is unreadable or corrupt ({exc}); the old-format store cannot be "
            "migrated: restore it from a backup or fit again"
        ) from None


def _read_log(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line torn by a power cut; the committed state re-adds it below
    return records


def _convert(root: Path) -> dict:
    """The rows of the format-2 database, from the format-1 files."""
    config = _read_json(root / "config.json")
    if config.get("format") != FORMAT:
        raise StoreFormatError(
            f"{root} is not a SISA store (format {config.get('format')!r}, expected "
            f"{FORMAT!r}); point to a directory made by SISA.fit"
        )
    if config.get("format_version") != 1:
        raise StoreFormatError(
            f"{root / 'config.json'} has format version {config.get('format_version')!r}, which "
            "this unlearnkit cannot migrate; fit again"
        )
    if not (root / "state.json").is_file():
        raise StoreError(
            f"{root} holds a SISA fit that never finished, in the old store format (1); it "
            "cannot be migrated: delete the directory and fit again"
        )
    state = _read_json(root / "state.json")
    pending = _read_json(root / "pending.json") if (root / "pending.json").is_file() else None
    if pending is not None and pending.get("kind") == "fit":
        pending = None  # the fit committed (state.json exists); nothing left to do
    split = PartStore(root).read_tensors("split.safetensors")[0]

    log = _read_log(root / "requests.jsonl")
    last = state.get("last_request")
    if last is not None and all(r.get("request") != last["request"] for r in log):
        log.append(last)  # committed, not yet appended when the old engine stopped
    records = []
    for record in log:
        record = dict(record)
        record["parts"] = record.pop("shards")
        records.append(record)

    deleted: dict[int, list[int]] = {}
    logged = set()
    for record in records:
        deleted[int(record["request"])] = [int(i) for i in record["ids"]]
        logged.update(deleted[int(record["request"])])
    excluded = [i for i in state["deleted_ids"] if int(i) not in logged]
    deleted[0] = excluded  # excluded at fit

    engine, schedule = config["engine"], config["schedule"]
    new_config = {k: v for k, v in config.items() if k != "schedule"}
    new_config["format_version"] = SCHEMA_VERSION
    new_config["learning"] = {
        "learner": "classifier",
        "training": engine["training"],
        "threads": engine["threads"],
        "carry_optimizer": engine["carry_optimizer"],
        "step_epochs": schedule["step_epochs"],
        "part_seeds": schedule["shard_seeds"],
        "blocks": engine["slices"],
    }
    new_config["migrated_from"] = {"format_version": 1}
    new_state = {
        "requests_served": state["requests_served"],
        "fit_seconds": state.get("fit_seconds"),
        "parts": [{"blocks": sh["slices"], "steps": sh["steps"]} for sh in state["shards"]],
    }
    membership = (
        split["ids"].numpy(),
        split["shard"].numpy().astype(np.int64),
        split["slice"].numpy().astype(np.int64),
    )
    return {
        "config": new_config,
        "state": new_state,
        "membership": membership,
        "deleted": deleted,
        "log": records,
        "pending": pending,
    }


__all__ = ["migrate"]
