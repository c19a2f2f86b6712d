"""Exact unlearning for linear least squares: forget by downdating, not by refitting.

:class:`LinearRegressionUnlearner` fits ridge regression (``λ > 0``) or
min-norm least squares (``λ = 0``, also with fewer samples than features) and
keeps what it needs to remove samples later.

**Fit and refit** never solve the normal equations. They use the SVD of the
design, ``X = U S Vᵀ``: the coefficients are ``V diag(s / (s² + λ)) Uᵀ Y``
(for ``λ = 0``: ``1 / s``, with singular values at or below
``max(n, d) · eps · s_max`` treated as zero, the cut-off of LAPACK's ``gelsd``
and NumPy's ``lstsq``). With ``n ≥ d`` the SVD is taken of the ``d × d``
triangle of a Householder QR of ``X`` (``Q`` is applied to ``Y`` and never
formed), so the cost is that of one QR. The answer is then as accurate as the
problem's own conditioning allows, not its square.

The same SVD gives the factorised statistics for later removals:

- **primal form** (``n ≥ d``): ``H = XᵀX + λI = V diag(s² + λ) Vᵀ`` and ``b = XᵀY``;
- **Gram form** (``n < d``): ``K = XXᵀ + λI = U diag(s² + λ) Uᵀ``, with
  ``coef = Xᵀ K⁻¹ Y``.

``forget(ids)`` removes ``k`` rows without touching the others. In the primal
form the new statistics are ``H' = H − UᵀU`` (``U``: the removed rows) and,
writing ``H = RᵀR`` and ``V = R⁻ᵀUᵀ``, Woodbury gives
``H'⁻¹ = R⁻¹ (I + V C⁻¹ Vᵀ) R⁻ᵀ`` with the small *capacitance* ``C = I − VᵀV``:
``O(k d²)`` work instead of the ``O(n d²)`` of a refit. In the Gram form the
retained system is a principal sub-matrix of ``K``; with ``W = K⁻¹E`` (``E``:
the identity's columns of the removed rows) and ``M = Eᵀ K⁻¹ E``, the solution
is ``K⁻¹ỹ − W M⁻¹ (K⁻¹ỹ)_D`` restricted to the kept rows (``ỹ``: targets with
the removed rows zeroed) — ``O(k n²)`` instead of ``O(n² d)``.

**Every downdate is checked, whatever λ.** Downdated statistics carry the
rounding of the statistics they came from (``≈ eps · ‖H_fit‖``), and a solve
with them multiplies that by ``‖H'⁻¹‖``; Woodbury adds a factor ``1 / λ_min(C)``.
The engine estimates the coefficients' relative error from those quantities
(see :meth:`LinearRegressionUnlearner._estimate_primal` and
``_estimate_gram``) and accepts a downdate only when the estimate is at most
``tol``. Otherwise it tries a Cholesky refactorisation of the downdated
statistics (``O(d³)``, no pass over the data) under the same check, and
finally **falls back** to the stable SVD refit on the retained rows. The
capacitance check (``rcond(C) < rcond_tol``) stays as a first, cheaper filter.

**Primal or Gram.** With ``solver="auto"`` the form follows the row count:
primal while ``n_remaining ≥ d``, Gram below. A ``forget`` that takes the
retained count below ``d`` refits in the Gram form (reported as ``path="refit"``
with the switch in ``reason``; not a fallback). Rows are only ever removed, so
the switch goes one way.

Removed rows accumulate against the last factorisation; once more than
``max_pending`` rows are pending the engine refactorises (cheaper than growing
``C``). Every ``forget`` returns a :class:`LinearForgetResult` saying which path
it took, why, and the estimated error of the result.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from unlearnkit.checkpoint import load_npz_state, save_npz_state
from unlearnkit.errors import (
    ConfigError,
    DatasetError,
    ForgetSelectionError,
    NotFittedError,
    StoreError,
)
from unlearnkit.exact.ids import as_id_array, coerce_forget_ids

FORMAT_VERSION = 2
SOLVERS = ("auto", "primal", "gram")
_EPS = np.finfo(np.float64).eps


_CONTROLLER = None


def _single_blas_thread():
    """Context limiting BLAS to one thread.

    A downdate is a handful of O(k d²) triangular solves and small factorisations:
    waking BLAS threads costs more than they save (5-8x slower measured on a busy
    2-core machine), whereas a refit's large matrix products gain from them.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


@dataclass(frozen=True)
class LinearForgetResult:
    """What one ``forget`` call did.

    ``path`` is ``"woodbury"`` (rank-k downdate), ``"refactorisation"`` (Cholesky
    of the downdated statistics) or ``"refit"`` (stable SVD refit on the
    retained rows). ``fallback`` is True when a cheaper path was rejected
    because it would have lost precision (or the statistics are singular);
    ``reason`` says which check failed and by how much. A planned refit (the
    primal → Gram switch) or refactorisation (too many pending rows) is not a
    fallback. ``rcond`` is the capacitance matrix's reciprocal condition number
    (1 = harmless, near 0 = the removal nearly made the system singular; None
    when no downdate was tried). ``error_estimate`` is the first-order estimate
    of the coefficients' relative error on the path taken (``eps`` times the
    relevant condition numbers; the actual error is usually far smaller), and
    ``cond`` the condition number of the statistics solved with
    (``XᵀX + λI`` or ``XXᵀ + λI`` of the retained rows; an upper estimate on
    the downdate paths).
    """

    removed: int
    n_remaining: int
    path: str
    fallback: bool
    reason: str
    rcond: float | None
    pending: int
    form: str
    seconds: float
    error_estimate: float | None = None
    cond: float | None = None


@dataclass(frozen=True)
class _Factor:
    """Factorised state; replaced wholesale so a failed forget never leaves it half-updated.

    ``S0 = R0ᵀR0`` with ``R0`` upper triangular (``kind="cholesky"``) or
    ``R0 = diag(√e) Qᵀ`` (``kind="svd"``, straight from a refit). ``kind="lstsq"``
    means singular statistics (``λ = 0``, rank-deficient rows): no factor, every
    forget refits.
    """

    form: str  # "primal" | "gram"
    kind: str  # "svd" | "cholesky" | "lstsq"
    S0: np.ndarray | None = None  # H0 (primal) or K0 (gram) at the last factorisation
    R0: np.ndarray | None = None  # kind cholesky: upper Cholesky factor of S0
    Q: np.ndarray | None = None  # kind svd: eigenvectors of S0
    e: np.ndarray | None = None  # kind svd: eigenvalues of S0 (s² + λ)
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # gram: rows of K0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # removed since
    V: np.ndarray | None = None  # primal: R0⁻ᵀUᵀ (d × m); gram: K0⁻¹E (n_k × m)
    C: np.ndarray | None = None  # primal: I − VᵀV; gram: Eᵀ K0⁻¹ E (m × m)
    # Error bookkeeping. Downdated statistics inherit the rounding of the
    # statistics they were subtracted from, so ``scale`` is the norm at the last
    # *refit*, not of S0.
    scale: float = 0.0  # ‖S_refit‖₂
    inv_norm: float = np.inf  # ‖S0⁻¹‖₂ (exact for svd, a LAPACK estimate for cholesky)
    b_scale: float = 0.0  # primal: ‖X‖_F ‖Y‖_F of the refit rows, bounds b's rounding
    x_norm: float = 0.0  # gram: ‖X‖₂ of the refit rows (w = Xᵀα scales α's error)


def _as_ids(ids, n: int) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DatasetError(
            f"ids must be a 1-D sequence of integers; got {arr.dtype}{list(arr.shape)}"
        )
    if arr.size != n:
        raise DatasetError(f"need one id per row: {n} rows but {arr.size} ids")
    return arr.astype(np.int64)


def _rt_solve(f: _Factor, B: np.ndarray) -> np.ndarray:
    """``R0⁻ᵀ B`` for ``S0 = R0ᵀR0``."""
    if f.kind == "svd":
        return (f.Q.T @ B) / np.sqrt(f.e)[:, None]
    return sla.solve_triangular(f.R0, B, trans="T", check_finite=False)


def _r_solve(f: _Factor, Z: np.ndarray) -> np.ndarray:
    """``R0⁻¹ Z`` for ``S0 = R0ᵀR0``."""
    if f.kind == "svd":
        return f.Q @ (Z / np.sqrt(f.e)[:, None])
    return sla.solve_triangular(f.R0, Z, check_finite=False)


def _inverse_norm(R: np.ndarray) -> float:
    """Estimate of ``‖(RᵀR)⁻¹‖₂ = ‖R⁻¹‖₂²`` in O(d²) from LAPACK's condition estimator.

    ``‖R⁻¹‖₂² ≤ ‖R⁻¹‖₁ ‖R⁻¹‖_∞``, and ``dtrcon`` estimates both norms
    (through ``rcond = 1 / (‖R‖ ‖R⁻¹‖)``) without forming the inverse.
    """
    absR = np.abs(R)
    inv = 1.0
    for norm, axis in (("1", 0), ("I", 1)):
        rc, info = lapack.dtrcon(R, norm=norm, uplo="U")
        if info != 0 or not rc > 0:
            return np.inf
        inv /= rc * absR.sum(axis=axis).max()
    return float(inv)


def _svd(A: np.ndarray, *, full: bool):
    """SVD by ``gesdd``; ``gesvd`` (slower, more robust) when ``gesdd`` does not converge."""
    try:
        return sla.svd(A, full_matrices=full, check_finite=False, lapack_driver="gesdd")
    except np.linalg.LinAlgError:
        return sla.svd(A, full_matrices=full, check_finite=False, lapack_driver="gesvd")


def _norm(a: np.ndarray) -> float:
    return float(np.linalg.norm(a))


class LinearRegressionUnlearner:
    """Ridge / min-norm least squares with exact, fast removal of training samples.

    Parameters (keyword-only):

    - ``ridge`` (``λ ≥ 0``, default 1.0): strength of ``λ‖w‖²`` in
      ``‖Xw − y‖² + λ‖w‖²``; ``0`` gives the min-norm least-squares solution.
      There is no intercept: centre the data or add a column of ones (penalised).
    - ``solver``: ``"auto"`` (primal form when ``n ≥ d``, Gram form otherwise,
      re-chosen when a forget takes the row count below ``d``), ``"primal"`` or
      ``"gram"`` (kept whatever the row count).
    - ``tol`` (default 1e-10): a downdate (or refactorisation) whose estimated
      relative coefficient error exceeds this falls back to the stable refit.
      The estimate is first order (``eps`` × condition numbers, without the
      dimension constants of worst-case bounds), hence the margin below the
      1e-8 the tests demand.
    - ``rcond_tol`` (default 1e-6): downdates whose capacitance matrix has a
      smaller reciprocal condition number are not even attempted.
    - ``max_pending`` (default ``max(8, size // 8)``, ``size`` the factorised
      dimension): refactorise once more rows than this await since the last one.
    - ``copy`` (default True): copy ``X`` and ``y`` at ``fit``; with False a
      float64 C-ordered ``X`` is kept by reference and must not be changed.

    After ``forget(ids)`` the coefficients equal a fresh ``fit`` on the data
    without ``ids`` to rounding error — within ``tol`` (as estimated) on the
    downdate paths, and as close as the retained data's conditioning allows
    after a refit.

    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    >>> model = LinearRegressionUnlearner(ridge=0.1).fit(X, y, ids=np.arange(200) + 1000)
    >>> result = model.forget([1003, 1150])
    >>> result.path, result.n_remaining, result.fallback
    ('woodbury', 198, False)
    >>> keep = np.setdiff1d(np.arange(200), [3, 150])
    >>> fresh = LinearRegressionUnlearner(ridge=0.1).fit(X[keep], y[keep])
    >>> bool(np.allclose(model.coef_, fresh.coef_, rtol=1e-12, atol=0))
    True
    >>> model.forget([1003])
    Traceback (most recent call last):
    ...
    unlearnkit.errors.AlreadyDeletedError: 1 id(s) were already forgotten (first: 1003); each sample can be forgotten once
    """

    def __init__(
        self,
        *,
        ridge: float = 1.0,
        solver: str = "auto",
        tol: float = 1e-10,
        rcond_tol: float = 1e-6,
        max_pending: int | None = None,
        copy: bool = True,
    ) -> None:
        self.ridge = ridge
        self.solver = solver
        self.tol = tol
        self.rcond_tol = rcond_tol
        self.max_pending = max_pending
        self.copy = copy

    # ----------------------------------------------------------------- public API

    def get_params(self) -> dict:
        return {
            "ridge": self.ridge,
            "solver": self.solver,
            "tol": self.tol,
            "rcond_tol": self.rcond_tol,
            "max_pending": self.max_pending,
            "copy": self.copy,
        }

    def fit(self, X, y=None, *, ids=None) -> LinearRegressionUnlearner:
        """Fit on ``X`` (n × d) and ``y`` (n,) or (n, t); ``ids`` default to ``0..n-1``.

        ``X`` may also be a :class:`unlearnkit.data.Split` (features flattened,
        its ids used), with ``y`` left out.
        """
        self._check_params()
        if hasattr(X, "ids") and hasattr(X, "X") and y is None:
            split = X
            ids = split.ids.numpy() if ids is None else ids
            X = np.asarray(split.X).reshape(len(split.ids), -1)
            y = np.asarray(split.y)
        if y is None:
            raise DatasetError("fit needs targets y (or a Split holding them)")
        # np.array copies; np.asarray keeps a float64 C-ordered input by reference.
        as_array = np.array if self.copy else np.asarray
        X = as_array(X, dtype=np.float64, order="C")
        Y = as_array(y, dtype=np.float64)
        if X.ndim != 2 or Y.ndim not in (1, 2) or len(Y) != len(X):
            raise DatasetError(f"X must be (n, d) and y (n,) or (n, t); got {X.shape}, {Y.shape}")
        if len(X) < 1 or X.shape[1] < 1:
            raise DatasetError(f"need at least one sample and one feature; got X{X.shape}")
        if not (np.isfinite(X).all() and np.isfinite(Y).all()):
            raise DatasetError("X or y holds NaN or infinite values; clean them first")
        ids = np.arange(len(X), dtype=np.int64) if ids is None else _as_ids(ids, len(X))
        order = np.argsort(ids, kind="stable")
        if len(ids) > 1 and (np.diff(ids[order]) == 0).any():
            raise DatasetError("sample ids must be unique; found duplicates")

        self.y_ndim_ = Y.ndim
        self._X, self._Y = X, Y.reshape(len(Y), -1)
        self._set_ids(ids, order)
        self._active = np.ones(len(X), dtype=bool)
        self._factor, self._b, self._coef, self._cond = self._refit(np.arange(len(X)))
        self.n_forget_calls_ = 0
        return self

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients: (d,) for 1-D targets, (t, d) otherwise (scikit-learn's layout)."""
        self._check_fitted()
        return self._coef[:, 0].copy() if self.y_ndim_ == 1 else self._coef.T.copy()

    @property
    def form_(self) -> str:
        self._check_fitted()
        return self._factor.form

    @property
    def cond_(self) -> float:
        """Condition number of the statistics behind ``coef_`` (an upper estimate after a downdate)."""
        self._check_fitted()
        return self._cond

    @property
    def n_samples_(self) -> int:
        self._check_fitted()
        return int(self._active.sum())

    @property
    def n_features_in_(self) -> int:
        self._check_fitted()
        return self._X.shape[1]

    @property
    def ids_(self) -> np.ndarray:
        """Ids of the samples the model currently reflects, in training order."""
        self._check_fitted()
        return self._ids[self._active].copy()

    @property
    def deleted_ids_(self) -> np.ndarray:
        self._check_fitted()
        return self._ids[~self._active].copy()

    def predict(self, X) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self._X.shape[1]:
            raise DatasetError(f"X must be (n, {self._X.shape[1]}); got {X.shape}")
        out = X @ self._coef
        return out[:, 0] if self.y_ndim_ == 1 else out

    def forget(self, ids) -> LinearForgetResult:
        """Remove the samples ``ids`` exactly; the model then equals a fit without them.

        Ids follow :func:`unlearnkit.exact.ids.coerce_forget_ids`:
        :class:`~unlearnkit.errors.UnknownIdsError` for ids never seen,
        :class:`~unlearnkit.errors.AlreadyDeletedError` for ids already
        forgotten, :class:`~unlearnkit.errors.DuplicateIdsError` for an id
        named twice and :class:`~unlearnkit.errors.ForgetSelectionError` for an
        empty, non-integer or all-covering request; the state is unchanged then.
        """
        self._check_fitted()
        started = time.perf_counter()
        positions = self._positions(ids)
        k = len(positions)
        active = self._active.copy()
        active[positions] = False
        n_left = int(active.sum())
        d = self._X.shape[1]
        U, Yk = self._X[positions], self._Y[positions]
        b = None if self._b is None else self._b - U.T @ Yk
        old = self._factor
        pending = old.pending.size + k
        rcond = estimate = cond = None
        factor = coef = None
        fallback, notes = False, []
        if self.solver == "auto" and old.form == "primal" and n_left < d:
            path = "refit"
            notes.append(
                f"{n_left} rows left < {d} features: switched from the primal to the Gram "
                "form (exact refit)"
            )
        elif old.kind == "lstsq":
            path, fallback = "refit", True
            notes.append(
                "the statistics are singular (ridge=0, rank-deficient data): min-norm refit"
            )
        else:
            path = "woodbury" if pending <= self._max_pending(old) else "refactorisation"
            with _single_blas_thread():
                if path == "woodbury":
                    factor, rcond, lmin = self._downdate(old, positions, U)
                    if rcond < self.rcond_tol:
                        notes.append(
                            f"ill-conditioned downdate (capacitance rcond {rcond:.2e} < "
                            f"rcond_tol {self.rcond_tol:.0e})"
                        )
                    else:
                        coef, estimate, cond = self._solve(factor, b, lmin=lmin)
                        if not estimate <= self.tol:
                            notes.append(
                                f"rank-{k} downdate would lose precision (estimated error "
                                f"{estimate:.1e} > tol {self.tol:.0e}, cond ≲ {cond:.1e})"
                            )
                    if notes:  # rejected: the downdated statistics may still be usable
                        path, fallback, coef = "refactorisation", True, None
                    else:
                        notes.append(f"rank-{k} downdate, estimated error {estimate:.1e}")
                else:
                    notes.append(f"{pending} rows pending > max_pending={self._max_pending(old)}")
                if path == "refactorisation":
                    factor = self._refactor(old, positions)
                    if factor is None:
                        path, fallback = "refit", True
                        notes.append("the downdated statistics are not positive definite")
                    else:
                        coef, estimate, cond = self._solve(factor, b)
                        if estimate <= self.tol:
                            notes.append(f"refactorised, estimated error {estimate:.1e}")
                        else:
                            path, fallback = "refit", True
                            notes.append(
                                f"refactorised statistics too ill-conditioned (estimated "
                                f"error {estimate:.1e} > tol {self.tol:.0e}, cond ≈ {cond:.1e})"
                            )
        if path == "refit":
            factor, b, coef, cond = self._refit(np.flatnonzero(active))
            estimate = _EPS * cond
            notes.append(f"stable SVD refit on the retained rows (cond {cond:.1e})")

        # Commit everything at once: an exception above leaves the model as it was.
        self._factor, self._b, self._coef, self._active = factor, b, coef, active
        self._cond = cond
        self.n_forget_calls_ += 1
        return LinearForgetResult(
            removed=k,
            n_remaining=n_left,
            path=path,
            fallback=fallback,
            reason="; ".join(notes),
            rcond=None if rcond is None else float(rcond),
            pending=int(factor.pending.size),
            form=factor.form,
            seconds=time.perf_counter() - started,
            error_estimate=float(estimate),
            cond=float(cond),
        )

    # ----------------------------------------------------------------- state

    def state_dict(self) -> dict:
        """Everything needed to continue forgetting: hyper-parameters, data, statistics."""
        self._check_fitted()
        f = self._factor
        arrays = {
            "X": self._X,
            "Y": self._Y,
            "ids": self._ids,
            "active": self._active,
            "coef": self._coef,
            "rows": f.rows,
            "pending": f.pending,
        }
        for name in ("S0", "R0", "Q", "e", "V", "C"):
            if getattr(f, name) is not None:
                arrays[name] = getattr(f, name)
        if self._b is not None:
            arrays["b"] = self._b
        meta = {
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "form": f.form,
            "kind": f.kind,
            "scale": f.scale,
            "inv_norm": f.inv_norm,
            "b_scale": f.b_scale,
            "x_norm": f.x_norm,
            "cond": self._cond,
            "y_ndim": self.y_ndim_,
            "n_forget_calls": self.n_forget_calls_,
        }
        return {"meta": meta, "arrays": arrays}

    def load_state_dict(self, state: dict) -> LinearRegressionUnlearner:
        try:
            meta, arrays = state["meta"], state["arrays"]
            if meta.get("format_version", 0) > FORMAT_VERSION:
                raise StoreError(
                    f"state format {meta['format_version']} is newer than this unlearnkit "
                    f"reads ({FORMAT_VERSION}); upgrade unlearnkit"
                )
            params = meta["params"]
            X, Y, ids, active = (np.asarray(arrays[k]) for k in ("X", "Y", "ids", "active"))
            n, d = X.shape
            t = Y.shape[1]
            if Y.shape[0] != n or ids.shape != (n,) or active.shape != (n,):
                raise StoreError("the saved arrays have inconsistent lengths")
            if arrays["coef"].shape != (d, t):
                raise StoreError("the saved coefficients do not match the saved data")
            get = lambda k: None if k not in arrays else np.asarray(arrays[k])
            version = int(meta.get("format_version", 0))
            factor = None
            if version >= 2:
                factor = _Factor(
                    form=meta["form"],
                    kind=meta["kind"],
                    S0=get("S0"),
                    R0=get("R0"),
                    Q=get("Q"),
                    e=get("e"),
                    rows=np.asarray(arrays["rows"], dtype=np.int64),
                    pending=np.asarray(arrays["pending"], dtype=np.int64),
                    V=get("V"),
                    C=get("C"),
                    scale=float(meta["scale"]),
                    inv_norm=float(meta["inv_norm"]),
                    b_scale=float(meta["b_scale"]),
                    x_norm=float(meta["x_norm"]),
                )
                if factor.form not in ("primal", "gram") or factor.kind not in (
                    "svd",
                    "cholesky",
                    "lstsq",
                ):
                    raise StoreError(f"unknown factorisation {factor.form}/{factor.kind}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"linear unlearner state is incomplete or corrupt ({exc!r})") from None
        defaults = type(self)().get_params()  # a format-1 state has no ``tol``
        new = {k: params.get(k, defaults[k]) for k in defaults}
        for k, v in new.items():
            setattr(self, k, v)
        self._X, self._Y = X.astype(np.float64), Y.astype(np.float64)
        ids = ids.astype(np.int64)
        self._set_ids(ids, np.argsort(ids, kind="stable"))
        self._active = active.astype(bool)
        if factor is None:
            # Format 1 kept normal-equation factors without the error bookkeeping
            # that every downdate now checks: refit once (stable SVD) instead.
            self._factor, self._b, self._coef, self._cond = self._refit(np.flatnonzero(active))
        else:
            self._factor, self._b = factor, get("b")
            self._coef = np.asarray(arrays["coef"], dtype=np.float64)
            self._cond = float(meta.get("cond", np.nan))
        self.y_ndim_ = int(meta["y_ndim"])
        self.n_forget_calls_ = int(meta.get("n_forget_calls", 0))
        return self

    def save(self, path: str | Path) -> Path:
        """Write the state to ``path`` (``.npz``) atomically: a crash never leaves half a file.

        >>> import tempfile
        >>> m = LinearRegressionUnlearner(ridge=1.0).fit(np.eye(3), np.arange(3.0))
        >>> p = m.save(tempfile.mkdtemp() + "/linear")
        >>> bool(np.array_equal(LinearRegressionUnlearner.load(p).coef_, m.coef_))
        True
        """
        state = self.state_dict()
        return save_npz_state(path, meta=state["meta"], arrays=state["arrays"])

    @classmethod
    def load(cls, path: str | Path) -> LinearRegressionUnlearner:
        meta, arrays = load_npz_state(
            path, what="linear unlearner state", fix="fit and save() it again"
        )
        return cls().load_state_dict({"meta": meta, "arrays": arrays})

    # ----------------------------------------------------------------- internals

    def _check_params(self) -> None:
        if (
            not isinstance(self.ridge, numbers.Real)
            or not np.isfinite(self.ridge)
            or self.ridge < 0
        ):
            raise ConfigError(f"ridge must be a finite number >= 0; got {self.ridge!r}")
        if self.solver not in SOLVERS:
            raise ConfigError(f"solver must be one of {SOLVERS}; got {self.solver!r}")
        if not isinstance(self.tol, numbers.Real) or not 0 < self.tol < 1:
            raise ConfigError(f"tol must be in (0, 1); got {self.tol!r}")
        if not isinstance(self.rcond_tol, numbers.Real) or not 0 < self.rcond_tol < 1:
            raise ConfigError(f"rcond_tol must be in (0, 1); got {self.rcond_tol!r}")
        if self.max_pending is not None and (
            not isinstance(self.max_pending, int) or self.max_pending < 1
        ):
            raise ConfigError(
                f"max_pending must be an integer >= 1 or None; got {self.max_pending!r}"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "_factor"):
            raise NotFittedError(
                "this LinearRegressionUnlearner is not fitted; call fit(X, y) or load() first"
            )

    def _set_ids(self, ids: np.ndarray, order: np.ndarray) -> None:
        self._ids, self._order = ids, order
        self._sorted_ids = ids[order]  # cached: a forget of one id stays O(log n)

    def _positions(self, ids) -> np.ndarray:
        arr = as_id_array(ids)
        # Look the request up here in O(k log n) and hand the shared policy only
        # the request's own ids: passing all n known ids would cost O(n log n)
        # per call, more than a rank-1 downdate.
        sorted_ids = self._sorted_ids
        where = np.searchsorted(sorted_ids, arr).clip(max=len(sorted_ids) - 1)
        found = sorted_ids[where] == arr
        gone = found & ~self._active[self._order[where]]
        wanted = coerce_forget_ids(arr, known=arr[found], deleted=arr[gone])
        positions = self._order[np.searchsorted(sorted_ids, wanted)]
        if positions.size >= self._active.sum():
            raise ForgetSelectionError(
                "the request would forget every remaining sample; an empty model has "
                "nothing to unlearn — create a new model instead"
            )
        return positions

    def _max_pending(self, f: _Factor) -> int:
        if self.max_pending is not None:
            return self.max_pending
        size = f.S0.shape[0] if f.S0 is not None else 0
        return max(8, size // 8)

    def _form_for(self, n: int) -> str:
        if self.solver != "auto":
            return self.solver
        return "primal" if n >= self._X.shape[1] else "gram"

    def _refit(self, rows: np.ndarray):
        """Stable fit on ``rows`` of the stored data: ``(factor, b, coef, cond)``.

        The coefficients come from the SVD of the rows (never from XᵀX), so
        their error follows cond(X), not cond(X)². The statistics for later
        downdates are rebuilt from the same SVD.
        """
        X, Y = self._X, self._Y
        all_rows = rows.size == len(X)
        Xs = X if all_rows else X[rows]
        Ys = Y if all_rows else Y[rows]
        n, d = Xs.shape
        form = self._form_for(n)
        lam = float(self.ridge)
        if form == "primal" and n >= d:
            # Xs = Q R and R = Ur S Vᵀ, so UᵀY = Urᵀ (QᵀY); Q is applied, never stored.
            QtY_T, R = sla.qr_multiply(Xs, Ys.T, mode="right")
            Ur, s, Vt = _svd(R, full=False)
            UtY = Ur.T @ QtY_T.T
            basis = Vt.T
        else:
            # Thin SVD, except where the factorised side needs a full basis (the
            # statistics have eigenvalue λ on the complement of the row space).
            full = (form == "primal") != (n >= d)
            Ux, s, Vt = _svd(Xs, full=full)
            r = s.size
            UtY = Ux[:, :r].T @ Ys
            basis = Vt.T if form == "primal" else Ux
            Vt = Vt[:r]
        cut = max(n, d) * _EPS * s[0] if s.size else 0.0
        if lam > 0:
            gain = s / (s * s + lam)
        else:
            keep = s > cut
            gain = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
        coef = Vt.T @ (gain[:, None] * UtY)

        size = basis.shape[1]
        e = np.full(size, lam)
        e[: s.size] += s * s
        b = Xs.T @ Ys if form == "primal" else None
        rows = np.asarray(rows, dtype=np.int64)
        info = {
            "form": form,
            "rows": rows if form == "gram" else np.zeros(0, np.int64),
            "scale": float(e.max()),
            "b_scale": _norm(Xs) * _norm(Ys) if form == "primal" else 0.0,
            "x_norm": float(s[0]) if s.size else 0.0,
        }
        if lam == 0 and (s.size < size or s[-1] <= cut):
            # Singular statistics: the min-norm answer above is right, but there
            # is no factor to downdate. cond over the kept singular values.
            kept = s[s > cut]
            cond = float((kept[0] / kept[-1]) ** 2) if kept.size else 1.0
            return _Factor(kind="lstsq", **info), b, coef, cond
        S0 = (basis * e) @ basis.T
        S0 = (S0 + S0.T) / 2  # symmetric by construction; the product rounds each side
        factor = _Factor(kind="svd", S0=S0, Q=basis, e=e, inv_norm=float(1 / e.min()), **info)
        return factor, b, coef, float(e.max() / e.min())

    def _downdate(self, f: _Factor, positions: np.ndarray, U: np.ndarray):
        """Extend the pending set: ``(new factor, rcond(C), λ_min(C))``."""
        m = f.pending.size
        if f.form == "primal":
            # V = R0⁻ᵀUᵀ for the new rows; C = I − VᵀV grows by one block row/column.
            Vk = _rt_solve(f, U.T)
            if m:
                cross = -(f.V.T @ Vk)
                C = np.block([[f.C, cross], [cross.T, np.eye(len(positions)) - Vk.T @ Vk]])
                V = np.hstack([f.V, Vk])
            else:
                C, V = np.eye(len(positions)) - Vk.T @ Vk, Vk
        else:
            # W = K0⁻¹E: the columns of K0⁻¹ at the removed rows; C = their rows of W.
            local = np.searchsorted(f.rows, positions)
            E = np.zeros((f.rows.size, len(positions)))
            E[local, np.arange(len(positions))] = 1.0
            Wk = _r_solve(f, _rt_solve(f, E))
            V = np.hstack([f.V, Wk]) if m else Wk
            all_local = np.searchsorted(f.rows, np.concatenate([f.pending, positions]))
            C = V[all_local]
        C = (C + C.T) / 2  # symmetric in exact arithmetic; keep eigvalsh honest
        ev = np.linalg.eigvalsh(C)
        lmin = max(float(ev[0]), 0.0)
        rcond = lmin / ev[-1] if ev[-1] > 0 else 0.0
        new = replace(f, pending=np.concatenate([f.pending, positions]), V=V, C=C)
        return new, float(rcond), lmin

    def _refactor(self, f: _Factor, positions: np.ndarray) -> _Factor | None:
        """Cholesky of the downdated statistics (no pass over the retained data)."""
        gone = np.concatenate([f.pending, positions])
        if f.form == "primal":
            Ug = self._X[gone]
            S = f.S0 - Ug.T @ Ug
            rows = f.rows
        else:
            keep = ~np.isin(f.rows, gone)
            S = f.S0[np.ix_(keep, keep)]
            rows = f.rows[keep]
        try:
            R = sla.cholesky(S, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        return _Factor(
            form=f.form,
            kind="cholesky",
            S0=S,
            R0=R,
            rows=rows,
            scale=f.scale,
            inv_norm=_inverse_norm(R),
            b_scale=f.b_scale,
            x_norm=f.x_norm,
        )

    def _solve(self, f: _Factor, b: np.ndarray | None, *, lmin: float = 1.0):
        """Coefficients from factor ``f``: ``(coef, estimated relative error, cond estimate)``.

        ``lmin`` is ``λ_min`` of the capacitance matrix when rows are pending.
        """
        if f.form == "primal":
            z = _rt_solve(f, b)
            if f.pending.size:
                # H'⁻¹ b = R0⁻¹ (z + V C⁻¹ Vᵀ z) with z = R0⁻ᵀ b (Woodbury on H0 − UᵀU).
                z = z + f.V @ sla.cho_solve(sla.cho_factor(f.C), f.V.T @ z, check_finite=False)
            coef = _r_solve(f, z)
            return (coef, *self._estimate_primal(f, coef, lmin))
        Yk = self._Y[f.rows]
        local = np.searchsorted(f.rows, f.pending)
        Yk[local] = 0.0
        g = _r_solve(f, _rt_solve(f, Yk))
        alpha = g
        if f.pending.size:
            # Subtracting W M⁻¹ g_D makes the removed rows' entries vanish (the
            # bordered-system form of solving the principal sub-matrix).
            alpha = g - f.V @ sla.cho_solve(sla.cho_factor(f.C), g[local], check_finite=False)
            alpha[local] = 0.0
        full = np.zeros_like(self._Y)  # X.T @ (zero-padded α): no copy of the kept rows
        full[f.rows] = alpha
        coef = self._X.T @ full
        return (coef, *self._estimate_gram(f, coef, g, alpha, lmin))

    def _estimate_primal(self, f: _Factor, coef: np.ndarray, lmin: float):
        """First-order relative error of ``coef`` solved from downdated ``H' w = b'``.

        ``H'`` and ``b'`` carry rounding of ``eps·‖H_refit‖`` and
        ``eps·‖X‖_F‖Y‖_F`` (they were summed and then downdated); the solve
        multiplies both by ``‖H'⁻¹‖``. With pending rows, ``H' = R0ᵀ(I − VVᵀ)R0``
        gives ``‖H'⁻¹‖ ≤ ‖H0⁻¹‖ / λ_min(C)``, which also bounds what Woodbury
        itself loses. ``√d`` stands for the growth of rounding with dimension.
        """
        w = _norm(coef)
        inv = f.inv_norm / lmin if lmin > 0 else np.inf
        data = f.b_scale / w if w > 0 else (np.inf if f.b_scale > 0 else 0.0)
        estimate = np.sqrt(len(coef)) * _EPS * (f.scale + data) * inv
        return float(estimate), float(f.scale * inv)

    def _estimate_gram(self, f: _Factor, coef, g, alpha, lmin: float):
        """First-order relative error of ``coef = Xᵀα`` with ``α`` from the Gram system.

        The kept system is a principal sub-matrix of ``K0`` (no subtraction, and
        its condition is at most ``K0``'s), but the bordered solve amplifies the
        error of ``g = K0⁻¹ỹ`` by ``‖W‖‖M⁻¹‖ ≤ ‖K0⁻¹‖ / λ_min(M)`` and can cancel
        (``‖g‖ ≫ ‖α‖``); ``w = Xᵀα`` then scales the error by ``‖X‖‖α‖ / ‖w‖``.
        """
        kappa = f.scale * f.inv_norm
        amplify = 1.0 + (f.inv_norm / lmin if lmin > 0 else np.inf) if f.pending.size else 1.0
        a, w = _norm(alpha), _norm(coef)
        if a == 0:
            return 0.0, float(kappa)
        if w == 0:
            return float(np.inf), float(kappa)
        est_alpha = np.sqrt(len(alpha)) * _EPS * kappa * amplify * _norm(g) / a
        return float(est_alpha * f.x_norm * a / w), float(kappa)
