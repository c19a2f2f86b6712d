"""Per-sample influence on a criterion: ``a_i = dC / dw_i`` for every training sample.

The training objective ``(1/n) Σ_i [ℓ_i(θ) + λ/2 ||θ||²]`` gives every sample its
share of the weight decay, so the weighted objective ``Σ_i w_i [ℓ_i + λ/2 ||θ||²]``
is the original at ``w = 1`` and exactly the golden recipe (mean loss on the
retained data, same ``λ``) when the forgotten weights are 0. Raising one weight by
``ε`` moves the optimum by ``−ε H⁻¹ g_i`` (``H`` the Hessian of that sum,
``g_i = ∇ℓ_i + λθ``), so a differentiable criterion ``C(θ)`` changes by ``ε a_i``:

    a_i = −∇C · H⁻¹ g_i = −(1/n) v · g_i,     v = (H_mean + δI)⁻¹ ∇C,

``H_mean`` the curvature of the mean objective (what
:class:`~unlearnkit.influence.CurvatureOperator` computes). ``v`` is one inverse
solve; then every ``a_i`` is one directional derivative of ``ℓ_i`` along ``v``,
computed for a whole batch by one forward-mode pass (``torch.func.jvp``), never by
materialising per-sample gradients. PUMA and the data-debugging ranking use these
scores; with ``C`` = validation loss, a large positive ``a_i`` marks a harmful sample
(up-weighting it raises the validation loss).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import UnknownIdsError
from unlearnkit.influence.curvature import CurvatureOperator
from unlearnkit.influence.gradients import (
    ParameterVector,
    evaluating,
    objective_gradient,
    per_row_losses,
)
from unlearnkit.influence.solvers import InverseSolve, inverse_product

BATCH = 1024


def sample_losses(model: nn.Module, data: Split, *, batch_size: int = BATCH) -> torch.Tensor:
    """Every sample's training loss (cross-entropy for labels, squared error else), eval mode."""
    out = torch.empty(len(data), dtype=next(model.parameters()).dtype)
    with torch.no_grad(), evaluating(model):
        for start in range(0, len(data), batch_size):
            rows = slice(start, start + batch_size)
            out[rows] = per_row_losses(model(data.X[rows]), data.y[rows])
    return out


def directional_derivatives(
    model: nn.Module, data: Split, direction: torch.Tensor, *, batch_size: int = BATCH
) -> torch.Tensor:
    """``g_i · direction`` for every sample ``i`` (forward mode: one pass per batch)."""
    from torch.func import jvp

    params = ParameterVector(model)
    theta = params.flat()
    direction = direction.to(theta.dtype)
    out = torch.empty(len(data), dtype=theta.dtype)
    with evaluating(model):
        for start in range(0, len(data), batch_size):
            X, y = data.X[start : start + batch_size], data.y[start : start + batch_size]
            _, tangent = jvp(
                lambda flat, X=X, y=y: per_row_losses(params.functional(flat, X), y),
                (theta,),
                (direction,),
            )
            out[start : start + len(y)] = tangent.detach()
    return out


def weighted_gradient(
    model: nn.Module,
    data: Split,
    weights: torch.Tensor,
    *,
    weight_decay: float = 0.0,
    batch_size: int = BATCH,
) -> torch.Tensor:
    """``∇θ Σ_i weights_i [ℓ_i + weight_decay/2 ||θ||²]`` as a flat vector (one pass per batch)."""
    params = ParameterVector(model)
    theta = params.flat()
    total = torch.zeros_like(theta)
    weights = torch.as_tensor(weights, dtype=theta.dtype)
    with evaluating(model):
        for start in range(0, len(data), batch_size):
            rows = slice(start, start + batch_size)
            flat = theta.clone().requires_grad_(True)
            losses = per_row_losses(params.functional(flat, data.X[rows]), data.y[rows])
            (g,) = torch.autograd.grad((weights[rows] * losses).sum(), flat)
            total += g
    return total + weight_decay * float(weights.sum()) * theta


def curvature_sample(data: Split, samples: int | None, *, seed: int) -> Split:
    """A seeded subset of ``samples`` rows for curvature products (all rows if None or more)."""
    if not samples or samples >= len(data):
        return data
    generator = torch.Generator().manual_seed(seed)
    return data.take(torch.randperm(len(data), generator=generator)[:samples].sort().values)


@dataclass
class CriterionInfluence:
    """``a_i`` for the samples ``ids`` of a training set, and how they were computed."""

    ids: torch.Tensor
    scores: torch.Tensor  # a_i: change of the criterion per unit weight of sample i
    direction: torch.Tensor  # v = (H_mean + δI)⁻¹ ∇C
    n_train: int
    solve: InverseSolve
    seconds: float

    def of(self, ids: torch.Tensor) -> torch.Tensor:
        """The scores of ``ids`` (each must be one of ``self.ids``)."""
        order = torch.argsort(self.ids)
        at = torch.searchsorted(self.ids[order], ids)
        at = at.clamp_max(len(order) - 1)
        if not bool(torch.equal(self.ids[order][at], ids)):
            missing = ids[self.ids[order][at] != ids][:5].tolist()
            raise UnknownIdsError(f"no influence score for id(s) {missing}; rebuild the scores")
        return self.scores[order][at]

    def covers(self, ids: torch.Tensor) -> bool:
        return bool(torch.isin(ids, self.ids).all())


def criterion_influence(
    model: nn.Module,
    train: Split,
    criterion: Split,
    *,
    weight_decay: float = 0.0,
    curvature: str = "gauss_newton",
    damping: float = 1e-3,
    curvature_samples: int | None = None,
    solver: str = "cg",
    strict: bool = False,
    seed: int = 0,
    **solver_options,
) -> CriterionInfluence:
    """``a_i`` of every ``train`` sample for ``C`` = mean loss on ``criterion`` data.

    The curvature is that of the mean training objective, on ``curvature_samples``
    seeded training rows (all by default). ``solver_options`` go to
    :func:`~unlearnkit.influence.inverse_product` (``tol``, ``max_iterations``).
    """
    started = time.perf_counter()
    gradient = objective_gradient(model, criterion)
    operator = CurvatureOperator(
        model,
        curvature_sample(train, curvature_samples, seed=seed),
        kind=curvature,
        weight_decay=weight_decay,
    )
    solve = inverse_product(
        operator, gradient, solver=solver, damping=damping, strict=strict, **solver_options
    )
    theta = ParameterVector(model).flat()
    along = directional_derivatives(model, train, solve.x) + weight_decay * float(solve.x @ theta)
    scores = -along / len(train)
    return CriterionInfluence(
        ids=train.ids.clone(),
        scores=scores,
        direction=solve.x,
        n_train=len(train),
        solve=solve,
        seconds=time.perf_counter() - started,
    )


__all__ = [
    "CriterionInfluence",
    "criterion_influence",
    "curvature_sample",
    "directional_derivatives",
    "sample_losses",
    "weighted_gradient",
]
