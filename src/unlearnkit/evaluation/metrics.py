"""Classification metrics against the golden model (spec/evaluation.md).

All accuracies are percentages. ``avg_gap``, ``tow`` and ``kl_forget`` need
the golden model of the same seed; without it they are left out.
"""

from __future__ import annotations

import torch
from torch import nn

from unlearnkit.data.forget import ForgetSplit
from unlearnkit.errors import NonFiniteOutputError
from unlearnkit.evaluation.mia import loss_threshold_attack, membership_inference, per_sample_loss
from unlearnkit.training import predict_proba

GAP_METRICS = ("UA", "RA", "TA", "MIA")

# Each metric's ideal, as the report states it.
IDEALS = {
    "UA": "= golden",
    "RA": "= golden",
    "TA": "= golden",
    "MIA": "= golden",
    "MIA_attack_acc": "well above 50 (else the MIA is uninformative)",
    "LT_AUC": "= golden",
    "LT_TPR1": "= golden",
    "LT_TPR01": "= golden",
    "avg_gap": "0 (lower is better)",
    "tow": "1 (higher is better)",
    "kl_forget": "0 (lower is better)",
    "time_s": "lower is better",
    "speedup": "higher is better",
}


def _accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    return 100.0 * (probs.argmax(1) == labels).double().mean().item()


def evaluate(
    model: nn.Module,
    split: ForgetSplit,
    *,
    golden: nn.Module | None = None,
    golden_metrics: dict | None = None,
    mia_feature: str = "confidence",
    mia_max_samples: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """UA, RA, TA and MIA of ``model``; with ``golden``, also avg_gap, tow and kl_forget.

    ``MIA_attack_acc`` says whether the MIA means anything: the attack's balanced
    accuracy (%) at telling held-out retain from test samples; near 50 it cannot
    tell members from non-members at all (see :func:`attack_holdout_accuracy`).

    ``LT_AUC``, ``LT_TPR1`` and ``LT_TPR01`` are the loss-threshold attack's AUC and
    TPR at 1% / 0.1% FPR (%) at telling forget from test samples by a low
    cross-entropy (:func:`~unlearnkit.evaluation.mia.loss_threshold_attack`); a TPR
    is ``None`` when the test set has fewer than 100 / 1000 samples. Their ideal is
    golden's value; they are not part of ``avg_gap``.

    Pass ``golden_metrics`` (golden's own ``evaluate`` result, same seed) to avoid
    evaluating golden again.

    >>> import unlearnkit as uk
    >>> data = uk.datasets.load("digits")
    >>> split = uk.select_forget(data, "random:0.1")
    >>> golden = uk.train(uk.models.make("logreg", data), split.retain, epochs=2)
    >>> evaluate(golden, split, golden=golden)["avg_gap"]
    0.0
    """
    probs = {
        name: predict_proba(model, getattr(split, name).X) for name in ("retain", "forget", "test")
    }
    if not all(bool(torch.isfinite(p).all()) for p in probs.values()):
        raise NonFiniteOutputError(
            "the model outputs NaN or infinite values (its training or unlearning diverged); "
            "lower the learning rate or the number of steps"
        )
    labels = {name: getattr(split, name).y for name in ("retain", "forget", "test")}
    mia, attack_accuracy = membership_inference(
        retain_probs=probs["retain"],
        retain_labels=labels["retain"],
        test_probs=probs["test"],
        test_labels=labels["test"],
        forget_probs=probs["forget"],
        forget_labels=labels["forget"],
        feature=mia_feature,
        max_samples=mia_max_samples,
        seed=seed,
    )
    out = {
        "UA": 100.0 - _accuracy(probs["forget"], labels["forget"]),
        "RA": _accuracy(probs["retain"], labels["retain"]),
        "TA": _accuracy(probs["test"], labels["test"]),
        "MIA": mia,
        "MIA_attack_acc": attack_accuracy,
    }
    loss_attack = loss_threshold_attack(
        per_sample_loss(probs["forget"], labels["forget"]),
        per_sample_loss(probs["test"], labels["test"]),
    )
    out["LT_AUC"] = loss_attack["auc"]
    out["LT_TPR1"] = loss_attack["tpr_at_1pct_fpr"]
    out["LT_TPR01"] = loss_attack["tpr_at_0.1pct_fpr"]
    if golden is not None:
        if golden_metrics is None:
            golden_metrics = (
                out
                if golden is model
                else evaluate(
                    golden,
                    split,
                    mia_feature=mia_feature,
                    mia_max_samples=mia_max_samples,
                    seed=seed,
                )
            )
        out.update(compare_to_golden(out, golden_metrics))
        golden_forget = predict_proba(golden, split.forget.X)
        out["kl_forget"] = kl_divergence(golden_forget, probs["forget"])
    return out


def compare_to_golden(metrics: dict, golden: dict) -> dict[str, float]:
    """avg_gap (mean |Δ| over UA, RA, TA, MIA) and tow (product of 1 − |Δacc|/100)."""
    avg_gap = sum(abs(metrics[k] - golden[k]) for k in GAP_METRICS) / len(GAP_METRICS)
    # UA = 100 - forget accuracy, so |ΔUA| is |Δ forget accuracy|.
    tow = 1.0
    for key in ("UA", "RA", "TA"):
        tow *= 1.0 - abs(metrics[key] - golden[key]) / 100.0
    return {"avg_gap": avg_gap, "tow": tow}


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """Mean over rows of KL(p ‖ q), with probabilities clamped away from 0."""
    p = p.double().clamp_min(1e-12)
    q = q.double().clamp_min(1e-12)
    return float((p * (p.log() - q.log())).sum(1).mean())
