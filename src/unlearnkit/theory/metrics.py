"""Regression metrics of spec/evaluation.md: RL, UL, test losses and distance to golden."""

from __future__ import annotations

import numpy as np

from unlearnkit.theory.scenario import Scenario

METRICS = ("RL", "UL", "test_retain", "test_forget", "dist_golden")
METRIC_HELP = {
    "RL": "remaining loss: mean (x·w − y)² over the retain data",
    "UL": "unlearning loss: mean (x·w − y)² over the forget data",
    "test_retain": "mean squared error on fresh retain-like samples",
    "test_forget": "mean squared error on fresh forget-like samples",
    "dist_golden": "‖w − w_golden‖₂",
}


def mse(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    """Mean over rows of ``(x·w − y)²``.

    >>> mse(np.eye(2), np.array([1.0, 0.0]), np.zeros(2))
    0.5
    """
    r = X @ w - y
    return float(np.mean(r * r))


def remaining_loss(w: np.ndarray, scenario: Scenario) -> float:
    return mse(scenario.X_r, scenario.y_r, w)


def unlearning_loss(w: np.ndarray, scenario: Scenario) -> float:
    return mse(scenario.X_f, scenario.y_f, w)


def evaluate(
    scenario: Scenario,
    weights: dict[str, np.ndarray],
    *,
    golden: np.ndarray,
    n_test: int = 1000,
    test_seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every metric of :data:`METRICS` for every model in ``weights``.

    All models are scored on the same fresh samples (drawn once with ``test_seed``).

    >>> from unlearnkit.theory.scenario import make_scenario
    >>> s = make_scenario(n_f=2, n_r=6, d_f=4, d_o=2, d_r=6, seed=0)
    >>> out = evaluate(s, {"truth": s.w_star}, golden=s.w_star, n_test=50)
    >>> out["truth"]["UL"], out["truth"]["dist_golden"]
    (0.0, 0.0)
    """
    Xtr, ytr = scenario.sample("retain", n_test, seed=test_seed)
    Xtf, ytf = scenario.sample("forget", n_test, seed=test_seed)
    return {
        name: {
            "RL": remaining_loss(w, scenario),
            "UL": unlearning_loss(w, scenario),
            "test_retain": mse(Xtr, ytr, w),
            "test_forget": mse(Xtf, ytf, w),
            "dist_golden": float(np.linalg.norm(w - golden)),
        }
        for name, w in weights.items()
    }
