"""Learners: what a partitioned engine trains in each part, one registered class each.

A learner builds a part's model from the stored spec, initialises it from a seed,
trains one step on the data of that step, and says what a checkpoint holds. The
core (:mod:`unlearnkit.exact.partitioned.worker`) does everything else: data,
files, resume, background I/O. A checkpoint holds the model's ``state_dict``
(``model.*``), optionally the optimizer state (``optimizer.*``), and whatever
extra tensors the learner adds (``extra.*``: centres, calibration statistics),
which :meth:`Learner.load` gets back.

Registered: ``classifier`` (a :mod:`unlearnkit.models` classifier trained with
cross-entropy, used by SISA) and the one-class learners of ARCANE, ``deep_svdd``
and ``autoencoder`` (:mod:`~unlearnkit.exact.partitioned.one_class`).

>>> from unlearnkit.exact.partitioned import learners
>>> learners.names()
['autoencoder', 'classifier', 'deep_svdd']
>>> learners.get("one-class")
Traceback (most recent call last):
...
unlearnkit.errors.UnknownLearnerError: unknown learner 'one-class'; valid names: autoencoder, classifier, deep_svdd
"""

from __future__ import annotations

import contextlib
from typing import ClassVar

import torch
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import StoreError, UnknownLearnerError
from unlearnkit.models import fit_preprocessing, from_spec, reset_parameters
from unlearnkit.registry import Registry
from unlearnkit.training import TrainConfig, make_optimizer, run_epochs

LEARNERS: Registry = Registry("learner", error=UnknownLearnerError)


def register(cls):
    LEARNERS.add(cls.name, cls)
    return cls


def get(name: str) -> type[Learner]:
    return LEARNERS.get(name)


def names() -> list[str]:
    return LEARNERS.names()


@contextlib.contextmanager
def seeded_step(seed: int, step: int):
    """Torch's CPU generator (dropout) seeded from ``(seed, step)`` for one step, then
    restored: a resumed step draws what an uninterrupted run would."""
    with torch.random.fork_rng(devices=[]):
        # torch.manual_seed would also queue seeding of GPUs: the CPU generator is enough.
        torch.default_generator.manual_seed(seed * 10_007 + step)
        yield


class Learner:
    """One part's model: build, initialise, train a step, checkpoint, load.

    Subclasses set ``name`` and override what differs; the defaults are those of a
    plain ``nn.Module`` trained by :func:`unlearnkit.training.run_epochs`.
    """

    name: ClassVar[str]

    def build(self, spec: dict) -> nn.Module:
        return from_spec(spec)

    def initialise(self, model: nn.Module, *, seed: int) -> None:
        reset_parameters(model, seed=seed)

    def train_step(
        self,
        model: nn.Module,
        data: Split,
        *,
        config: TrainConfig,
        seed: int,
        step: int,
        epochs: range,
        optimizer: torch.optim.Optimizer | None,
    ) -> torch.optim.Optimizer | None:
        raise NotImplementedError

    def extra_tensors(self, model: nn.Module, data: Split) -> dict[str, torch.Tensor]:
        """Tensors besides the weights that a checkpoint carries (none by default)."""
        return {}

    def attach(self, model: nn.Module, extras: dict[str, torch.Tensor]) -> nn.Module:
        """Give a loaded model the extra tensors of its checkpoint."""
        return model

    # -- checkpoints ------------------------------------------------------------------
    def checkpoint(
        self, model: nn.Module, optimizer: torch.optim.Optimizer | None, data: Split
    ) -> dict[str, torch.Tensor]:
        """Model weights, optimizer state (if given) and extras as flat named tensors."""
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
        for key, value in self.extra_tensors(model, data).items():
            tensors[f"extra.{key}"] = value.detach()
        return tensors

    def restore(
        self, model: nn.Module, config: TrainConfig, tensors: dict
    ) -> torch.optim.Optimizer | None:
        """Load weights (and the optimizer state, when the checkpoint has it)."""
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

    def load(self, spec: dict, tensors: dict) -> nn.Module:
        """The trained model of a checkpoint, ready to predict."""
        model = self.build(spec)
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        extras = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
        return self.attach(model, extras).eval()


@register
class ClassifierLearner(Learner):
    """A classifier trained with cross-entropy; it owns its preprocessing.

    Each step refits the model's preprocessing on the data of that step, so a
    checkpoint depends on no sample the step did not train on, and reseeds
    torch's CPU generator (dropout) from ``(seed, step)``: a resumed step draws
    what an uninterrupted run would.
    """

    name = "classifier"

    def train_step(self, model, data, *, config, seed, step, epochs, optimizer):
        fit_preprocessing(model, data.X)
        with seeded_step(seed, step):
            return run_epochs(
                model,
                data,
                config=config,
                seed=seed,
                epochs=epochs,
                optimizer=optimizer,
                progress=False,
            )


# The one-class learners register themselves on import (they subclass Learner).
from unlearnkit.exact.partitioned import one_class  # noqa: E402,F401

__all__ = ["LEARNERS", "ClassifierLearner", "Learner", "get", "names", "register", "seeded_step"]
