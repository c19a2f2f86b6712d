"""The linear-regression lab: why fine-tuning does not forget (spec/paper.md §1-3).

>>> from unlearnkit import theory
>>> s = theory.make_scenario(n_f=5, n_r=20, d_f=20, d_o=10, d_r=30, seed=0)
>>> m = theory.lab_models(s)
>>> scores = theory.evaluate(s, m.weights, golden=m["golden"], n_test=100)
>>> scores["FT"]["UL"] < 1e-20 < scores["golden"]["UL"]
True
"""

from unlearnkit.theory.metrics import METRICS, evaluate, mse, remaining_loss, unlearning_loss
from unlearnkit.theory.models import (
    MODELS,
    GDResult,
    LabModels,
    forget_feature_reset,
    gd_closed_form,
    gradient_descent,
    lab_models,
    retain_projection,
    retention_reset,
    step_size,
)
from unlearnkit.theory.scenario import Scenario, ScenarioConfig, from_config, make_scenario
from unlearnkit.theory.sweeps import SWEEPS, SweepResult, run_sweep

__all__ = [
    "METRICS",
    "MODELS",
    "SWEEPS",
    "GDResult",
    "LabModels",
    "Scenario",
    "ScenarioConfig",
    "SweepResult",
    "evaluate",
    "forget_feature_reset",
    "from_config",
    "gd_closed_form",
    "gradient_descent",
    "lab_models",
    "make_scenario",
    "mse",
    "remaining_loss",
    "retain_projection",
    "retention_reset",
    "run_sweep",
    "step_size",
    "unlearning_loss",
]
