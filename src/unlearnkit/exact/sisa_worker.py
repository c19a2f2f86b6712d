"""SISA shard training: the job a worker runs for one shard.

``train_shard(job)`` (re)trains steps ``first_step..R`` of one shard and
writes a checkpoint after each step. It runs in whatever process the executor
chooses, so a :class:`ShardJob` holds plain data and the worker reads the rest
from the store.

Store I/O runs on one background thread while the model trains: reading,
hashing, writing and ``fsync``-ing files all release the GIL, so they overlap
the training instead of adding to it. Encoding and decoding tensors stays on
the training thread: it is Python work that would otherwise contend for the
GIL and stall the training loop (the SISA benchmark measures what is left of
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
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import StoreError
from unlearnkit.exact.sisa_store import SISAStore, StoreFormatError
from unlearnkit.models import fit_preprocessing, from_spec, reset_parameters
from unlearnkit.training import TrainConfig, make_optimizer, run_epochs

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


def checkpoint_tensors(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict:
    """Model weights (and optimizer state) as flat named tensors."""
    # No clone: encoding copies the bytes before training touches them again.
    tensors = {f"model.{k}": v.detach() for k, v in model.state_dict().items()}
    if optimizer is not None:
        for index, entries in optimizer.state_dict()["state"].items():
            for key, value in entries.items():
                if not isinstance(value, torch.Tensor):
                    raise StoreError(
                        f"optimizer state {key!r} is not a tensor and cannot be checkpointed"
                    )
                tensors[f"optimizer.{index}.{key}"] = value.detach()
    return tensors


def restore(model: nn.Module, config: TrainConfig, tensors: dict) -> torch.optim.Optimizer | None:
    """Load model weights and, when the checkpoint has it, the optimizer state."""
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    if not state:
        return None  # no step with data has run yet: the next one starts a fresh optimizer
    optimizer = make_optimizer(model.parameters(), config)
    optimizer.load_state_dict(
        {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
    )
    return optimizer


@dataclass(frozen=True)
class ShardJob:
    """Everything a worker needs to (re)train steps ``first_step..R`` of one shard."""

    store: str
    shard: int
    tag: int  # the request writing the new files (0 = the fit)
    first_step: int  # 1-based
    resume_from: dict | None  # {"file", "sha256"} of step first_step - 1; None = seeded init
    # Per slice, its state: {"file", "sha256", "size"}, or None for the job to write it
    # from ``data`` (the fit's slices, and those a forget removes samples from), so that
    # this I/O overlaps training and runs in the workers, not in the driver.
    slices: tuple[dict | None, ...]
    epochs: tuple[int, ...]
    seed: int
    spec: dict
    training: dict
    threads: int
    carry_optimizer: bool
    # Per slice, its tensors ({"ids", "X", "y"}) when the caller has them in memory
    # (every slice the job writes), else None: read from the file.
    data: tuple[dict | None, ...] | None = None
    # The fit: every slice of ``data`` is a consecutive part of this one block, which
    # the worker then trains on without copying the slices together.
    block: dict | None = None


class ShardData:
    """A shard's slices concatenated in order into one buffer, filled as they arrive.

    Step ``i`` trains on slices ``1..i``, a prefix of the buffer: each slice is
    copied once, and step ``i`` waits only for the reads of its own slices.
    """

    KEYS = ("ids", "X", "y")

    def __init__(
        self, parts: list[cf.Future], sizes: list[int], decode, block: dict | None = None
    ) -> None:
        self._parts = parts  # per slice: its tensors, or its file's bytes for ``decode``
        self._decode = decode
        self._sizes = sizes
        self.ends = [0, *np.cumsum(sizes).tolist()]
        self._ready = 0  # slices copied into the buffer so far
        self._buffer: dict[str, torch.Tensor] | None = None
        if block is not None:  # the slices, already together
            if len(block["ids"]) != self.ends[-1]:
                raise StoreError(
                    f"the shard's block holds {len(block['ids'])} samples, its slices "
                    f"{self.ends[-1]}"
                )
            self._buffer, self._ready = {k: block[k] for k in self.KEYS}, len(sizes)

    def prefix(self, step: int) -> Split:
        """Slices ``1..step`` as one split (a view of the buffer)."""
        while self._ready < step:
            r = self._ready
            tensors = self._parts[r].result()
            if isinstance(tensors, bytes):
                tensors = self._decode(r, tensors)
            if len(tensors["ids"]) != self._sizes[r]:
                raise StoreFormatError(
                    f"slice {r + 1} holds {len(tensors['ids'])} samples where state.json "
                    f"records {self._sizes[r]}; the store is damaged, fit it again"
                )
            if len(self._sizes) == 1:  # one slice: it is the whole buffer, no copy
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


def train_shard(job: ShardJob) -> dict:
    """Train steps ``job.first_step..R`` of one shard, writing a checkpoint after each.

    Checkpoints this request already wrote (a run killed mid-way) are verified
    and reused, so a resumed request continues from its last finished step.
    """
    started = time.perf_counter()
    store = SISAStore(job.store)
    config = TrainConfig(**job.training)
    R = len(job.slices)
    given = list(job.data or [None] * R)
    cumulative = [0, *np.cumsum(job.epochs).tolist()]
    io = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="unlearnkit-sisa-io")
    try:
        # Checkpoints of this request already on disk: a killed attempt left them.
        # Writes land in the background, so a failed one can leave a gap (step 2 on
        # disk, step 1 not): only a checkpoint whose predecessors all landed counts.
        on_disk = [
            (store.root / store.step_name(job.shard, step, job.tag)).is_file()
            for step in range(job.first_step, R + 1)
        ]
        left = [
            step
            for step in range(R, job.first_step - 1, -1)
            if all(on_disk[: step - job.first_step + 1])
        ]
        source = job.resume_from
        if source is not None and not left:  # queued first: needed first
            source_read = io.submit(store.read_bytes, source["file"], sha256=source["sha256"])
        slices, parts = list(job.slices), []
        for r, entry in enumerate(job.slices):
            if entry is None:  # the fit: write the slice in the background
                name = store.slice_name(job.shard, r + 1, job.tag)
                meta = {"shard": job.shard, "slice": r + 1, "request": job.tag}
                blob = store.encode_tensors(given[r], meta)
                slices[r] = (name, io.submit(store.write_bytes, name, blob))
                parts.append(_done(given[r]))
            elif given[r] is None:
                parts.append(io.submit(store.read_bytes, entry["file"], sha256=entry["sha256"]))
            else:
                parts.append(_done(given[r]))
        sizes = [
            len(d["ids"]) if d is not None else e["size"]
            for d, e in zip(given, job.slices, strict=True)
        ]
        decode = lambda r, blob: store.decode_tensors(slices[r]["file"], blob)[0]
        data = ShardData(parts, sizes, decode, block=job.block)

        start = job.first_step
        for step in left:  # the latest checkpoint of this request that is whole and right
            _, meta = store.read_tensors(store.step_name(job.shard, step, job.tag))
            if meta.get("ids_sha256") == data.prefix(step).ids_sha256():
                start = step + 1
                break
        if start > job.first_step:
            source = {"file": store.step_name(job.shard, start - 1, job.tag), "sha256": None}
            source_read = io.submit(store.read_bytes, source["file"])
        steps: list[dict] = []
        for step in range(job.first_step, start):
            name = store.step_name(job.shard, step, job.tag)
            steps.append(_record(job, data, step, name, _done(store.sha256_of(name)), False))

        backlog: list[tuple[cf.Future, int]] = []  # checkpoint writes not known to be done
        with torch_threads(job.threads):
            model = from_spec(job.spec)
            if source is None:
                reset_parameters(model, seed=job.seed)
                optimizer = None
            else:
                tensors, _ = store.decode_tensors(source["file"], source_read.result())
                optimizer = restore(model, config, tensors)
            for step in range(start, R + 1):
                if not job.carry_optimizer:
                    optimizer = None  # run_epochs starts a fresh one for this step
                prefix = data.prefix(step)
                if len(prefix):
                    # Dropout draws from torch's global generator: seed it per step so a
                    # resumed step draws what an uninterrupted run would. The CPU generator
                    # is enough (torch.manual_seed would also queue seeding of GPUs).
                    # The constituent owns its preprocessing, refitted on what this step
                    # trains on: a checkpoint never depends on a sample of a later slice.
                    fit_preprocessing(model, prefix.X)
                    with torch.random.fork_rng(devices=[]):
                        torch.default_generator.manual_seed(job.seed * 10_007 + step)
                        optimizer = run_epochs(
                            model,
                            prefix,
                            config=config,
                            seed=job.seed,
                            epochs=range(cumulative[step - 1], cumulative[step]),
                            optimizer=optimizer,
                            progress=False,
                        )
                name = store.step_name(job.shard, step, job.tag)
                meta = {
                    "shard": job.shard,
                    "step": step,
                    "request": job.tag,
                    "ids_sha256": prefix.ids_sha256(),
                }
                blob = store.encode_tensors(
                    checkpoint_tensors(model, optimizer if job.carry_optimizer else None), meta
                )
                while backlog and sum(n for _, n in backlog) + len(blob) > WRITE_BACKLOG_BYTES:
                    backlog.pop(0)[0].result()
                written = io.submit(store.write_bytes, name, blob)
                backlog.append((written, len(blob)))
                steps.append(_record(job, data, step, name, written, True))

        # Every background write must have landed before the job reports its files.
        for r, entry in enumerate(slices):
            if isinstance(entry, tuple):
                name, written = entry
                slices[r] = {"file": name, "sha256": written.result(), "size": sizes[r]}
        for record in steps:
            record["sha256"] = record["sha256"].result()
        store.sync_shard(job.shard)  # durable before the parent commits them
    finally:
        io.shutdown(wait=True, cancel_futures=True)
    return {
        "shard": job.shard,
        "slices": slices,
        "steps": steps,
        "seconds": time.perf_counter() - started,
    }


def _record(job: ShardJob, data: ShardData, step, name, sha: cf.Future, trained) -> dict:
    return {
        "step": step,
        "file": name,
        "sha256": sha,  # a future until the write has landed
        "samples": data.ends[step],
        "epochs": job.epochs[step - 1],
        "trained": trained,
    }
