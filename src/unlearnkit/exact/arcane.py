"""ARCANE: class-partitioned one-class models (Yan et al., IJCAI 2022; spec/arcane.md).

The training data of class ``c`` is part ``c``, so a deletion touches exactly one
part. Each class trains its own one-class model (Deep SVDD or an autoencoder,
:mod:`~unlearnkit.exact.partitioned.one_class`) on that class alone; a
prediction is the softmax over classes of the calibrated per-class scores.
Per class, a representative subset of fraction ``rho`` is kept, ordered so that
likely deletions come last, and cut into ``blocks`` blocks trained
cumulatively with a checkpoint after each (like SISA's slices); the unselected
samples are a held reserve block (:mod:`~unlearnkit.exact.arcane_layout`).

ARCANE sits on the partitioned core: it supplies the layout, the learner and
the combination; training, commits, cleanup and resume are the core's.

``reselect`` (what a deletion does to the selection):

- ``True`` (default, strict): the layout of the class is computed again on its
  remaining data at every deletion, exactly as a fresh fit without the deleted
  samples computes it; nothing of a deleted sample survives, not even in which
  samples were chosen. The class model restarts from the checkpoint before the
  first block whose content changed. A deletion of an unselected sample that
  leaves the selection unchanged retrains nothing.
- ``False`` (the paper's protocol as far as it is known): the selection and the
  blocks are frozen at fit; a deletion removes the sample from its block, and
  deleting an unselected sample retrains nothing. Still exact with respect to a
  fit whose selection was made on the full data and then lost those samples
  (``fit(exclude_ids=...)``), but the frozen selection was computed with the
  deleted samples present.

>>> import unlearnkit as uk
>>> from unlearnkit.exact import ARCANE
>>> data = uk.datasets.load("digits")
>>> arcane = ARCANE(blocks=2, epochs=2, hidden=[16], rep_dim=8, executor="serial").fit(data.train)
>>> result = arcane.forget([int(data.train.ids[0])])
>>> len(result.parts), arcane.requests_served_
(1, 1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError, StoreError
from unlearnkit.exact import arcane_layout
from unlearnkit.exact.base import register
from unlearnkit.exact.partitioned.engine import (
    PartitionedEngine,
    deletion_probability_array,
    normalised,
    probabilities_sha256,
)
from unlearnkit.exact.partitioned.one_class import KINDS, one_class_spec
from unlearnkit.exact.sisa_plan import shard_seed, step_epochs
from unlearnkit.params import OneOf, Range, check_seed
from unlearnkit.runtime.executors import Executor
from unlearnkit.runtime.executors import names as executor_names
from unlearnkit.training import TrainConfig

EXECUTORS = tuple(executor_names())
CALIBRATIONS = ("none", "zscore")
NETWORKS = ("mlp",)  # the network of every one-class model (convolutional ones: not yet)


def class_scores(model: nn.Module, X: torch.Tensor, *, calibration: str) -> torch.Tensor:
    """A class model's scores: raw (``none``) or z-scored on its own training data."""
    return model(X) if calibration == "zscore" else model.raw_scores(X)


def combine_scores(
    scores: dict[int, torch.Tensor], *, n: int, num_classes: int, temperature: float
) -> torch.Tensor:
    """Softmax over classes of calibrated scores ``{class: (n,)}``; a class without a
    model gets probability 0."""
    logits = torch.full((n, num_classes), -torch.inf)
    for c, s in scores.items():
        logits[:, c] = s
    return F.softmax(logits / temperature, dim=1)


class ARCANEEnsemble(nn.Module):
    """The class models as one ``nn.Module``: ``forward`` returns log-probabilities,
    whose softmax is :meth:`ARCANE.predict_proba`."""

    def __init__(
        self,
        models: dict[int, nn.Module],
        *,
        num_classes: int,
        temperature: float,
        calibration: str,
    ):
        super().__init__()
        if not models:
            raise StoreError("the ARCANE ensemble has no class model left")
        self.classes = list(models)
        self.models = nn.ModuleList(models.values())
        self.num_classes = num_classes
        self.temperature = temperature
        self.calibration = calibration

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = {
            c: class_scores(m, x, calibration=self.calibration)
            for c, m in zip(self.classes, self.models, strict=True)
        }
        p = combine_scores(
            scores, n=len(x), num_classes=self.num_classes, temperature=self.temperature
        )
        return p.clamp_min(1e-12).log()


@register
class ARCANE(PartitionedEngine):
    """Exact unlearning by class-partitioned one-class models (spec/arcane.md).

    Parameters (keyword-only):

    - ``learner``: ``"deep_svdd"`` or ``"autoencoder"``; ``network``: its network
      (``"mlp"``, the only one for now); ``hidden`` (widths) and
      ``rep_dim`` (code size) of its network; ``preprocessing`` ``auto``
      (standardise tabular inputs), ``standardize`` or ``none``, fitted on each
      class's own data.
    - ``rho``: the fraction of each class kept by the selection (1 disables it).
    - ``blocks`` (B) and ``epochs`` (``e0``: each step gets SISA's
      :func:`~unlearnkit.exact.sisa_plan.step_epochs`), ``training`` (default Adam,
      lr 1e-3, batch 64).
    - ``deletion_probabilities``: per sample (aligned with ``train``, or a mapping
      id → probability); likely deletions are placed last. Stored per sample and
      dropped with it; without them, a seeded order.
    - ``reselect``: see the module docstring.
    - ``calibration`` (**a choice**; prediction only, so it can be changed on a
      loaded store): ``"none"`` compares the raw scores (for the autoencoder, the
      mean squared reconstruction error: same inputs, same units for every class),
      ``"zscore"`` z-scores each class's score with the mean and standard deviation
      of that score on the class's own training data (never another class's).
      On MNIST-5k z-scoring measured worse for the autoencoder (train-set statistics
      of a model that fits its train set; see the benchmark), so ``none`` is the
      default. The statistics are computed and stored either way.
    - ``temperature``: of the softmax over the scores (prediction only).
    - ``seed``, ``threads``, ``carry_optimizer``, ``store``, ``executor``,
      ``num_classes``, ``metadata``, ``progress``: as for SISA.
    """

    name = "arcane"
    summary = (
        "one one-class model per class on selected, sorted blocks; a forget retrains one class"
    )
    bit_exact = True
    tasks = ("classification",)
    part_label, parts_label, block_label = "class", "classes", "block"
    title, store_format = "ARCANE", "unlearnkit-arcane"

    @staticmethod
    def run_options(
        *,
        learner: Annotated[str, OneOf(KINDS)] = "autoencoder",
        rho: Annotated[float, Range(gt=0, le=1)] = 1.0,
        blocks: Annotated[int, Range(ge=1)] = 5,
        reselect: bool = True,
        executor: Annotated[str, OneOf(EXECUTORS)] = "serial",
    ) -> None:
        """``unlearnkit run -o arcane.PARAM=VALUE``: the run gives the recipe and seed.

        The run's ``--epochs`` is ARCANE's ``e0`` and its optimiser settings its
        training; the run's model is not used (each class trains a one-class model).
        """

    @classmethod
    def for_run(
        cls, *, model, training, seed, num_classes, store=None, progress=None, **options
    ) -> ARCANE:
        return cls(
            epochs=training.epochs,
            training=training,
            seed=seed,
            num_classes=num_classes,
            store=store,
            progress=progress,
            **options,
        )

    def __init__(
        self,
        *,
        learner: str = "autoencoder",
        network: str = "mlp",
        hidden: Sequence[int] = (128,),
        rep_dim: int = 32,
        preprocessing: str = "auto",
        rho: float = 1.0,
        blocks: int = 5,
        epochs: int = 20,
        training: TrainConfig | None = None,
        deletion_probabilities: Sequence[float] | Mapping[int, float] | None = None,
        reselect: bool = True,
        calibration: str = "none",
        temperature: float = 1.0,
        seed: int = 0,
        threads: int = 1,
        carry_optimizer: bool = False,
        store: str | os.PathLike | None = None,
        executor: str | Executor | None = "process",
        num_classes: int | None = None,
        metadata: dict | None = None,
        progress: bool | None = None,
    ) -> None:
        self.learner = learner
        self.network = network
        self.hidden = hidden
        self.rep_dim = rep_dim
        self.preprocessing = preprocessing
        self.rho = rho
        self.blocks = blocks
        self.epochs = epochs
        self.training = training
        self.deletion_probabilities = deletion_probabilities
        self.reselect = reselect
        self.calibration = calibration
        self.temperature = temperature
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

    # -- configuration ----------------------------------------------------------------
    def _check_options(self) -> None:
        for name in ("blocks", "epochs", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer; got {value!r}")
        check_seed(self.seed, what="seed")
        if self.network not in NETWORKS:
            raise ConfigError(
                f"ARCANE's one-class models are {' or '.join(NETWORKS)} networks; got "
                f"{self.network!r} (the one-class learner itself is chosen by learner=)"
            )
        if self.learner not in KINDS:
            raise ConfigError(f"learner must be one of {KINDS}; got {self.learner!r}")
        if (
            isinstance(self.rho, bool)
            or not isinstance(self.rho, int | float)
            or not 0 < self.rho <= 1
        ):
            raise ConfigError(f"rho must be in (0, 1]; got {self.rho!r}")
        if not isinstance(self.reselect, bool):
            raise ConfigError(f"reselect must be True or False; got {self.reselect!r}")
        if self.calibration not in CALIBRATIONS:
            raise ConfigError(
                f"calibration must be one of {CALIBRATIONS}; got {self.calibration!r}"
            )
        if not (isinstance(self.temperature, int | float) and self.temperature > 0):
            raise ConfigError(f"temperature must be positive; got {self.temperature!r}")
        one_class_spec(
            self.learner, (1,), hidden=list(self.hidden), rep_dim=self.rep_dim, preprocessing="none"
        )

    def _training_config(self) -> TrainConfig:
        return (self.training or TrainConfig(optimizer="adam", lr=1e-3)).replace(epochs=self.epochs)

    def _engine_config(self) -> dict:
        return normalised(
            {
                "learner": self.learner,
                "network": self.network,
                "hidden": list(self.hidden),
                "rep_dim": self.rep_dim,
                "preprocessing": self.preprocessing,
                "rho": float(self.rho),
                "blocks": self.blocks,
                "epochs": self.epochs,
                "training": self._training_config().to_dict(),
                "deletion_probabilities_sha256": probabilities_sha256(self.deletion_probabilities),
                "reselect": self.reselect,
                "seed": self.seed,
                "threads": self.threads,
                "carry_optimizer": bool(self.carry_optimizer),
            }
        )

    # -- the core's hooks -------------------------------------------------------------
    def _validate_fit(self, train: Split) -> None:
        if train.y.dtype != torch.int64:
            raise ConfigError(
                "ARCANE needs class labels (int64 targets); regression is not supported"
            )

    def _spec(self, train: Split) -> tuple[dict, int]:
        num_classes = self.num_classes or int(train.y.max()) + 1
        spec = one_class_spec(
            self.learner,
            tuple(train.X.shape[1:]),
            hidden=list(self.hidden),
            rep_dim=self.rep_dim,
            preprocessing=self.preprocessing,
        )
        return spec, num_classes

    def _learning(self, spec: dict, num_classes: int) -> dict:
        return {
            "learner": self.learner,
            "training": self._training_config().to_dict(),
            "threads": self.threads,
            "carry_optimizer": bool(self.carry_optimizer),
            "step_epochs": step_epochs(self.epochs, self.blocks),
            "part_seeds": [shard_seed(self.seed, c) for c in range(num_classes)],
            "blocks": self.blocks + 1,  # the last one: the reserve, held and never trained
        }

    def _extra_config(self) -> dict:
        return {"temperature": self.temperature, "calibration": self.calibration}

    def _priority(self, train: Split) -> np.ndarray | None:
        if self.deletion_probabilities is None:
            return None
        return deletion_probability_array(self.deletion_probabilities, train)

    def _assign(self, train: Split, exclude: np.ndarray):
        ids = train.ids.numpy()
        y = train.y.numpy()
        priority = self._priority(train)
        excluded = np.isin(ids, exclude) if self.reselect else np.zeros(len(ids), dtype=bool)
        num_classes = self.num_classes or int(y.max()) + 1
        positions, parts, blocks = [], [], []
        for c in range(num_classes):
            # Rows of the class in id order: the layout is a function of the data, not
            # of the order it came in.
            rows = np.flatnonzero(y == c)
            rows = rows[np.argsort(ids[rows], kind="stable")]
            kept, gone = rows[~excluded[rows]], rows[excluded[rows]]
            order, block = self._layout(
                ids[kept],
                train.X[torch.as_tensor(kept)].numpy(),
                None if priority is None else priority[kept],
            )
            positions += [kept[order], gone]
            parts.append(np.full(len(rows), c))
            blocks += [block, np.full(len(gone), self.blocks)]  # excluded: deleted in the reserve
        return np.concatenate(positions), np.concatenate(parts), np.concatenate(blocks)

    def _layout(self, ids, X, priorities):
        return arcane_layout.layout(
            ids, X, priorities, rho=self.rho, blocks=self.blocks, seed=self.seed
        )

    def _moves(self, ids: np.ndarray) -> dict[int, tuple[int, int]]:
        """With ``reselect``: each touched class laid out again on its remaining data."""
        if not self.reselect:
            return {}
        m = self._membership
        alive = ~m["deleted"] & ~np.isin(m["ids"], ids)
        moves: dict[int, tuple[int, int]] = {}
        part, _ = self.locate(ids)
        for c in sorted(set(part.tolist())):
            data = self.retained(c)
            order = torch.argsort(data.ids)
            data = Split(ids=data.ids[order], X=data.X[order], y=data.y[order])
            keep = np.isin(data.ids.numpy(), m["ids"][alive])
            ids_c = data.ids.numpy()[keep]
            where = np.searchsorted(m["ids"], ids_c)
            priorities = m["priority"][where] if not np.isnan(m["priority"][where]).all() else None
            order, block = self._layout(ids_c, data.X.numpy()[keep], priorities)
            new_block = np.empty(len(ids_c), dtype=np.int64)
            new_block[order] = block
            changed = new_block != m["block"][where]
            moves.update(
                {
                    int(i): (c, int(b))
                    for i, b in zip(ids_c[changed], new_block[changed], strict=True)
                }
            )
        return moves

    def _block_order(self, part: int, block: int, ids: np.ndarray) -> np.ndarray:
        m = self._membership
        priorities = m["priority"][np.searchsorted(m["ids"], ids)]
        return arcane_layout.sort_key(
            ids, None if np.isnan(priorities).all() else priorities, seed=self.seed
        )

    def _combine(self, models: dict[int, nn.Module], X: torch.Tensor) -> torch.Tensor:
        self._check_options()
        scores = {c: class_scores(m, X, calibration=self.calibration) for c, m in models.items()}
        return combine_scores(
            scores, n=len(X), num_classes=self.num_classes_, temperature=self.temperature
        )

    @classmethod
    def _options_from_config(cls, config: dict) -> dict:
        engine = config["engine"]
        return {
            "learner": engine["learner"],
            "network": engine["network"],
            "hidden": engine["hidden"],
            "rep_dim": engine["rep_dim"],
            "preprocessing": engine["preprocessing"],
            "rho": engine["rho"],
            "blocks": engine["blocks"],
            "epochs": engine["epochs"],
            "training": TrainConfig(**engine["training"]),
            "reselect": engine["reselect"],
            "temperature": config.get("temperature", 1.0),
            "calibration": config.get("calibration", "none"),
            "seed": engine["seed"],
            "threads": engine["threads"],
            "carry_optimizer": engine["carry_optimizer"],
            "num_classes": config["data"]["num_classes"],
            "metadata": config.get("metadata"),
        }

    # -- ARCANE's words -----------------------------------------------------------------
    class_sizes_ = property(
        lambda self: self.part_sizes_, doc="Samples left per class (reserve included)."
    )

    def selected_sizes(self) -> list[int]:
        """Samples each class model trains on (its blocks, without the reserve)."""
        return [sum(sizes[: len(self.step_epochs_)]) for sizes in self.block_sizes_]

    def as_module(self) -> ARCANEEnsemble:
        return ARCANEEnsemble(
            self.constituents(),
            num_classes=self.num_classes_,
            temperature=self.temperature,
            calibration=self.calibration,
        )

    def status(self) -> dict:
        return {
            **super().status(),
            "learner": self.learner,
            "rho": self.rho,
            "reselect": self.reselect,
            "calibration": self.calibration,
            "selected_sizes": self.selected_sizes(),
        }


__all__ = ["ARCANE", "ARCANEEnsemble", "combine_scores"]
