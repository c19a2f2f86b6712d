"""Evaluation against golden: metrics, membership inference, the model bank, reports.

The population measures (:mod:`~unlearnkit.evaluation.metrics`,
:mod:`~unlearnkit.evaluation.mia`) evaluate one model. The strong per-sample
measures need many: :mod:`~unlearnkit.evaluation.bank` keeps them,
:mod:`~unlearnkit.evaluation.epsilon` (the NeurIPS 2023 ε-score) and
:mod:`~unlearnkit.evaluation.lira` (U-LiRA, LiRA) score them, and
:mod:`unlearnkit.audit` runs the whole audit.
"""

from unlearnkit.evaluation.bank import BankSetting, Entry, ModelBank
from unlearnkit.evaluation.confidence import logit_confidence, model_confidences
from unlearnkit.evaluation.epsilon import (
    EpsilonScore,
    bucket_edges,
    bucket_points,
    epsilon_score,
    sample_epsilons,
)
from unlearnkit.evaluation.lira import attack_summary, fit_gaussians, offline_scores, online_scores
from unlearnkit.evaluation.metrics import (
    GAP_METRICS,
    IDEALS,
    compare_to_golden,
    evaluate,
    kl_divergence,
)
from unlearnkit.evaluation.mia import FEATURES as MIA_FEATURES
from unlearnkit.evaluation.mia import attack_features, loss_threshold_attack, mia_efficacy

__all__ = [
    "GAP_METRICS",
    "IDEALS",
    "MIA_FEATURES",
    "BankSetting",
    "Entry",
    "EpsilonScore",
    "ModelBank",
    "attack_features",
    "attack_summary",
    "bucket_edges",
    "bucket_points",
    "compare_to_golden",
    "epsilon_score",
    "evaluate",
    "fit_gaussians",
    "kl_divergence",
    "logit_confidence",
    "loss_threshold_attack",
    "mia_efficacy",
    "model_confidences",
    "offline_scores",
    "online_scores",
    "sample_epsilons",
]
