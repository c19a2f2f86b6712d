"""The partitioned core: what every engine that trains one model per part shares.

An engine on this core (SISA; ARCANE next) supplies only what makes it itself:

- ``_assign(train, exclude)``: which part and block each training sample goes to
  (``exclude``: the ids a fit leaves out, for an engine whose layout depends on
  the data that remains);
- ``_spec(train)`` and ``_learning()``: the model, the learner that trains a part
  (:mod:`~unlearnkit.exact.partitioned.learners`), the step schedule and seeds;
- ``_moves(ids)`` and ``_block_order`` (optional): samples a request moves between
  blocks (an engine that re-selects data on deletion), and the order of a
  rewritten block's rows; none and "as they were, arrivals last" by default;
- ``_priority(train)`` (optional): a per-sample number kept with the membership
  (ARCANE's deletion probability) and dropped when the sample is deleted;
- ``_combine(models, X)`` and ``as_module()``: how part models make one prediction;
- ``_options_from_config(config)``: the constructor options of a stored engine.

The core does the rest, once: training parts through an executor, the store
(:class:`~unlearnkit.exact.partitioned.store.PartStore`), the plan of a request
(each touched part restarts from the checkpoint before its first changed
block), the commit (one SQLite transaction), the request log, idempotent
retries, the cleanup of every file trained on a deleted sample, resume after a
crash, and roll-forward of a commit whose cleanup a crash cut short.

Step ``i`` of a part trains on its blocks ``1..i`` starting from the checkpoint
of step ``i - 1``; with the same seed, schedule and data a retrained part is
bit-identical to one trained from scratch without the deleted samples.
"""

from __future__ import annotations

import concurrent.futures as cf
import copy
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from unlearnkit.checkpoint import versions
from unlearnkit.data.dataset import Split, sha256_of_ids
from unlearnkit.errors import (
    ConfigError,
    ForgetSelectionError,
    PendingRequestError,
    RequestIdConflictError,
    StoreBusyError,
    StoreError,
    StoreFormatError,
    StoreMismatchError,
    UnknownIdsError,
)
from unlearnkit.exact.base import ExactEngine, ForgetResult, check_request_id, check_retry
from unlearnkit.exact.ids import as_id_array, coerce_forget_ids
from unlearnkit.exact.partitioned import learners
from unlearnkit.exact.partitioned.store import SCHEMA_VERSION, PartStore, now
from unlearnkit.exact.partitioned.worker import PartJob, train_part
from unlearnkit.runtime.executors import Executor, get_executor

_NO_IDS = np.zeros(0, dtype=np.int64)


def normalised(value):
    """``value`` as JSON reads it back (tuples become lists, keys strings)."""
    return json.loads(json.dumps(value))


def concat(parts: list[Split]) -> Split:
    return Split(
        ids=torch.cat([p.ids for p in parts]),
        X=torch.cat([p.X for p in parts]),
        y=torch.cat([p.y for p in parts]),
    )


def content_sha256(split: Split) -> str:
    """A fingerprint of a split's ids, features and labels."""
    digest = hashlib.sha256()
    for tensor in (split.ids, split.X, split.y):
        digest.update(tensor.contiguous().numpy())  # the buffer itself: no copy
    return digest.hexdigest()


def deletion_probability_array(probabilities, train: Split) -> np.ndarray:
    """Per-row deletion probabilities of ``train`` from a sequence aligned with it or a
    mapping id -> probability (missing ids: 0); unknown ids and values outside [0, 1]
    are errors."""
    p = probabilities
    if isinstance(p, Mapping):
        unknown = set(p) - set(train.ids.tolist())
        if unknown:
            raise UnknownIdsError(
                f"deletion_probabilities names {len(unknown)} id(s) not in the training data "
                f"(first: {sorted(unknown)[:5]})"
            )
        p = [float(p.get(i, 0.0)) for i in train.ids.tolist()]
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (len(train),) or not np.all((p >= 0) & (p <= 1)):
        raise ConfigError(
            f"deletion_probabilities must hold one value in [0, 1] per training sample "
            f"({len(train)}); got shape {p.shape}"
        )
    return p


def probabilities_sha256(probabilities) -> str | None:
    """A fingerprint of deletion probabilities (for the stored configuration)."""
    if probabilities is None:
        return None
    p = probabilities
    items = sorted(p.items()) if isinstance(p, Mapping) else list(p)
    return hashlib.sha256(json.dumps(normalised(items)).encode()).hexdigest()


class PartitionedEngine(ExactEngine):
    """Base of the engines that train one model per part, in checkpointed blocks.

    Subclasses set ``part_label``/``block_label`` (their words for part and block:
    SISA's ``shard``/``slice``), ``title`` (for messages and progress bars) and
    ``store_format`` (the store's format name), and implement the hooks listed in
    the module docstring. Constructors must accept ``store``, ``executor`` and
    ``progress`` besides their own options.

    Learned state after ``fit`` or ``load``: ``store_``, ``config_``, ``spec_``,
    ``num_classes_``, ``step_epochs_``, ``part_seeds_``, ``part_sizes_``,
    ``block_sizes_``, ``deleted_ids_``, ``fitted_ids_`` (every id fitted on, sorted),
    ``requests_served_``, ``fit_seconds_``.
    """

    persistent = True
    part_label: ClassVar[str] = "part"
    parts_label: ClassVar[str] = "parts"  # the plural, for status keys
    block_label: ClassVar[str] = "block"
    title: ClassVar[str] = "partitioned engine"
    store_format: ClassVar[str]

    store: str | os.PathLike | None
    executor: str | Executor | None
    progress: bool | None

    # -- hooks ------------------------------------------------------------------------
    def _check_options(self) -> None:
        """Raise :class:`~unlearnkit.errors.ConfigError` on a bad hyper-parameter."""

    def _validate_fit(self, train: Split) -> None:
        """Raise on training data this engine cannot fit (checked before any work)."""

    def _engine_config(self) -> dict:
        """The options that determine what is stored; a store must match them to be reused."""
        raise NotImplementedError

    def _spec(self, train: Split) -> tuple[dict, int]:
        """The model spec every part builds, and the number of classes."""
        raise NotImplementedError

    def _learning(self, spec: dict, num_classes: int) -> dict:
        """``learner``, ``training``, ``threads``, ``carry_optimizer``, ``step_epochs``,
        ``part_seeds`` (one per part) and ``blocks`` (per part, ≥ the steps)."""
        raise NotImplementedError

    def _extra_config(self) -> dict:
        """Further top-level entries of the stored configuration (not compared)."""
        return {}

    def _assign(
        self, train: Split, exclude: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(positions, part, block)``: the store order of ``train``'s rows and, for
        each of them, its part and 0-based block; rows of one block keep that order,
        and within a part the blocks come in order. ``exclude`` (sorted ids) will be
        left out after the assignment; most engines ignore it."""
        raise NotImplementedError

    def _priority(self, train: Split) -> np.ndarray | None:
        """A number per row of ``train`` to keep with the membership, or ``None``."""
        return None

    def _block_order(self, part: int, block: int, ids: np.ndarray) -> np.ndarray | None:
        """The order (a permutation) of a rewritten block's rows, or ``None`` to keep them
        as they are (remaining rows, then arrivals in id order)."""
        return None

    def _moves(self, ids: np.ndarray) -> dict[int, tuple[int, int]]:
        """Samples that forgetting ``ids`` moves: id -> (part, 0-based block).

        Must depend only on the current state and ``ids`` (a resumed request
        recomputes it). A moved sample leaves its block and is appended to its
        target block (moved samples in id order).
        """
        return {}

    def _combine(self, models: dict[int, nn.Module], X: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(n, classes)`` from the part models (by part)."""
        raise NotImplementedError

    @classmethod
    def _options_from_config(cls, config: dict) -> dict:
        """Constructor options (besides store, executor, progress) of a stored engine."""
        raise NotImplementedError

    @classmethod
    def _before_open(cls, root: Path) -> None:
        """Bring an older store format up to date (a one-way migration), if any."""

    # -- plumbing ---------------------------------------------------------------------
    def _store_path(self) -> Path:
        if self.store is None:
            self.store = tempfile.mkdtemp(prefix=f"unlearnkit-{self.name}-")
            weakref.finalize(self, shutil.rmtree, self.store, ignore_errors=True)
        return Path(self.store)

    def _disk(self, root=None) -> PartStore:
        """The store handle (one SQLite connection per engine, reused)."""
        root = Path(root if root is not None else self.store_)
        handle = self.__dict__.get("_handle")
        if handle is None or handle.root != root:
            if handle is not None:
                handle.close()
            handle = self._handle = self._new_disk(root)
        return handle

    @classmethod
    def _new_disk(cls, root) -> PartStore:
        return PartStore(
            root, part_label=cls.part_label, block_label=cls.block_label, engine=cls.title
        )

    def __getstate__(self) -> dict:
        # A database connection and worker processes belong to the process that made them.
        return {k: v for k, v in self.__dict__.items() if k not in ("_handle", "_executor")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._executor = None

    def _get_executor(self) -> Executor:
        if getattr(self, "_executor", None) is None:
            self._executor = get_executor(self.executor)
        return self._executor

    def close(self) -> None:
        """Stop worker processes (or a local Ray cluster) and close the store."""
        executor = getattr(self, "_executor", None)
        if executor is not None and not isinstance(self.executor, Executor):
            executor.close()
        self._executor = None
        handle = self.__dict__.pop("_handle", None)
        if handle is not None:
            handle.close()

    def _job(self, config, store, part, *, tag, first_step, resume_from, blocks, **data) -> PartJob:
        learning = config["learning"]
        return PartJob(
            store=str(store.root.resolve()),
            labels=(self.part_label, self.block_label),
            part=part,
            tag=tag,
            first_step=first_step,
            resume_from=resume_from,
            blocks=tuple(blocks),
            epochs=tuple(learning["step_epochs"]),
            seed=learning["part_seeds"][part],
            spec=config["spec"],
            learner=learning["learner"],
            training=learning["training"],
            threads=learning["threads"],
            carry_optimizer=learning["carry_optimizer"],
            **data,
        )

    def _train(self, jobs: list[PartJob], description: str) -> list[dict]:
        return self._get_executor().map(
            train_part,
            jobs,
            labels=[f"{self.part_label} {job.part}" for job in jobs],
            description=description,
            progress=self.progress,
        )

    # -- fit --------------------------------------------------------------------------
    def fit(self, train: Split, *, exclude_ids=None) -> PartitionedEngine:
        """Assign, then train every part on ``train``; returns ``self``.

        ``exclude_ids`` trains as if those ids had been forgotten right after the
        fit: same parts and blocks, the ids never seen. This *is* the reference
        that ``forget(exclude_ids)`` must equal bit for bit. Re-running ``fit``
        with the same configuration and data finishes a fit that was interrupted,
        reusing the steps already saved.
        """
        started = time.perf_counter()
        self._check_options()
        if len(train) == 0:
            raise ConfigError(f"cannot fit {self.title} on an empty training split")
        self.check_task(train)
        self._validate_fit(train)
        n = len(train)
        spec, num_classes = self._spec(train)
        learning = self._learning(spec, num_classes)
        learners.get(learning["learner"])  # an unknown learner fails before any work
        parts, blocks = len(learning["part_seeds"]), learning["blocks"]
        exclude = _NO_IDS
        if exclude_ids is not None:
            exclude = np.unique(np.asarray(exclude_ids, dtype=np.int64))
            train.positions(exclude)  # unknown ids raise UnknownIdsError
            if len(exclude) == n:
                raise ForgetSelectionError(
                    "exclude_ids covers every training sample; nothing to train"
                )
        positions, part_of, block_of = self._assign(train, exclude)
        priority = self._priority(train)
        with cf.ThreadPoolExecutor(max_workers=1) as hashing:
            # Hashing the features releases the GIL: it overlaps the gathers below.
            content_sha = hashing.submit(content_sha256, train)
            keep = ~np.isin(train.ids.numpy()[positions], exclude)
            part_data = []
            for p in range(parts):
                # One copy per part, its blocks views of it: a worker process receives
                # three shared-memory buffers per part instead of three per block.
                mine = (part_of == p) & keep  # store order: block by block
                rows = train.take(torch.as_tensor(positions[mine]))
                ends = np.cumsum(np.bincount(block_of[mine], minlength=blocks)).tolist()
                part_data.append(
                    {
                        "data": tuple(
                            {k: getattr(rows, k)[a:b] for k in ("ids", "X", "y")}
                            for a, b in zip([0, *ends[:-1]], ends, strict=True)
                        ),
                        "block": {"ids": rows.ids, "X": rows.X, "y": rows.y},
                    }
                )
            content_sha = content_sha.result()
        config = {
            "format": self.store_format,
            "format_version": SCHEMA_VERSION,
            "engine": self._engine_config(),
            **normalised(self._extra_config()),
            "spec": normalised(spec),
            "learning": normalised(learning),
            "data": {
                "n": n,
                "ids_sha256": train.ids_sha256(),
                "content_sha256": content_sha,
                "num_classes": num_classes,
                "input_shape": list(train.X.shape[1:]),
            },
            "metadata": normalised(getattr(self, "metadata", None) or {}),
            "created": now(),
            "versions": versions(),
        }
        root = self._store_path()
        self._before_open(root)
        store = self._disk(root)
        pending = {"kind": "fit", "exclude_sha256": sha256_of_ids(exclude), "started": now()}
        self._check_fit_target(store, config, pending)
        with store.lock():
            if not store.exists():
                store.create()
                # One transaction marks the directory as a store: config, membership, marker.
                with store.transaction("begin the fit") as db:
                    store.write_config(db, config)
                    store.write_membership(
                        db,
                        train.ids[positions],
                        part_of,
                        block_of,
                        None if priority is None else priority[positions],
                    )
                    store.write_pending(db, pending)
            store.remove_temporaries()
            jobs = [
                self._job(
                    config,
                    store,
                    p,
                    tag=0,
                    first_step=1,
                    resume_from=None,
                    blocks=[None] * blocks,
                    **part_data[p],
                )
                for p in range(parts)
            ]
            results = self._train(jobs, f"{self.title} fit")
            state = {
                "requests_served": 0,
                "parts": [
                    {"blocks": r["blocks"], "steps": [_step_entry(x) for x in r["steps"]]}
                    for r in sorted(results, key=lambda r: r["part"])
                ],
                "fit_seconds": time.perf_counter() - started,
            }
            with store.transaction("commit the fit") as db:
                store.write_state(db, state)
                store.mark_deleted(db, exclude, request=0)
                store.write_pending(db, None)
            store.remove_unreferenced(_referenced(state))
        self._set_learned(store, config, state)
        return self

    def _check_fit_target(self, store: PartStore, config: dict, pending: dict) -> None:
        """Refuse to overwrite anything: only an empty directory or an unfinished identical fit."""
        if not store.exists():
            ours = {".lock", "store.db", "store.db-wal", "store.db-shm", "store.db-journal"}
            if store.root.exists() and (
                not store.root.is_dir() or any(p.name not in ours for p in store.root.iterdir())
            ):
                raise StoreError(
                    f"{store.root} exists and is not an empty directory or a {self.title} store; "
                    "choose a new directory for the store"
                )
            return
        existing = self._read_config(store)
        _compare(store, self.title, existing, config)
        if store.read_state() is not None:
            raise StoreError(
                f"{store.root} already holds a fitted {self.title}; load it with "
                f"{type(self).__name__}.load(path) (or 'unlearnkit {self.name} status'), or fit "
                "into a new directory"
            )
        previous = store.read_pending() or {}
        if (
            previous.get("kind") == "fit"
            and previous.get("exclude_sha256") != pending["exclude_sha256"]
        ):
            raise StoreMismatchError(
                f"{store.root} holds an unfinished fit with other excluded ids; delete the "
                "directory or fit into a new one"
            )

    # -- loading ----------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        store: str | os.PathLike | Mapping,
        *,
        executor: str | Executor | None = "process",
        progress: bool | None = None,
    ) -> PartitionedEngine:
        """Open a store written by :meth:`fit`; the configuration comes from the store.

        ``store`` is the store directory, or a :meth:`state_dict` (which names it).
        """
        if isinstance(store, Mapping):
            if not isinstance(store.get("store"), str):
                raise StoreError(
                    f"this state_dict names no {cls.title} store; pass {cls.__name__}.state_dict()"
                )
            store = store["store"]
        cls._before_open(Path(store))
        disk = cls._new_disk(store)
        config = cls._read_config(disk)
        obj = cls(
            **cls._options_from_config(config), store=store, executor=executor, progress=progress
        )
        obj._handle = disk
        obj._load_from(disk, config)
        return obj

    @classmethod
    def _read_config(cls, disk: PartStore) -> dict:
        config = disk.read_config()
        if config.get("format") != cls.store_format:
            raise StoreFormatError(
                f"{disk.root} is not a {cls.title} store (format {config.get('format')!r}, "
                f"expected {cls.store_format!r}); point to a directory made by "
                f"{cls.__name__}.fit"
            )
        version = config.get("format_version")
        if not isinstance(version, int):
            raise StoreFormatError(
                f"{disk.database_path} has no valid format_version ({version!r}); the store is "
                "damaged, fit again"
            )
        if version > SCHEMA_VERSION:
            raise StoreFormatError(
                f"{cls.title} store {disk.root} has format version {version}, newer than this "
                f"unlearnkit reads ({SCHEMA_VERSION}); upgrade unlearnkit"
            )
        return config

    def _load_from(self, disk: PartStore, config: dict) -> None:
        state = disk.read_state()
        if state is None:
            raise StoreError(
                f"{self.title} store {disk.root} holds an unfinished fit; run fit(train) again "
                "with the same configuration and data to finish it"
            )
        self._set_learned(disk, config, state)
        self._roll_forward(disk)

    def _ensure_loaded(self) -> None:
        """An engine that has not fitted opens its ``store``, which must match its configuration."""
        if hasattr(self, "store_"):
            return
        if self.store is None:
            raise StoreError(
                f"this {self.title} is not fitted; call fit(train) or "
                f"{type(self).__name__}.load(store) first"
            )
        self._before_open(Path(self.store))
        disk = self._disk(self.store)
        config = self._read_config(disk)
        self._check_options()
        _compare(disk, self.title, config, {"engine": self._engine_config()}, keys=("engine",))
        self._load_from(disk, config)

    def _set_learned(
        self, disk: PartStore, config: dict, state: dict, *, membership: dict | None = None
    ) -> None:
        self.config_ = config
        self._state = state
        self.store_ = Path(self.store)
        self.spec_ = config["spec"]
        self.num_classes_ = config["data"]["num_classes"]
        self.step_epochs_ = list(config["learning"]["step_epochs"])
        self.part_seeds_ = list(config["learning"]["part_seeds"])
        self.block_sizes_ = [[e["size"] for e in part["blocks"]] for part in state["parts"]]
        self.part_sizes_ = [sum(sizes) for sizes in self.block_sizes_]
        self.requests_served_ = int(state["requests_served"])
        self.fit_seconds_ = state.get("fit_seconds")
        self._models: dict[int, nn.Module] = {}
        # Membership changes with requests (deletions; moves): re-read with the state,
        # unless the caller has just committed the change and passes the result.
        self._membership = disk.read_membership() if membership is None else membership
        self.deleted_ids_ = self._membership["ids"][self._membership["deleted"]]
        # Every id fitted on, deleted ones included: what a request may name at all.
        self.fitted_ids_ = np.sort(np.asarray(self._membership["ids"], dtype=np.int64))

    def _refresh(self, disk: PartStore) -> None:
        """Re-read the state: another process may have served requests since we loaded."""
        state = disk.read_state()
        if state is not None and state != self._state:
            self._set_learned(disk, self.config_, state)

    def _roll_forward(self, disk: PartStore) -> list[str]:
        """Finish the cleanup of a request that committed just before a crash.

        After the commit the old blocks (holding the forgotten samples' features)
        and the checkpoints trained on them are no longer referenced, but they stay
        on disk until the cleanup runs. Every way of opening a store (``load``,
        ``status``, ``verify``, the CLI) runs it first, so nothing of a forgotten
        sample outlives the next open. A store another process is writing is left
        to that writer, which finishes the cleanup itself.
        """
        pending = disk.read_pending()
        if pending is None:
            return []
        if pending.get("kind") != "fit" and self.requests_served_ < pending["request"]:
            return []  # not committed: the old state stands until the request is resumed
        try:
            with disk.lock():
                self._refresh(disk)
                pending = disk.read_pending()
                if pending is None:
                    return []
                if pending.get("kind") == "fit":
                    disk.clear_pending()  # the fit committed; it has nothing to clean up
                    return []
                if self.requests_served_ < pending["request"]:
                    return []
                parts = sorted(int(p) for p in pending.get("plan", {})) or None
                return self._finish(disk, parts=parts)
        except StoreBusyError:
            return []

    # -- forgetting -------------------------------------------------------------------
    def locate(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """0-based ``(part, block)`` of each id (in the order given), as the store holds it."""
        self._ensure_loaded()
        ids = as_id_array(ids)
        known = self._membership["ids"]
        where = np.searchsorted(known, ids).clip(max=len(known) - 1)
        unknown = known[where] != ids
        if unknown.any():
            raise UnknownIdsError(
                f"{int(unknown.sum())} id(s) were never part of this {self.title}'s training "
                f"data (first: {ids[unknown][:5].tolist()}); use ids of the data given to fit"
            )
        return self._membership["part"][where], self._membership["block"][where]

    def forget(self, ids, *, request_id: str | None = None) -> ForgetResult:
        """Forget ``ids``: retrain each affected part once, from its earliest changed block.

        Affected parts retrain in parallel through the executor. If the store holds
        a request that was interrupted (process killed), calling ``forget`` with
        the same ids finishes it; other ids are refused until then. ``request_id``
        is recorded with the request: the same key with the same ids again returns
        the committed result with ``already_served=True`` and touches nothing.
        """
        self._ensure_loaded()
        started = time.perf_counter()
        request_id = check_request_id(request_id)
        # Malformed, repeated and unknown ids fail before the store is touched;
        # already-forgotten ones once a retried request_id has had its say.
        ids = coerce_forget_ids(ids, known=self._membership["ids"], deleted=_NO_IDS)
        disk = self._disk()
        with disk.lock():
            self._refresh(disk)
            pending = disk.read_pending()
            if pending is not None and pending.get("kind") == "fit":
                disk.clear_pending()  # the fit committed just before a crash: nothing to redo
                pending = None
            if pending is not None:
                same = np.array_equal(np.asarray(pending["ids"], dtype=np.int64), ids)
                if self.requests_served_ >= pending["request"]:
                    removed = self._finish(disk)
                    if same:
                        record = _logged(disk, pending["request"])
                        return dataclasses.replace(
                            _result_from_record(record, resumed=True), files_deleted=tuple(removed)
                        )
                elif not same:
                    raise PendingRequestError(
                        f"{self.title} store {self.store_} has an interrupted request "
                        f"#{pending['request']} for {len(pending['ids'])} id(s); finish it first "
                        f"by forgetting those ids again ('unlearnkit {self.name} forget STORE "
                        "--resume'), then send new ones"
                    )
                else:
                    key = pending.get("request_id")
                    if request_id is not None and key is not None and request_id != key:
                        raise RequestIdConflictError(
                            f"request_id {request_id!r} differs from {key!r}, the key of the "
                            f"interrupted request #{pending['request']} for these ids; retry "
                            "with that key"
                        )
                    plan = {int(p): int(k) for p, k in pending["plan"].items()}
                    return self._serve(
                        disk,
                        pending["request"],
                        ids,
                        plan,
                        started,
                        resumed=True,
                        request_id=key if key is not None else request_id,
                    )
            if request_id is not None:
                served = self._served(disk, request_id, ids)
                if served is not None:
                    return served
            ids = coerce_forget_ids(ids, known=self._membership["ids"], deleted=self.deleted_ids_)
            plan = self._plan(ids)
            request = self.requests_served_ + 1
            marker = {
                "kind": "forget",
                "request": request,
                "ids": ids.tolist(),
                "plan": plan,
                "started": now(),
            }
            if request_id is not None:
                marker["request_id"] = request_id
            with disk.transaction(f"mark request {request} pending") as db:
                disk.write_pending(db, marker)
            return self._serve(
                disk, request, ids, plan, started, resumed=False, request_id=request_id
            )

    def _served(self, disk: PartStore, request_id: str, ids: np.ndarray) -> ForgetResult | None:
        """The committed result of the request keyed ``request_id``, or ``None`` if none was."""
        record = disk.logged(request_id)
        if record is None:
            return None
        check_retry(request_id, ids, served_ids=record["ids"], request=record["request"])
        return _result_from_record(record, resumed=False).served_again()

    def resume(self) -> ForgetResult | None:
        """Finish an interrupted forget request, if there is one."""
        pending = self.pending_request_
        if pending is None:
            return None
        return self.forget(pending["ids"], request_id=pending.get("request_id"))

    @property
    def pending_request_(self) -> dict | None:
        """The interrupted request (``request``, ``ids``, ``plan``), or ``None``."""
        self._ensure_loaded()
        pending = self._disk().read_pending()
        return pending if pending is not None and pending.get("kind") == "forget" else None

    def _touched(self, ids: np.ndarray) -> tuple[dict[int, set[int]], dict[int, tuple[int, int]]]:
        """The blocks whose content forgetting ``ids`` changes (by part), and the moves."""
        part, block = self.locate(ids)
        touched: dict[int, set[int]] = {}
        for p, b in zip(part.tolist(), block.tolist(), strict=True):
            touched.setdefault(p, set()).add(b)
        # Memoised per request: the plan and the serve of one request ask twice.
        key = (self.requests_served_, ids.tobytes())
        if getattr(self, "_moves_memo", (None,))[0] != key:
            self._moves_memo = (
                key,
                {int(i): (int(p), int(b)) for i, (p, b) in self._moves(ids).items()},
            )
        moves = self._moves_memo[1]
        if moves:
            src_part, src_block = self.locate(np.fromiter(moves, dtype=np.int64))
            for (p, b), sp, sb in zip(
                moves.values(), src_part.tolist(), src_block.tolist(), strict=True
            ):
                touched.setdefault(sp, set()).add(sb)
                touched.setdefault(p, set()).add(b)
        return touched, moves

    def _plan(self, ids: np.ndarray) -> dict[int, int]:
        """Each part a request changes -> the first step it retrains (1-based)."""
        if len(ids) + len(self.deleted_ids_) >= len(self._membership["ids"]):
            raise ForgetSelectionError(
                f"forgetting these ids would leave no training data; fit a new {self.title} instead"
            )
        touched, _ = self._touched(ids)
        # A part whose changes are all in held blocks (after the last step) retrains
        # nothing: its "first step" is one past the last.
        last = len(self.step_epochs_)
        return {p: min(min(blocks) + 1, last + 1) for p, blocks in sorted(touched.items())}

    def _serve(self, disk, request, ids, plan, started, *, resumed, request_id) -> ForgetResult:
        config = self.config_
        # Entries are replaced, never mutated: copying the lists is enough.
        state = {
            **self._state,
            "parts": [
                {**part, "blocks": list(part["blocks"]), "steps": list(part["steps"])}
                for part in self._state["parts"]
            ],
        }
        disk.remove_temporaries(parts=list(plan))
        touched, moves = self._touched(ids)
        rewritten = self._rewrite_blocks(disk, state, ids, touched, moves)
        jobs = []
        for p, first_step in plan.items():
            entries = state["parts"][p]["blocks"]
            for b in touched[p]:
                entries[b] = None  # the job writes the new block file, overlapping its training
            steps = state["parts"][p]["steps"]
            resume_from = steps[first_step - 2] if first_step > 1 else None
            data = tuple(rewritten.get((p, b)) for b in range(len(entries)))
            jobs.append(
                self._job(
                    config, disk, p, tag=request, first_step=first_step,
                    resume_from=resume_from, blocks=entries, data=data,
                )
            )  # fmt: skip
        results = self._train(jobs, f"{self.title} forget #{request}")
        sample_passes = steps_retrained = samples = 0
        for result in results:
            p = result["part"]
            state["parts"][p]["blocks"] = result["blocks"]
            state["parts"][p]["steps"][plan[p] - 1 :] = [_step_entry(x) for x in result["steps"]]
            sample_passes += sum(x["epochs"] * x["samples"] for x in result["steps"])
            steps_retrained += len(result["steps"])
            samples += sum(e["size"] for e in state["parts"][p]["blocks"])
        result = ForgetResult(
            request=request,
            ids=tuple(ids.tolist()),
            seconds=time.perf_counter() - started,
            request_id=request_id,
            resumed=resumed,
            parts=plan,
            steps_retrained=steps_retrained,
            sample_passes=sample_passes,
            samples_retrained=samples,
            extra={"moved": len(moves)} if moves else {},
        )
        state["requests_served"] = request
        # The commit: state, membership and the log line in one transaction. Before
        # it the old state stands whole, after it the new one.
        with disk.transaction(f"commit request {request}") as db:
            disk.write_state(db, state)
            disk.mark_deleted(db, ids, request=request)
            disk.move(db, moves)
            disk.log(db, _record(result))
        membership = _applied(self._membership, ids, moves)
        self._set_learned(disk, config, state, membership=membership)
        removed = self._finish(disk, parts=list(plan))
        return dataclasses.replace(result, files_deleted=tuple(removed))

    def _rewrite_blocks(self, disk, state, ids, touched, moves) -> dict[tuple[int, int], dict]:
        """The new content of every touched block: its rows minus deleted and moved-out
        ones, plus the rows moved into it (in id order)."""
        cache: dict[tuple[int, int], dict] = {}

        def read(p: int, b: int) -> dict:
            if (p, b) not in cache:
                entry = self._state["parts"][p]["blocks"][b]
                cache[p, b] = disk.read_tensors(entry["file"], sha256=entry["sha256"])[0]
            return cache[p, b]

        leaving = torch.as_tensor(np.union1d(ids, np.fromiter(moves, dtype=np.int64)))
        arriving: dict[tuple[int, int], list[int]] = {}
        for i, target in sorted(moves.items()):
            arriving.setdefault(target, []).append(i)
        if moves:
            src_part, src_block = self.locate(np.fromiter(sorted(moves), dtype=np.int64))
            source = dict(
                zip(
                    sorted(moves),
                    zip(src_part.tolist(), src_block.tolist(), strict=True),
                    strict=True,
                )
            )
        new = {}
        for p, blocks in touched.items():
            for b in sorted(blocks):
                tensors = read(p, b)
                keep = ~torch.isin(tensors["ids"], leaving)
                pieces = [{k: tensors[k][keep] for k in ("ids", "X", "y")}]
                for i in arriving.get((p, b), []):
                    rows = read(*source[i])
                    at = rows["ids"] == i
                    pieces.append({k: rows[k][at] for k in ("ids", "X", "y")})
                rows = {k: torch.cat([piece[k] for piece in pieces]) for k in ("ids", "X", "y")}
                order = self._block_order(p, b, rows["ids"].numpy())
                if order is not None:
                    order = torch.as_tensor(order)
                    rows = {k: v[order] for k, v in rows.items()}
                new[p, b] = rows
        return new

    def _finish(self, disk: PartStore, *, parts: list[int] | None = None) -> list[str]:
        """After a commit: delete superseded files, then clear the marker.

        Superseded files can only be in the parts the request retrained (``parts``);
        ``None`` scans them all. Returns the files deleted.
        """
        removed = disk.remove_unreferenced(_referenced(self._state), parts=parts)
        disk.clear_pending()
        return removed

    # -- prediction -------------------------------------------------------------------
    def constituents(self) -> dict[int, nn.Module]:
        """The trained model of every part that still holds samples, by part."""
        self._ensure_loaded()
        disk = self._disk()
        learner = learners.get(self.config_["learning"]["learner"])()
        for p, part in enumerate(self._state["parts"]):
            if self.part_sizes_[p] and p not in self._models:
                last = part["steps"][-1]
                tensors, _ = disk.read_tensors(last["file"], sha256=last["sha256"])
                self._models[p] = learner.load(self.spec_, tensors)
        return dict(sorted(self._models.items()))

    @torch.no_grad()
    def predict_proba(self, X) -> torch.Tensor:
        """Class probabilities ``(n, classes)`` combined from the part models."""
        X = torch.as_tensor(X, dtype=torch.float32)
        models = self.constituents()
        if not models:
            raise StoreError(f"every {self.part_label} is empty; there is no model to predict with")
        return self._combine(models, X)

    def predict(self, X) -> torch.Tensor:
        """Class labels (ties go to the lowest class)."""
        return self.predict_proba(X).argmax(1)

    def accuracy(self, split: Split) -> float:
        """Percentage of ``split`` the engine classifies correctly (0-100)."""
        if len(split) == 0:
            return float("nan")
        return 100.0 * (self.predict(split.X) == split.y).double().mean().item()

    # -- inspection -------------------------------------------------------------------
    def requests(self) -> list[dict]:
        """The request log: one record per served forget request."""
        self._ensure_loaded()
        return self._disk().read_log()

    def retained(self, part: int | None = None) -> Split:
        """The training samples still in the store (one part, or all)."""
        self._ensure_loaded()
        disk = self._disk()
        chosen = range(len(self._state["parts"])) if part is None else [part]
        pieces = []
        for p in chosen:
            for entry in self._state["parts"][p]["blocks"]:
                tensors, _ = disk.read_tensors(entry["file"], sha256=entry["sha256"])
                pieces.append(Split(ids=tensors["ids"], X=tensors["X"], y=tensors["y"]))
        return concat(pieces)

    def status(self) -> dict:
        """A summary: parts and their sizes, requests served, pending work, disk use.

        Parts and blocks are named in the engine's words (SISA: ``shards``,
        ``slices``, ``shard_sizes``).
        """
        self._ensure_loaded()
        disk = self._disk()
        pending = disk.read_pending()
        return {
            "store": str(self.store_),
            "engine": self.name,
            "model": self.spec_["name"],
            self.parts_label: len(self.part_sizes_),
            f"{self.block_label}s": len(self.step_epochs_),
            "step_epochs": self.step_epochs_,
            f"{self.part_label}_sizes": self.part_sizes_,
            "samples": sum(self.part_sizes_),
            "deleted": len(self.deleted_ids_),
            "requests_served": self.requests_served_,
            "pending_request": pending.get("request") if pending else None,
            "disk_bytes": disk.disk_bytes(),
            "metadata": self.config_.get("metadata", {}),
        }

    def state_dict(self) -> dict:
        """The store's path with a snapshot of its config and state (JSON, no tensors).

        The state lives in the store, which every request updates; ``load`` takes
        this dict (or the path) and reads the store as it is then.
        """
        self._ensure_loaded()
        return {
            "engine": self.name,
            "store": str(self.store_),
            "config": copy.deepcopy(self.config_),
            "state": copy.deepcopy(self._state),
        }

    def verify(self) -> list[str]:
        """Check the database and every file the state names against its SHA-256."""
        self._ensure_loaded()
        disk = self._disk()
        problems = disk.check_integrity()
        for name, sha in _referenced(self._state, with_hash=True).items():
            path = disk.root / name
            if not path.is_file():
                problems.append(f"{name} is missing")
            elif disk.sha256_of(name) != sha:
                problems.append(f"{name} does not match its SHA-256")
        return problems


def _record(result: ForgetResult) -> dict:
    """A request-log row (``request_id`` only when the caller gave one)."""
    record = {
        "time": now(),
        "ids": list(result.ids),
        "request": result.request,
        "forgotten": result.forgotten,
        "parts": result.parts,
        "steps_retrained": result.steps_retrained,
        "sample_passes": result.sample_passes,
        "samples_retrained": result.samples_retrained,
        "seconds": result.seconds,
        "resumed": result.resumed,
    }
    if result.request_id is not None:
        record["request_id"] = result.request_id
    if result.extra:
        record["extra"] = result.extra
    return record


def _result_from_record(record: dict, *, resumed: bool) -> ForgetResult:
    return ForgetResult(
        request=int(record["request"]),
        ids=tuple(int(i) for i in record["ids"]),
        seconds=float(record["seconds"]),
        request_id=record.get("request_id"),
        resumed=resumed,
        parts={int(p): int(k) for p, k in record["parts"].items()},
        steps_retrained=int(record["steps_retrained"]),
        sample_passes=int(record["sample_passes"]),
        samples_retrained=int(record["samples_retrained"]),
        extra=record.get("extra", {}),
    )


def _applied(membership: dict, ids: np.ndarray, moves: dict) -> dict:
    """``membership`` after a request deleted ``ids`` and made ``moves`` (as committed)."""
    new = {k: v.copy() for k, v in membership.items()}
    where = np.searchsorted(new["ids"], ids)
    new["deleted"][where] = True
    new["priority"][where] = np.nan
    if moves:
        moved = np.fromiter(moves, dtype=np.int64)
        where = np.searchsorted(new["ids"], moved)
        new["part"][where] = [moves[i][0] for i in moved.tolist()]
        new["block"][where] = [moves[i][1] for i in moved.tolist()]
    return new


def _logged(disk: PartStore, request: int) -> dict:
    for record in disk.read_log():
        if record["request"] == request:
            return record
    raise StoreFormatError(
        f"request {request} is committed in {disk.database_path} but missing from its request "
        "log; the store is damaged"
    )


def _step_entry(step: dict) -> dict:
    return {k: step[k] for k in ("file", "sha256", "samples", "epochs")}


def _referenced(state: dict, *, with_hash: bool = False):
    files = {
        entry["file"]: entry["sha256"]
        for part in state["parts"]
        for entry in (*part["blocks"], *part["steps"])
    }
    return files if with_hash else set(files)


def _compare(
    store: PartStore, title: str, existing: dict, wanted: dict, *, keys=("engine", "data")
) -> None:
    differences = []
    for key in keys:
        have, want = existing.get(key, {}), wanted.get(key, {})
        for name in sorted(set(have) | set(want)):
            if have.get(name) != want.get(name):
                differences.append(
                    f"{key}.{name}: store has {have.get(name)!r}, asked {want.get(name)!r}"
                )
    if differences:
        raise StoreMismatchError(
            f"{title} store {store.root} was made with another configuration or other data ("
            + "; ".join(differences[:4])
            + "); open it with load(path), or use a new directory"
        )


__all__ = [
    "PartitionedEngine",
    "concat",
    "content_sha256",
    "deletion_probability_array",
    "normalised",
    "probabilities_sha256",
]
