"""Certified removal for L2-regularised logistic regression (Guo et al., ICML 2020).

Guo, Goldstein, Hannun and van der Maaten ("Certified Data Removal from Machine
Learning Models") train a linear model on a *perturbed* objective

    L(θ; D) = Σ_{i∈D} ℓ(θ; xᵢ, yᵢ) + (λ n / 2) ||θ||² + bᵀθ,      b ~ N(0, σ²) per coordinate,

and remove a set ``M`` of ``m`` samples with one Newton step on the objective of
the remaining data ``D' = D \\ M``:

    Δ  = Σ_{j∈M} ∇ℓ(θ; xⱼ, yⱼ) + λ m θ        (the removed samples' terms, and the
                                               regulariser shrinking from λn to λ(n−m))
    θ' = θ + H_{D'}⁻¹ Δ,                        H_{D'} = ∇²L(θ; D') (exact, at θ).

The step is exact up to the change of curvature between ``θ`` and ``θ'``, so the
gradient of the remaining objective at ``θ'`` (the *gradient residual*) is small
but not zero. The noise ``b`` hides it: if the accumulated residual stays below
``ε' = σ ε / c`` with ``c = sqrt(2 log(1.5 / δ))``, the model after removal is
(ε, δ)-indistinguishable from one trained on ``D'`` alone with the same noise
distribution (the paper's certified-removal theorem). Past that budget the certificate is gone
and the model must be retrained on the remaining data.

Choices made here (the paper leaves them open or treats the binary case):

- **Multinomial** softmax cross-entropy over ``K`` classes, weights and bias in
  float64. The bias is the weight of a constant feature 1 (``x̃ = [x, 1]``), so it
  is regularised and perturbed like every other weight; ``θ`` is the ``K × (d+1)``
  matrix ``[W | c]``. This keeps the Hessian at least ``λ n I`` (positive definite) and
  the Newton step one formula for every parameter.
- **Noise**: Gaussian, standard deviation ``noise`` (σ) per coordinate of ``θ``,
  drawn once from a ``torch.Generator`` seeded with ``seed``: refitting with the
  same seed on the remaining data uses the *same* ``b`` (the paper's comparison).
  ``noise=0`` disables the perturbation: the budget is then 0, nothing is
  certified (``certified`` is False in every report) and no warning or error is
  raised for it, since there is no certificate to protect.
- **Residual bound** (what the budget is charged with, per Newton step): for a
  sample with logits ``z`` the Hessian of ``log Σ exp(z) − z_y`` in ``z`` is
  ``A(z) = diag(p) − p pᵀ``, and ``||A(z + u) − A(z)||₂ ≤ γ ||u||₂`` with
  ``γ = 1/√2`` (its derivative is the third cumulant ``E_p[(u−ū)(v−v̄)²]``, at most
  ``(max u − min u) · Var_p(v) ≤ √2 ||u|| · ½`` for a unit ``v``; two classes reach
  ``√2 / (3√3) ≈ 0.27``, so the proven constant is loose by < 3×). Integrating along
  the step gives the data-dependent bound

      ||∇L(θ'; D')|| ≤ ||H Δθ − Δ|| + (γ/2) Σ_{i∈D'} ||x̃ᵢ|| · ||ΔW x̃ᵢ||²,

  the first term being the linear solve's own residual (≈ 0 for the dense
  Cholesky solve). It plays the role of the paper's data-dependent bound (stated
  there for binary losses on features of norm at most 1). Residuals add
  up over requests (each step leaves the earlier residual in place), so the budget
  is charged with the *sum* of the bounds, starting from the fit's own gradient
  norm (L-BFGS stops near, not at, the optimum). The exact residual
  ``||∇L(θ; D')||`` is cheap here and is reported alongside (``residual``); it is
  always below ``spent``.
- **Budget exceeded**: ``on_budget="warn"`` (default) applies the step, sets
  ``retrain_due = True`` and warns once (a ``RuntimeWarning``, when the budget is
  first crossed, not at every later step); ``"raise"`` raises
  :class:`~unlearnkit.errors.CertificationBudgetError` *before* applying it.
- **Solves**: dense Cholesky for up to ``DENSE_LIMIT`` parameters (digits: 650),
  conjugate gradients (:func:`unlearnkit.influence.conjugate_gradient`) on
  closed-form Hessian-vector products above.
- **Fit**: L-BFGS (``scipy.optimize.minimize``, L-BFGS-B without bounds) from zero,
  then backtracked Newton steps until ``||∇L|| / n ≤ tol`` (the gradient of the mean
  objective): L-BFGS is slow to go below about 1e-8 on ill-conditioned data.

The method ``certified_logreg`` (:class:`CertifiedLogReg`) applies this to a
``logreg`` model. Its ``setup`` fits the estimator on the training data *in the
model's input space*: inputs pass through the model's preprocessing (fitted on the
original training data, and kept, as by every approximate method), so the
certificate covers the linear layer given that preprocessing. Use preprocessing
``none`` for a certificate that covers the whole model. The budget spent grows
with the feature norms (roughly ``||x||³``): the paper scales features to
``||x|| ≤ 1``.

>>> import torch, unlearnkit as uk
>>> train = uk.datasets.load("digits").train.take(torch.arange(500))
>>> est = CertifiedLogisticRegression(l2=0.1, noise=5.0, seed=0).fit(train.X / 16, train.y)
>>> _ = est.remove(torch.arange(3))  # one request, one Newton step
>>> est.steps, est.certified, est.residual <= est.spent <= est.budget
(1, True, True)
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import Annotated

import torch
from torch import nn

from unlearnkit.data.forget import ForgetSplit
from unlearnkit.errors import (
    AlreadyDeletedError,
    CertificationBudgetError,
    ConfigError,
    DuplicateIdsError,
    ForgetSelectionError,
    NotFittedError,
    UnknownIdsError,
)
from unlearnkit.methods.base import UnlearningMethod, register
from unlearnkit.params import OneOf, Range, Seed

HESSIAN_LIPSCHITZ = 1 / math.sqrt(2)  # γ of the softmax cross-entropy Hessian in the logits
DENSE_LIMIT = 3000  # parameters up to which Hessians are built and factorised densely
BUDGET_CHOICES = ("warn", "raise")
_DTYPE = torch.float64


def certificate_constant(delta: float) -> float:
    """``c = sqrt(2 log(1.5 / δ))``: the budget is ``σ ε / c``."""
    return math.sqrt(2 * math.log(1.5 / delta))


class _HessianOperator:
    """``v ↦ H v`` for the remaining objective's Hessian, in closed form (for CG)."""

    def __init__(self, Xt: torch.Tensor, P: torch.Tensor, ridge: float) -> None:
        self.Xt, self.P, self.ridge = Xt, P, ridge
        self.shape = (P.shape[1], Xt.shape[1])

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        V = v.reshape(self.shape).to(_DTYPE)
        U = self.Xt @ V.T
        AU = self.P * U - self.P * (self.P * U).sum(1, keepdim=True)
        return (AU.T @ self.Xt + self.ridge * V).reshape(-1)


class CertifiedLogisticRegression:
    """Multinomial logistic regression trained for certified removal (see the module text).

    Hyper-parameters (keyword-only, stored as given): ``l2`` (λ, per sample: the
    objective's regulariser is ``λ n / 2 ||θ||²``), ``noise`` (σ of the objective
    perturbation, 0 to disable), ``epsilon`` and ``delta`` (the certificate),
    ``on_budget`` (``"warn"`` or ``"raise"``), ``seed`` (of the noise), ``tol``
    (fit tolerance on the mean objective's gradient norm) and ``max_iter`` (L-BFGS
    iterations before the Newton polish).

    ``fit(X, y)`` keeps the training data (float64, features flattened): each
    ``remove(rows)`` request, with ``rows`` positions in that ``X``, needs the
    Hessian of the remaining samples. After fitting: ``coef_`` (``K × d``),
    ``intercept_`` (``K``), ``budget``, ``spent`` (cumulative residual bound),
    ``residual`` (exact ``||∇L||`` on the remaining data), ``steps``,
    ``retrain_due`` and ``certified``.
    """

    def __init__(
        self,
        *,
        l2: float = 1e-3,
        noise: float = 0.1,
        epsilon: float = 1.0,
        delta: float = 1e-4,
        on_budget: str = "warn",
        seed: int = 0,
        tol: float = 1e-10,
        max_iter: int = 100,
    ) -> None:
        self.l2 = l2
        self.noise = noise
        self.epsilon = epsilon
        self.delta = delta
        self.on_budget = on_budget
        self.seed = seed
        self.tol = tol
        self.max_iter = max_iter

    # -- hyper-parameters -----------------------------------------------------
    def get_params(self) -> dict:
        names = ("l2", "noise", "epsilon", "delta", "on_budget", "seed", "tol", "max_iter")
        return {k: getattr(self, k) for k in names}

    def _check_params(self) -> None:
        if not self.l2 > 0:
            raise ConfigError(
                f"l2 must be > 0 (the objective must be strongly convex); got {self.l2}"
            )
        if not self.noise >= 0:
            raise ConfigError(f"noise must be >= 0; got {self.noise}")
        if not self.epsilon > 0 or not 0 < self.delta < 1:
            raise ConfigError(
                f"epsilon must be > 0 and delta in (0, 1); got {self.epsilon}, {self.delta}"
            )
        if self.on_budget not in BUDGET_CHOICES:
            raise ConfigError(f"on_budget must be one of {BUDGET_CHOICES}; got {self.on_budget!r}")

    @property
    def budget(self) -> float:
        """``σ ε / c``: the gradient residual the certificate tolerates (0 without noise)."""
        return self.noise * self.epsilon / certificate_constant(self.delta)

    @property
    def certified(self) -> bool:
        """Whether the current model carries the (ε, δ) certificate."""
        self._check_fitted()
        return self.noise > 0 and self.spent <= self.budget

    # -- the objective ----------------------------------------------------------
    def _check_fitted(self) -> None:
        if getattr(self, "theta_", None) is None:
            raise NotFittedError("CertifiedLogisticRegression is not fitted; call fit(X, y) first")

    @property
    def coef_(self) -> torch.Tensor:
        self._check_fitted()
        return self.theta_[:, :-1].clone()

    @property
    def intercept_(self) -> torch.Tensor:
        self._check_fitted()
        return self.theta_[:, -1].clone()

    @property
    def n_remaining(self) -> int:
        return int(self.remaining_.sum())

    def _data(self):
        keep = self.remaining_
        return self.Xt_[keep], self.y_[keep]

    def _gradient(self, theta, Xt, y) -> torch.Tensor:
        """``∇L(θ)`` of the summed objective on ``(Xt, y)``."""
        P = torch.softmax(Xt @ theta.T, dim=1)
        P[torch.arange(len(y)), y] -= 1
        return P.T @ Xt + self.l2 * len(y) * theta + self.b_

    def _objective(self, theta, Xt, y) -> torch.Tensor:
        Z = Xt @ theta.T
        loss = (torch.logsumexp(Z, dim=1) - Z.gather(1, y[:, None]).squeeze(1)).sum()
        return loss + self.l2 * len(y) / 2 * theta.pow(2).sum() + (self.b_ * theta).sum()

    def _dense_hessian(self, theta, Xt, y) -> torch.Tensor:
        """``Σᵢ A(zᵢ) ⊗ x̃ᵢx̃ᵢᵀ + λ n I``, rows and columns in ``θ``'s (class, feature) order."""
        K, D = theta.shape
        P = torch.softmax(Xt @ theta.T, dim=1)
        A = torch.diag_embed(P) - P[:, :, None] * P[:, None, :]
        H = torch.empty((K * D, K * D), dtype=_DTYPE)
        for k in range(K):
            T = (A[:, k, :, None] * Xt[:, None, :]).reshape(len(Xt), K * D)
            H[k * D : (k + 1) * D] = Xt.T @ T
        H.diagonal().add_(self.l2 * len(y))
        return H

    def _solve(self, theta, Xt, y, rhs) -> tuple[torch.Tensor, float]:
        """``H⁻¹ rhs`` and the solve's residual norm ``||H x − rhs||``."""
        size = rhs.numel()
        if size <= DENSE_LIMIT:
            H = self._dense_hessian(theta, Xt, y)
            x = torch.cholesky_solve(rhs.reshape(-1, 1), torch.linalg.cholesky(H)).reshape(-1)
            return x.reshape(theta.shape), float((H @ x - rhs.reshape(-1)).norm())
        from unlearnkit.influence import conjugate_gradient

        operator = _HessianOperator(Xt, torch.softmax(Xt @ theta.T, dim=1), self.l2 * len(y))
        solve = conjugate_gradient(
            operator, rhs.reshape(-1), tol=1e-12, max_iterations=10 * size, check_curvature=False
        )
        x = solve.x.reshape(theta.shape)
        return x, float((operator @ x.reshape(-1) - rhs.reshape(-1)).norm())

    # -- fit ----------------------------------------------------------------------
    def fit(
        self, X: torch.Tensor, y: torch.Tensor, *, num_classes: int | None = None
    ) -> CertifiedLogisticRegression:
        """Minimise the perturbed objective on ``(X, y)``.

        ``y`` holds class indices; ``num_classes`` (K) defaults to ``max(y) + 1``.
        """
        self._check_params()
        X = torch.as_tensor(X).detach().reshape(len(X), -1).to(_DTYPE)
        y = torch.as_tensor(y).detach().long()
        if len(X) == 0 or len(X) != len(y):
            raise ConfigError(f"fit needs as many labels as samples (> 0); got {len(X)}, {len(y)}")
        if int(y.min()) < 0:
            raise ConfigError("labels must be class indices 0..K-1")
        num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
        if num_classes < 2 or int(y.max()) >= num_classes:
            raise ConfigError(f"need at least 2 classes and labels below {num_classes}")
        self.num_classes = num_classes
        self.Xt_ = torch.cat([X, torch.ones(len(X), 1, dtype=_DTYPE)], dim=1)
        self.y_ = y
        self.remaining_ = torch.ones(len(X), dtype=torch.bool)
        generator = torch.Generator().manual_seed(self.seed)
        shape = (num_classes, self.Xt_.shape[1])
        self.b_ = self.noise * torch.randn(shape, generator=generator, dtype=_DTYPE)
        self.theta_ = self._minimise(torch.zeros(shape, dtype=_DTYPE))
        self.steps = 0
        self.removed = 0
        self.retrain_due = False
        self.residual = float(self._gradient(self.theta_, self.Xt_, self.y_).norm())
        self.spent = self.residual  # the fit's own residual counts against the budget
        return self

    def _minimise(self, theta: torch.Tensor) -> torch.Tensor:
        from scipy.optimize import minimize

        Xt, y = self.Xt_, self.y_
        n = len(y)
        shape = theta.shape

        rows = torch.arange(n)

        def mean_objective(flat):
            t = torch.from_numpy(flat).view(shape)
            Z = Xt @ t.T
            lse = torch.logsumexp(Z, dim=1, keepdim=True)
            value = (lse.squeeze(1) - Z[rows, y]).sum() + (self.l2 * n / 2 * t + self.b_).mul(
                t
            ).sum()
            P = torch.exp(Z - lse)
            P[rows, y] -= 1
            gradient = P.T @ Xt + self.l2 * n * t + self.b_
            return float(value) / n, (gradient / n).reshape(-1).numpy()

        # L-BFGS (scipy's L-BFGS-B without bounds: its two-loop recursion runs in compiled
        # code, far fewer tensor operations than torch.optim.LBFGS on a busy machine).
        result = minimize(
            mean_objective,
            theta.reshape(-1).numpy(),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": self.tol / 10, "ftol": 0.0, "maxcor": 20},
        )
        theta = torch.from_numpy(result.x).view(shape).clone()
        # Newton polish: L-BFGS is slow to go below ~1e-8 on ill-conditioned data, and
        # a few exact Newton steps (backtracked, so safe far from the optimum too) are
        # cheap at these sizes.
        for _ in range(50):
            g = self._gradient(theta, Xt, y)
            if float(g.norm()) / n <= self.tol:
                break
            step, _ = self._solve(theta, Xt, y, g)
            f0, slope, t = float(self._objective(theta, Xt, y)), float((g * step).sum()), 1.0
            while t > 1e-10:
                candidate = theta - t * step
                f = float(self._objective(candidate, Xt, y))
                if f <= f0 - 1e-4 * t * slope or (
                    f <= f0 + 1e-12 * abs(f0)  # at rounding level: judge by the gradient
                    and self._gradient(candidate, Xt, y).norm() < g.norm()
                ):
                    break
                t /= 2
            theta = candidate
        residual = float(self._gradient(theta, Xt, y).norm()) / n
        if residual > self.tol:
            warnings.warn(
                f"the certified fit stopped at gradient norm {residual:.3g} per sample, above "
                f"tol={self.tol:g} (the residual is charged to the removal budget)",
                RuntimeWarning,
                stacklevel=3,
            )
        return theta

    # -- removal ------------------------------------------------------------------
    def remove(self, rows) -> CertifiedLogisticRegression:
        """Remove the samples at positions ``rows`` of the fitted ``X``: one Newton step.

        Charges the step's residual bound to the budget; see ``on_budget`` for what
        happens when it would be exceeded. Returns ``self``.
        """
        self._check_fitted()
        rows = torch.as_tensor(rows, dtype=torch.int64).reshape(-1)
        if len(rows) == 0:
            return self
        n_fit = len(self.y_)
        if bool(((rows < 0) | (rows >= n_fit)).any()):
            raise UnknownIdsError(f"rows must be positions 0..{n_fit - 1} of the fitted data")
        if torch.unique(rows).numel() != len(rows):
            raise DuplicateIdsError("a removal request names the same row more than once")
        if not bool(self.remaining_[rows].all()):
            gone = rows[~self.remaining_[rows]][:5].tolist()
            raise AlreadyDeletedError(f"rows already removed: {gone}; each row is removed once")
        if len(rows) >= self.n_remaining:
            raise ForgetSelectionError(
                "the request removes every remaining sample; nothing is left"
            )
        theta = self.theta_
        Xr, yr = self.Xt_[rows], self.y_[rows]
        P = torch.softmax(Xr @ theta.T, dim=1)
        P[torch.arange(len(rows)), yr] -= 1
        delta = P.T @ Xr + self.l2 * len(rows) * theta
        keep = self.remaining_.clone()
        keep[rows] = False
        Xt, y = self.Xt_[keep], self.y_[keep]
        step, solve_residual = self._solve(theta, Xt, y, delta)
        moved = Xt @ step.T  # ΔW x̃ᵢ for every remaining sample
        bound = solve_residual + HESSIAN_LIPSCHITZ / 2 * float(
            (Xt.norm(dim=1) * moved.pow(2).sum(1)).sum()
        )
        spent = self.spent + bound
        over = self.noise > 0 and spent > self.budget
        if over and self.on_budget == "raise":
            raise CertificationBudgetError(
                f"removing {len(rows)} sample(s) would spend {spent:.4g} of the certified "
                f"removal budget {self.budget:.4g} (sigma*epsilon/c with noise={self.noise}, "
                f"epsilon={self.epsilon}, delta={self.delta}; already spent {self.spent:.4g}, "
                f"this request {bound:.4g}); retrain instead: fit() on the remaining data "
                "(then the budget starts afresh), or allow more with a larger noise or epsilon"
            )
        self.theta_ = theta + step
        self.remaining_ = keep
        self.steps += 1
        self.removed += len(rows)
        self.spent = spent
        self.residual = float(self._gradient(self.theta_, Xt, y).norm())
        if over and not self.retrain_due:
            self.retrain_due = True
            warnings.warn(
                f"certified removal budget exceeded: spent {spent:.4g} of {self.budget:.4g} "
                f"after {self.removed} removal(s) in {self.steps} step(s); the model is no "
                "longer certified: retrain on the remaining data (fit) to restore it",
                RuntimeWarning,
                stacklevel=2,
            )
        return self

    def report(self) -> dict:
        """Where the certificate stands: steps, samples removed, residuals and budget."""
        self._check_fitted()
        return {
            "steps": self.steps,
            "removed": self.removed,
            "spent": self.spent,
            "residual": self.residual,
            "budget": self.budget,
            "retrain_due": self.retrain_due,
            "certified": self.certified,
        }

    # -- state ----------------------------------------------------------------------
    _STATE = ("theta_", "b_", "Xt_", "y_", "remaining_")
    _SCALARS = ("num_classes", "steps", "removed", "spent", "residual", "retrain_due")

    def state_dict(self) -> dict:
        """Fitted state (tensors and numbers) and the hyper-parameters it was made with."""
        self._check_fitted()
        return {
            **{k: getattr(self, k).clone() for k in self._STATE},
            **{k: getattr(self, k) for k in self._SCALARS},
            "params": self.get_params(),
        }

    def load_state_dict(self, state: dict) -> CertifiedLogisticRegression:
        """Restore ``state_dict()``; the hyper-parameters must match this estimator's."""
        missing = [k for k in (*self._STATE, *self._SCALARS, "params") if k not in state]
        if missing:
            raise ConfigError(f"not a CertifiedLogisticRegression state: missing {missing}")
        if state["params"] != self.get_params():
            raise ConfigError(
                f"the state was made with {state['params']}, this estimator has "
                f"{self.get_params()}; construct it with the same hyper-parameters"
            )
        for k in self._STATE:
            setattr(self, k, state[k].clone())
        for k in self._SCALARS:
            setattr(self, k, state[k])
        return self


# -- the method -------------------------------------------------------------------------


def _logreg_parts(model: nn.Module) -> tuple[nn.Module | None, nn.Linear]:
    """``(preprocessing or None, linear)`` of a logreg model; anything else is a ConfigError."""
    from unlearnkit.models import Preprocessed

    preprocess, net = (
        (model.preprocess, model.net) if isinstance(model, Preprocessed) else (None, model)
    )
    layers = list(net.children()) if isinstance(net, nn.Sequential) else []
    if (
        len(layers) != 2
        or not isinstance(layers[0], nn.Flatten)
        or not isinstance(layers[1], nn.Linear)
        or layers[1].bias is None
    ):
        raise ConfigError(
            "certified_logreg needs a multinomial logistic regression (Flatten + Linear "
            f"with bias, optionally preprocessed); got {type(net).__name__}: use --model logreg"
        )
    return preprocess, layers[1]


@register
class CertifiedLogReg(UnlearningMethod):
    """Certified removal (Guo et al., 2020) for ``logreg``: one Newton step per request.

    ``setup`` (untimed) refits the model's linear layer on the perturbed,
    L2-regularised objective (:class:`CertifiedLogisticRegression`, in the model's
    input space after its fitted preprocessing); ``unlearn`` removes the forget set
    in requests of ``request_size`` samples (default: the whole forget set as one
    request), one Newton step each, and attaches ``unlearn_info`` (steps, removed,
    spent, residual, budget, retrain_due, certified, fitted_in_unlearn). Called
    without ``setup``, ``unlearn`` fits first. ``l2`` is λ of the mean objective
    (per sample), ``noise`` σ of the objective perturbation (0: no certificate),
    ``epsilon`` and ``delta`` the certificate, ``on_budget`` what happens past it.
    """

    name = "certified_logreg"
    summary = "certified removal for logistic regression: Newton steps under a noise budget"
    model_kinds = ("logreg",)

    def __init__(
        self,
        *,
        l2: Annotated[float, Range(gt=0)] = 1e-3,
        noise: Annotated[float, Range(ge=0)] = 0.1,
        epsilon: Annotated[float, Range(gt=0)] = 1.0,
        delta: Annotated[float, Range(gt=0, lt=1)] = 1e-4,
        request_size: Annotated[int | None, Range(ge=1)] = None,
        on_budget: Annotated[str, OneOf(BUDGET_CHOICES)] = "warn",
        tolerance: Annotated[float, Range(gt=0)] = 1e-10,
        seed: Seed = 0,
    ) -> None:
        self.l2 = l2
        self.noise = noise
        self.epsilon = epsilon
        self.delta = delta
        self.request_size = request_size
        self.on_budget = on_budget
        self.tolerance = tolerance
        self.seed = seed

    def estimator(self) -> CertifiedLogisticRegression:
        """A fresh estimator with this method's hyper-parameters."""
        return CertifiedLogisticRegression(
            l2=self.l2, noise=self.noise, epsilon=self.epsilon, delta=self.delta,
            on_budget=self.on_budget, seed=self.seed, tol=self.tolerance,
        )  # fmt: skip

    @staticmethod
    @torch.no_grad()
    def _inputs(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
        preprocess, _ = _logreg_parts(model)
        if preprocess is not None:
            was_training = preprocess.training
            preprocess.eval()
            X = preprocess(X)
            preprocess.train(was_training)
        return X.reshape(len(X), -1)

    @staticmethod
    def _write(model: nn.Module, estimator: CertifiedLogisticRegression) -> None:
        _, linear = _logreg_parts(model)
        with torch.no_grad():
            linear.weight.copy_(estimator.coef_.to(linear.weight.dtype))
            linear.bias.copy_(estimator.intercept_.to(linear.bias.dtype))

    def setup(self, model: nn.Module, split: ForgetSplit) -> nn.Module:
        _, linear = _logreg_parts(model)
        out = copy.deepcopy(model)
        estimator = self.estimator()
        estimator.fit(
            self._inputs(out, split.train.X), split.train.y, num_classes=linear.out_features
        )
        self._write(out, estimator)
        out.certified_removal = {"estimator": estimator, "ids": split.train.ids.clone()}
        return out

    def unlearn(self, model: nn.Module, split: ForgetSplit) -> nn.Module:
        prepared = getattr(model, "certified_removal", None)
        fitted_here = not (
            isinstance(prepared, dict)
            and prepared["estimator"].get_params() == self.estimator().get_params()
            and torch.equal(prepared["ids"], split.train.ids)
        )
        out = self.setup(model, split) if fitted_here else copy.deepcopy(model)
        estimator = out.certified_removal["estimator"]
        rows = split.train.positions(split.forget.ids)
        size = self.request_size or max(1, len(rows))
        for start in range(0, len(rows), size):
            estimator.remove(rows[start : start + size])
        self._write(out, estimator)
        out.unlearn_info = {**estimator.report(), "fitted_in_unlearn": fitted_here}
        return out


__all__ = ["CertifiedLogReg", "CertifiedLogisticRegression", "certificate_constant"]
