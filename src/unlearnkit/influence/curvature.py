"""Curvature-vector products of the training objective, batched over the data.

``CurvatureOperator(model, data, kind=..., weight_decay=...)`` multiplies a flat
vector ``v`` by

- ``hessian``: the Hessian of the objective (mean cross-entropy plus
  ``weight_decay / 2 · ||θ||²``), forward-over-reverse: ``jvp`` of ``grad``;
  indefinite for a non-convex model;
- ``gauss_newton``: ``Jᵀ H_out J + weight_decay · I``, with ``J`` the Jacobian of
  the outputs and ``H_out`` the Hessian of the loss in the outputs
  (``diag(p) − ppᵀ`` for cross-entropy, ``2I`` for squared error): positive
  semi-definite by construction, and equal to the Hessian for a model linear in
  its parameters (logistic and linear regression);
- ``fisher``: the empirical Fisher ``(1/n) Σ gᵢgᵢᵀ + weight_decay · I`` from
  per-sample gradients: positive semi-definite by construction.

>>> import unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> model = uk.models.make("logreg", data, preprocessing="none")
>>> H = CurvatureOperator(model, data.train.take(torch.arange(50)), kind="hessian")
>>> v = torch.randn(H.size, generator=torch.Generator().manual_seed(0))
>>> bool(torch.dot(v, H @ v) > 0)  # logistic regression is convex
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError
from unlearnkit.influence.gradients import (
    MAX_FLOATS,
    ParameterVector,
    evaluating,
    per_sample_gradient_chunks,
    summed_loss,
)

CURVATURES = ("hessian", "gauss_newton", "fisher")


class CurvatureOperator:
    """``v ↦ C v`` for the curvature ``C`` of the training objective on ``data``.

    The model is evaluated in eval mode at its current parameters (read once, at
    construction). ``matvec_count`` counts the products taken (each is a pass over
    the data).
    """

    def __init__(
        self,
        model: nn.Module,
        data: Split,
        *,
        kind: str = "hessian",
        weight_decay: float = 0.0,
        batch_size: int = 1024,
        max_floats: int = MAX_FLOATS,
    ) -> None:
        if kind not in CURVATURES:
            raise ConfigError(f"curvature must be one of {CURVATURES}; got {kind!r}")
        if len(data) == 0:
            raise ConfigError("cannot build a curvature operator on no data")
        self.params = ParameterVector(model)
        self.theta = self.params.flat()
        self.data = data
        self.kind = kind
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.size = self.params.size
        self.matvec_count = 0
        self._fisher_rows = None
        # The empirical Fisher's per-sample gradients are kept when they fit in memory
        # (else recomputed at every product).
        if kind == "fisher" and len(data) * self.size <= max_floats:
            self._fisher_rows = torch.cat(
                [G for _, G in per_sample_gradient_chunks(model, data, max_floats=max_floats)]
            )
        self._max_floats = max_floats

    def _batches(self):
        for start in range(0, len(self.data), self.batch_size):
            yield (
                self.data.X[start : start + self.batch_size],
                self.data.y[start : start + self.batch_size],
            )

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        with evaluating(self.params.model):
            return self._matvec(v)

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:
        from torch.func import grad, jvp, vjp

        self.matvec_count += 1
        v = v.to(self.theta.dtype)
        total = torch.zeros_like(self.theta)
        n = len(self.data)
        if self.kind == "fisher":
            pieces = (
                [(None, self._fisher_rows)]
                if self._fisher_rows is not None
                else per_sample_gradient_chunks(
                    self.params.model, self.data, max_floats=self._max_floats
                )
            )
            for _, G in pieces:
                total += G.T @ (G @ v)
            return total / n + self.weight_decay * v
        for X, y in self._batches():
            if self.kind == "hessian":

                def batch_loss(flat, X=X, y=y):
                    return summed_loss(self.params.functional(flat, X), y)

                _, hv = jvp(grad(batch_loss), (self.theta,), (v,))
                total += hv
            else:
                logits_of = lambda flat, X=X: self.params.functional(flat, X)  # noqa: E731
                logits, Jv = jvp(logits_of, (self.theta,), (v,))
                if y.dtype == torch.int64:  # cross-entropy: H_out = diag(p) - ppᵀ per row
                    p = F.softmax(logits.detach(), dim=1)
                    u = p * Jv - p * (p * Jv).sum(1, keepdim=True)
                else:  # squared error summed over outputs: H_out = 2 I
                    u = 2 * Jv
                _, pullback = vjp(logits_of, self.theta)
                (jtu,) = pullback(u)
                total += jtu
        return total.detach() / n + self.weight_decay * v

    __matmul__ = matvec

    def dense(self) -> torch.Tensor:
        """The whole matrix (``size`` products): for tests and small models."""
        eye = torch.eye(self.size)
        return torch.stack([self.matvec(eye[i]) for i in range(self.size)], dim=1)


__all__ = ["CURVATURES", "CurvatureOperator"]
