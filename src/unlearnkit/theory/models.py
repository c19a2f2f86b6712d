"""Pretrained, fine-tuned and golden models, and the remedies (spec/paper.md §2-3).

Every model is what gradient descent on ``½‖A w − b‖² + (λ/2)‖w‖²`` returns
from a starting point ``w0``. It is available two ways that must agree:

- :func:`gd_closed_form` — the limit of GD in closed form (``w0 + A⁺(b − A w0)``
  when ``λ = 0``; the ridge solution otherwise), or its exact ``T``-step iterate;
- :func:`gradient_descent` — actually running GD in float64 with step
  ``step_scale / (σ_max(A)² + λ)``, until the gradient is ``tol`` times its
  size at ``w = 0``, or for exactly ``steps`` steps.

The lab's models (:data:`MODELS`):

===============  ==========================================================
``pretrained``   GD from 0 on all data (``w_o``)
``FT``           GD from ``w_o`` on the retain data (``w_t``)
``golden``       GD from 0 on the retain data (``w_g``)
``A``            ``w_o`` with the ``F ∪ O`` coordinates zeroed (Option A)
``A+FT``         FT started from ``A``
``B+FT``         FT started from ``w_o`` with the ``F`` coordinates zeroed (Option B)
``projection``   FT started from ``P_r w_o`` (the retain row-space component)
===============  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unlearnkit.errors import ConfigError
from unlearnkit.theory.scenario import Scenario

MODELS = ("pretrained", "FT", "golden", "A", "A+FT", "B+FT", "projection")
SOLVERS = ("closed", "gd")


@dataclass(frozen=True)
class _SVD:
    """Thin SVD of ``A`` restricted to its numerical rank (numpy's pinv cut-off)."""

    U: np.ndarray
    s: np.ndarray
    Vt: np.ndarray

    @classmethod
    def of(cls, A: np.ndarray) -> _SVD:
        U, s, Vt = np.linalg.svd(A, full_matrices=False)
        if s.size == 0 or s[0] == 0:
            return cls(U[:, :0], s[:0], Vt[:0])
        keep = s > max(A.shape) * np.finfo(float).eps * s[0]
        return cls(U[:, keep], s[keep], Vt[keep])

    @property
    def sigma_max(self) -> float:
        return float(self.s[0]) if self.s.size else 0.0


def step_size(A: np.ndarray, *, ridge: float = 0.0, step_scale: float = 1.0) -> float:
    """The GD step ``step_scale / L`` with ``L = σ_max(A)² + λ``, the largest Hessian eigenvalue.

    Any ``step_scale`` in ``(0, 2)`` converges; ``1`` is the classic ``1/L``.

    >>> step_size(np.eye(3) * 2.0)
    0.25
    """
    if not 0 < step_scale < 2:
        raise ConfigError(f"step_scale must be in (0, 2) for GD to converge; got {step_scale}")
    L = np.linalg.norm(A, 2) ** 2 + ridge
    if L == 0:
        raise ConfigError("the objective is constant (A = 0 and ridge = 0); GD has nothing to do")
    return float(step_scale / L)


def _check(A: np.ndarray, b: np.ndarray, w0, ridge: float) -> np.ndarray:
    if A.ndim != 2 or b.shape != (A.shape[0],):
        raise ConfigError(f"A must be (n, d) and b (n,); got {A.shape} and {b.shape}")
    if ridge < 0:
        raise ConfigError(f"ridge must be >= 0; got {ridge}")
    w0 = np.zeros(A.shape[1]) if w0 is None else np.asarray(w0, dtype=np.float64)
    if w0.shape != (A.shape[1],):
        raise ConfigError(f"w0 must have shape ({A.shape[1]},); got {w0.shape}")
    return w0


def gd_closed_form(
    A: np.ndarray,
    b: np.ndarray,
    *,
    w0: np.ndarray | None = None,
    ridge: float = 0.0,
    steps: int | None = None,
    step_scale: float = 1.0,
    _svd: _SVD | None = None,
) -> np.ndarray:
    """What GD on ``½‖A w − b‖² + (λ/2)‖w‖²`` from ``w0`` returns, in closed form.

    ``steps=None`` gives the limit; an integer gives the exact iterate after that
    many steps of size :func:`step_size` (``w_T = w_∞ + (I − ηH)^T (w0 − w_∞)``).

    >>> A = np.array([[1.0, 0.0, 0.0]]); b = np.array([2.0])
    >>> gd_closed_form(A, b, w0=np.array([5.0, 1.0, 0.0]))  # row-space part replaced, rest kept
    array([2., 1., 0.])
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    w0 = _check(A, b, w0, ridge)
    svd = _svd or _SVD.of(A)
    V = svd.Vt.T
    if ridge == 0:
        # The GD limit keeps w0's component outside the row space of A (spec §2).
        w_inf = w0 - V @ (V.T @ w0) + V @ ((svd.U.T @ b) / svd.s)
    else:
        # Strictly convex: a unique minimiser whatever w0 (the row-space complement decays).
        w_inf = V @ ((svd.s * (svd.U.T @ b)) / (svd.s**2 + ridge))
    if steps is None:
        return w_inf
    if steps < 0:
        raise ConfigError(f"steps must be >= 0; got {steps}")
    eta = step_size(A, ridge=ridge, step_scale=step_scale)
    # The error w_t − w_∞ is multiplied by (I − ηH) each step; H = V diag(s² + λ) Vᵀ + λ(I − VVᵀ).
    e = w0 - w_inf
    e_row = V.T @ e
    e_rest = e - V @ e_row
    return (
        w_inf
        + V @ ((1 - eta * (svd.s**2 + ridge)) ** steps * e_row)
        + (1 - eta * ridge) ** steps * e_rest
    )


@dataclass(frozen=True)
class GDResult:
    """The last iterate ``w``, the number of steps run, and whether the tolerance was met."""

    w: np.ndarray
    steps: int
    converged: bool
    step_size: float
    grad_norm: float


def gradient_descent(
    A: np.ndarray,
    b: np.ndarray,
    *,
    w0: np.ndarray | None = None,
    ridge: float = 0.0,
    tol: float = 1e-12,
    max_steps: int = 100_000,
    steps: int | None = None,
    step_scale: float = 1.0,
) -> GDResult:
    """Run GD on ``½‖A w − b‖² + (λ/2)‖w‖²`` from ``w0`` in float64.

    Stops when ``‖∇‖ ≤ tol · ‖Aᵀb‖`` (the gradient's size at ``w = 0``) or after
    ``max_steps``; with ``steps`` set it runs exactly that many steps (finite-step mode).

    >>> A = np.array([[1.0, 0.0, 0.0]]); b = np.array([2.0])
    >>> r = gradient_descent(A, b, w0=np.array([5.0, 1.0, 0.0]))
    >>> np.round(r.w, 8).tolist(), r.converged
    ([2.0, 1.0, 0.0], True)
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    w = _check(A, b, w0, ridge).copy()
    if steps is not None and steps < 0:
        raise ConfigError(f"steps must be >= 0; got {steps}")
    if tol <= 0 or max_steps < 0:
        raise ConfigError(f"tol must be > 0 and max_steps >= 0; got {tol}, {max_steps}")
    eta = step_size(A, ridge=ridge, step_scale=step_scale)
    scale = np.linalg.norm(A.T @ b)
    # b = 0 makes the relative test meaningless; fall back to the Hessian's size.
    threshold = tol * (scale if scale > 0 else 1.0 / eta)
    limit = max_steps if steps is None else steps
    grad = A.T @ (A @ w - b) + ridge * w
    t = 0
    while t < limit and (steps is not None or np.linalg.norm(grad) > threshold):
        w -= eta * grad
        grad = A.T @ (A @ w - b) + ridge * w
        t += 1
    gnorm = float(np.linalg.norm(grad))
    return GDResult(
        w=w, steps=t, converged=bool(gnorm <= threshold), step_size=eta, grad_norm=gnorm
    )


# --- remedies (spec §3), applied to w_o before fine-tuning -----------------------------------


def forget_feature_reset(w: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Option A: zero the coordinates the forget data touch (``F ∪ O``)."""
    out = np.array(w, dtype=np.float64)
    blocks = scenario.blocks
    out[blocks["F"]] = 0.0
    out[blocks["O"]] = 0.0
    return out


def retention_reset(w: np.ndarray, scenario: Scenario) -> np.ndarray:
    """Option B: zero only the forget-only coordinates ``F`` (a no-op when ``F`` is empty)."""
    out = np.array(w, dtype=np.float64)
    out[scenario.blocks["F"]] = 0.0
    return out


def retain_projection(w: np.ndarray, scenario: Scenario, *, _svd: _SVD | None = None) -> np.ndarray:
    """``P_r w``: keep only the component in the row space of ``X_r``.

    Needs the retain data instead of feature labels, and works for any overlap.
    """
    Vt = (_svd or _SVD.of(scenario.X_r)).Vt
    return Vt.T @ (Vt @ np.asarray(w, dtype=np.float64))


@dataclass(frozen=True)
class LabModels:
    """Weights of every model in :data:`MODELS`, and how each was obtained.

    ``info[name]`` holds ``steps`` and ``converged`` for the GD solver (``None``
    for closed forms).
    """

    weights: dict[str, np.ndarray]
    solver: str
    ft_steps: int | None
    info: dict[str, dict] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.weights[name]


def lab_models(
    scenario: Scenario,
    *,
    solver: str = "closed",
    ft_steps: int | None = None,
    tol: float = 1e-12,
    max_steps: int = 100_000,
    step_scale: float = 1.0,
) -> LabModels:
    """Compute every model of :data:`MODELS` for ``scenario``.

    ``solver="closed"`` uses :func:`gd_closed_form`, ``"gd"`` runs
    :func:`gradient_descent`. ``ft_steps`` limits every fine-tuning run (FT and
    the remedies followed by FT) to that many steps; ``None`` runs them to
    convergence. Pretraining and golden always run to convergence. Under ridge
    (``λ > 0``) converged FT *is* golden (the objective is strictly convex), so
    the ridge sweep uses a finite ``ft_steps`` to show how much ridge helps in practice.

    >>> from unlearnkit.theory.scenario import make_scenario
    >>> s = make_scenario(n_f=5, n_r=20, d_f=20, d_o=10, d_r=30, seed=0)
    >>> m = lab_models(s)
    >>> same = lambda a, b: bool(np.allclose(m[a], m[b], atol=1e-10))
    >>> same("FT", "pretrained"), same("projection", "golden"), same("FT", "golden")
    (True, True, False)
    """
    if solver not in SOLVERS:
        raise ConfigError(f"solver must be one of {SOLVERS}; got {solver!r}")
    if ft_steps is not None and ft_steps < 0:
        raise ConfigError(f"ft_steps must be >= 0 or None; got {ft_steps}")
    ridge = scenario.config.ridge
    X, y, X_r, y_r = scenario.X, scenario.y, scenario.X_r, scenario.y_r
    info: dict[str, dict] = {}

    if solver == "closed":
        svd_all, svd_r = _SVD.of(X), _SVD.of(X_r)

        def train(name, A, b, svd, w0=None, steps=None):
            info[name] = {"steps": steps, "converged": None}
            return gd_closed_form(
                A, b, w0=w0, ridge=ridge, steps=steps, step_scale=step_scale, _svd=svd
            )
    else:
        svd_all = svd_r = None

        def train(name, A, b, svd, w0=None, steps=None):
            r = gradient_descent(
                A, b, w0=w0, ridge=ridge, tol=tol, max_steps=max_steps, steps=steps,
                step_scale=step_scale,
            )  # fmt: skip
            info[name] = {"steps": r.steps, "converged": r.converged if steps is None else None}
            return r.w

    w = {}
    w["pretrained"] = train("pretrained", X, y, svd_all)
    w["golden"] = train("golden", X_r, y_r, svd_r)
    w["FT"] = train("FT", X_r, y_r, svd_r, w0=w["pretrained"], steps=ft_steps)
    w["A"] = forget_feature_reset(w["pretrained"], scenario)
    info["A"] = {"steps": 0, "converged": None}
    w["A+FT"] = train("A+FT", X_r, y_r, svd_r, w0=w["A"], steps=ft_steps)
    w_b = retention_reset(w["pretrained"], scenario)
    w["B+FT"] = train("B+FT", X_r, y_r, svd_r, w0=w_b, steps=ft_steps)
    w_p = retain_projection(w["pretrained"], scenario, _svd=svd_r)
    w["projection"] = train("projection", X_r, y_r, svd_r, w0=w_p, steps=ft_steps)
    return LabModels(weights={k: w[k] for k in MODELS}, solver=solver, ft_steps=ft_steps, info=info)
