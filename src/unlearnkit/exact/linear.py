"""Exact unlearning for linear least squares: forget by downdating, not by refitting.

:class:`LinearRegressionUnlearner` fits ridge regression (``λ > 0``) or
min-norm least squares (``λ = 0``, also with fewer samples than features) and
keeps what it needs to remove samples later:

- **primal form** (``n ≥ d``): the statistics ``H = XᵀX + λI`` and ``b = XᵀY``
  and the Cholesky factor ``H = RᵀR``;
- **Gram form** (``n < d``): ``K = XXᵀ + λI`` and its Cholesky factor, with
  ``coef = Xᵀ K⁻¹ Y``.

``forget(ids)`` removes ``k`` rows without touching the others. In the primal
form the new statistics are ``H' = H − UᵀU`` (``U``: the removed rows) and,
writing ``V = R⁻ᵀUᵀ``, Woodbury gives
``H'⁻¹ = R⁻¹ (I + V C⁻¹ Vᵀ) R⁻ᵀ`` with the small *capacitance* ``C = I − VᵀV``:
``O(k d²)`` work instead of the ``O(n d²)`` of a refit. In the Gram form the
retained system is a principal sub-matrix of ``K``; with ``W = K⁻¹E`` (``E``:
the identity's columns of the removed rows) and ``M = Eᵀ K⁻¹ E``, the solution
is ``K⁻¹ỹ − W M⁻¹ (K⁻¹ỹ)_D`` restricted to the kept rows (``ỹ``: targets with
the removed rows zeroed) — ``O(k n²)`` instead of ``O(n² d)``.

Removed rows accumulate against the last factorisation. The engine refactorises
from the downdated statistics once more than ``max_pending`` rows are pending
(cheaper than growing ``C``), and **falls back** to an exact refit on the
retained rows when the capacitance matrix is ill-conditioned (its reciprocal
condition number below ``rcond_tol``: the removal nearly makes the system
singular, so the downdate would lose digits) or when the statistics are singular
(``λ = 0`` and rank-deficient data, solved by min-norm ``lstsq``). Every
``forget`` returns a :class:`LinearForgetResult` saying which path it took and why.
"""

from __future__ import annotations

import io
import json
import numbers
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from unlearnkit.checkpoint import atomic_write_bytes
from unlearnkit.errors import (
    ConfigError,
    DatasetError,
    ForgetSelectionError,
    NotFittedError,
    StoreError,
    UnknownIdsError,
)

FORMAT_VERSION = 1
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
    of the downdated statistics, when many rows are pending) or ``"refit"``
    (exact refit on the retained rows). ``fallback`` is True when the refit was
    forced by an ill-conditioned downdate or singular statistics; ``reason``
    says which. ``rcond`` is the capacitance matrix's reciprocal condition
    number (1 = harmless, near 0 = the removal nearly made the system singular).
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


@dataclass(frozen=True)
class _Factor:
    """Factorised state; replaced wholesale so a failed forget never leaves it half-updated."""

    form: str  # "primal" | "gram"
    kind: str  # "cholesky" | "lstsq" (singular statistics, λ = 0)
    S0: np.ndarray | None = None  # H0 (primal) or K0 (gram) at the last factorisation
    R0: np.ndarray | None = None  # upper Cholesky factor of S0
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # gram: rows of K0
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # removed since
    V: np.ndarray | None = None  # primal: R0⁻ᵀUᵀ (d × m); gram: K0⁻¹E (n_k × m)
    C: np.ndarray | None = None  # primal: I − VᵀV; gram: Eᵀ K0⁻¹ E (m × m)


def _as_ids(ids, n: int | None = None) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        error = ForgetSelectionError if n is None else DatasetError
        raise error(f"ids must be a 1-D sequence of integers; got {arr.dtype}{list(arr.shape)}")
    if n is not None and arr.size != n:
        raise DatasetError(f"need one id per row: {n} rows but {arr.size} ids")
    return arr.astype(np.int64)


class LinearRegressionUnlearner:
    """Ridge / min-norm least squares with exact, fast removal of training samples.

    Parameters (keyword-only):

    - ``ridge`` (``λ ≥ 0``, default 1.0): strength of ``λ‖w‖²`` in
      ``‖Xw − y‖² + λ‖w‖²``; ``0`` gives the min-norm least-squares solution.
      There is no intercept: centre the data or add a column of ones (penalised).
    - ``solver``: ``"auto"`` (primal form when ``n ≥ d``, Gram form otherwise),
      ``"primal"`` or ``"gram"``.
    - ``rcond_tol`` (default 1e-6): downdates whose capacitance matrix has a
      smaller reciprocal condition number fall back to an exact refit.
    - ``max_pending`` (default ``max(8, size // 8)``, ``size`` the factorised
      dimension): refactorise once more rows than this await since the last one.
    - ``copy`` (default True): copy ``X`` and ``y`` at ``fit``; with False a
      float64 C-ordered ``X`` is kept by reference and must not be changed.

    After ``forget(ids)`` the coefficients equal a fresh ``fit`` on the data
    without ``ids`` (same order) to rounding error.

    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(200, 5)), rng.normal(size=200)
    >>> model = LinearRegressionUnlearner(ridge=0.1).fit(X, y, ids=np.arange(200) + 1000)
    >>> result = model.forget([1003, 1150])
    >>> result.path, result.n_remaining
    ('woodbury', 198)
    >>> keep = np.setdiff1d(np.arange(200), [3, 150])
    >>> fresh = LinearRegressionUnlearner(ridge=0.1).fit(X[keep], y[keep])
    >>> bool(np.allclose(model.coef_, fresh.coef_, rtol=1e-12, atol=0))
    True
    >>> model.forget([1003])
    Traceback (most recent call last):
    ...
    unlearnkit.errors.UnknownIdsError: 1 id(s) were already forgotten (first: [1003]); each sample can be forgotten once
    """

    def __init__(
        self,
        *,
        ridge: float = 1.0,
        solver: str = "auto",
        rcond_tol: float = 1e-6,
        max_pending: int | None = None,
        copy: bool = True,
    ) -> None:
        self.ridge = ridge
        self.solver = solver
        self.rcond_tol = rcond_tol
        self.max_pending = max_pending
        self.copy = copy

    # ----------------------------------------------------------------- public API

    def get_params(self) -> dict:
        return {
            "ridge": self.ridge,
            "solver": self.solver,
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
        self._ids, self._order = ids, order
        self._active = np.ones(len(X), dtype=bool)
        self._factor, self._b, coef = self._refit(np.arange(len(X)))
        self._coef = coef
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

        Raises :class:`~unlearnkit.errors.UnknownIdsError` for ids never seen or
        already forgotten and :class:`~unlearnkit.errors.ForgetSelectionError`
        for an empty, repeated or all-covering request; the state is unchanged then.
        """
        self._check_fitted()
        started = time.perf_counter()
        positions = self._positions(ids)
        k = len(positions)
        active = self._active.copy()
        active[positions] = False
        U, Yk = self._X[positions], self._Y[positions]
        b = None if self._b is None else self._b - U.T @ Yk
        old = self._factor
        pending = old.pending.size + k
        rcond = None
        if old.kind != "cholesky":
            path, fallback = "refit", True
            reason = "the statistics are singular (ridge=0, rank-deficient data): min-norm refit"
        elif pending > self._max_pending(old):
            path, fallback = "refactorisation", False
            reason = f"{pending} rows pending > max_pending={self._max_pending(old)}"
        else:
            path, fallback, reason = "woodbury", False, f"rank-{k} downdate"
        factor = coef = None
        with _single_blas_thread():
            if path == "woodbury":
                factor, rcond = self._downdate(old, positions, U)
                if rcond < self.rcond_tol:
                    path, fallback = "refit", True
                    reason = (
                        f"ill-conditioned downdate (capacitance rcond {rcond:.2e} < "
                        f"rcond_tol {self.rcond_tol:.0e}): exact refit on the retained rows"
                    )
                else:
                    coef = self._solve(factor, b, active)
            elif path == "refactorisation":
                factor = self._refactor(old, positions, U)
                if factor is None:
                    path, fallback = "refit", True
                    reason += "; the downdated statistics are singular: exact refit"
                else:
                    coef = self._solve(factor, b, active)
        if path == "refit":
            factor, b, coef = self._refit(np.flatnonzero(active))

        # Commit everything at once: an exception above leaves the model as it was.
        self._factor, self._b, self._coef, self._active = factor, b, coef, active
        self.n_forget_calls_ += 1
        return LinearForgetResult(
            removed=k,
            n_remaining=int(active.sum()),
            path=path,
            fallback=fallback,
            reason=reason,
            rcond=None if rcond is None else float(rcond),
            pending=int(factor.pending.size),
            form=factor.form,
            seconds=time.perf_counter() - started,
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
        for name in ("S0", "R0", "V", "C"):
            if getattr(f, name) is not None:
                arrays[name] = getattr(f, name)
        if self._b is not None:
            arrays["b"] = self._b
        meta = {
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "form": f.form,
            "kind": f.kind,
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
            factor = _Factor(
                form=meta["form"],
                kind=meta["kind"],
                S0=get("S0"),
                R0=get("R0"),
                rows=np.asarray(arrays["rows"], dtype=np.int64),
                pending=np.asarray(arrays["pending"], dtype=np.int64),
                V=get("V"),
                C=get("C"),
            )
            if factor.form not in ("primal", "gram") or factor.kind not in ("cholesky", "lstsq"):
                raise StoreError(f"unknown factorisation {factor.form}/{factor.kind}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(f"linear unlearner state is incomplete or corrupt ({exc!r})") from None
        new = {k: params[k] for k in self.get_params()}
        for k, v in new.items():
            setattr(self, k, v)
        self._X, self._Y = X.astype(np.float64), Y.astype(np.float64)
        self._ids, self._order = ids.astype(np.int64), np.argsort(ids, kind="stable")
        self._active = active.astype(bool)
        self._factor, self._b = factor, get("b")
        self._coef = np.asarray(arrays["coef"], dtype=np.float64)
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
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        state = self.state_dict()
        buf = io.BytesIO()
        meta = np.frombuffer(json.dumps(state["meta"]).encode(), dtype=np.uint8)
        np.savez(buf, __meta__=meta, **state["arrays"])
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> LinearRegressionUnlearner:
        path = Path(path)
        if not path.is_file() and path.with_name(path.name + ".npz").is_file():
            path = path.with_name(path.name + ".npz")
        if not path.is_file():
            raise StoreError(f"linear unlearner state {path} does not exist; save() it first")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(arrays.pop("__meta__").tobytes().decode())
        except Exception as exc:  # zip, npy header or JSON damage all mean the same to a user
            raise StoreError(
                f"linear unlearner state {path} is corrupt ({type(exc).__name__}: {exc}); "
                "refit and save again"
            ) from None
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
        if not 0 < self.rcond_tol < 1:
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

    def _positions(self, ids) -> np.ndarray:
        wanted = _as_ids(ids)
        if wanted.size == 0:
            raise ForgetSelectionError("no ids to forget; pass at least one id")
        uniq, counts = np.unique(wanted, return_counts=True)
        if (counts > 1).any():
            raise ForgetSelectionError(
                f"ids repeat in the request (first: {uniq[counts > 1][:5].tolist()}); "
                "pass each id once"
            )
        sorted_ids = self._ids[self._order]
        where = np.searchsorted(sorted_ids, wanted).clip(max=len(sorted_ids) - 1)
        found = sorted_ids[where] == wanted
        if not found.all():
            missing = wanted[~found]
            raise UnknownIdsError(
                f"{missing.size} id(s) are not in the training data (first: "
                f"{missing[:5].tolist()}); use ids passed to fit"
            )
        positions = self._order[where]
        gone = ~self._active[positions]
        if gone.any():
            raise UnknownIdsError(
                f"{int(gone.sum())} id(s) were already forgotten (first: "
                f"{wanted[gone][:5].tolist()}); each sample can be forgotten once"
            )
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

    def _cholesky(self, S: np.ndarray) -> np.ndarray | None:
        """Upper factor of ``S``, or None when ``S`` is numerically singular.

        Only ``λ = 0`` can make the statistics singular; the test uses LAPACK's
        condition estimate so that a factor with tiny pivots (which Cholesky may
        still produce from rounding) is not mistaken for a usable one.
        """
        try:
            R = sla.cholesky(S, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            return None
        if self.ridge == 0:
            rcond_r, _ = lapack.dtrcon(R, norm="1", uplo="U")
            if rcond_r**2 < S.shape[0] * _EPS:
                return None
        return R

    def _refit(self, rows: np.ndarray):
        """Exact fit on ``rows`` of the stored data: fresh statistics and factor."""
        X, Y = self._X, self._Y
        all_rows = rows.size == len(X)
        Xs = X if all_rows else X[rows]
        Ys = Y if all_rows else Y[rows]
        form = self._form_for(len(rows))
        lam = float(self.ridge)
        if form == "primal":
            H = Xs.T @ Xs
            H[np.diag_indices_from(H)] += lam
            b = Xs.T @ Ys
            R = self._cholesky(H)
            if R is None:
                coef = sla.lstsq(Xs, Ys, lapack_driver="gelsd", check_finite=False)[0]
                return _Factor(form=form, kind="lstsq"), b, coef
            coef = sla.cho_solve((R, False), b, check_finite=False)
            return _Factor(form=form, kind="cholesky", S0=H, R0=R), b, coef
        K = Xs @ Xs.T
        K[np.diag_indices_from(K)] += lam
        R = self._cholesky(K)
        rows = np.asarray(rows, dtype=np.int64)
        if R is None:
            coef = sla.lstsq(Xs, Ys, lapack_driver="gelsd", check_finite=False)[0]
            return _Factor(form=form, kind="lstsq", rows=rows), None, coef
        alpha = sla.cho_solve((R, False), Ys, check_finite=False)
        return _Factor(form=form, kind="cholesky", S0=K, R0=R, rows=rows), None, Xs.T @ alpha

    def _downdate(self, f: _Factor, positions: np.ndarray, U: np.ndarray):
        """Extend the pending set by ``positions``; returns the new factor and rcond(C)."""
        m = f.pending.size
        if f.form == "primal":
            # V = R0⁻ᵀUᵀ for the new rows; C = I − VᵀV grows by one block row/column.
            Vk = sla.solve_triangular(f.R0, U.T, trans="T", check_finite=False)
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
            Wk = sla.cho_solve((f.R0, False), E, check_finite=False)
            V = np.hstack([f.V, Wk]) if m else Wk
            all_local = np.searchsorted(f.rows, np.concatenate([f.pending, positions]))
            C = V[all_local]
            C = (C + C.T) / 2  # symmetric in exact arithmetic; keep eigvalsh honest
        ev = np.linalg.eigvalsh(C)
        rcond = ev[0] / ev[-1] if ev[-1] > 0 else 0.0
        new = replace(f, pending=np.concatenate([f.pending, positions]), V=V, C=C)
        return new, max(float(rcond), 0.0)

    def _refactor(self, f: _Factor, positions: np.ndarray, U: np.ndarray) -> _Factor | None:
        """Cholesky of the downdated statistics (no pass over the retained data)."""
        gone = np.concatenate([f.pending, positions])
        if f.form == "primal":
            Ug = self._X[gone]
            S = f.S0 - Ug.T @ Ug
            R = self._cholesky(S)
            return None if R is None else _Factor(form="primal", kind="cholesky", S0=S, R0=R)
        keep = ~np.isin(f.rows, gone)
        S = f.S0[np.ix_(keep, keep)]
        R = self._cholesky(S)
        if R is None:
            return None
        return _Factor(form="gram", kind="cholesky", S0=S, R0=R, rows=f.rows[keep])

    def _solve(self, f: _Factor, b: np.ndarray | None, active: np.ndarray) -> np.ndarray:
        if f.form == "primal":
            if not f.pending.size:
                return sla.cho_solve((f.R0, False), b, check_finite=False)
            # H'⁻¹ b = R0⁻¹ (z + V C⁻¹ Vᵀ z) with z = R0⁻ᵀ b (Woodbury on H0 − UᵀU).
            z = sla.solve_triangular(f.R0, b, trans="T", check_finite=False)
            z = z + f.V @ sla.cho_solve(sla.cho_factor(f.C), f.V.T @ z, check_finite=False)
            return sla.solve_triangular(f.R0, z, check_finite=False)
        Yk = self._Y[f.rows]
        local = np.searchsorted(f.rows, f.pending)
        Yk[local] = 0.0
        g = sla.cho_solve((f.R0, False), Yk, check_finite=False)
        if f.pending.size:
            # Subtracting W M⁻¹ g_D makes the removed rows' entries vanish (the
            # bordered-system form of solving the principal sub-matrix).
            g -= f.V @ sla.cho_solve(sla.cho_factor(f.C), g[local], check_finite=False)
            g[local] = 0.0
        alpha = np.zeros_like(self._Y)
        alpha[f.rows] = g
        return self._X.T @ alpha
