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

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError, StoreError
from unlearnkit.exact.base import ForgetResult, register
from unlearnkit.exact.partitioned.engine import (
    PartitionedEngine,
    deletion_probability_array,
    normalised,
    probabilities_sha256,
)
from unlearnkit.exact.partitioned.worker import torch_threads
from unlearnkit.exact.sisa_plan import (
    assign_distribution_aware,
    assign_uniform,
    expected_sample_passes,
    retrain_sample_passes,
    shard_seed,
    step_epochs,
)
from unlearnkit.models import make
from unlearnkit.params import OneOf, Range, check_seed, declared
from unlearnkit.runtime.executors import Executor
from unlearnkit.runtime.executors import names as executor_names
from unlearnkit.training import TrainConfig
from unlearnkit.training import predict_proba as model_proba

AGGREGATIONS = ("vote", "softmax")
SHARDINGS = ("uniform", "distribution-aware")
EXECUTORS = tuple(executor_names())


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


@register
class SISA(PartitionedEngine):
    """Exact unlearning by sharded, sliced training (spec/sisa.md).

    An :class:`~unlearnkit.exact.ExactEngine` on the partitioned core
    (:class:`~unlearnkit.exact.partitioned.PartitionedEngine`; SISA's parts are its
    shards, its blocks its slices): bit-exact, persistent (every request commits to
    the store; ``SISA.load(store)`` reopens it), classification only. SISA supplies
    the shard assignment, the schedule and the aggregation; the core trains,
    commits, logs, cleans up and resumes.

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
    ``deleted_ids_``, ``fitted_ids_``, ``requests_served_``, ``fit_seconds_`` (wall time of the fit).
    """

    name = "sisa"
    summary = "sharded, sliced training; a forget retrains only the shards that saw the ids"
    bit_exact = True
    tasks = ("classification",)
    part_label, parts_label, block_label = "shard", "shards", "slice"
    title, store_format = "SISA", "unlearnkit-sisa"

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

    def _engine_config(self) -> dict:
        """The options that determine what is stored; a store must match them to be reused."""
        return normalised(
            {
                "model": self._model_choice(),
                "shards": self.shards,
                "slices": self.slices,
                "epochs": self.epochs,
                "training": self._training_config().to_dict(),
                "sharding": self.sharding,
                "capacity": self.capacity if self.sharding == "distribution-aware" else None,
                "deletion_probabilities_sha256": probabilities_sha256(
                    self.deletion_probabilities if self.sharding == "distribution-aware" else None
                ),
                "seed": self.seed,
                "threads": self.threads,
                "carry_optimizer": bool(self.carry_optimizer),
            }
        )

    def _assign(self, train: Split, exclude: np.ndarray) -> tuple[np.ndarray, ...]:
        if self.sharding == "uniform":
            return assign_uniform(
                len(train), shards=self.shards, slices=self.slices, seed=self.seed
            )
        p = deletion_probability_array(self.deletion_probabilities, train)
        return assign_distribution_aware(
            p, shards=self.shards, slices=self.slices, seed=self.seed, capacity=self.capacity
        )

    # -- the core's hooks ---------------------------------------------------------------
    def _validate_fit(self, train: Split) -> None:
        if train.y.dtype != torch.int64:
            raise ConfigError(
                "SISA needs class labels (int64 targets); regression is not supported"
            )
        if len(train) // self.shards < self.slices:
            raise ConfigError(
                f"{len(train)} samples in {self.shards} shards leave fewer than {self.slices} "
                "samples (one per slice) in some shard; use fewer shards or slices"
            )

    def _spec(self, train: Split) -> tuple[dict, int]:
        num_classes = self.num_classes or int(train.y.max()) + 1
        choice = self._model_choice()
        spec = make(
            choice["name"],
            input_shape=tuple(train.X.shape[1:]),
            num_outputs=num_classes,
            preprocessing=choice["preprocessing"],
            **choice["kwargs"],
        ).spec
        return spec, num_classes

    def _learning(self, spec: dict, num_classes: int) -> dict:
        return {
            "learner": "classifier",
            "training": self._training_config().to_dict(),
            "threads": self.threads,
            "carry_optimizer": bool(self.carry_optimizer),
            "step_epochs": step_epochs(self.epochs, self.slices),
            "part_seeds": [shard_seed(self.seed, s) for s in range(self.shards)],
            "blocks": self.slices,
        }

    def _extra_config(self) -> dict:
        return {"aggregation": self.aggregation}

    def _combine(self, models: dict[int, nn.Module], X: torch.Tensor) -> torch.Tensor:
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"aggregation must be one of {AGGREGATIONS}; got {self.aggregation!r}"
            )
        probabilities = torch.stack([model_proba(m, X) for m in models.values()])
        return aggregate(probabilities, aggregation=self.aggregation, num_classes=self.num_classes_)

    @classmethod
    def _options_from_config(cls, config: dict) -> dict:
        engine = config["engine"]
        return {
            "model": engine["model"]["name"],
            "model_options": engine["model"]["kwargs"],
            # Stores written before models owned their preprocessing had none.
            "preprocessing": engine["model"].get("preprocessing", "none"),
            "shards": engine["shards"],
            "slices": engine["slices"],
            "epochs": engine["epochs"],
            "training": TrainConfig(**engine["training"]),
            "aggregation": config.get("aggregation", "vote"),
            "sharding": engine["sharding"],
            "capacity": engine["capacity"] if engine["capacity"] is not None else 1.0,
            "seed": engine["seed"],
            "threads": engine["threads"],
            "carry_optimizer": engine["carry_optimizer"],
            "num_classes": config["data"]["num_classes"],
            "metadata": config.get("metadata"),
        }

    @classmethod
    def _before_open(cls, root: Path) -> None:
        from unlearnkit.exact.sisa_migrate import migrate

        migrate(root)

    # -- SISA's words for the core's state ----------------------------------------------
    shard_sizes_ = property(lambda self: self.part_sizes_, doc="Samples left per shard.")
    slice_sizes_ = property(
        lambda self: self.block_sizes_, doc="Samples left per slice, per shard."
    )
    shard_seeds_ = property(lambda self: self.part_seeds_, doc="The seed of every shard.")

    def as_module(self) -> SISAEnsemble:
        """The aggregate as an ``nn.Module`` returning log-probabilities."""
        return SISAEnsemble(
            list(self.constituents().values()),
            aggregation=self.aggregation,
            num_classes=self.num_classes_,
        )

    def status(self) -> dict:
        """A summary: shards, sizes, requests served, pending work, disk use."""
        return {**super().status(), "aggregation": self.aggregation}


# The name of SISA's result type before the engine contract; every engine now returns
# a ForgetResult (SISA's shards are its ``parts``).
ForgetReport = ForgetResult


__all__ = [
    "AGGREGATIONS",
    "SHARDINGS",
    "ForgetReport",
    "SISA",
    "SISAEnsemble",
    "aggregate",
    "assign_distribution_aware",
    "assign_uniform",
    "expected_sample_passes",
    "retrain_sample_passes",
    "shard_seed",
    "step_epochs",
    "torch_threads",
]
