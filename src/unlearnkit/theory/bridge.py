"""Real-data bridge: the lab's comparison on random ReLU features of a real data set.

Overparameterised linear regression on real inputs: one-hot targets regressed
on ``D`` random ReLU features of MNIST-5k with ``D > n``, min-norm (``λ = 0``)
as in the lab. The models are the lab's — pretrained ``W_o = Φ⁺Y``, FT,
golden ``W_g = Φ_r⁺Y_r``, Options A/B and projection — plus the exact engine
(:class:`~unlearnkit.exact.linear.LinearRegressionUnlearner`) fitted on all
data and asked to ``forget`` the forget set.

Features **(choice)**: ``φ_j(x) = max(0, x·g_j − t_j)`` with ``g_j ~ N(0, I/p)``
and ``t_j`` the ``1 − active_fraction`` quantile of ``x·g_j`` over the train
part, so each feature fires on that fraction of the training samples. The
feature blocks of the lab are read off the zero pattern, as in the synthetic
scenario: ``F`` fires on forget samples only, ``O`` on both, ``R`` on retain
samples only. Dense features (fraction 0.5) make nearly every feature ``O``;
sparse ones leave some class-specific features in ``F``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from unlearnkit.data import Dataset
from unlearnkit.errors import ConfigError

MODELS = ("pretrained", "FT", "golden", "A", "A+FT", "B+FT", "projection", "exact forget")
COLUMNS = ("RL", "UL", "test_retain", "test_forget", "UA", "RA", "TA", "dist_golden")


def relu_features(
    X_train: np.ndarray,
    X_test: np.ndarray,
    *,
    n_features: int,
    active_fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Random ReLU features; each fires on ``active_fraction`` of the train rows.

    >>> rng = np.random.default_rng(0)
    >>> F, _ = relu_features(rng.normal(size=(100, 5)), rng.normal(size=(3, 5)),
    ...                      n_features=40, active_fraction=0.1, seed=0)
    >>> F.shape, round(float((F > 0).mean()), 2)
    ((100, 40), 0.1)
    """
    if n_features < 1 or not 0 < active_fraction <= 1:
        raise ConfigError(
            f"need n_features >= 1 and active_fraction in (0, 1]; got {n_features}, "
            f"{active_fraction}"
        )
    rng = np.random.default_rng([seed, 7])
    p = X_train.shape[1]
    G = rng.standard_normal((p, n_features)) / np.sqrt(p)
    pre = X_train @ G
    # Thresholds from the train part only: test samples never shape the features.
    t = np.quantile(pre, 1 - active_fraction, axis=0)
    return np.maximum(pre - t, 0.0), np.maximum(X_test @ G - t, 0.0)


def _one_hot(y: np.ndarray, c: int) -> np.ndarray:
    out = np.zeros((len(y), c))
    out[np.arange(len(y)), y] = 1.0
    return out


@dataclass
class _Solver:
    """Min-norm solves with the retain rows of ``Φ`` through their Gram matrix (n_r < D)."""

    Phi_r: np.ndarray
    chol: tuple

    def pinv_apply(self, B: np.ndarray) -> np.ndarray:
        """``Φ_r⁺ B = Φ_rᵀ (Φ_r Φ_rᵀ)⁻¹ B``."""
        return self.Phi_r.T @ sla.cho_solve(self.chol, B, check_finite=False)

    def finetune(self, W0: np.ndarray, Y_r: np.ndarray) -> np.ndarray:
        """GD limit from ``W0`` on the retain data: ``W0 + Φ_r⁺ (Y_r − Φ_r W0)``."""
        return W0 + self.pinv_apply(Y_r - self.Phi_r @ W0)


def _scores(W, Phi, Y, y, *, retain, forget, test_parts, golden) -> dict:
    def sq(rows):
        r = Phi[rows] @ W - Y[rows]
        return float(np.mean(np.sum(r * r, axis=1)))

    def acc(P, labels):
        return float(100.0 * np.mean(np.argmax(P @ W, axis=1) == labels))

    (Pt_r, Yt_r, yt_r), (Pt_f, Yt_f, yt_f), (Pt, yt) = test_parts
    mse = lambda P, T: float(np.mean(np.sum((P @ W - T) ** 2, axis=1)))
    return {
        "RL": sq(retain),
        "UL": sq(forget),
        "test_retain": mse(Pt_r, Yt_r),
        "test_forget": mse(Pt_f, Yt_f),
        "UA": 100.0 - acc(Phi[forget], y[forget]),
        "RA": acc(Phi[retain], y[retain]),
        "TA": acc(Pt, yt),
        "dist_golden": float(np.linalg.norm(W - golden)),
    }


def run_bridge(
    *,
    dataset: str | Dataset = "mnist5k",
    forget: tuple[str, ...] = ("class:3", "random:0.1"),
    n_features: int = 8000,
    active_fraction: float = 0.5,
    seed: int = 0,
) -> dict:
    """Every model of :data:`MODELS` for each forget spec; returns rows and checks.

    ``dataset`` is a built-in name (loaded with ``seed``) or a loaded classification
    :class:`~unlearnkit.data.Dataset`.

    ``test_retain`` / ``test_forget`` are on the test samples of the kept / the
    forgotten classes for class forgetting; random forgetting has no forget-like
    test population, so both use the whole test set.
    """
    import unlearnkit as uk
    from unlearnkit.exact.linear import LinearRegressionUnlearner

    data = uk.datasets.load(dataset, seed=seed) if isinstance(dataset, str) else dataset
    if data.task != "classification":
        raise ConfigError(f"the bridge needs a classification data set; {data.name} is not")
    c = data.num_classes
    X = data.train.X.numpy().reshape(len(data.train), -1).astype(np.float64)
    Xt = data.test.X.numpy().reshape(len(data.test), -1).astype(np.float64)
    y, yt = data.train.y.numpy(), data.test.y.numpy()
    n = len(y)
    if n_features <= n:
        raise ConfigError(
            f"the bridge studies the overparameterised case: n_features must exceed the "
            f"{n} training samples; got {n_features}"
        )
    Phi, Phit = relu_features(
        X, Xt, n_features=n_features, active_fraction=active_fraction, seed=seed
    )
    Y, Yt = _one_hot(y, c), _one_hot(yt, c)
    started = time.perf_counter()
    G = Phi @ Phi.T  # shared by every forget spec: the retain Gram is a sub-matrix
    gram_s = time.perf_counter() - started
    W_o = Phi.T @ sla.cho_solve(sla.cho_factor(G), Y, check_finite=False)
    out = {
        "dataset": data.name,
        "n_train": n,
        "n_features": n_features,
        "active_fraction": active_fraction,
        "seed": seed,
        "gram_s": gram_s,
        "scenarios": [],
    }
    for spec in forget:
        split = uk.select_forget(data, spec, seed=seed)
        is_f = np.isin(data.train.ids.numpy(), split.forget.ids.numpy())
        forget_rows, retain_rows = np.flatnonzero(is_f), np.flatnonzero(~is_f)
        solver = _Solver(
            Phi_r=Phi[retain_rows], chol=sla.cho_factor(G[np.ix_(retain_rows, retain_rows)])
        )
        Y_r = Y[retain_rows]
        W = {"pretrained": W_o, "golden": solver.pinv_apply(Y_r)}
        W["FT"] = solver.finetune(W_o, Y_r)
        on_f = (Phi[forget_rows] > 0).any(axis=0)
        on_r = (Phi[retain_rows] > 0).any(axis=0)
        blocks = {"F": on_f & ~on_r, "O": on_f & on_r, "R": ~on_f & on_r}
        W["A"] = np.where((blocks["F"] | blocks["O"])[:, None], 0.0, W_o)
        W["A+FT"] = solver.finetune(W["A"], Y_r)
        W["B+FT"] = solver.finetune(np.where(blocks["F"][:, None], 0.0, W_o), Y_r)
        W["projection"] = solver.finetune(solver.pinv_apply(Phi[retain_rows] @ W_o), Y_r)

        ids = data.train.ids.numpy()
        engine = LinearRegressionUnlearner(ridge=0.0, copy=False)
        t0 = time.perf_counter()
        engine.fit(Phi, Y, ids=ids)
        fit_s = time.perf_counter() - t0
        result = engine.forget(ids[forget_rows])
        W["exact forget"] = engine.coef_.T
        t0 = time.perf_counter()
        refit = LinearRegressionUnlearner(ridge=0.0, copy=False).fit(
            Phi[retain_rows], Y_r, ids=ids[retain_rows]
        )
        refit_s = time.perf_counter() - t0

        if spec.startswith("class:"):
            classes = np.unique(y[forget_rows])
            tf = np.isin(yt, classes)
        else:
            tf = np.ones(len(yt), bool)
        tr = ~tf if spec.startswith("class:") else tf
        parts = ((Phit[tr], Yt[tr], yt[tr]), (Phit[tf], Yt[tf], yt[tf]), (Phit, yt))
        rows = []
        for name in MODELS:
            s = _scores(
                W[name], Phi, Y, y, retain=retain_rows, forget=forget_rows,
                test_parts=parts, golden=W["golden"],
            )  # fmt: skip
            rows.append({"model": name, **s})
        norm_o = np.linalg.norm(W_o)
        out["scenarios"].append(
            {
                "forget": spec,
                "n_forget": int(forget_rows.size),
                "blocks": {k: int(v.sum()) for k, v in blocks.items()},
                "rows": rows,
                "ft_change_rel": float(np.linalg.norm(W["FT"] - W_o) / norm_o),
                "golden_vs_refit_rel": float(
                    np.linalg.norm(W["golden"] - refit.coef_.T) / np.linalg.norm(refit.coef_)
                ),
                "exact_vs_golden_rel": float(
                    np.linalg.norm(W["exact forget"] - refit.coef_.T) / np.linalg.norm(refit.coef_)
                ),
                "exact_forget": {
                    "path": result.path,
                    "fallback": result.fallback,
                    "reason": result.reason,
                    "forget_s": result.seconds,
                    "fit_all_s": fit_s,
                    "refit_retained_s": refit_s,
                },
            }
        )
    return out


def markdown(result: dict) -> str:
    """One table per forget spec: the lab's columns plus accuracies (UA/RA/TA, percent)."""
    lines = []
    for sc in result["scenarios"]:
        b = sc["blocks"]
        lines += [
            f"**forget `{sc['forget']}`** ({sc['n_forget']} samples; features F/O/R = "
            f"{b['F']}/{b['O']}/{b['R']}; ‖W_FT − W_o‖/‖W_o‖ = {sc['ft_change_rel']:.1e})\n",
            "| model | RL | UL | test retain | test forget | UA | RA | TA | ‖W − W_g‖ |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in sc["rows"]:
            lines.append(
                f"| {r['model']} | {r['RL']:.3g} | {r['UL']:.3g} | {r['test_retain']:.3f} "
                f"| {r['test_forget']:.3f} | {r['UA']:.1f} | {r['RA']:.1f} | {r['TA']:.1f} "
                f"| {r['dist_golden']:.3g} |"
            )
        e = sc["exact_forget"]
        lines += [
            "",
            f"Exact forget: path `{e['path']}`, {e['forget_s']:.2f} s against "
            f"{e['refit_retained_s']:.2f} s to refit on the retained rows "
            f"({e['refit_retained_s'] / e['forget_s']:.0f}x); relative distance to the refit "
            f"{sc['exact_vs_golden_rel']:.1e}.",
            "",
        ]
    return "\n".join(lines)
