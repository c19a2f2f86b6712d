"""Influence unlearning (IU): remove the forget set's influence with one Newton step.

With ``θ`` a minimiser of the training objective ``L(θ) = (1/n) Σ ℓᵢ(θ) + λ/2 ||θ||²``,
removing the forget set ``F`` moves the minimiser, to first order, to

    θ₋F ≈ θ + (1/n_R) H_R⁻¹ Σ_{i∈F} ∇[ℓᵢ(θ) + λ/2 ||θ||²]

where ``H_R`` is the curvature of the retained objective and ``n_R`` the number
of retained samples: exactly one Newton step on the retained objective from
``θ`` (Koh & Liang, 2017; the removal form of Guo et al., 2020). ``scale`` (η)
multiplies the step. For a convex model trained to its optimum (L2-regularised
logistic regression) the step lands within 1e-3 of retraining for one removal
(``tests/methods/test_influence_exactness.py``); for a network it is an approximation.

Choices (documented defaults):

- ``curvature="gauss_newton"``: positive semi-definite, equal to the Hessian for
  models linear in their parameters; ``"hessian"`` is exact but indefinite for a
  network, where conjugate gradients meet negative curvature; ``"fisher"`` is the
  empirical Fisher.
- ``weight_decay`` is the λ of the training objective (the recipe's SGD weight
  decay, 5e-4 by default); ``damping`` is added to the curvature for stability.
- ``solver="cg"`` (conjugate gradients, deterministic) or ``"lissa"`` (stochastic
  Neumann series over mini-batches of 256 retained samples drawn from ``seed``,
  ``max_iterations`` steps, ``lissa_scale`` above the largest curvature
  eigenvalue). The solve is reported on the returned model as ``unlearn_info``;
  one that did not converge warns, or raises with ``strict=True``.
"""

from __future__ import annotations

import copy
import warnings
from typing import Annotated

import torch
from torch import nn

from unlearnkit.data.forget import ForgetSplit
from unlearnkit.methods.base import UnlearningMethod, register
from unlearnkit.params import OneOf, Range, Seed

CURVATURE_CHOICES = ("gauss_newton", "hessian", "fisher")
SOLVER_CHOICES = ("cg", "lissa")
LISSA_BATCH = 256  # samples per stochastic curvature product


@register
class InfluenceUnlearning(UnlearningMethod):
    """IU: ``θ + η (1/n_R) H_R⁻¹ Σ_F ∇ℓᵢ``, one damped inverse-curvature product."""

    name = "influence"
    summary = "one Newton step removes the forget set's influence (influence functions)"

    def __init__(
        self,
        *,
        scale: Annotated[float, Range(gt=0)] = 1.0,
        damping: Annotated[float, Range(ge=0)] = 1e-3,
        weight_decay: Annotated[float, Range(ge=0)] = 5e-4,
        curvature: Annotated[str, OneOf(CURVATURE_CHOICES)] = "gauss_newton",
        solver: Annotated[str, OneOf(SOLVER_CHOICES)] = "cg",
        max_iterations: Annotated[int, Range(ge=1)] = 100,
        tolerance: Annotated[float, Range(gt=0)] = 1e-6,
        lissa_scale: Annotated[float, Range(gt=0)] = 10.0,
        strict: bool = False,
        seed: Seed = 0,
    ) -> None:
        self.scale = scale
        self.damping = damping
        self.weight_decay = weight_decay
        self.curvature = curvature
        self.solver = solver
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self.lissa_scale = lissa_scale
        self.strict = strict
        self.seed = seed

    def unlearn(self, model: nn.Module, split: ForgetSplit) -> nn.Module:
        from unlearnkit.influence import (
            CurvatureOperator,
            ParameterVector,
            inverse_product,
            objective_gradient,
        )

        out = copy.deepcopy(model)
        params = ParameterVector(out)
        theta = params.flat()
        # Σ_F ∇[ℓᵢ + λ/2 ||θ||²]: the forget set's share of the objective's gradient.
        removed = objective_gradient(out, split.forget, weight_decay=self.weight_decay)
        removed = removed * len(split.forget)
        curvature = CurvatureOperator(
            out, split.retain, kind=self.curvature, weight_decay=self.weight_decay
        )
        if self.solver == "cg":
            options = {"tol": self.tolerance, "max_iterations": self.max_iterations}
        else:

            def operator_for_batch(generator):
                rows = torch.randperm(len(split.retain), generator=generator)[:LISSA_BATCH]
                return CurvatureOperator(out, split.retain.take(rows), kind=self.curvature,
                                         weight_decay=self.weight_decay)  # fmt: skip

            options = {"operator_for_batch": operator_for_batch, "scale": self.lissa_scale,
                       "depth": self.max_iterations, "seed": self.seed, "tol": self.tolerance}  # fmt: skip
        solve = inverse_product(
            curvature,
            removed / len(split.retain),
            solver=self.solver,
            damping=self.damping,
            strict=self.strict,
            **options,
        )
        if not solve.converged:
            warnings.warn(
                f"influence: the inverse curvature product did not converge (residual "
                f"{solve.residual:.3g}); the step is approximate",
                RuntimeWarning,
                stacklevel=2,
            )
        params.assign(theta + self.scale * solve.x)
        out.unlearn_info = solve.report()
        return out


__all__ = ["InfluenceUnlearning"]
