"""Population membership inference: the SalUn / Unlearn-Sparse MIA-efficacy and a loss threshold.

An attack classifier learns to tell retain samples (members) from test samples
(non-members) from one per-sample feature of the model's output; MIA-efficacy
is the percentage of forget samples it calls non-members. A model that truly
forgot scores like golden: high for forgotten classes, moderate for a random
forget set whose samples golden still generalises to.

:func:`loss_threshold_attack` is the cheapest baseline beside it: rank forget and
test samples by their loss alone and report how well that tells them apart (AUC,
TPR at 1% / 0.1% FPR). It needs no attack model, and the low-FPR end shows whether
*some* forget samples stand out as members even where the average looks fine.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.svm import SVC

from unlearnkit.errors import ConfigError
from unlearnkit.evaluation.lira import attack_summary

FEATURES = ("confidence", "correctness", "entropy", "m_entropy", "prob")


def attack_features(probs: torch.Tensor, labels: torch.Tensor, feature: str) -> np.ndarray:
    """Per-sample attack features from softmax outputs ``probs`` and true ``labels``.

    - ``confidence``: probability of the true label (the default);
    - ``correctness``: 1 if the prediction is right;
    - ``entropy``: entropy of the output;
    - ``m_entropy``: the modified entropy of Song & Mittal (2021), label-aware;
    - ``prob``: the whole probability vector.
    """
    eps = 1e-30
    p = probs.double().clamp_min(eps)
    idx = torch.arange(len(labels))
    p_true = p[idx, labels]
    if feature == "confidence":
        out = p_true[:, None]
    elif feature == "correctness":
        out = (probs.argmax(1) == labels).double()[:, None]
    elif feature == "entropy":
        out = -(p * p.log()).sum(1, keepdim=True)
    elif feature == "m_entropy":
        # Correct class weighs -(1-p_y) log p_y; others -p_j log(1-p_j).
        one_minus = (1 - p).clamp_min(eps)
        terms = -p * one_minus.log()
        terms[idx, labels] = -(1 - p_true) * p_true.log()
        out = terms.sum(1, keepdim=True)
    elif feature == "prob":
        out = p
    else:
        raise ConfigError(f"unknown MIA feature {feature!r}; valid: {', '.join(FEATURES)}")
    return out.numpy()


# Below this held-out accuracy (chance is 50%) the attack cannot tell members from
# non-members, so its verdict on the forget set says little (a choice: chance + 5
# points, about two standard errors on a few hundred held-out samples).
UNINFORMATIVE_BELOW = 55.0


def _attack_set(
    *, retain_probs, retain_labels, test_probs, test_labels, feature, max_samples, seed
):
    """``m`` retain (label 1) and ``m`` test (label 0) attack samples, ``m`` = test size or cap."""
    rng = np.random.default_rng(seed)
    m = len(test_labels) if max_samples is None else min(max_samples, len(test_labels))
    m = min(m, len(retain_labels))
    test_pick = (
        rng.choice(len(test_labels), size=m, replace=False)
        if m < len(test_labels)
        else np.arange(m)
    )
    retain_pick = rng.choice(len(retain_labels), size=m, replace=False)
    features = lambda p, y, pick: attack_features(p[pick], y[pick], feature)
    X = np.concatenate(
        [
            features(retain_probs, retain_labels, retain_pick),
            features(test_probs, test_labels, test_pick),
        ]
    )
    return X, np.concatenate([np.ones(m), np.zeros(m)])


def _attack() -> SVC:
    return SVC(C=3, gamma="auto", kernel="rbf")


def mia_efficacy(
    *,
    retain_probs: torch.Tensor,
    retain_labels: torch.Tensor,
    test_probs: torch.Tensor,
    test_labels: torch.Tensor,
    forget_probs: torch.Tensor,
    forget_labels: torch.Tensor,
    feature: str = "confidence",
    max_samples: int | None = None,
    seed: int = 0,
) -> float:
    """Percentage of forget samples an RBF SVC (C=3, gamma='auto') predicts as non-members.

    The attack trains on ``m`` retain (label 1) and ``m`` test (label 0) samples,
    ``m`` = test size (capped at ``max_samples`` if given, a choice for speed on
    large test sets), the retain samples drawn with ``seed``.
    """
    X, y = _attack_set(
        retain_probs=retain_probs, retain_labels=retain_labels, test_probs=test_probs,
        test_labels=test_labels, feature=feature, max_samples=max_samples, seed=seed,
    )  # fmt: skip
    return _efficacy(X, y, attack_features(forget_probs, forget_labels, feature))


def _efficacy(X: np.ndarray, y: np.ndarray, forget_X: np.ndarray) -> float:
    attack = _attack().fit(X, y)
    return 100.0 * float((attack.predict(forget_X) == 0).mean())


def attack_holdout_accuracy(
    *,
    retain_probs: torch.Tensor,
    retain_labels: torch.Tensor,
    test_probs: torch.Tensor,
    test_labels: torch.Tensor,
    feature: str = "confidence",
    max_samples: int | None = None,
    seed: int = 0,
) -> float:
    """How well the attack tells retain from test at all: balanced accuracy (%) on held-out samples.

    The same attack set as :func:`mia_efficacy` is cut in two halves (seeded,
    stratified); the attack fits on one and is scored on the other. Near 50% the
    population MIA is uninformative (:data:`UNINFORMATIVE_BELOW`): the model's
    outputs on members and non-members look alike, so MIA-efficacy cannot show
    whether the forget set still looks like members.
    """
    X, y = _attack_set(
        retain_probs=retain_probs, retain_labels=retain_labels, test_probs=test_probs,
        test_labels=test_labels, feature=feature, max_samples=max_samples, seed=seed,
    )  # fmt: skip
    return _holdout_accuracy(X, y, seed=seed)


def _holdout_accuracy(X: np.ndarray, y: np.ndarray, *, seed: int) -> float:
    rng = np.random.default_rng(seed + 1)
    half = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        half[rng.permutation(rows)[: len(rows) // 2]] = True
    if half.sum() < 2 or (~half).sum() < 2:
        return float("nan")
    attack = _attack().fit(X[half], y[half])
    hit = attack.predict(X[~half]) == y[~half]
    held_y = y[~half]
    return 100.0 * float(np.mean([hit[held_y == c].mean() for c in (0, 1)]))


def membership_inference(
    *,
    retain_probs: torch.Tensor,
    retain_labels: torch.Tensor,
    test_probs: torch.Tensor,
    test_labels: torch.Tensor,
    forget_probs: torch.Tensor,
    forget_labels: torch.Tensor,
    feature: str = "confidence",
    max_samples: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """``(mia_efficacy, attack_holdout_accuracy)`` from one attack set (built once)."""
    X, y = _attack_set(
        retain_probs=retain_probs, retain_labels=retain_labels, test_probs=test_probs,
        test_labels=test_labels, feature=feature, max_samples=max_samples, seed=seed,
    )  # fmt: skip
    forget_X = attack_features(forget_probs, forget_labels, feature)
    return _efficacy(X, y, forget_X), _holdout_accuracy(X, y, seed=seed)


def per_sample_loss(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """Cross-entropy ``−log p_y`` per row of softmax outputs ``probs``, in float64.

    Where ``p_y > 1/2`` the loss is computed as ``−log1p(−Σ_{j≠y} p_j)``: the small
    probabilities of the other classes are stored accurately even when ``p_y``
    rounds to 1 in float32, so confidently fit (memorised) samples keep distinct
    losses instead of tying at 0, which matters at low FPR.
    """
    p = probs.double()
    idx = torch.arange(len(labels))
    labels = labels.long()
    p_true = p[idx, labels]
    rest = p.clone()
    rest[idx, labels] = 0.0
    rest = rest.sum(1).clamp(0.0, 1.0)
    loss = torch.where(
        p_true > 0.5,
        -torch.log1p(-rest.clamp_max(0.5)),
        -p_true.clamp_min(1e-300).log(),
    )
    return loss.cpu().numpy()


def loss_threshold_attack(forget_losses, test_losses) -> dict:
    """How well a low loss tells forget samples (positive) from test samples (negative).

    The score is ``−loss``; the result is :func:`~unlearnkit.evaluation.lira.attack_summary`'s
    without the balanced accuracy (a loss threshold has no natural value to fix in
    advance): ``auc``, ``tpr_at_1pct_fpr``, ``tpr_at_0.1pct_fpr`` (percent; ``None``
    with fewer than 100 / 1000 test samples, see ``low_fpr_resolution``), the
    counts, and the ROC curve. The ideal is golden's: for a random forget set an AUC
    near 50 (forget samples look like unseen test samples); a model that still
    remembers them reads higher.
    """
    forget_losses = np.asarray(forget_losses, dtype=np.float64).ravel()
    test_losses = np.asarray(test_losses, dtype=np.float64).ravel()
    scores = -np.concatenate([forget_losses, test_losses])
    labels = np.concatenate([np.ones(len(forget_losses)), np.zeros(len(test_losses))])
    summary = attack_summary(scores, labels)
    del summary["balanced_accuracy"], summary["threshold"]
    return summary
