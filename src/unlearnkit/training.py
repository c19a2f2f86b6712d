"""One deterministic training loop.

Determinism rests on three things: parameters re-initialised from the seed, a
per-epoch data order drawn from a generator seeded by ``(seed, epoch)`` (so a
run resumed at epoch ``k`` sees the same order as an uninterrupted one), and
mini-batches cut from tensors already in memory. On CPU, the same config twice
gives bit-identical weights.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError
from unlearnkit.models import fit_preprocessing, fresh_model

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class TrainConfig:
    """A training recipe. The golden model uses the same recipe as the original.

    >>> TrainConfig(epochs=5).replace(lr=0.01).lr
    0.01
    """

    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {OPTIMIZERS}; got {self.optimizer!r}")
        from unlearnkit.params import validate

        validate(TrainConfig, asdict(self), name="training")  # declared types; finite numbers
        if self.epochs < 0 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(
                "need epochs >= 0, batch_size >= 1, lr > 0 and weight_decay >= 0; "
                f"got {self.to_dict()}"
            )

    def replace(self, **changes) -> TrainConfig:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown training option(s) {sorted(unknown)}")
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


def progress_enabled(progress: bool | None) -> bool:
    """``None`` means: show bars when stderr is a terminal and UNLEARNKIT_PROGRESS is not 0."""
    if progress is not None:
        return progress
    if os.environ.get("UNLEARNKIT_PROGRESS") == "0":
        return False
    return sys.stderr.isatty() or os.environ.get("UNLEARNKIT_PROGRESS") == "1"


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def loss_fn(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class labels, mean squared error for float targets."""
    if targets.dtype == torch.int64:
        return F.cross_entropy(outputs, targets)
    return F.mse_loss(outputs.reshape(targets.shape), targets)


def epoch_order(n: int, *, seed: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch; depends only on ``(seed, epoch)``."""
    generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=generator)


def run_epochs(
    model: nn.Module,
    split: Split,
    *,
    config: TrainConfig,
    seed: int,
    epochs: range | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    progress: bool | None = None,
    description: str = "train",
    objective=None,
) -> torch.optim.Optimizer:
    """Train ``model`` in place for ``epochs`` (default ``range(config.epochs)``).

    Pass the ``optimizer`` returned by an earlier call to continue with its state.
    ``objective(X, y)`` replaces the cross-entropy of the model's outputs (a model
    trained on another loss, e.g. a one-class model's).
    """
    if len(split) == 0:
        raise ConfigError("cannot train on an empty split")
    optimizer = optimizer or make_optimizer(model.parameters(), config)
    epochs = range(config.epochs) if epochs is None else epochs
    model.train()
    bar = tqdm(epochs, desc=description, leave=False, disable=not progress_enabled(progress))
    for epoch in bar:
        order = epoch_order(len(split), seed=seed, epoch=epoch)
        for start in range(0, len(split), config.batch_size):
            idx = order[start : start + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            X, y = split.X[idx], split.y[idx]
            loss = loss_fn(model(X), y) if objective is None else objective(X, y)
            loss.backward()
            optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    model.eval()
    return optimizer


def train(
    model,
    split: Split,
    *,
    seed: int = 0,
    config: TrainConfig | None = None,
    progress: bool | None = None,
    **options,
) -> nn.Module:
    """Train a fresh copy of ``model`` on ``split`` from an initialisation drawn from ``seed``.

    ``model`` is an ``nn.Module`` (not changed: only its architecture is used) or a
    factory, a callable returning a new module (for modules that cannot be
    re-initialised in place). The model's preprocessing steps (e.g.
    :class:`~unlearnkit.models.Standardize`) are fitted on ``split`` first: a model
    owns statistics of its own training data only. Options override fields of
    ``config`` (e.g. ``epochs=5``). The result carries ``train_info``: config,
    seed, hash of the training ids and seconds taken.

    >>> import unlearnkit as uk
    >>> data = uk.datasets.load("digits")
    >>> a = train(uk.models.make("logreg", data), data.train, seed=0, epochs=1)
    >>> b = train(uk.models.make("logreg", data), data.train, seed=0, epochs=1)
    >>> all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    True
    """
    config = (config or TrainConfig()).replace(**options)
    if len(split) == 0:
        raise ConfigError("cannot train on an empty split")
    trained = fresh_model(model, seed=seed)
    started = time.perf_counter()
    fit_preprocessing(trained, split.X)
    run_epochs(trained, split, config=config, seed=seed, progress=progress)
    trained.train_info = {
        "config": config.to_dict(),
        "seed": seed,
        "train_ids_sha256": split.ids_sha256(),
        "n_train": len(split),
        "seconds": time.perf_counter() - started,
    }
    return trained


@torch.no_grad()
def predict_proba(model: nn.Module, X: torch.Tensor, *, batch_size: int = 4096) -> torch.Tensor:
    """Softmax outputs in evaluation mode, batched to bound memory."""
    was_training = model.training
    model.eval()
    out = torch.cat(
        [F.softmax(model(X[i : i + batch_size]), dim=1) for i in range(0, len(X), batch_size)]
    )
    model.train(was_training)
    return out


def accuracy(model: nn.Module, split: Split) -> float:
    """Percentage of ``split`` classified correctly (0-100)."""
    if len(split) == 0:
        return float("nan")
    return 100.0 * (predict_proba(model, split.X).argmax(1) == split.y).double().mean().item()
