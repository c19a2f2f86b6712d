"""SISA: sharded, isolated, sliced, aggregated training (Bourtoule et al., S&P 2021).

The training ids are shuffled with the seed and cut into ``shards`` disjoint
shards, each cut into ``slices`` slices. Every shard trains its own constituent
model: step ``i`` resumes from the checkpoint of step ``i - 1`` and trains on
slices ``1..i``. Predictions aggregate the constituents (majority vote, or the
mean of their softmax outputs). ``forget(ids)`` retrains only the shards that
saw the ids, each from the checkpoint before its earliest affected slice, on
the same slices minus the ids, with the same seeds and per-step epochs; the
result is bit-identical to training that shard from scratch without the ids
(spec/sisa.md, spec/evaluation.md "Exact-unlearning checks").

Choices made here (documented in the README section):

- Each step starts a fresh optimizer and checkpoints hold the model only, as in
  the reference implementation (``carry_optimizer=False``). With
  ``carry_optimizer=True`` the optimizer state (e.g. SGD momentum) continues
  across steps and is saved in every checkpoint: closer to unsliced training,
  but checkpoints twice the size and about 3x slower to write.
- Step ``i`` uses epochs ``E(i-1) .. E(i)-1`` of a global per-shard count for
  its data order, and reseeds torch's global generator (dropout) from
  ``(shard seed, step)``: what a step does depends only on its seed, its step
  number and its data, never on what was deleted elsewhere.
- Constituents train with ``threads`` torch threads (default 1) whatever the
  executor, because CPU kernels may sum in a different order with more threads
  and exactness is bit-for-bit.
- A step whose slices are all deleted performs no update; a shard with no
  sample left is left out of the aggregate.
- The store keeps the training data of every slice, so a loaded store can serve
  deletions on its own; a deleted sample's features are removed with it.

>>> import unlearnkit as uk
>>> from unlearnkit.exact import SISA
>>> data = uk.datasets.load("digits")
>>> sisa = SISA(model="logreg", shards=3, slices=2, epochs=2, executor="serial")
>>> sisa = sisa.fit(data.train)
>>> report = sisa.forget([int(data.train.ids[0])])
>>> len(report.parts), report.steps_retrained >= 1, sisa.requests_served_
(1, True, 1)
>>> sisa.predict(data.test.X[:3]).tolist() == sisa.predict_proba(data.test.X[:3]).argmax(1).tolist()
True
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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearnkit.checkpoint import versions
from unlearnkit.data.dataset import Split, sha256_of_ids
from unlearnkit.errors import (
    ConfigError,
    ForgetSelectionError,
    RequestIdConflictError,
    StoreBusyError,
    StoreError,
    StoreFormatError,
    UnknownIdsError,
)
from unlearnkit.exact.base import (
    ExactEngine,
    ForgetResult,
    check_request_id,
    check_retry,
    register,
)
from unlearnkit.exact.ids import as_id_array, coerce_forget_ids
from unlearnkit.exact.sisa_plan import (
    assign_distribution_aware,
    assign_uniform,
    expected_sample_passes,
    retrain_sample_passes,
    shard_seed,
    step_epochs,
)
from unlearnkit.exact.sisa_store import (
    FORMAT,
    FORMAT_VERSION,
    PendingRequestError,
    SISAStore,
    StoreMismatchError,
    now,
)
from unlearnkit.exact.sisa_worker import ShardJob, torch_threads, train_shard
from unlearnkit.models import from_spec, make
from unlearnkit.params import OneOf, Range, declared
from unlearnkit.runtime.executors import Executor, get_executor
from unlearnkit.runtime.executors import names as executor_names
from unlearnkit.training import TrainConfig
from unlearnkit.training import predict_proba as model_proba

AGGREGATIONS = ("vote", "softmax")
SHARDINGS = ("uniform", "distribution-aware")
EXECUTORS = tuple(executor_names())
_NO_IDS = np.zeros(0, dtype=np.int64)


def _concat(parts: list[Split]) -> Split:
    return Split(
        ids=torch.cat([p.ids for p in parts]),
        X=torch.cat([p.X for p in parts]),
        y=torch.cat([p.y for p in parts]),
    )


# --------------------------------------------------------------------------------------
# The aggregate model
# --------------------------------------------------------------------------------------


def aggregate(probabilities: torch.Tensor, *, aggregation: str, num_classes: int) -> torch.Tensor:
    """Combine constituent outputs ``(models, n, classes)`` into ``(n, classes)``.

    ``vote``: the fraction of constituents voting for each class (argmax picks the
    lowest class on ties); ``softmax``: the mean of their softmax outputs.

    >>> p = torch.tensor([[[0.6, 0.4]], [[0.1, 0.9]], [[0.7, 0.3]]])
    >>> aggregate(p, aggregation="vote", num_classes=2), aggregate(p, aggregation="softmax", num_classes=2)
    (tensor([[0.6667, 0.3333]]), tensor([[0.4667, 0.5333]]))
    """
    if aggregation == "softmax":
        return probabilities.mean(0)
    votes = F.one_hot(probabilities.argmax(2), num_classes).to(probabilities.dtype)
    return votes.mean(0)


class SISAEnsemble(nn.Module):
    """The aggregate as an ``nn.Module``: ``forward`` returns log-probabilities.

    ``softmax(forward(x))`` equals the aggregate probabilities (vote fractions or
    mean softmax), so code written for single classifiers (accuracy, MIA
    features, KL divergence) evaluates the ensemble unchanged. Zero
    probabilities are clamped to 1e-12 to keep logarithms finite.
    """

    def __init__(self, constituents: Sequence[nn.Module], *, aggregation: str, num_classes: int):
        super().__init__()
        if not constituents:
            raise StoreError(
                "the SISA ensemble has no constituent left (every sample was forgotten)"
            )
        self.constituents = nn.ModuleList(constituents)
        self.aggregation = aggregation
        self.num_classes = num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([F.softmax(m(x), dim=1) for m in self.constituents])
        combined = aggregate(
            probabilities, aggregation=self.aggregation, num_classes=self.num_classes
        )
        return combined.clamp_min(1e-12).log()


# --------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------


# The name of SISA's result type before the engine contract; every engine now returns
# a ForgetResult (SISA's shards are its ``parts``).
ForgetReport = ForgetResult


def _normalised(value):
    return json.loads(json.dumps(value))


@register
class SISA(ExactEngine):
    """Exact unlearning by sharded, sliced training (spec/sisa.md).

    An :class:`~unlearnkit.exact.ExactEngine`: bit-exact, persistent (every request
    commits to the store; ``SISA.load(store)`` reopens it), classification only.

    Parameters (keyword-only):

    - ``model``: a model name of :mod:`unlearnkit.models` or a model built by
      ``make`` (its architecture and preprocessing are used); ``model_options`` are
      passed to ``make``.
    - ``preprocessing``: with a model name, ``auto`` (standardise tabular inputs),
      ``standardize`` or ``none``. Each constituent owns its preprocessing: step
      ``i`` refits it on the data that step trains on (slices ``1..i``, a choice),
      so a checkpoint depends on no sample of a later slice.
    - ``shards`` (S), ``slices`` (R), ``epochs`` (``e0``, the epochs an unsliced
      model would use; each step gets :func:`step_epochs`), ``training`` (batch
      size, optimiser, learning rate; its ``epochs`` is replaced by the schedule).
    - ``aggregation``: ``"vote"`` (ties go to the lowest class) or ``"softmax"``.
    - ``sharding``: ``"uniform"``, or ``"distribution-aware"`` with
      ``deletion_probabilities`` (a sequence aligned with ``train`` or a mapping
      id → probability) and ``capacity`` (expected requests per shard, ≤ 1).
    - ``seed``: drives the shuffle, every shard's initialisation and data order.
    - ``threads``: torch threads per constituent while training (part of what
      makes results bit-identical, so it is stored with the config).
    - ``carry_optimizer``: keep the optimizer state (momentum, Adam moments)
      across steps and save it in every checkpoint; by default each step starts a
      fresh optimizer and checkpoints hold the model only (half the disk and I/O).
    - ``store``: the store directory (a temporary one if ``None``).
    - ``executor``: ``"serial"``, ``"process"`` (all cores), ``"ray"`` or an
      :class:`~unlearnkit.runtime.Executor`.
    - ``num_classes``: defaults to ``max(label) + 1`` of the training data.
    - ``metadata``: free-form JSON saved with the config (e.g. where the data came from).

    Learned state after ``fit`` or ``load``: ``store_``, ``spec_``,
    ``num_classes_``, ``step_epochs_``, ``shard_seeds_``, ``shard_sizes_``, ``slice_sizes_``,
    ``deleted_ids_``, ``requests_served_``, ``fit_seconds_`` (wall time of the fit).
    """

    name = "sisa"
    summary = "sharded, sliced training; a forget retrains only the shards that saw the ids"
    bit_exact = True
    persistent = True
    tasks = ("classification",)

    @staticmethod
    def run_options(
        *,
        shards: Annotated[int, Range(ge=1)] = 5,
        slices: Annotated[int, Range(ge=1)] = 5,
        aggregation: Annotated[str, OneOf(AGGREGATIONS)] = "vote",
        executor: Annotated[str, OneOf(EXECUTORS)] = "serial",
    ) -> None:
        """``unlearnkit run -o sisa.PARAM=VALUE``: the run gives the model, recipe and seed.

        The run's ``--epochs`` is SISA's ``e0``; serial by default, because the run
        already times the forget against golden's single-process training.
        """

    @classmethod
    def for_run(
        cls, *, model, training, seed, num_classes, store=None, progress=None, **options
    ) -> SISA:
        return cls(
            model=model,
            epochs=training.epochs,
            training=training,
            seed=seed,
            num_classes=num_classes,
            store=store,
            progress=progress,
            **options,
        )

    @classmethod
    def check_run(cls, *, train_size: int, options: dict) -> None:
        chosen = {k: p.default for k, p in declared(cls.run_options).items()} | options
        if train_size // chosen["shards"] < chosen["slices"]:
            raise ConfigError(
                f"sisa: {train_size} train samples in {chosen['shards']} shards leave fewer than "
                f"{chosen['slices']} samples (one per slice) in some shard; "
                "use fewer shards or slices"
            )

    def __init__(
        self,
        *,
        model: str | nn.Module = "mlp",
        model_options: dict | None = None,
        preprocessing: str = "auto",
        shards: int = 5,
        slices: int = 1,
        epochs: int = 20,
        training: TrainConfig | None = None,
        aggregation: str = "vote",
        sharding: str = "uniform",
        deletion_probabilities: Sequence[float] | Mapping[int, float] | None = None,
        capacity: float = 1.0,
        seed: int = 0,
        threads: int = 1,
        carry_optimizer: bool = False,
        store: str | os.PathLike | None = None,
        executor: str | Executor | None = "process",
        num_classes: int | None = None,
        metadata: dict | None = None,
        progress: bool | None = None,
    ) -> None:
        self.model = model
        self.model_options = model_options
        self.preprocessing = preprocessing
        self.shards = shards
        self.slices = slices
        self.epochs = epochs
        self.training = training
        self.aggregation = aggregation
        self.sharding = sharding
        self.deletion_probabilities = deletion_probabilities
        self.capacity = capacity
        self.seed = seed
        self.threads = threads
        self.carry_optimizer = carry_optimizer
        self.store = store
        self.executor = executor
        self.num_classes = num_classes
        self.metadata = metadata
        self.progress = progress
        self._executor: Executor | None = None
        self._models: dict[int, nn.Module] = {}

    # -- configuration ------------------------------------------------------------------
    def _check_options(self) -> None:
        for name in ("shards", "slices", "epochs", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        from unlearnkit.params import check_seed

        check_seed(self.seed, what="seed")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"aggregation must be one of {AGGREGATIONS}; got {self.aggregation!r}"
            )
        if self.sharding not in SHARDINGS:
            raise ConfigError(f"sharding must be one of {SHARDINGS}; got {self.sharding!r}")
        if self.sharding == "distribution-aware":
            if self.deletion_probabilities is None:
                raise ConfigError(
                    "distribution-aware sharding needs deletion_probabilities (one per sample)"
                )
            if not 0 < self.capacity <= 1:
                raise ConfigError(f"capacity must be in (0, 1]; got {self.capacity}")

    def _training_config(self) -> TrainConfig:
        return (self.training or TrainConfig()).replace(epochs=self.epochs)

    def _model_choice(self) -> dict:
        if isinstance(self.model, nn.Module):
            spec = getattr(self.model, "spec", None)
            if spec is None:
                raise ConfigError("model must be a name or a model built by unlearnkit.models.make")
            return {
                "name": spec["name"],
                "kwargs": spec.get("kwargs", {}),
                "preprocessing": spec.get("preprocessing", "none"),
            }
        return {
            "name": self.model,
            "kwargs": dict(self.model_options or {}),
            "preprocessing": self.preprocessing,
        }

    def _probabilities_sha(self) -> str | None:
        p = self.deletion_probabilities
        if p is None or self.sharding != "distribution-aware":
            return None
        items = sorted(p.items()) if isinstance(p, Mapping) else list(p)
        return hashlib.sha256(json.dumps(_normalised(items)).encode()).hexdigest()

    def _engine_config(self) -> dict:
        """The options that determine what is stored; a store must match them to be reused."""
        return _normalised(
            {
                "model": self._model_choice(),
                "shards": self.shards,
                "slices": self.slices,
                "epochs": self.epochs,
                "training": self._training_config().to_dict(),
                "sharding": self.sharding,
                "capacity": self.capacity if self.sharding == "distribution-aware" else None,
                "deletion_probabilities_sha256": self._probabilities_sha(),
                "seed": self.seed,
                "threads": self.threads,
                "carry_optimizer": bool(self.carry_optimizer),
            }
        )

    def _store_path(self) -> Path:
        if self.store is None:
            self.store = tempfile.mkdtemp(prefix="unlearnkit-sisa-")
            weakref.finalize(self, shutil.rmtree, self.store, ignore_errors=True)
        return Path(self.store)

    def _get_executor(self) -> Executor:
        if self._executor is None:
            self._executor = get_executor(self.executor)
        return self._executor

    def close(self) -> None:
        """Stop worker processes (or a local Ray cluster) started for this engine."""
        if self._executor is not None and not isinstance(self.executor, Executor):
            self._executor.close()
        self._executor = None

    # -- fit --------------------------------------------------------------------------------
    def fit(self, train: Split, *, exclude_ids=None) -> SISA:
        """Shard, slice and train every constituent on ``train``; returns ``self``.

        ``exclude_ids`` trains as if those ids had been forgotten right after the
        fit: same shards and slices, the ids never seen. This *is* the reference
        that ``forget(exclude_ids)`` must equal bit-for-bit (SISA's own golden).
        Re-running ``fit`` with the same configuration and data finishes a fit
        that was interrupted, reusing the steps already saved.
        """
        started = time.perf_counter()
        self._check_options()
        if len(train) == 0:
            raise ConfigError("cannot fit SISA on an empty training split")
        self.check_task(train)
        if train.y.dtype != torch.int64:
            raise ConfigError(
                "SISA needs class labels (int64 targets); regression is not supported"
            )
        n = len(train)
        if n // self.shards < self.slices:
            raise ConfigError(
                f"{n} samples in {self.shards} shards leave fewer than {self.slices} samples "
                "(one per slice) in some shard; use fewer shards or slices"
            )
        num_classes = self.num_classes or int(train.y.max()) + 1
        choice = self._model_choice()
        spec = make(
            choice["name"],
            input_shape=tuple(train.X.shape[1:]),
            num_outputs=num_classes,
            preprocessing=choice["preprocessing"],
            **choice["kwargs"],
        ).spec
        positions, shard_of, slice_of = self._assign(train)
        exclude = np.zeros(0, dtype=np.int64)
        if exclude_ids is not None:
            exclude = np.unique(np.asarray(exclude_ids, dtype=np.int64))
            train.positions(exclude)  # unknown ids raise UnknownIdsError
            if len(exclude) == n:
                raise ForgetSelectionError(
                    "exclude_ids covers every training sample; nothing to train"
                )
        with cf.ThreadPoolExecutor(max_workers=1) as hashing:
            # Hashing the features releases the GIL: it overlaps the gathers below.
            content_sha = hashing.submit(_content_sha, train)
            keep = ~np.isin(train.ids.numpy()[positions], exclude)
            shard_data = []
            for s in range(self.shards):
                # One copy per shard, its slices views of it: a worker process receives
                # three shared-memory blocks per shard instead of three per slice.
                mine = (shard_of == s) & keep  # store order: slice by slice
                part = train.take(torch.as_tensor(positions[mine]))
                ends = np.cumsum(np.bincount(slice_of[mine], minlength=self.slices)).tolist()
                shard_data.append(
                    {
                        "data": tuple(
                            {k: getattr(part, k)[a:b] for k in ("ids", "X", "y")}
                            for a, b in zip([0, *ends[:-1]], ends, strict=True)
                        ),
                        "block": {"ids": part.ids, "X": part.X, "y": part.y},
                    }
                )
            content_sha = content_sha.result()
        schedule = step_epochs(self.epochs, self.slices)
        config = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "engine": self._engine_config(),
            "aggregation": self.aggregation,
            "spec": _normalised(spec),
            "schedule": {
                "step_epochs": schedule,
                "shard_seeds": [shard_seed(self.seed, s) for s in range(self.shards)],
            },
            "data": {
                "n": n,
                "ids_sha256": train.ids_sha256(),
                "content_sha256": content_sha,
                "num_classes": num_classes,
                "input_shape": list(train.X.shape[1:]),
            },
            "metadata": _normalised(self.metadata or {}),
            "created": now(),
            "versions": versions(),
        }
        store = SISAStore(self._store_path())
        pending = {"kind": "fit", "exclude_sha256": sha256_of_ids(exclude), "started": now()}
        self._check_fit_target(store, config, pending)
        with store.lock():
            if not store.exists():
                # first: marks the directory as a store
                store.write_json(store.config_path, config, indent=1)
            if store.read_pending() is None:
                store.write_json(store.pending_path, pending)
            # Rewritten on every attempt (same bytes) so a fit killed at any point resumes.
            store.write_split(
                train.ids[positions], torch.as_tensor(shard_of), torch.as_tensor(slice_of)
            )
            store.remove_temporaries()
            jobs = [
                dataclasses.replace(
                    self._job(
                        config,
                        store,
                        s,
                        tag=0,
                        first_step=1,
                        resume_from=None,
                        slices=[None] * self.slices,
                    ),
                    **shard_data[s],
                )
                for s in range(self.shards)
            ]
            results = self._get_executor().map(
                train_shard,
                jobs,
                labels=[f"shard {s}" for s in range(self.shards)],
                description="SISA fit",
                progress=self.progress,
            )
            shards = [
                {"slices": r["slices"], "steps": [_step_entry(x) for x in r["steps"]]}
                for r in sorted(results, key=lambda r: r["shard"])
            ]
            state = {
                "requests_served": 0,
                "deleted_ids": exclude.tolist(),
                "shards": shards,
                "fit_seconds": time.perf_counter() - started,
                "last_request": None,
            }
            store.write_json(store.state_path, state)  # the commit
            store.clear_pending()
            store.remove_unreferenced(_referenced(state))
        self._set_learned(config, state)
        return self

    def _assign(self, train: Split) -> tuple[np.ndarray, ...]:
        if self.sharding == "uniform":
            return assign_uniform(
                len(train), shards=self.shards, slices=self.slices, seed=self.seed
            )
        p = self.deletion_probabilities
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
        return assign_distribution_aware(
            p, shards=self.shards, slices=self.slices, seed=self.seed, capacity=self.capacity
        )

    def _check_fit_target(self, store: SISAStore, config: dict, pending: dict) -> None:
        """Refuse to overwrite anything: only an empty directory or an unfinished identical fit."""
        if not store.exists():
            if store.root.exists() and (
                not store.root.is_dir() or any(p.name != ".lock" for p in store.root.iterdir())
            ):
                raise StoreError(
                    f"{store.root} exists and is not an empty directory or a SISA store; "
                    "choose a new directory for the store"
                )
            return
        existing = store.read_config()
        _compare(store, existing, config)
        if store.read_state() is not None:
            raise StoreError(
                f"{store.root} already holds a fitted SISA; load it with SISA.load(path) "
                "(or 'unlearnkit sisa status'), or fit into a new directory"
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

    def _job(self, config, store, shard, *, tag, first_step, resume_from, slices) -> ShardJob:
        return ShardJob(
            store=str(store.root.resolve()),
            shard=shard,
            tag=tag,
            first_step=first_step,
            resume_from=resume_from,
            slices=tuple(slices),
            epochs=tuple(config["schedule"]["step_epochs"]),
            seed=config["schedule"]["shard_seeds"][shard],
            spec=config["spec"],
            training=config["engine"]["training"],
            threads=config["engine"]["threads"],
            carry_optimizer=config["engine"]["carry_optimizer"],
        )

    # -- loading ----------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        store: str | os.PathLike | Mapping,
        *,
        executor: str | Executor | None = "process",
        progress: bool | None = None,
    ) -> SISA:
        """Open a store written by :meth:`fit`; the configuration comes from the store.

        ``store`` is the store directory, or a :meth:`state_dict` (which names it).
        """
        if isinstance(store, Mapping):
            if not isinstance(store.get("store"), str):
                raise StoreError("this state_dict names no SISA store; pass SISA.state_dict()")
            store = store["store"]
        disk = SISAStore(store)
        config = disk.read_config()
        engine = config["engine"]
        obj = cls(
            model=engine["model"]["name"],
            model_options=engine["model"]["kwargs"],
            # Stores written before models owned their preprocessing had none.
            preprocessing=engine["model"].get("preprocessing", "none"),
            shards=engine["shards"],
            slices=engine["slices"],
            epochs=engine["epochs"],
            training=TrainConfig(**engine["training"]),
            aggregation=config.get("aggregation", "vote"),
            sharding=engine["sharding"],
            capacity=engine["capacity"] if engine["capacity"] is not None else 1.0,
            seed=engine["seed"],
            threads=engine["threads"],
            carry_optimizer=engine["carry_optimizer"],
            store=store,
            executor=executor,
            num_classes=config["data"]["num_classes"],
            metadata=config.get("metadata"),
            progress=progress,
        )
        obj._load_from(disk, config)
        return obj

    def _load_from(self, disk: SISAStore, config: dict) -> None:
        state = disk.read_state()
        if state is None:
            raise StoreError(
                f"SISA store {disk.root} holds an unfinished fit; run fit(train) again with the "
                "same configuration and data to finish it"
            )
        self._set_learned(config, state)
        self._roll_forward(disk)

    def _roll_forward(self, disk: SISAStore) -> list[str]:
        """Finish the cleanup of a request that committed just before a crash.

        After the commit point the old slices (holding the forgotten samples'
        features) and the checkpoints trained on them are no longer referenced, but
        they stay on disk until the cleanup runs. Every way of opening a store
        (``load``, ``status``, ``verify``, the CLI) runs it first, so nothing of a
        forgotten sample outlives the next open. A store another process is writing
        is left to that writer, which finishes the cleanup itself.
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
                shards = sorted(int(s) for s in pending.get("plan", {})) or None
                return self._finish(disk, shards=shards)
        except StoreBusyError:
            return []

    def _ensure_loaded(self) -> None:
        """An engine that has not fitted opens its ``store``, which must match its configuration."""
        if hasattr(self, "store_"):
            return
        if self.store is None:
            raise StoreError("this SISA is not fitted; call fit(train) or SISA.load(store) first")
        disk = SISAStore(self.store)
        config = disk.read_config()
        self._check_options()
        _compare(disk, config, {"engine": self._engine_config()}, keys=("engine",))
        self._load_from(disk, config)

    def _set_learned(self, config: dict, state: dict) -> None:
        self.config_ = config
        self._state = state
        self.store_ = Path(self.store)
        self.spec_ = config["spec"]
        self.num_classes_ = config["data"]["num_classes"]
        self.step_epochs_ = list(config["schedule"]["step_epochs"])
        self.shard_seeds_ = list(config["schedule"]["shard_seeds"])
        self.slice_sizes_ = [[e["size"] for e in sh["slices"]] for sh in state["shards"]]
        self.shard_sizes_ = [sum(sizes) for sizes in self.slice_sizes_]
        self.deleted_ids_ = np.asarray(state["deleted_ids"], dtype=np.int64)
        self.requests_served_ = int(state["requests_served"])
        self.fit_seconds_ = state.get("fit_seconds")
        self._models = {}
        if getattr(self, "_split_store", None) != self.store_:  # the split never changes
            split = SISAStore(self.store_).read_split()
            order = torch.argsort(split["ids"])
            self._split_sorted_ids = split["ids"][order].numpy()
            self._split_shard = split["shard"][order].numpy()
            self._split_slice = split["slice"][order].numpy()
            self._split_store = self.store_

    def _refresh(self, disk: SISAStore) -> None:
        """Re-read the state: another process may have served requests since we loaded."""
        state = disk.read_state()
        if state is not None and state != self._state:
            self._set_learned(self.config_, state)

    # -- forgetting ---------------------------------------------------------------------------
    def locate(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """0-based ``(shard, slice)`` of each id (in the order given), as assigned at fit time."""
        self._ensure_loaded()
        ids = as_id_array(ids)
        where = np.searchsorted(self._split_sorted_ids, ids).clip(
            max=len(self._split_sorted_ids) - 1
        )
        unknown = self._split_sorted_ids[where] != ids
        if unknown.any():
            raise UnknownIdsError(
                f"{int(unknown.sum())} id(s) were never part of this SISA's training data "
                f"(first: {ids[unknown][:5].tolist()}); use ids of the data given to fit"
            )
        return self._split_shard[where], self._split_slice[where]

    def forget(self, ids, *, request_id: str | None = None) -> ForgetResult:
        """Forget ``ids``: retrain each affected shard once, from its earliest affected slice.

        Affected shards retrain in parallel through the executor. If the store
        holds a request that was interrupted (process killed), calling ``forget``
        with the same ids finishes it; other ids are refused until then.
        ``request_id`` is recorded with the request (state and request log): the
        same key with the same ids again returns the committed result with
        ``already_served=True`` and touches nothing.
        """
        self._ensure_loaded()
        started = time.perf_counter()
        request_id = check_request_id(request_id)
        # Malformed, repeated and unknown ids fail before the store is touched;
        # already-forgotten ones once a retried request_id has had its say.
        ids = coerce_forget_ids(ids, known=self._split_sorted_ids, deleted=_NO_IDS)
        disk = SISAStore(self.store_)
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
                        return dataclasses.replace(
                            _result_from_record(self._state["last_request"], resumed=True),
                            files_deleted=tuple(removed),
                        )
                elif not same:
                    raise PendingRequestError(
                        f"SISA store {self.store_} has an interrupted request #{pending['request']} "
                        f"for {len(pending['ids'])} id(s); finish it first by forgetting those ids "
                        "again ('unlearnkit sisa forget STORE --resume'), then send new ones"
                    )
                else:
                    key = pending.get("request_id")
                    if request_id is not None and key is not None and request_id != key:
                        raise RequestIdConflictError(
                            f"request_id {request_id!r} differs from {key!r}, the key of the "
                            f"interrupted request #{pending['request']} for these ids; retry "
                            "with that key"
                        )
                    plan = {int(s): int(k) for s, k in pending["plan"].items()}
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
            ids = coerce_forget_ids(ids, known=self._split_sorted_ids, deleted=self.deleted_ids_)
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
            disk.write_json(disk.pending_path, marker)
            return self._serve(
                disk, request, ids, plan, started, resumed=False, request_id=request_id
            )

    def _served(self, disk: SISAStore, request_id: str, ids: np.ndarray) -> ForgetResult | None:
        """The committed result of the request keyed ``request_id``, or ``None`` if none was."""
        number = self._state.get("request_ids", {}).get(request_id)
        if number is None:
            return None
        last = self._state.get("last_request") or {}
        record = (
            last
            if last.get("request") == number
            else next((r for r in disk.read_log() if r.get("request") == number), None)
        )
        if record is None:
            raise StoreFormatError(
                f"request {number} (request_id {request_id!r}) is recorded in state.json but "
                f"missing from {disk.log_path}; the request log is damaged"
            )
        check_retry(request_id, ids, served_ids=record["ids"], request=number)
        return _result_from_record(record, resumed=False).served_again()

    def resume(self) -> ForgetResult | None:
        """Finish an interrupted forget request, if there is one."""
        self._ensure_loaded()
        pending = SISAStore(self.store_).read_pending()
        if pending is None or pending.get("kind") != "forget":
            return None
        return self.forget(pending["ids"], request_id=pending.get("request_id"))

    @property
    def pending_request_(self) -> dict | None:
        """The interrupted request (``request``, ``ids``, ``plan``), or ``None``."""
        self._ensure_loaded()
        pending = SISAStore(self.store_).read_pending()
        return pending if pending is not None and pending.get("kind") == "forget" else None

    def _plan(self, ids: np.ndarray) -> dict[int, int]:
        shard, slice_ = self.locate(ids)
        if len(ids) + len(self.deleted_ids_) >= len(self._split_sorted_ids):
            raise ForgetSelectionError(
                "forgetting these ids would leave no training data; fit a new SISA instead"
            )
        plan: dict[int, int] = {}
        for s, r in zip(shard.tolist(), slice_.tolist(), strict=True):
            plan[s] = min(plan.get(s, r + 1), r + 1)
        return dict(sorted(plan.items()))

    def _serve(self, disk, request, ids, plan, started, *, resumed, request_id) -> ForgetResult:
        config = self.config_
        # Entries are replaced, never mutated: copying the lists is enough.
        state = {
            **self._state,
            "shards": [
                {**sh, "slices": list(sh["slices"]), "steps": list(sh["steps"])}
                for sh in self._state["shards"]
            ],
        }
        disk.remove_temporaries(shards=list(plan))
        shard_of, slice_of = self.locate(ids)
        jobs = []
        for s, first_step in plan.items():
            entries = state["shards"][s]["slices"]
            rewritten: list[dict | None] = [None] * len(entries)
            for r in sorted({int(r) for r in slice_of[shard_of == s]}):
                old = entries[r]
                tensors, _ = disk.read_tensors(old["file"], sha256=old["sha256"])
                keep = ~torch.isin(tensors["ids"], torch.as_tensor(ids))
                rewritten[r] = {k: v[keep] for k, v in tensors.items()}
                entries[r] = None  # the job writes the new slice file, overlapping its training
            steps = state["shards"][s]["steps"]
            resume_from = steps[first_step - 2] if first_step > 1 else None
            jobs.append(
                self._job(
                    config,
                    disk,
                    s,
                    tag=request,
                    first_step=first_step,
                    resume_from=resume_from,
                    slices=entries,
                )
            )
            jobs[-1] = dataclasses.replace(jobs[-1], data=tuple(rewritten))  # no re-read
        results = self._get_executor().map(
            train_shard,
            jobs,
            labels=[f"shard {s}" for s in plan],
            description=f"SISA forget #{request}",
            progress=self.progress,
        )
        sample_passes = steps_retrained = samples = 0
        for result in results:
            s = result["shard"]
            state["shards"][s]["slices"] = result["slices"]
            state["shards"][s]["steps"][plan[s] - 1 :] = [_step_entry(x) for x in result["steps"]]
            sample_passes += sum(x["epochs"] * x["samples"] for x in result["steps"])
            steps_retrained += len(result["steps"])
            samples += sum(e["size"] for e in state["shards"][s]["slices"])
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
        )
        state["deleted_ids"] = np.union1d(self.deleted_ids_, ids).tolist()
        state["requests_served"] = request
        # The log line is kept in the committed state so that a crash between the
        # commit and the log append still logs the request exactly once.
        state["last_request"] = _record(result)
        if request_id is not None:
            # Committed with the request itself, so a retry after a crash finds its key.
            state["request_ids"] = {**state.get("request_ids", {}), request_id: request}
        disk.write_json(disk.state_path, state)  # the commit: old state before, new state after
        self._set_learned(config, state)
        removed = self._finish(disk, shards=list(plan))
        return dataclasses.replace(result, files_deleted=tuple(removed))

    def _finish(self, disk: SISAStore, *, shards: list[int] | None = None) -> list[str]:
        """After a commit: log the request once, delete superseded files, clear the marker.

        Superseded files can only be in the shards the request retrained (``shards``);
        ``None`` scans them all. Returns the files deleted.
        """
        record = self._state["last_request"]
        logged = disk.read_log()
        if record is not None and (not logged or logged[-1].get("request") != record["request"]):
            disk.append_log(record)
        removed = disk.remove_unreferenced(_referenced(self._state), shards=shards)
        disk.clear_pending()
        return removed

    # -- prediction -------------------------------------------------------------------------
    def constituents(self) -> dict[int, nn.Module]:
        """The trained constituent of every shard that still holds samples, by shard."""
        self._ensure_loaded()
        disk = SISAStore(self.store_)
        for s, shard in enumerate(self._state["shards"]):
            if self.shard_sizes_[s] and s not in self._models:
                last = shard["steps"][-1]
                tensors, _ = disk.read_tensors(last["file"], sha256=last["sha256"])
                model = from_spec(self.spec_)
                model.load_state_dict(
                    {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
                )
                self._models[s] = model.eval()
        return dict(sorted(self._models.items()))

    def as_module(self) -> SISAEnsemble:
        """The aggregate as an ``nn.Module`` returning log-probabilities."""
        return SISAEnsemble(
            list(self.constituents().values()),
            aggregation=self.aggregation,
            num_classes=self.num_classes_,
        )

    @torch.no_grad()
    def predict_proba(self, X) -> torch.Tensor:
        """Aggregate class probabilities ``(n, classes)``: vote fractions or mean softmax."""
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"aggregation must be one of {AGGREGATIONS}; got {self.aggregation!r}"
            )
        X = torch.as_tensor(X, dtype=torch.float32)
        models = list(self.constituents().values())
        if not models:
            raise StoreError("every shard is empty; there is no model to predict with")
        probabilities = torch.stack([model_proba(m, X) for m in models])
        return aggregate(probabilities, aggregation=self.aggregation, num_classes=self.num_classes_)

    def predict(self, X) -> torch.Tensor:
        """Aggregate class labels (ties go to the lowest class)."""
        return self.predict_proba(X).argmax(1)

    def accuracy(self, split: Split) -> float:
        """Percentage of ``split`` the aggregate classifies correctly (0-100)."""
        if len(split) == 0:
            return float("nan")
        return 100.0 * (self.predict(split.X) == split.y).double().mean().item()

    # -- inspection ---------------------------------------------------------------------------
    def requests(self) -> list[dict]:
        """The request log: one record per served forget request."""
        self._ensure_loaded()
        return SISAStore(self.store_).read_log()

    def retained(self, shard: int | None = None) -> Split:
        """The training samples still in the store (one shard, or all)."""
        self._ensure_loaded()
        disk = SISAStore(self.store_)
        shards = range(len(self._state["shards"])) if shard is None else [shard]
        parts = []
        for s in shards:
            for entry in self._state["shards"][s]["slices"]:
                tensors, _ = disk.read_tensors(entry["file"], sha256=entry["sha256"])
                parts.append(Split(ids=tensors["ids"], X=tensors["X"], y=tensors["y"]))
        return _concat(parts)

    def status(self) -> dict:
        """A summary: shards, sizes, requests served, pending work, disk use."""
        self._ensure_loaded()
        disk = SISAStore(self.store_)
        pending = disk.read_pending()
        return {
            "store": str(self.store_),
            "model": self.spec_["name"],
            "shards": len(self.shard_sizes_),
            "slices": len(self.step_epochs_),
            "step_epochs": self.step_epochs_,
            "aggregation": self.aggregation,
            "shard_sizes": self.shard_sizes_,
            "samples": sum(self.shard_sizes_),
            "deleted": len(self.deleted_ids_),
            "requests_served": self.requests_served_,
            "pending_request": pending.get("request") if pending else None,
            "disk_bytes": disk.disk_bytes(),
            "metadata": self.config_.get("metadata", {}),
        }

    def state_dict(self) -> dict:
        """The store's path with a snapshot of its config and state (JSON, no tensors).

        SISA's state lives in its store, which every request updates; ``SISA.load``
        takes this dict (or the path) and reads the store as it is then.
        """
        self._ensure_loaded()
        return {
            "engine": self.name,
            "store": str(self.store_),
            "config": copy.deepcopy(self.config_),
            "state": copy.deepcopy(self._state),
        }

    def verify(self) -> list[str]:
        """Check every file ``state.json`` names against its SHA-256; return the problems."""
        self._ensure_loaded()
        disk = SISAStore(self.store_)
        problems = []
        for name, sha in _referenced(self._state, with_hash=True).items():
            path = disk.root / name
            if not path.is_file():
                problems.append(f"{name} is missing")
            elif disk.sha256_of(name) != sha:
                problems.append(f"{name} does not match its SHA-256")
        return problems


def _record(result: ForgetResult) -> dict:
    """A request-log line (also ``state.json``'s ``last_request``).

    The keys are those of stores written before the engine contract, so old and
    new logs read alike; ``request_id`` is added only when the caller gave one.
    """
    record = {
        "time": now(),
        "ids": list(result.ids),
        "request": result.request,
        "forgotten": result.forgotten,
        "shards": result.parts,
        "steps_retrained": result.steps_retrained,
        "sample_passes": result.sample_passes,
        "samples_retrained": result.samples_retrained,
        "seconds": result.seconds,
        "resumed": result.resumed,
    }
    if result.request_id is not None:
        record["request_id"] = result.request_id
    return record


def _result_from_record(record: dict, *, resumed: bool) -> ForgetResult:
    return ForgetResult(
        request=int(record["request"]),
        ids=tuple(int(i) for i in record["ids"]),
        seconds=float(record["seconds"]),
        request_id=record.get("request_id"),
        resumed=resumed,
        parts={int(s): int(k) for s, k in record["shards"].items()},
        steps_retrained=int(record["steps_retrained"]),
        sample_passes=int(record["sample_passes"]),
        samples_retrained=int(record["samples_retrained"]),
    )


def _step_entry(step: dict) -> dict:
    return {k: step[k] for k in ("file", "sha256", "samples", "epochs")}


def _referenced(state: dict, *, with_hash: bool = False):
    files = {
        entry["file"]: entry["sha256"]
        for shard in state["shards"]
        for entry in (*shard["slices"], *shard["steps"])
    }
    return files if with_hash else set(files)


def _content_sha(split: Split) -> str:
    digest = hashlib.sha256()
    for tensor in (split.ids, split.X, split.y):
        digest.update(tensor.contiguous().numpy())  # the buffer itself: no copy
    return digest.hexdigest()


def _compare(store: SISAStore, existing: dict, wanted: dict, *, keys=("engine", "data")) -> None:
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
            f"SISA store {store.root} was made with another configuration or other data ("
            + "; ".join(differences[:4])
            + "); open it with SISA.load(path), or use a new directory"
        )


__all__ = [
    "AGGREGATIONS",
    "SHARDINGS",
    "ForgetReport",
    "SISA",
    "SISAEnsemble",
    "ShardJob",
    "aggregate",
    "assign_distribution_aware",
    "assign_uniform",
    "expected_sample_passes",
    "retrain_sample_passes",
    "shard_seed",
    "step_epochs",
    "torch_threads",
    "train_shard",
]
