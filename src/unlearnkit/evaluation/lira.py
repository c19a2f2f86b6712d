"""Statistics of likelihood-ratio attacks: LiRA (membership) and U-LiRA (unlearning).

Both attacks look at one number per (model, sample): the logit-scaled confidence
``log p_y − log(1 − p_y)`` (:func:`unlearnkit.evaluation.confidence.logit_confidence`),
which is close to Gaussian over the randomness of training, unlike 0/1 correctness.

- **LiRA** (Carlini et al., 2022) asks whether a sample was in a model's training
  set. Shadow models trained *with* the sample give the "positive" distribution of
  its confidence, shadows trained *without* it the "negative" one.
- **U-LiRA** (Hayes et al., 2024) asks whether a sample was *unlearned* or never
  trained on. Shadow models that trained on the sample and then unlearned it with
  the method under test are "positive"; golden shadows that never saw it are
  "negative". A method that truly forgets leaves the two distributions equal, and
  the attack cannot beat chance.

This module holds only the statistics; which shadows are positive or negative for
each sample is the caller's business, passed in as boolean masks.

Per sample, :func:`fit_gaussians` fits a Gaussian to each side's confidences. A
target model's confidence is then scored by :func:`online_scores` (the log
likelihood ratio, positive over negative) or :func:`offline_scores` (one-sided, a
z-score against the negative side only). In both, **a higher score means "more
likely positive"**: a member, or a sample that was not really unlearned, keeps a
higher confidence than models that never saw it.

:func:`attack_summary` turns scores and true labels (1 = positive) into balanced
accuracy, AUC and TPR at low FPR. The balanced accuracy is taken at the decision
rule's *natural* threshold, fixed in advance: ``score > 0``, which is the Bayes
rule for the online log ratio with equal priors and "above the negative mean" for
the offline z-score. This is a choice: a threshold tuned on the very scores it is
judged on reads above 50% even when nothing can be told apart (for golden itself).
AUC and TPR at low FPR need no threshold.

The ideal for an unlearned model is what golden gets: a balanced accuracy of 50%
(and an AUC near 50%), the attack unable to tell unlearned from never trained.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from unlearnkit.errors import ConfigError

# The false-positive rates at which TPR is reported: (result key, level).
LOW_FPR_LEVELS = (("tpr_at_1pct_fpr", 0.01), ("tpr_at_0.1pct_fpr", 0.001))

_HALF_LOG_TWO_PI = 0.5 * math.log(2 * math.pi)


def fit_gaussians(
    confidences: np.ndarray,
    mask: np.ndarray,
    *,
    fixed_variance: bool = False,
    min_std: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample mean and standard deviation of the masked ``confidences``.

    ``confidences`` is ``(K models, S samples)``; ``mask`` (same shape, bool) says
    which entries belong to the distribution. Entries outside the mask are ignored
    (they may be NaN). The standard deviation is the sample one (``ddof=1``), a
    choice: with a handful of shadows the ``ddof=0`` estimate is biased low and
    overstates the attack's confidence.

    With ``fixed_variance``, one pooled standard deviation serves every sample
    (LiRA's fixed-variance option, steadier with few shadows): the within-sample
    variance pooled over samples, ``Σ_s Σ_k (c_ks − mean_s)² / Σ_s (n_s − 1)``.

    Standard deviations are floored at ``min_std``. A sample with fewer than 2
    masked entries gets a NaN mean and std (the caller drops it); with
    ``fixed_variance`` one entry is enough for its mean, and only samples with none
    are NaN. If no sample has 2 entries, the pooled std (so every std) is NaN.
    Returns float64 arrays of shape ``(S,)``.
    """
    conf = np.asarray(confidences, dtype=np.float64)
    mask = np.asarray(mask)
    if conf.ndim != 2:
        raise ConfigError(f"confidences must be 2-D (models, samples), got shape {conf.shape}")
    if mask.shape != conf.shape:
        raise ConfigError(f"mask has shape {mask.shape}, confidences {conf.shape}; they must match")
    if mask.dtype != np.bool_:
        raise ConfigError(f"mask must be boolean, got dtype {mask.dtype}")
    if not min_std > 0:
        raise ConfigError(f"min_std must be positive, got {min_std}")
    if not np.isfinite(conf[mask]).all():
        raise ConfigError("confidences selected by the mask must be finite")

    n = mask.sum(axis=0)
    values = np.where(mask, conf, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.sum(axis=0) / n
    squares = np.where(mask, (conf - mean) ** 2, 0.0).sum(axis=0)
    if fixed_variance:
        dof = int(np.clip(n - 1, 0, None).sum())
        pooled = math.sqrt(squares[n >= 2].sum() / dof) if dof > 0 else math.nan
        std = np.full(conf.shape[1], pooled)
        enough = n >= 1
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            std = np.sqrt(squares / (n - 1))
        enough = n >= 2
    mean = np.where(enough, mean, np.nan)
    std = np.where(enough, np.maximum(std, min_std), np.nan)  # maximum keeps NaN
    return mean, std


def _gaussian(params, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        mu, sd = params
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a (mean, std) pair of arrays") from None
    mu = np.asarray(mu, dtype=np.float64)
    sd = np.asarray(sd, dtype=np.float64)
    if mu.ndim != 1 or mu.shape != sd.shape:
        raise ConfigError(
            f"{name} mean and std must be 1-D of equal length, got {mu.shape} and {sd.shape}"
        )
    if (sd <= 0).any():  # NaN compares False: a dropped sample passes through
        raise ConfigError(f"{name} std must be positive (or NaN for a dropped sample)")
    return mu, sd


def _target(target, samples: int) -> np.ndarray:
    target = np.asarray(target, dtype=np.float64)
    try:
        np.broadcast_shapes(target.shape, (samples,))
    except ValueError:
        raise ConfigError(
            f"target of shape {target.shape} does not broadcast with {samples} samples"
        ) from None
    return target


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    z = (x - mu) / sd
    return -0.5 * z * z - np.log(sd) - _HALF_LOG_TWO_PI


def online_scores(target, positive, negative) -> np.ndarray:
    """Log likelihood ratio ``log N(target; μ+, σ+) − log N(target; μ−, σ−)``, elementwise.

    ``positive`` and ``negative`` are ``(mean, std)`` pairs of shape ``(S,)``, as
    :func:`fit_gaussians` returns; ``target`` broadcasts with ``(S,)`` (for example
    ``(T target models, S)``). NaN where either Gaussian is NaN. Higher means more
    likely positive; ``> 0`` is the equal-prior Bayes decision.
    """
    mu_pos, sd_pos = _gaussian(positive, "positive")
    mu_neg, sd_neg = _gaussian(negative, "negative")
    if mu_pos.shape != mu_neg.shape:
        raise ConfigError(
            f"positive and negative Gaussians cover {mu_pos.shape[0]} and "
            f"{mu_neg.shape[0]} samples; they must match"
        )
    target = _target(target, mu_pos.shape[0])
    return _log_normal(target, mu_pos, sd_pos) - _log_normal(target, mu_neg, sd_neg)


def offline_scores(target, negative) -> np.ndarray:
    """One-sided z-score ``(target − μ−) / σ−`` against the negative Gaussian only.

    Positives are expected to score higher (a member, or a sample not really
    unlearned, keeps a higher confidence than models that never saw it); ``> 0``
    means above the negative mean. NaN where the Gaussian is NaN.
    """
    mu_neg, sd_neg = _gaussian(negative, "negative")
    target = _target(target, mu_neg.shape[0])
    return (target - mu_neg) / sd_neg


def _binary_labels(labels: np.ndarray) -> np.ndarray:
    if labels.dtype == np.bool_:
        return labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.number):
        raise ConfigError(f"labels must be 0/1, got dtype {labels.dtype}")
    if not np.isin(labels, (0, 1)).all():  # NaN is not 0 or 1 either
        bad = np.unique(labels[~np.isin(labels, (0, 1))])[:5]
        raise ConfigError(f"labels must be 0 (negative) or 1 (positive), found {bad.tolist()}")
    return labels.astype(np.int64)


def _finite_scores(scores: np.ndarray) -> np.ndarray:
    """±inf replaced by finite values beyond the others, so the ranking is unchanged."""
    infinite = np.isinf(scores)
    if not infinite.any():
        return scores
    finite = scores[~infinite]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    span = max(high - low, 1.0)
    return np.where(scores == np.inf, high + span, np.where(scores == -np.inf, low - span, scores))


def _downsample(fpr: np.ndarray, tpr: np.ndarray, points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` ROC points on a log-spaced FPR grid, keeping both ends.

    For each grid FPR the point kept is the last one at or below it (the highest TPR
    reachable there), so the low-FPR end is as sharp as the data allow.
    """
    if len(fpr) <= points:
        return fpr, tpr
    smallest = fpr[fpr > 0].min()
    grid = np.geomspace(smallest, 1.0, points - 3)
    keep = np.searchsorted(fpr, grid, side="right") - 1
    top_at_zero = np.searchsorted(fpr, 0.0, side="right") - 1
    keep = np.unique(np.concatenate([[0, top_at_zero, len(fpr) - 1], keep]))
    return fpr[keep], tpr[keep]


def attack_summary(
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    threshold: float = 0.0,
    roc_points: int = 200,
) -> dict:
    """Balanced accuracy, AUC and TPR at 1% / 0.1% FPR of an attack, as a JSON-ready dict.

    ``scores`` (higher = more likely positive) and ``labels`` (1 positive, 0
    negative; broadcast to ``scores``' shape) are flattened; NaN scores are dropped
    and counted in ``dropped``. Keys (rates in percent):

    - ``balanced_accuracy``: mean of TPR and TNR of the rule ``score > threshold``
      (``threshold`` is reported too). The default 0 is the natural rule of the
      online log ratio and the offline z-score, fixed in advance; see the module
      docstring for why it is not tuned on the scores.
    - ``auc``: area under the ROC curve.
    - ``tpr_at_1pct_fpr``, ``tpr_at_0.1pct_fpr``: the highest TPR among the
      operating points whose FPR is at most the level. ``None`` when there are
      fewer than ``1 / level`` negatives (the level cannot be resolved), and
      ``low_fpr_resolution`` then says so; otherwise it is ``None``.
    - ``n_positive``, ``n_negative``, ``dropped``.
    - ``roc``: ``{"fpr": [...], "tpr": [...]}`` as fractions, at most
      ``roc_points`` points on a log-spaced FPR grid (for log-scale plots).
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    try:
        labels = np.broadcast_to(labels, scores.shape)
    except ValueError:
        raise ConfigError(
            f"labels of shape {labels.shape} do not match scores of shape {scores.shape}"
        ) from None
    if roc_points < 4:
        raise ConfigError(f"roc_points must be at least 4, got {roc_points}")
    scores, labels = scores.ravel(), _binary_labels(labels.ravel())
    keep = ~np.isnan(scores)
    dropped = int((~keep).sum())
    scores, labels = _finite_scores(scores[keep]), labels[keep]
    n_positive = int(labels.sum())
    n_negative = int(len(labels) - n_positive)
    if n_positive == 0 or n_negative == 0:
        raise ConfigError(
            f"an attack needs both classes: {n_positive} positive and {n_negative} negative "
            f"scores left after dropping {dropped} NaN"
        )

    positive = labels == 1
    predicted = scores > threshold
    tpr_at_threshold = predicted[positive].mean()
    tnr_at_threshold = (~predicted[~positive]).mean()
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)

    out = {
        "balanced_accuracy": 100.0 * float(tpr_at_threshold + tnr_at_threshold) / 2,
        "threshold": float(threshold),
        "auc": 100.0 * float(roc_auc_score(labels, scores)),
    }
    unresolved = []
    for key, level in LOW_FPR_LEVELS:
        needed = round(1 / level)
        if n_negative < needed:
            out[key] = None
            unresolved.append(f"{key} needs at least {needed}")
        else:
            out[key] = 100.0 * float(tpr[fpr <= level].max())
    out["low_fpr_resolution"] = (
        f"only {n_negative} negatives: " + "; ".join(unresolved) if unresolved else None
    )
    out |= {"n_positive": n_positive, "n_negative": n_negative, "dropped": dropped}
    roc_fpr, roc_tpr = _downsample(fpr, tpr, roc_points)
    out["roc"] = {"fpr": roc_fpr.tolist(), "tpr": roc_tpr.tolist()}
    return out


__all__ = [
    "LOW_FPR_LEVELS",
    "attack_summary",
    "fit_gaussians",
    "offline_scores",
    "online_scores",
]
