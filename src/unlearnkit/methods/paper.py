"""The paper's regularised fine-tuning objectives (spec/paper.md §4).

Each one fine-tunes the trained model θ_o for a few epochs of SGD (momentum
0.9) on the retained data with an extra term on the forget data, or (ℓ1-sparse)
with a sparsity penalty instead:

- ``ce_ft``:  ``CE(θ; D_f with y') + α·CE(θ; D_r)``
- ``ice_ft``: ``CE(θ; D_r) + α·CE(θ; D_f with y')`` (the "inverse" weighting)
- ``kl_ft``:  ``CE(θ; D_r) + α·mean_f KL(q(x) ‖ p_θ(·|x))`` (the paper's
  discriminative regulariser)
- ``l1_sparse``: ``CE(θ; D_r) + γ_t‖θ‖₁`` with γ_t decaying linearly to 0

``y'`` is one random *wrong* label per forget sample, drawn once from the
method's seed (:func:`unlearnkit.methods.random_wrong_labels`, a choice of
spec §4). The defaults (lr, epochs, α, γ) were chosen on a validation split
carved out of MNIST-5k's train part by ``benchmarks/paper.py --tune``, with
the same grid budget for every method; see README "Reproducing the paper".
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F

from unlearnkit.errors import ConfigError
from unlearnkit.methods.base import (
    Epochs,
    FineTuneMethod,
    LearningRate,
    joint_logits,
    random_wrong_labels,
    register,
)
from unlearnkit.methods.baselines import WrongLabelForget
from unlearnkit.params import OneOf, Range

KL_TARGETS = ("uniform_wrong", "uniform", "smoothed_wrong_label")

# spec/paper.md §4 restricts the weight of the second term to (0, 1].
Alpha = Annotated[float, Range(gt=0, le=1)]


class _WrongLabelForget(WrongLabelForget):
    """Fine-tuning whose forget term sees a random wrong label ``y'`` per forget sample.

    ``alpha`` weights one of the two terms; spec §4 restricts it to (0, 1].
    """

    def __init__(self, *, alpha: Alpha, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alpha = alpha


@register
class CEFineTune(_WrongLabelForget):
    """CE-FT: minimise ``CE(θ; D_f with y') + α·CE(θ; D_r)`` (spec/paper.md §4).

    The forget term leads; ``α`` ∈ (0, 1] down-weights the retain fit.
    ``y'`` is a random wrong label per forget sample, drawn once from ``seed``.

    At ``alpha=1`` this is exactly the random-label objective (``random_label``).

    Defaults (tuned, see module docstring): ``alpha=1.0``, ``epochs=2``, ``lr=0.01``;
    the rest as :class:`~unlearnkit.methods.FineTuneMethod` (momentum 0.9,
    weight decay 5e-4, batch 64, seed 0).
    """

    name = "ce_ft"
    summary = "CE(D_f with wrong labels) + alpha*CE(D_r)"

    def __init__(
        self, *, alpha: Alpha = 1.0, epochs: Epochs = 2, lr: LearningRate = 0.01, **kwargs
    ) -> None:
        super().__init__(alpha=alpha, epochs=epochs, lr=lr, **kwargs)

    def loss(self, model, retain, forget):
        retain_logits, forget_logits = joint_logits(model, retain, forget)
        loss = self.alpha * F.cross_entropy(retain_logits, retain.y)
        if forget is not None:
            loss = loss + F.cross_entropy(forget_logits, forget.y)
        return loss


@register
class ICEFineTune(_WrongLabelForget):
    """ICE-FT: minimise ``CE(θ; D_r) + α·CE(θ; D_f with y')`` (spec/paper.md §4).

    The "inverse" of CE-FT: the retain fit leads and ``α`` ∈ (0, 1] weights the
    wrong-label forget term. ``y'`` is drawn once from ``seed``.

    Defaults (tuned): ``alpha=0.1``, ``epochs=2``, ``lr=0.01``; the rest as
    :class:`~unlearnkit.methods.FineTuneMethod`.
    """

    name = "ice_ft"
    summary = "CE(D_r) + alpha*CE(D_f with wrong labels)"

    def __init__(
        self, *, alpha: Alpha = 0.1, epochs: Epochs = 2, lr: LearningRate = 0.01, **kwargs
    ) -> None:
        super().__init__(alpha=alpha, epochs=epochs, lr=lr, **kwargs)

    def loss(self, model, retain, forget):
        retain_logits, forget_logits = joint_logits(model, retain, forget)
        loss = F.cross_entropy(retain_logits, retain.y)
        if forget is not None:
            loss = loss + self.alpha * F.cross_entropy(forget_logits, forget.y)
        return loss


def kl_target(
    y: torch.Tensor,
    num_classes: int,
    *,
    target: str,
    seed: int,
    smoothing: float = 0.1,
) -> torch.Tensor:
    """The target distribution ``q(x)`` of KL-FT for forget labels ``y`` (one row per sample).

    - ``"uniform_wrong"``: uniform over the ``C − 1`` classes other than the true one;
    - ``"uniform"``: uniform over all ``C`` classes;
    - ``"smoothed_wrong_label"``: a random wrong label ``y'`` (drawn once from
      ``seed``) smoothed by ``smoothing``: ``(1 − s)·onehot(y') + s/C``.

    >>> kl_target(torch.tensor([0]), 3, target="uniform_wrong", seed=0).tolist()
    [[0.0, 0.5, 0.5]]
    """
    if num_classes < 2:
        raise ConfigError("kl_ft needs at least 2 classes")
    n = len(y)
    if target == "uniform_wrong":
        q = torch.full((n, num_classes), 1.0 / (num_classes - 1))
        q[torch.arange(n), y] = 0.0
        return q
    if target == "uniform":
        return torch.full((n, num_classes), 1.0 / num_classes)
    if target == "smoothed_wrong_label":
        wrong = random_wrong_labels(y, num_classes, seed=seed)
        return (1 - smoothing) * F.one_hot(wrong, num_classes).float() + smoothing / num_classes
    raise ConfigError(f"kl_ft: target must be one of {KL_TARGETS}; got {target!r}")


@register
class KLFineTune(FineTuneMethod):
    """KL-FT: minimise ``CE(θ; D_r) + α·mean_f KL(q(x) ‖ p_θ(·|x))`` (spec/paper.md §4).

    The paper's discriminative regulariser: the retain fit is the main
    objective and each forget sample's prediction is pulled towards a target
    ``q(x)`` that carries no information about its label. ``target`` is a
    choice of the spec (see :func:`kl_target`): ``"uniform_wrong"`` (default,
    uniform over the wrong classes), ``"uniform"`` (over all classes) or
    ``"smoothed_wrong_label"`` (a random wrong label smoothed by ``smoothing``).

    Defaults (tuned): ``alpha=0.1``, ``epochs=2``, ``lr=0.01``, ``target="uniform_wrong"``,
    ``smoothing=0.1``; the rest as :class:`~unlearnkit.methods.FineTuneMethod`.
    """

    name = "kl_ft"
    summary = "CE(D_r) + alpha*KL(q || p) on D_f (the paper's discriminative regulariser)"

    def __init__(
        self,
        *,
        alpha: Alpha = 0.1,
        target: Annotated[str, OneOf(KL_TARGETS)] = "uniform_wrong",
        smoothing: Annotated[float, Range(ge=0, lt=1)] = 0.1,
        epochs: Epochs = 2,
        lr: LearningRate = 0.01,
        **kwargs,
    ) -> None:
        super().__init__(epochs=epochs, lr=lr, **kwargs)
        self.alpha = alpha
        self.target = target
        self.smoothing = smoothing

    def prepare(self, model, split):
        # The targets are fixed once per forget sample (drawn with the seed), so they ride
        # along with the samples as soft labels through the shared batching loop.
        q = kl_target(
            split.forget.y,
            split.num_classes,
            target=self.target,
            seed=self.seed,
            smoothing=self.smoothing,
        )
        forget = type(split.forget)(ids=split.forget.ids, X=split.forget.X, y=q)
        return model, split.retain, forget

    def loss(self, model, retain, forget):
        retain_logits, forget_logits = joint_logits(model, retain, forget)
        loss = F.cross_entropy(retain_logits, retain.y)
        if forget is not None:
            q = forget.y
            log_p = F.log_softmax(forget_logits, dim=1)
            # KL(q ‖ p) = Σ q log q − Σ q log p; xlogy keeps 0·log 0 = 0 for the zeroed true class.
            kl = (torch.xlogy(q, q) - q * log_p).sum(dim=1).mean()
            loss = loss + self.alpha * kl
        return loss


@register
class L1Sparse(FineTuneMethod):
    """ℓ1-sparse: minimise ``CE(θ; D_r) + γ_t‖θ‖₁`` (spec/paper.md §4; Jia et al. 2023).

    ``‖θ‖₁`` sums over every trainable parameter. ``γ_t`` decays linearly to 0
    over the epochs, stepping once per epoch as in the Unlearn-Sparse code:
    ``γ_t = gamma · (1 − t / epochs)`` in epoch ``t`` (a choice). Needs no forget data.

    Defaults (tuned): ``gamma=1e-2``, ``epochs=2``, ``lr=0.01``; the rest as
    :class:`~unlearnkit.methods.FineTuneMethod`.
    """

    name = "l1_sparse"
    summary = "CE(D_r) + gamma_t*||theta||_1, gamma decaying linearly to 0"
    needs_forget = False
    uses_other = False

    def __init__(
        self,
        *,
        gamma: Annotated[float, Range(ge=0)] = 1e-2,
        epochs: Epochs = 2,
        lr: LearningRate = 0.01,
        **kwargs,
    ) -> None:
        super().__init__(epochs=epochs, lr=lr, **kwargs)
        self.gamma = gamma
        self._gamma_now = gamma

    def on_epoch_start(self, epoch: int) -> None:
        self._gamma_now = self.gamma * (1 - epoch / self.epochs)

    def loss(self, model, retain, forget):
        loss = F.cross_entropy(model(retain.X), retain.y)
        if self._gamma_now:
            loss = loss + self._gamma_now * sum(
                p.abs().sum() for p in model.parameters() if p.requires_grad
            )
        return loss
