"""Exact optima of L2-regularised logistic regression (float64 Newton), for influence tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from unlearnkit.data.dataset import Split
from unlearnkit.influence import ParameterVector


def _objective(Z, y, w, theta, weight_decay):
    n = len(y)
    losses = F.cross_entropy(Z @ theta.T, y, reduction="none")
    reg = weight_decay * float(w.sum()) / n  # each sample carries its share of the decay
    return float((w * losses).sum() / n) + reg / 2 * float(theta.pow(2).sum())


def _objective_parts(Z, y, w, theta, K, weight_decay):
    """Objective, gradient and Hessian in Θ = [W | b] (row-major, K × (d+1)) coordinates."""
    n, d1 = Z.shape
    p = F.softmax(Z @ theta.T, dim=1)
    reg = weight_decay * float(w.sum()) / n
    value = _objective(Z, y, w, theta, weight_decay)
    residual = (p - F.one_hot(y, K).double()) * w[:, None]
    grad = (residual.T @ Z / n + reg * theta).reshape(-1)
    # Σ_i w_i (diag p_i − p_i p_iᵀ) ⊗ z_i z_iᵀ, laid out (k, j) × (l, m).
    S = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    outer = (Z[:, :, None] * Z[:, None, :]).reshape(n, d1 * d1)
    hess = ((w[:, None, None] * S).reshape(n, K * K).T @ outer).reshape(K, K, d1, d1)
    hess = hess.permute(0, 2, 1, 3).reshape(grad.numel(), -1) / n
    return value, grad, hess + reg * torch.eye(grad.numel(), dtype=torch.float64)


def fit_to_optimum(model, data: Split, *, weight_decay: float, weights=None, tol=1e-12):
    """Set a logreg ``model`` to the minimiser of ``(1/n) Σ wᵢ [ℓᵢ + wd/2 ||θ||²]``; return it.

    ``model`` is float64 ``Flatten + Linear`` (``uk.models.make("logreg", ...,
    preprocessing="none").double()``); Newton's method with backtracking, to a
    gradient norm below ``tol``. With ``weights=None`` this is the mean loss plus
    ``wd/2 ||θ||²`` (the influence package's objective).
    """
    params = ParameterVector(model)
    linear = model[-1]
    K, d = linear.weight.shape
    Z = torch.cat([data.X.double().flatten(1), torch.ones(len(data), 1, dtype=torch.float64)], 1)
    w = torch.ones(len(data), dtype=torch.float64) if weights is None else weights.double()
    theta = torch.cat([linear.weight.detach(), linear.bias.detach()[:, None]], 1).double()
    for _ in range(100):
        value, grad, hess = _objective_parts(Z, data.y, w, theta, K, weight_decay)
        if float(grad.norm()) < tol:
            break
        step = torch.linalg.solve(hess, grad).reshape(K, d + 1)
        t = 1.0
        while _objective(Z, data.y, w, theta - t * step, weight_decay) > value and t > 1e-8:
            t /= 2
        theta = theta - t * step
    else:
        raise AssertionError(f"Newton did not reach gradient norm {tol} (at {float(grad.norm())})")
    flat = torch.cat([theta[:, :d].reshape(-1), theta[:, d]])
    assert params.names[-1].endswith("bias")
    params.assign(flat)
    return model


def as_float64(split: Split) -> Split:
    """The split with float64 features (labels as they are)."""
    return Split(ids=split.ids, X=split.X.double(), y=split.y)


def relative_distance(a, b) -> float:
    """``||θ_a − θ_b|| / ||θ_b||`` over the trainable parameters."""
    ta, tb = ParameterVector(a).flat(), ParameterVector(b).flat()
    return float((ta - tb).norm() / tb.norm())


__all__ = ["as_float64", "fit_to_optimum", "relative_distance"]
