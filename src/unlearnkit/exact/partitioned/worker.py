"""Part training: the job a worker runs for one part of a partitioned engine.

``train_part(job)`` (re)trains steps ``first_step..R`` of one part and writes a
checkpoint after each step; step ``i`` trains on blocks ``1..i`` (blocks after
``R`` are held, not trained: a reserve an engine may select from). What a step
does is the job's learner (:mod:`unlearnkit.exact.partitioned.learners`). It
runs in whatever process the executor chooses, so a :class:`PartJob` holds
plain data and the worker reads the rest from the store.

Store I/O runs on one background thread while the model trains: reading,
hashing, writing and ``fsync``-ing files all release the GIL, so they overlap
the training instead of adding to it. Encoding and decoding tensors stays on
the training thread: it is Python work that would otherwise contend for the
GIL and stall the training loop (benchmarks/sisa.py measures what is left of
this overhead). The thread works in
submission order, so files land on disk in the order an uninterrupted run
writes them: a killed job leaves a prefix of its steps, which the next attempt
verifies and reuses.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from unlearnkit.data.dataset import Split
from unlearnkit.errors import StoreError, StoreFormatError
from unlearnkit.exact.partitioned import learners
from unlearnkit.exact.partitioned.store import PartStore
from unlearnkit.training import TrainConfig

# Bytes of encoded checkpoints waiting for the background writer, at most (one
# checkpoint may always wait): bounds the memory they hold when the disk is slower
# than training, without stalling training on small models.
WRITE_BACKLOG_BYTES = 256 * 2**20


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run with ``threads`` intra-op torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class PartJob:
    """Everything a worker needs to (re)train steps ``first_step..R`` of one part."""

    store: str
    labels: tuple[str, str]  # the store's (part_label, block_label)
    part: int
    tag: int  # the request writing the new files (0 = the fit)
    first_step: int  # 1-based
    resume_from: dict | None  # {"file", "sha256"} of step first_step - 1; None = seeded init
    # Per block, its state: {"file", "sha256", "size"}, or None for the job to write it
    # from ``data`` (the fit's blocks, and those a forget changes), so that this I/O
    # overlaps training and runs in the workers, not in the driver.
    blocks: tuple[dict | None, ...]
    epochs: tuple[int, ...]  # per step; R = len(epochs) <= len(blocks)
    seed: int
    spec: dict
    learner: str
    training: dict
    threads: int
    carry_optimizer: bool
    # Per block, its tensors ({"ids", "X", "y"}) when the caller has them in memory
    # (every block the job writes), else None: read from the file.
    data: tuple[dict | None, ...] | None = None
    # The fit: the trained blocks of ``data`` are consecutive pieces of this one
    # buffer, which the worker then trains on without copying the blocks together.
    block: dict | None = None


class PartData:
    """A part's trained blocks concatenated in order into one buffer, filled as they arrive.

    Step ``i`` trains on blocks ``1..i``, a prefix of the buffer: each block is
    copied once, and step ``i`` waits only for the reads of its own blocks.
    """

    KEYS = ("ids", "X", "y")

    def __init__(
        self, parts: list[cf.Future], sizes: list[int], decode, block: dict | None = None
    ) -> None:
        self._parts = parts  # per block: its tensors, or its file's bytes for ``decode``
        self._decode = decode
        self._sizes = sizes
        self.ends = [0, *np.cumsum(sizes).tolist()]
        self._ready = 0  # blocks copied into the buffer so far
        self._buffer: dict[str, torch.Tensor] | None = None
        if block is not None:  # the blocks, already together
            if len(block["ids"]) != self.ends[-1]:
                raise StoreError(
                    f"the part's buffer holds {len(block['ids'])} samples, its blocks "
                    f"{self.ends[-1]}"
                )
            self._buffer, self._ready = {k: block[k] for k in self.KEYS}, len(sizes)

    def prefix(self, step: int) -> Split:
        """Blocks ``1..step`` as one split (a view of the buffer)."""
        while self._ready < step:
            r = self._ready
            tensors = self._parts[r].result()
            if isinstance(tensors, bytes):
                tensors = self._decode(r, tensors)
            if len(tensors["ids"]) != self._sizes[r]:
                raise StoreFormatError(
                    f"block {r + 1} holds {len(tensors['ids'])} samples where the store's "
                    f"state records {self._sizes[r]}; the store is damaged, fit it again"
                )
            if len(self._sizes) == 1:  # one block: it is the whole buffer, no copy
                self._buffer = {k: tensors[k] for k in self.KEYS}
            else:
                if self._buffer is None:
                    self._buffer = {
                        k: torch.empty((self.ends[-1], *v.shape[1:]), dtype=v.dtype)
                        for k, v in tensors.items()
                        if k in self.KEYS
                    }
                for k in self.KEYS:
                    self._buffer[k][self.ends[r] : self.ends[r + 1]] = tensors[k]
            self._parts[r] = None  # the buffer holds it now
            self._ready += 1
        return Split(**{k: v[: self.ends[step]] for k, v in self._buffer.items()})


def _done(value) -> cf.Future:
    future: cf.Future = cf.Future()
    future.set_result(value)
    return future


def train_part(job: PartJob) -> dict:
    """Train steps ``job.first_step..R`` of one part, writing a checkpoint after each.

    Checkpoints this request already wrote (a run killed mid-way) are verified
    and reused, so a resumed request continues from its last finished step.
    """
    started = time.perf_counter()
    part_label, block_label = job.labels
    store = PartStore(job.store, part_label=part_label, block_label=block_label)
    learner = learners.get(job.learner)()
    config = TrainConfig(**job.training)
    R = len(job.epochs)
    given = list(job.data or [None] * len(job.blocks))
    cumulative = [0, *np.cumsum(job.epochs).tolist()]
    io = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="unlearnkit-part-io")
    try:
        # Checkpoints of this request already on disk: a killed attempt left them.
        # Writes land in the background, so a failed one can leave a gap (step 2 on
        # disk, step 1 not): only a checkpoint whose predecessors all landed counts.
        on_disk = [
            (store.root / store.step_name(job.part, step, job.tag)).is_file()
            for step in range(job.first_step, R + 1)
        ]
        left = [
            step
            for step in range(R, job.first_step - 1, -1)
            if all(on_disk[: step - job.first_step + 1])
        ]
        # A job with no step to train (only held blocks changed) needs no checkpoint.
        source = job.resume_from if job.first_step <= R else None
        if source is not None and not left:  # queued first: needed first
            source_read = io.submit(store.read_bytes, source["file"], sha256=source["sha256"])
        blocks, parts = list(job.blocks), []
        for r, entry in enumerate(job.blocks):
            if entry is None:  # a new block: write it in the background
                name = store.block_name(job.part, r + 1, job.tag)
                meta = {"part": job.part, "block": r + 1, "request": job.tag}
                blob = store.encode_tensors(given[r], meta)
                blocks[r] = (name, io.submit(store.write_bytes, name, blob))
                parts.append(_done(given[r]))
            elif r >= R:
                parts.append(None)  # held, not trained: never read
            elif given[r] is None:
                parts.append(io.submit(store.read_bytes, entry["file"], sha256=entry["sha256"]))
            else:
                parts.append(_done(given[r]))
        sizes = [
            len(d["ids"]) if d is not None else e["size"]
            for d, e in zip(given, job.blocks, strict=True)
        ]
        decode = lambda r, blob: store.decode_tensors(blocks[r]["file"], blob)[0]
        trained = job.block
        if trained is not None:  # held blocks follow the trained ones in the buffer
            trained = {k: v[: sum(sizes[:R])] for k, v in trained.items()}
        data = PartData(parts[:R], sizes[:R], decode, block=trained)

        start = job.first_step
        for step in left:  # the latest checkpoint of this request that is whole and right
            _, meta = store.read_tensors(store.step_name(job.part, step, job.tag))
            if meta.get("ids_sha256") == data.prefix(step).ids_sha256():
                start = step + 1
                break
        if start > job.first_step:
            source = {"file": store.step_name(job.part, start - 1, job.tag), "sha256": None}
            source_read = io.submit(store.read_bytes, source["file"])
        steps: list[dict] = []
        for step in range(job.first_step, start):
            name = store.step_name(job.part, step, job.tag)
            steps.append(_record(job, data, step, name, _done(store.sha256_of(name)), False))

        backlog: list[tuple[cf.Future, int]] = []  # checkpoint writes not known to be done
        with torch_threads(job.threads):
            model = learner.build(job.spec)
            if source is None:
                learner.initialise(model, seed=job.seed)
                optimizer = None
            else:
                tensors, _ = store.decode_tensors(source["file"], source_read.result())
                optimizer = learner.restore(model, config, tensors)
            for step in range(start, R + 1):
                if not job.carry_optimizer:
                    optimizer = None  # the learner starts a fresh one for this step
                prefix = data.prefix(step)
                if len(prefix):  # a step whose blocks are all deleted performs no update
                    optimizer = learner.train_step(
                        model,
                        prefix,
                        config=config,
                        seed=job.seed,
                        step=step,
                        epochs=range(cumulative[step - 1], cumulative[step]),
                        optimizer=optimizer,
                    )
                name = store.step_name(job.part, step, job.tag)
                meta = {
                    "part": job.part,
                    "step": step,
                    "request": job.tag,
                    "ids_sha256": prefix.ids_sha256(),
                }
                tensors = learner.checkpoint(
                    model, optimizer if job.carry_optimizer else None, prefix
                )
                blob = store.encode_tensors(tensors, meta)
                while backlog and sum(n for _, n in backlog) + len(blob) > WRITE_BACKLOG_BYTES:
                    backlog.pop(0)[0].result()
                written = io.submit(store.write_bytes, name, blob)
                backlog.append((written, len(blob)))
                steps.append(_record(job, data, step, name, written, True))

        # Every background write must have landed before the job reports its files.
        for r, entry in enumerate(blocks):
            if isinstance(entry, tuple):
                name, written = entry
                blocks[r] = {"file": name, "sha256": written.result(), "size": sizes[r]}
        for record in steps:
            record["sha256"] = record["sha256"].result()
        store.sync_part(job.part)  # durable before the parent commits them
    finally:
        io.shutdown(wait=True, cancel_futures=True)
    return {
        "part": job.part,
        "blocks": blocks,
        "steps": steps,
        "seconds": time.perf_counter() - started,
    }


def _record(job: PartJob, data: PartData, step, name, sha: cf.Future, trained) -> dict:
    return {
        "step": step,
        "file": name,
        "sha256": sha,  # a future until the write has landed
        "samples": data.ends[step],
        "epochs": job.epochs[step - 1],
        "trained": trained,
    }
