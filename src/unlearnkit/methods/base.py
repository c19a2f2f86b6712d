"""The method interface: one class per algorithm, one verb, declared capabilities.

A method stores its hyper-parameters in ``__init__`` (keyword-only, with
documented defaults) and does its work in ``unlearn(model, split)``, which
returns a *new* model and never changes the one it is given.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated, ClassVar

import torch
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.data.forget import ForgetSplit
from unlearnkit.errors import ConfigError, UnknownMethodError
from unlearnkit.params import Range, Seed, declared, validate
from unlearnkit.registry import Registry
from unlearnkit.training import epoch_order, progress_enabled

# Declarations shared by the fine-tuning methods (each states its own default).
Epochs = Annotated[int, Range(ge=1)]
LearningRate = Annotated[float, Range(gt=0)]

REGISTRY: Registry[type[UnlearningMethod]] = Registry("method", error=UnknownMethodError)


def register(cls: type[UnlearningMethod]) -> type[UnlearningMethod]:
    """Class decorator adding a method to the registry under ``cls.name``."""
    REGISTRY.add(cls.name, cls)
    return cls


def get(name: str) -> type[UnlearningMethod]:
    """The method class registered as ``name``; unknown names list the valid ones."""
    return REGISTRY.get(name)


def names() -> list[str]:
    return REGISTRY.names()


class _ValidatedOnConstruction(type):
    """Checks (and coerces) the keyword arguments of every method against its declarations.

    Done here, around the whole ``__init__`` chain, rather than in each ``__init__``,
    so the check runs once, for the class actually built, however many parents its
    ``__init__`` forwards to; and no method can forget to do it.
    """

    def __call__(cls, *args, **options):
        return super().__call__(
            *args, **validate(cls, options, name=cls.__dict__.get("name", cls.__name__))
        )


class UnlearningMethod(metaclass=_ValidatedOnConstruction):
    """Base class. Subclasses set the class attributes and implement ``unlearn``.

    Capabilities:
    - ``exact``: the result equals retraining without the forget set.
    - ``needs_forget``: reads the forget samples (``split.forget``).
    - ``needs_retain``: reads the retained samples (``split.retain``).
    - ``needs_validation``: reads ``split.validation``, a seeded part of the
      training data held out of every training (``select_forget(..., validation=f)``);
      ``unlearnkit run`` holds one out when a method that needs it is run.
    - ``model_kinds``: the model names (:mod:`unlearnkit.models`) the method works
      on, or None for any ``nn.Module`` classifier.
    A method whose ``needs_*`` flag is False must give the same result whatever that
    data holds; the conformance test checks this.

    Hyper-parameters are keyword-only ``__init__`` parameters whose type and range
    are declared with ``typing.Annotated`` (see :mod:`unlearnkit.params`); they are
    checked when the method is constructed, so a bad value fails before any work.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    exact: ClassVar[bool] = False
    needs_forget: ClassVar[bool] = True
    needs_retain: ClassVar[bool] = True
    needs_validation: ClassVar[bool] = False
    model_kinds: ClassVar[tuple[str, ...] | None] = None

    def setup(self, model: nn.Module, split: ForgetSplit):
        """Untimed preparation before ``unlearn``; returns what ``unlearn`` receives.

        The default hands the trained model through. A method that must build its
        own starting point (an exact engine that trains its own constituents, say)
        does that here, so benchmarks time the unlearning step alone.
        """
        return model

    def unlearn(self, model: nn.Module, split: ForgetSplit) -> nn.Module:
        raise NotImplementedError

    def get_params(self) -> dict:
        """The hyper-parameters given to ``__init__`` (scikit-learn style)."""
        return {p: getattr(self, p) for p in declared(type(self)) if hasattr(self, p)}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def random_wrong_labels(y: torch.Tensor, num_classes: int, *, seed: int) -> torch.Tensor:
    """One wrong label per sample, drawn once with ``seed`` (spec/paper.md §4, a choice)."""
    if num_classes < 2:
        raise ConfigError("random wrong labels need at least 2 classes")
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, num_classes, y.shape, generator=generator)
    return (y + shift) % num_classes


def joint_logits(model, retain, forget) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of a retain batch and a forget batch from one forward pass over both.

    The two batches form one mixed mini-batch (spec/paper.md §4); one pass instead of
    two roughly halves the per-step overhead on small models, which is what keeps these
    methods well above 5x faster than golden. (With batch-norm in training mode the two
    batches share batch statistics, as a mixed batch should.)
    """
    if forget is None:
        return model(retain.X), None
    logits = model(torch.cat([retain.X, forget.X]))
    return logits[: len(retain)], logits[len(retain) :]


@dataclass(frozen=True, slots=True)
class Batch:
    """A mini-batch: features and targets only (no id checks on the hot path)."""

    X: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    @staticmethod
    def of(split: Split, index: torch.Tensor) -> Batch | None:
        return Batch(split.X[index], split.y[index]) if len(index) else None


class FineTuneMethod(UnlearningMethod):
    """Shared machinery: a few epochs of SGD from the trained model on a method-specific loss.

    One epoch walks the *driver* split (retain, or forget when there is no
    retain term) in a seeded order; when the loss also has a term on the other
    split, that split is cut into as many batches as the driver has, so each
    epoch visits every sample of both once. Subclasses implement ``loss``.
    """

    driver: ClassVar[str] = "retain"  # "retain" or "forget"
    uses_other: ClassVar[bool] = True  # loss also takes a batch of the other split

    def __init__(
        self,
        *,
        epochs: Epochs = 2,
        lr: LearningRate = 0.01,
        momentum: Annotated[float, Range(ge=0)] = 0.9,
        weight_decay: Annotated[float, Range(ge=0)] = 5e-4,
        batch_size: Annotated[int, Range(ge=1)] = 64,
        seed: Seed = 0,
        progress: bool | None = None,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.seed = seed
        self.progress = progress

    # -- hooks ----------------------------------------------------------------
    def prepare(self, model: nn.Module, split: ForgetSplit) -> tuple[nn.Module, Split, Split]:
        """Return the model to train and the (retain, forget) data the loss sees."""
        return model, split.retain, split.forget

    def loss(self, model: nn.Module, retain: Batch | None, forget: Batch | None) -> torch.Tensor:
        raise NotImplementedError

    def gradient_mask(self, model: nn.Module, split: ForgetSplit) -> dict[str, torch.Tensor] | None:
        """Optional 0/1 mask per parameter name; masked-out weights stay frozen."""
        return None

    def on_epoch_start(self, epoch: int) -> None:
        pass

    # -- the loop -------------------------------------------------------------
    def unlearn(self, model: nn.Module, split: ForgetSplit) -> nn.Module:
        model = copy.deepcopy(model)
        mask = self.gradient_mask(model, split)  # from the original weights, before any step
        model, retain, forget = self.prepare(model, split)
        named = dict(model.named_parameters())
        masked = set(mask or ())
        for name in masked:
            # A masked parameter's weight decay is added in its gradient hook, before the
            # mask, so a frozen weight's gradient is exactly 0: its momentum buffer stays 0
            # and plain SGD never moves it. (Cheaper than a masked decay term in the loss.)
            named[name].register_hook(
                lambda g, m=mask[name], p=named[name]: (g + self.weight_decay * p.detach()) * m
            )
        groups = [
            {"params": [p for n, p in named.items() if n not in masked]},
            {"params": [p for n, p in named.items() if n in masked], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.SGD(
            [g for g in groups if g["params"]],
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )
        drive, other = (retain, forget) if self.driver == "retain" else (forget, retain)
        n_batches = max(1, math.ceil(len(drive) / self.batch_size))
        other_bs = (
            max(1, math.ceil(len(other) / n_batches)) if self.uses_other and len(other) else 0
        )
        model.train()
        from tqdm.auto import tqdm

        for epoch in tqdm(
            range(self.epochs),
            desc=self.name,
            leave=False,
            disable=not progress_enabled(self.progress),
        ):
            self.on_epoch_start(epoch)
            order = epoch_order(len(drive), seed=self.seed, epoch=epoch)
            other_order = (
                epoch_order(len(other), seed=self.seed + 7919, epoch=epoch) if other_bs else None
            )
            for b in range(n_batches):
                batch = Batch.of(drive, order[b * self.batch_size : (b + 1) * self.batch_size])
                if batch is None:
                    continue
                other_batch = (
                    Batch.of(other, other_order[b * other_bs : (b + 1) * other_bs])
                    if other_bs
                    else None
                )
                r, f = (batch, other_batch) if self.driver == "retain" else (other_batch, batch)
                optimizer.zero_grad(set_to_none=True)
                loss = self.loss(model, r, f)
                loss.backward()
                optimizer.step()
        model.eval()
        return model
