"""The SISA store ("container", spec/sisa.md): everything a SISA engine needs on disk.

Layout of a store directory::

    config.json            format, hyper-parameters, schedule, training-data fingerprint (never changes)
    split.safetensors      every fitted id with its shard and slice (never changes)
    state.json             the current files of every shard and the deleted ids: the commit point
    requests.jsonl         append-only log, one line per served forget request
    pending.json           present only while a fit or a forget is under way
    shard-0003/slice-002.r00000.safetensors   ids, X, y of one slice (minus deleted ids)
    shard-0003/step-002.r00001.safetensors    model + optimizer state after step 2

File names carry the request that wrote them (``r00000`` = the fit), so new
files never overwrite the ones ``state.json`` points to. A forget writes its new
files, then replaces ``state.json`` in one rename (the commit), then deletes the
files that are no longer referenced (those trained on a deleted sample). A crash
before the commit leaves the old state whole; one after it leaves the new
state; ``pending.json`` tells the next forget what to finish. Every write goes
to a temporary file first and is renamed into place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as tensors_from_bytes
from safetensors.torch import save as tensors_to_bytes

from unlearnkit.checkpoint import atomic_write_bytes, atomic_write_text, fsync_directory
from unlearnkit.errors import (  # noqa: F401  (re-exported: the store raises these)
    AlreadyDeletedError,
    PendingRequestError,
    StoreBusyError,
    StoreError,
    StoreFormatError,
    StoreMismatchError,
    StoreNotFoundError,
    UnknownIdsError,
)

FORMAT = "unlearnkit-sisa"
FORMAT_VERSION = 1


def sha256_bytes(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class SISAStore:
    """Reads and writes one store directory; holds no engine logic."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # -- names ------------------------------------------------------------------
    config_path = property(lambda self: self.root / "config.json")
    split_path = property(lambda self: self.root / "split.safetensors")
    state_path = property(lambda self: self.root / "state.json")
    pending_path = property(lambda self: self.root / "pending.json")
    log_path = property(lambda self: self.root / "requests.jsonl")
    lock_path = property(lambda self: self.root / ".lock")

    @staticmethod
    def slice_name(shard: int, slice_: int, tag: int) -> str:
        return f"shard-{shard:04d}/slice-{slice_:03d}.r{tag:05d}.safetensors"

    @staticmethod
    def step_name(shard: int, step: int, tag: int) -> str:
        return f"shard-{shard:04d}/step-{step:03d}.r{tag:05d}.safetensors"

    # -- existence and format -----------------------------------------------------
    def exists(self) -> bool:
        return self.config_path.is_file()

    def read_config(self) -> dict:
        if not self.root.is_dir():
            raise StoreNotFoundError(
                f"no SISA store at {self.root} (the directory does not exist); fit one with "
                "SISA(..., store=PATH).fit(train) or 'unlearnkit sisa fit --out PATH'"
            )
        if not self.exists():
            raise StoreNotFoundError(
                f"no SISA store at {self.root} (config.json is missing); fit one with "
                "SISA(..., store=PATH).fit(train) or 'unlearnkit sisa fit --out PATH'"
            )
        config = self._read_json(self.config_path)
        if config.get("format") != FORMAT:
            raise StoreFormatError(
                f"{self.root} is not a SISA store (format {config.get('format')!r}, expected "
                f"{FORMAT!r}); point to a directory made by SISA.fit"
            )
        version = config.get("format_version")
        if not isinstance(version, int):
            raise StoreFormatError(
                f"{self.config_path} has no valid format_version ({version!r}); the store is "
                "damaged, fit again"
            )
        if version > FORMAT_VERSION:
            raise StoreFormatError(
                f"SISA store {self.root} has format version {version}, newer than this "
                f"unlearnkit reads ({FORMAT_VERSION}); upgrade unlearnkit"
            )
        return config

    def _read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreFormatError(
                f"{path} is unreadable or corrupt ({exc}); restore it from a backup or fit again"
            ) from None

    def write_json(self, path: Path, value: dict, *, indent: int | None = None) -> None:
        # Without indent, json uses its C encoder: state.json is rewritten on every request.
        atomic_write_text(path, json.dumps(value, indent=indent, sort_keys=True))

    def read_state(self) -> dict | None:
        return self._read_json(self.state_path) if self.state_path.is_file() else None

    def read_pending(self) -> dict | None:
        return self._read_json(self.pending_path) if self.pending_path.is_file() else None

    def clear_pending(self) -> None:
        self.pending_path.unlink(missing_ok=True)

    # -- split ----------------------------------------------------------------------
    def write_split(self, ids: torch.Tensor, shard: torch.Tensor, slice_: torch.Tensor) -> None:
        atomic_write_bytes(
            self.split_path,
            tensors_to_bytes(
                {"ids": ids.contiguous(), "shard": shard.contiguous(), "slice": slice_.contiguous()}
            ),
        )

    def read_split(self) -> dict[str, torch.Tensor]:
        tensors, _ = self.read_tensors("split.safetensors")
        return tensors

    # -- request log ----------------------------------------------------------------
    def append_log(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with open(self.log_path, "a+b") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a torn last line (power loss): start afresh
                    line = "\n" + line
            fh.write(line.encode())
            fh.flush()
            os.fsync(fh.fileno())

    def read_log(self) -> list[dict]:
        if not self.log_path.is_file():
            return []
        text = self.log_path.read_text()
        records = []
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1 and not text.endswith("\n"):
                    continue  # torn final line: that request was not logged
                raise StoreFormatError(
                    f"{self.log_path} line {i + 1} is corrupt; repair or remove that line"
                ) from None
        return records

    # -- tensor files -------------------------------------------------------------------
    # Each operation comes in two halves: encoding/decoding (Python work, holds the
    # GIL) and raw file I/O with hashing (releases it). The shard worker runs the
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

        The shard folder is synced once per job (:meth:`sync_shard`), not per file.
        """
        atomic_write_bytes(self.root / name, blob, sync_directory=False)
        return sha256_bytes(blob)

    def write_tensors(self, name: str, tensors: dict[str, torch.Tensor], metadata: dict) -> str:
        """Write a safetensors file atomically; return its SHA-256."""
        return self.write_bytes(name, self.encode_tensors(tensors, metadata))

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
                f"store file {path} is corrupt (its SHA-256 does not match state.json); fit again"
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
    def shard_files(self, shards: list[int] | None = None) -> Iterator[Path]:
        if shards is None:
            folders = sorted(self.root.glob("shard-*"))
        else:
            folders = [self.root / f"shard-{s:04d}" for s in shards]
        for folder in folders:
            if folder.is_dir():
                yield from sorted(folder.iterdir())

    def sync_shard(self, shard: int) -> None:
        """Make the renames of a shard's new files durable, before they are committed."""
        folder = self.root / f"shard-{shard:04d}"
        if folder.is_dir():
            fsync_directory(folder)

    def remove_temporaries(self, shards: list[int] | None = None) -> None:
        """Delete temporary files left by a write that a crash interrupted."""
        folders = ["shard-*"] if shards is None else [f"shard-{s:04d}" for s in shards]
        for pattern in [".*.tmp", *(f"{folder}/.*.tmp" for folder in folders)]:
            for path in self.root.glob(pattern):
                path.unlink(missing_ok=True)

    def remove_unreferenced(
        self, referenced: set[str], *, shards: list[int] | None = None
    ) -> list[str]:
        """Delete shard files that ``state.json`` does not name (superseded or partial work)."""
        removed = []
        for path in self.shard_files(shards):
            name = path.relative_to(self.root).as_posix()
            if name not in referenced:  # temporary files included
                path.unlink(missing_ok=True)
                removed.append(name)
        self.remove_temporaries(shards=[])  # those at the top level
        return removed

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk: training data, checkpoints, and everything else."""
        sizes = {"data": 0, "checkpoints": 0, "other": 0}
        for path in self.root.rglob("*"):
            if path.is_file():
                kind = (
                    "data"
                    if "/slice-" in path.as_posix()
                    else "checkpoints"
                    if "/step-" in path.as_posix()
                    else "other"
                )
                sizes[kind] += path.stat().st_size
        sizes["total"] = sum(sizes.values())
        return sizes

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock while writing; the OS releases it if the process dies."""
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
                    f"SISA store {self.root} is being written by another process; wait for it "
                    "to finish"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "AlreadyDeletedError",
    "PendingRequestError",
    "SISAStore",
    "StoreBusyError",
    "StoreFormatError",
    "StoreMismatchError",
    "StoreNotFoundError",
]
