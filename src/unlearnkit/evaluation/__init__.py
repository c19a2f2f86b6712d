"""Evaluation against golden: metrics, membership inference, reports."""

from unlearnkit.evaluation.metrics import (
    GAP_METRICS,
    IDEALS,
    compare_to_golden,
    evaluate,
    kl_divergence,
)
from unlearnkit.evaluation.mia import FEATURES as MIA_FEATURES
from unlearnkit.evaluation.mia import attack_features, mia_efficacy

__all__ = [
    "GAP_METRICS",
    "IDEALS",
    "MIA_FEATURES",
    "attack_features",
    "compare_to_golden",
    "evaluate",
    "kl_divergence",
    "mia_efficacy",
]
