"""Damped inverse curvature products ``(C + damping·I)⁻¹ b``, with diagnostics.

- :func:`conjugate_gradient`: ``scipy.sparse.linalg.cg`` on a ``LinearOperator``
  (in float64). CG assumes a positive-definite matrix; on an indefinite one
  (the Hessian of a non-convex model) it can return a vector that solves
  nothing. The solve therefore measures the curvature along every search
  direction it takes (one extra product per iteration, ``check_curvature``)
  and reports the first negative one, and reports the final relative residual
  ``||(C + δI)x − b|| / ||b||`` from a fresh product, not CG's own estimate.
- :func:`lissa` (Agarwal et al., 2017): the stochastic Neumann series
  ``x ← b + (I − (C_batch + δI)/scale) x`` over seeded mini-batches, averaged over
  ``repeats``; ``scale`` must exceed the largest eigenvalue for it to converge.
- :func:`inverse_product`: one entry point by name, which raises
  :class:`~unlearnkit.errors.InverseSolveError` when a solve did not converge or
  met negative curvature (``strict=True``) instead of returning garbage silently.

Every solve returns an :class:`InverseSolve`: the solution and how it was reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from unlearnkit.errors import ConfigError, InverseSolveError

SOLVERS = ("cg", "lissa")


@dataclass(frozen=True)
class InverseSolve:
    """The solution ``x`` of ``(C + damping·I) x = b`` and the solve's report."""

    x: torch.Tensor
    method: str
    iterations: int
    residual: float  # ||(C + δI)x − b|| / ||b||, from a fresh product
    converged: bool
    negative_curvature: float | None = None  # the first dᵀ(C + δI)d / dᵀd < 0 met, if any
    matvecs: int = 0

    def report(self) -> dict:
        return {
            "method": self.method,
            "iterations": self.iterations,
            "residual": self.residual,
            "converged": self.converged,
            "negative_curvature": self.negative_curvature,
            "matvecs": self.matvecs,
        }


def _residual(operator, damping: float, x: torch.Tensor, b: torch.Tensor) -> float:
    r = operator @ x + damping * x - b
    return float(r.norm() / b.norm().clamp_min(1e-30))


def conjugate_gradient(
    operator,
    b: torch.Tensor,
    *,
    damping: float = 0.0,
    tol: float = 1e-8,
    max_iterations: int = 200,
    check_curvature: bool = True,
) -> InverseSolve:
    """Solve ``(C + damping·I) x = b`` by conjugate gradients (scipy)."""
    from scipy.sparse.linalg import LinearOperator, cg

    dtype = b.dtype
    n = b.numel()
    counted = {"matvecs": 0, "iterations": 0, "negative": None}

    def apply(v: np.ndarray) -> np.ndarray:
        counted["matvecs"] += 1
        t = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64)).to(dtype)
        return ((operator @ t) + damping * t).double().numpy()

    A = LinearOperator((n, n), matvec=apply, dtype=np.float64)
    previous = [np.zeros(n)]

    def callback(xk: np.ndarray) -> None:
        counted["iterations"] += 1
        if check_curvature and counted["negative"] is None:
            d = xk - previous[0]
            dd = float(d @ d)
            if dd > 0:
                curvature = float(d @ apply(d)) / dd
                if curvature < 0:
                    counted["negative"] = curvature
        previous[0] = xk.copy()

    rhs = b.double().numpy()
    x, info = cg(A, rhs, rtol=tol, atol=0.0, maxiter=max_iterations, callback=callback)
    solution = torch.from_numpy(x).to(dtype)
    residual = _residual(operator, damping, solution, b.to(dtype))
    # The residual is re-measured in b's precision: allow its rounding beyond the asked tolerance.
    floor = 1e-5 if dtype == torch.float32 else 1e-10
    converged = info == 0 and residual <= max(10 * tol, floor) and counted["negative"] is None
    return InverseSolve(
        x=solution,
        method="cg",
        iterations=counted["iterations"],
        residual=residual,
        converged=converged,
        negative_curvature=counted["negative"],
        matvecs=counted["matvecs"] + 1,
    )


def lissa(
    operator_for_batch,
    b: torch.Tensor,
    *,
    full_operator,
    damping: float = 0.0,
    scale: float = 10.0,
    depth: int = 200,
    repeats: int = 1,
    seed: int = 0,
    tol: float = 1e-3,
) -> InverseSolve:
    """LiSSA: ``operator_for_batch(generator)`` gives a stochastic curvature operator.

    The estimate is ``x/scale`` where ``x ← b + x − (C_batch + δI) x / scale``,
    ``depth`` steps, averaged over ``repeats`` seeded runs; the residual is measured
    with ``full_operator``.
    """
    if scale <= 0 or depth < 1 or repeats < 1:
        raise ConfigError("lissa needs scale > 0, depth >= 1 and repeats >= 1")
    generator = torch.Generator().manual_seed(seed)
    estimate = torch.zeros_like(b)
    matvecs = 0
    for _ in range(repeats):
        x = b.clone()
        for _ in range(depth):
            op = operator_for_batch(generator)
            x = b + x - (op @ x + damping * x) / scale
            matvecs += 1
            if not torch.isfinite(x).all():
                break
        estimate += x / scale
    estimate /= repeats
    finite = bool(torch.isfinite(estimate).all())
    residual = _residual(full_operator, damping, estimate, b) if finite else math.inf
    return InverseSolve(
        x=estimate,
        method="lissa",
        iterations=depth * repeats,
        residual=residual,
        converged=finite and residual <= tol,
        matvecs=matvecs + 1,
    )


def inverse_product(
    operator,
    b: torch.Tensor,
    *,
    solver: str = "cg",
    damping: float = 0.0,
    strict: bool = True,
    **options,
) -> InverseSolve:
    """``(C + damping·I)⁻¹ b`` by ``solver``; with ``strict`` a failed solve raises."""
    if solver not in SOLVERS:
        raise ConfigError(f"solver must be one of {SOLVERS}; got {solver!r}")
    if solver == "cg":
        result = conjugate_gradient(operator, b, damping=damping, **options)
    else:
        result = lissa(options.pop("operator_for_batch"), b, full_operator=operator,
                       damping=damping, **options)  # fmt: skip
    if strict and not result.converged:
        why = (
            f"met negative curvature {result.negative_curvature:.3g} (the matrix is not "
            "positive definite: use curvature='gauss_newton' or 'fisher', or more damping)"
            if result.negative_curvature is not None
            else f"did not converge (relative residual {result.residual:.3g} after "
            f"{result.iterations} iterations: raise max_iterations or damping)"
        )
        raise InverseSolveError(f"inverse curvature product by {result.method} {why}")
    return result


__all__ = ["SOLVERS", "InverseSolve", "conjugate_gradient", "inverse_product", "lissa"]
