"""Weight saliency masks, and the two masking methods built on them (spec/paper.md §4).

- ``salun`` (Fan et al., ICLR 2024): the mask comes from the **forget** data,
  ``|∇θ CE(θ_o; D_f)|``; only the top fraction of weights by that saliency is
  updated by the random-label objective, the rest stay frozen (weights and
  optimiser state).
- ``rbm`` (retention-based masking, the later version of the seed paper): the
  mask comes from the **retained** data (diagonal empirical Fisher by default,
  or ``|∇θ CE(θ_o; D_r)|``); weights outside it are reset (to 0, or to a fresh
  initialisation) and the model is then fine-tuned on ``D_r``. It is the deep
  analogue of the linear lab's Option B: drop what the retained data does not
  need, then fine-tune.

The mask functions are public so that other methods (and tests) can reuse
them. A mask is a dict ``parameter name -> 0/1 float tensor`` of the
parameter's shape, covering every trainable parameter.

>>> import torch, unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> model = uk.train(uk.models.make("logreg", data), data.train, epochs=1)
>>> mask = saliency_mask(model, data.train, saliency="fisher", keep=0.2)
>>> sum(int(m.sum()) for m in mask.values()), sum(m.numel() for m in mask.values())
(130, 650)
"""

from __future__ import annotations

import copy
import math
from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError
from unlearnkit.methods.base import Epochs, LearningRate, register
from unlearnkit.methods.baselines import FineTune, RandomLabel
from unlearnkit.models import reset_parameters
from unlearnkit.params import OneOf, Range

SALIENCIES = ("gradient", "fisher")
SCOPES = ("global", "per_tensor")
RESETS = ("zero", "reinit")

Keep = Annotated[float, Range(gt=0, le=1)]
Scope = Annotated[str, OneOf(SCOPES)]

# Per-sample gradients are computed in chunks holding at most this many floats, so the
# Fisher of a large model does not need (batch × parameters) memory at once.
_FISHER_FLOATS_PER_CHUNK = 2**25


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def gradient_saliency(
    model: nn.Module, data: Split, *, batch_size: int = 512
) -> dict[str, torch.Tensor]:
    """``|∇θ CE(θ; data)|`` per parameter: the absolute gradient of the mean loss over ``data``.

    The full-data gradient is accumulated over batches of ``batch_size`` (each
    weighted by its size, so the result does not depend on the batching up to
    rounding). Computed in evaluation mode; the model is left unchanged.
    """
    _check_data(data, batch_size)
    params = _trainable(model)
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(data), batch_size):
            X, y = data.X[start : start + batch_size], data.y[start : start + batch_size]
            loss = F.cross_entropy(model(X), y, reduction="sum") / len(data)
            grads = torch.autograd.grad(loss, list(params.values()))
            for n, g in zip(params, grads, strict=True):
                total[n] += g
    finally:
        model.train(was_training)
    return {n: g.abs() for n, g in total.items()}


def fisher_saliency(
    model: nn.Module, data: Split, *, batch_size: int = 512
) -> dict[str, torch.Tensor]:
    """Diagonal empirical Fisher: ``mean over data of (∇θ log p_θ(y|x))²`` per parameter.

    Unlike the mean gradient, which is ~0 at an optimum of the data's loss,
    the Fisher stays large on the weights the data relies on (spec §4, the
    reason it is RBM's default). Computed in evaluation mode; the model is
    left unchanged.

    When every trainable parameter belongs to an ``nn.Linear`` (on 2-D
    inputs) or an ``nn.Conv2d`` (no groups), the per-sample squared gradients
    are summed in closed form from each layer's inputs and output gradients
    (for a linear layer ``Σ_i (g_i²)(x_i²)ᵀ``, one matrix product), which
    costs about one backward pass. Other models fall back to ``torch.func``
    per-sample gradients (``vmap`` of ``grad``), in chunks sized to bound memory.
    Both give the same numbers up to rounding.
    """
    _check_data(data, batch_size)
    was_training = model.training
    model.eval()
    try:
        fast = _fisher_by_layers(model, data, batch_size=batch_size)
        return fast if fast is not None else _fisher_by_vmap(model, data)
    finally:
        model.train(was_training)


def _layer_fisher_supported(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return (
        isinstance(module, nn.Conv2d)
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def _fisher_by_layers(model: nn.Module, data: Split, *, batch_size: int):
    """The closed-form path of :func:`fisher_saliency`; ``None`` when the model does not fit it."""
    layers = []
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if not _layer_fisher_supported(module):
            return None
        layers.append(module)
    names = {id(p): n for n, p in _trainable(model).items()}
    total = {n: torch.zeros_like(p) for n, p in _trainable(model).items()}
    seen: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}

    def remember(module, inputs, output):
        seen[module] = (inputs[0].detach(), output)

    handles = [layer.register_forward_hook(remember) for layer in layers]
    try:
        for start in range(0, len(data), batch_size):
            seen.clear()
            X, y = data.X[start : start + batch_size], data.y[start : start + batch_size]
            # The summed loss's gradient w.r.t. a layer's output, row i, is sample i's own
            # gradient: samples do not interact in evaluation mode.
            loss = F.cross_entropy(model(X), y, reduction="sum")
            if any(isinstance(m, nn.Linear) and seen[m][0].ndim != 2 for m in layers):
                return None
            grads = torch.autograd.grad(loss, [seen[m][1] for m in layers])
            for module, g in zip(layers, grads, strict=True):
                x = seen[module][0]
                if isinstance(module, nn.Linear):
                    weight_sq = (g * g).T @ (x * x)
                    bias_sq = (g * g).sum(0)
                else:
                    cols = F.unfold(
                        x,
                        module.kernel_size,
                        dilation=module.dilation,
                        padding=module.padding,
                        stride=module.stride,
                    )
                    per_sample = torch.einsum("nop,nkp->nok", g.flatten(2), cols)
                    weight_sq = per_sample.pow(2).sum(0).reshape(module.weight.shape)
                    bias_sq = g.flatten(2).sum(2).pow(2).sum(0)
                if module.weight.requires_grad:
                    total[names[id(module.weight)]] += weight_sq
                if module.bias is not None and module.bias.requires_grad:
                    total[names[id(module.bias)]] += bias_sq
    finally:
        for h in handles:
            h.remove()
    return {n: t / len(data) for n, t in total.items()}


def _fisher_by_vmap(model: nn.Module, data: Split) -> dict[str, torch.Tensor]:
    """The general path of :func:`fisher_saliency`: per-sample gradients from
    :mod:`unlearnkit.influence`, squared and summed chunk by chunk."""
    from unlearnkit.influence.gradients import ParameterVector, per_sample_gradient_chunks

    params = ParameterVector(model)
    total = torch.zeros(params.size)
    for _, G in per_sample_gradient_chunks(model, data, max_floats=_FISHER_FLOATS_PER_CHUNK):
        total += G.pow(2).sum(dim=0)
    return {n: t / len(data) for n, t in params.unflatten(total).items()}


def top_fraction_mask(
    scores: dict[str, torch.Tensor], *, keep: float, scope: str = "global"
) -> dict[str, torch.Tensor]:
    """0/1 masks keeping the ``keep`` fraction of entries with the largest score.

    ``scope="global"`` ranks all entries together (as the SalUn code does) and
    keeps exactly ``round(keep × total)`` of them; ``"per_tensor"`` keeps
    ``round(keep × size)`` in each tensor. Ties are broken deterministically:
    among equal scores the entry that comes first (parameter order, then
    row-major position) is kept.

    >>> m = top_fraction_mask({"w": torch.tensor([1.0, 3.0, 3.0, 2.0])}, keep=0.5)
    >>> m["w"].tolist()
    [0.0, 1.0, 1.0, 0.0]
    """
    if not 0 < keep <= 1:
        raise ConfigError(f"keep must be a fraction in (0, 1]; got {keep}")
    if scope not in SCOPES:
        raise ConfigError(f"scope must be one of {SCOPES}; got {scope!r}")
    if not scores:
        raise ConfigError("no scores to build a mask from: the model has no trainable parameter")
    for n, s in scores.items():
        if not bool(torch.isfinite(s).all()):
            raise ConfigError(
                f"saliency of {n!r} has NaN or infinite entries; check the model and data "
                "(a diverged model gives no usable saliency)"
            )
    if scope == "per_tensor":
        return {n: _keep_top(s.reshape(-1), keep).reshape(s.shape) for n, s in scores.items()}
    flat = torch.cat([s.reshape(-1) for s in scores.values()])
    kept = _keep_top(flat, keep)
    out, start = {}, 0
    for n, s in scores.items():
        out[n] = kept[start : start + s.numel()].reshape(s.shape)
        start += s.numel()
    return out


def _keep_top(flat: torch.Tensor, keep: float) -> torch.Tensor:
    # floor(x + 0.5) rounds halves up, the same way on every platform (Python's round() is
    # banker's rounding), so "the fraction kept is what was asked" is exact and predictable.
    k = int(math.floor(keep * flat.numel() + 0.5))
    # A stable descending sort keeps equal scores in index order: the tie-break rule above.
    order = torch.argsort(flat.double(), descending=True, stable=True)
    mask = torch.zeros(flat.numel(), dtype=torch.float32)
    mask[order[:k]] = 1.0
    return mask


def saliency_mask(
    model: nn.Module,
    data: Split,
    *,
    saliency: str = "gradient",
    keep: float = 0.5,
    scope: str = "global",
    batch_size: int = 512,
) -> dict[str, torch.Tensor]:
    """A 0/1 mask per trainable parameter keeping the ``keep`` fraction most salient on ``data``.

    ``saliency="gradient"`` scores ``|∇θ CE(θ; data)|`` (:func:`gradient_saliency`;
    SalUn passes the forget data); ``"fisher"`` scores the diagonal empirical
    Fisher (:func:`fisher_saliency`; RBM passes the retained data). ``scope``
    and tie-breaking as in :func:`top_fraction_mask`.
    """
    if saliency not in SALIENCIES:
        raise ConfigError(f"saliency must be one of {SALIENCIES}; got {saliency!r}")
    if saliency == "gradient":
        scores = gradient_saliency(model, data, batch_size=batch_size)
    else:
        scores = fisher_saliency(model, data, batch_size=batch_size)
    return top_fraction_mask(scores, keep=keep, scope=scope)


def _check_data(data: Split, batch_size: int) -> None:
    if len(data) == 0:
        raise ConfigError("cannot compute a saliency on an empty split; pass samples to score")
    if data.y.dtype != torch.int64:
        raise ConfigError("saliency masks need class labels (int64 targets); got float targets")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}")


@register
class SalUn(RandomLabel):
    """SalUn: the random-label objective on the most forget-salient weights only.

    Minimises ``CE(θ; D_f with y') + CE(θ; D_r)`` (spec/paper.md §4), with
    gradients multiplied by the mask keeping the top ``keep`` fraction of
    weights by ``|∇θ CE(θ_o; D_f)|`` (true labels, the trained model). The
    other weights are frozen: their gradient, weight decay and so momentum
    buffer are all zero, so they never move. ``scope`` as in
    :func:`top_fraction_mask` (``"global"`` as in the SalUn code).

    Defaults (tuned on a validation split, see README "Reproducing the paper"):
    ``keep=0.25`` (the SalUn paper uses 0.5), ``epochs=2``, ``lr=0.003``; the rest as
    :class:`~unlearnkit.methods.FineTuneMethod`.
    """

    name = "salun"
    summary = "random-label objective on the top-k forget-gradient-salient weights"

    def __init__(
        self,
        *,
        keep: Keep = 0.25,
        scope: Scope = "global",
        epochs: Epochs = 2,
        lr: LearningRate = 0.003,
        **kwargs,
    ) -> None:
        super().__init__(epochs=epochs, lr=lr, **kwargs)
        self.keep = keep
        self.scope = scope

    def gradient_mask(self, model, split):
        return saliency_mask(
            model, split.forget, saliency="gradient", keep=self.keep, scope=self.scope
        )


@register
class RetentionBasedMasking(FineTune):
    """RBM: keep the weights the retained data relies on, reset the rest, fine-tune on ``D_r``.

    1. saliency ``s_r`` on the retained data: ``"fisher"`` (default; the
       diagonal empirical Fisher, since the mean gradient is ~0 at an optimum)
       or ``"gradient"`` (``|∇θ CE(θ_o; D_r)|``);
    2. ``m_r`` = 1 on the top ``keep`` fraction by ``s_r`` (``scope`` as in
       :func:`top_fraction_mask`);
    3. ``θ ← m_r ⊙ θ_o + (1 − m_r) ⊙ θ_reset`` where ``θ_reset`` is 0
       (``reset="zero"``, default) or a fresh initialisation drawn from
       ``seed`` (``reset="reinit"``), a choice of spec §4;
    4. fine-tune every weight on ``D_r`` (spec §3 Option B: reset, then FT).

    Never reads the forget data. Defaults (tuned): ``keep=0.1``, ``epochs=2``,
    ``lr=0.03``; the rest as :class:`~unlearnkit.methods.FineTuneMethod`.
    """

    name = "rbm"
    summary = "retention-based masking: reset weights not salient on D_r, then fine-tune on D_r"
    needs_forget = False

    def __init__(
        self,
        *,
        keep: Keep = 0.1,
        saliency: Annotated[str, OneOf(SALIENCIES)] = "fisher",
        reset: Annotated[str, OneOf(RESETS)] = "zero",
        scope: Scope = "global",
        epochs: Epochs = 2,
        lr: LearningRate = 0.03,
        **kwargs,
    ) -> None:
        super().__init__(epochs=epochs, lr=lr, **kwargs)
        self.keep = keep
        self.saliency = saliency
        self.reset = reset
        self.scope = scope

    def prepare(self, model, split):
        # ``model`` is already the caller's deep copy (FineTuneMethod.unlearn), so it is
        # safe to overwrite its weights here.
        mask = saliency_mask(
            model, split.retain, saliency=self.saliency, keep=self.keep, scope=self.scope
        )
        fresh = None
        if self.reset == "reinit":
            fresh = dict(reset_parameters(copy.deepcopy(model), seed=self.seed).named_parameters())
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n not in mask:
                    continue
                replacement = fresh[n] if fresh is not None else torch.zeros_like(p)
                p.copy_(torch.where(mask[n].bool(), p, replacement))
        return model, split.retain, split.forget
