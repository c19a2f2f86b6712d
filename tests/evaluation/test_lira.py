import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from unlearnkit.errors import ConfigError
from unlearnkit.evaluation.lira import (
    attack_summary,
    fit_gaussians,
    offline_scores,
    online_scores,
)
from unlearnkit.evaluation.mia import loss_threshold_attack, per_sample_loss


def _masked(seed=0, models=12, samples=30):
    rng = np.random.default_rng(seed)
    conf = rng.normal(2.0, 1.5, size=(models, samples))
    mask = rng.random((models, samples)) < 0.5
    mask[:2] = True  # every sample has at least 2 entries
    return conf, mask


def test_gaussian_fit_matches_numpy_on_masked_entries():
    conf, mask = _masked()
    conf[~mask] = np.nan  # entries outside the mask are ignored, whatever they hold
    mu, sd = fit_gaussians(conf, mask)
    for s in range(conf.shape[1]):
        picked = conf[mask[:, s], s]
        assert mu[s] == pytest.approx(picked.mean())
        assert sd[s] == pytest.approx(picked.std(ddof=1))


def test_too_few_entries_give_nan_and_std_is_floored():
    conf = np.array([[1.0, 5.0, 3.0], [2.0, 7.0, 3.0]])
    mask = np.array([[True, True, True], [True, False, True]])
    mu, sd = fit_gaussians(conf, mask, min_std=0.01)
    assert mu[0] == 1.5 and sd[0] == pytest.approx(math.sqrt(0.5))
    assert math.isnan(mu[1]) and math.isnan(sd[1])
    assert mu[2] == 3.0 and sd[2] == 0.01  # zero spread, floored


def test_fixed_variance_pools_within_sample_spread():
    conf, mask = _masked(seed=1)
    mask[2:, 0] = False  # sample 0: 2 entries
    mask[1:, 1] = False  # sample 1: one entry, enough for its mean
    mask[:, 2] = False  # sample 2: none
    mu, sd = fit_gaussians(conf, mask, fixed_variance=True)
    columns = [conf[mask[:, s], s] for s in range(30) if mask[:, s].any()]
    squares = sum(((c - c.mean()) ** 2).sum() for c in columns)
    dof = sum(len(c) - 1 for c in columns)
    pooled = math.sqrt(squares / dof)
    assert mu[1] == conf[0, 1] and sd[1] == pytest.approx(pooled)
    assert math.isnan(mu[2]) and math.isnan(sd[2])
    assert np.allclose(np.delete(sd, 2), pooled)
    per_sample_mu = fit_gaussians(conf, mask)[0]
    assert np.allclose(np.delete(mu, [1, 2]), np.delete(per_sample_mu, [1, 2]))


def test_online_score_is_the_log_likelihood_ratio():
    rng = np.random.default_rng(2)
    pos = (rng.normal(3, 1, 20), rng.uniform(0.5, 2, 20))
    neg = (rng.normal(0, 1, 20), rng.uniform(0.5, 2, 20))
    target = rng.normal(1.5, 2, size=(5, 20))
    expected = norm.logpdf(target, *pos) - norm.logpdf(target, *neg)
    assert np.allclose(online_scores(target, pos, neg), expected)
    assert np.allclose(offline_scores(target, neg), (target - neg[0]) / neg[1])
    pos[0][3] = np.nan
    scores = online_scores(target, pos, neg)
    assert np.isnan(scores[:, 3]).all() and np.isfinite(np.delete(scores, 3, axis=1)).all()


def _ulira_draw(rng, shift, *, shadows=16, samples=200, targets=8):
    """Shadow banks and target models; positives sit ``shift`` above negatives."""
    base = rng.normal(0, 2, samples)
    pos_bank = base + shift + rng.normal(0, 1, (shadows, samples))
    neg_bank = base + rng.normal(0, 1, (shadows, samples))
    per_model = np.r_[np.ones(targets // 2), np.zeros(targets // 2)]
    labels = np.broadcast_to(per_model[:, None], (targets, samples))
    target = base + shift * labels + rng.normal(0, 1, (targets, samples))
    mask = np.ones((shadows, samples), dtype=bool)
    pos = fit_gaussians(pos_bank, mask)
    neg = fit_gaussians(neg_bank, mask)
    return target, pos, neg, labels


def test_identical_distributions_read_chance():
    rng = np.random.default_rng(3)
    online, offline, auc = [], [], []
    for _ in range(20):
        target, pos, neg, labels = _ulira_draw(rng, 0.0)
        summary = attack_summary(online_scores(target, pos, neg), labels)
        online.append(summary["balanced_accuracy"])
        auc.append(summary["auc"])
        offline.append(attack_summary(offline_scores(target, neg), labels)["balanced_accuracy"])
    assert np.mean(online) == pytest.approx(50, abs=1.5)
    assert np.mean(offline) == pytest.approx(50, abs=1.5)
    assert np.mean(auc) == pytest.approx(50, abs=1.5)


def test_well_separated_distributions_read_near_100():
    target, pos, neg, labels = _ulira_draw(np.random.default_rng(4), 8.0)
    summary = attack_summary(online_scores(target, pos, neg), labels)
    assert summary["balanced_accuracy"] > 99 and summary["auc"] > 99.9
    assert summary["tpr_at_1pct_fpr"] > 99
    assert attack_summary(offline_scores(target, neg), labels)["auc"] > 99.9


def test_tpr_at_low_fpr_on_a_constructed_case():
    # 1000 negatives at 0..999. Of 100 positives, 40 lie above every negative, 15 at
    # 994.5 (only the 5 negatives 995..999 above them: FPR 0.5%), 45 below every negative.
    negatives = np.arange(1000.0)
    positives = np.r_[np.arange(40) + 2000.0, np.full(15, 994.5), np.arange(45) - 100.0]
    scores = np.r_[positives, negatives]
    labels = np.r_[np.ones(100), np.zeros(1000)]
    summary = attack_summary(scores, labels)
    assert summary["tpr_at_0.1pct_fpr"] == pytest.approx(40.0)  # at most 1 negative passed
    assert summary["tpr_at_1pct_fpr"] == pytest.approx(55.0)
    assert summary["low_fpr_resolution"] is None
    assert summary["n_positive"] == 100 and summary["n_negative"] == 1000
    roc = summary["roc"]
    assert len(roc["fpr"]) <= 200 and roc["fpr"][0] == 0 and roc["fpr"][-1] == 1
    assert np.all(np.diff(roc["fpr"]) >= 0) and np.all(np.diff(roc["tpr"]) >= 0)
    assert min(f for f in roc["fpr"] if f > 0) == pytest.approx(0.001)  # low end kept


def test_too_few_negatives_leave_low_fpr_unresolved():
    scores = np.r_[np.ones(10), np.zeros(300)]
    summary = attack_summary(scores, np.r_[np.ones(10), np.zeros(300)])
    assert summary["tpr_at_1pct_fpr"] == 100.0 and summary["tpr_at_0.1pct_fpr"] is None
    assert "1000" in summary["low_fpr_resolution"]


def test_nan_scores_are_dropped_and_counted():
    scores = np.array([[2.0, np.nan, -1.0], [np.nan, 0.5, -2.0]])
    labels = np.array([[1], [0]])  # per target model, broadcast over samples
    summary = attack_summary(scores, labels)
    assert summary["dropped"] == 2
    assert summary["n_positive"] == 2 and summary["n_negative"] == 2
    # positives 2, -1; negatives 0.5, -2: at 0, TPR 1/2 and TNR 1/2.
    assert summary["balanced_accuracy"] == 50.0
    assert summary["auc"] == 75.0


def test_bad_input_is_refused_clearly():
    conf = np.zeros((3, 4))
    with pytest.raises(ConfigError, match="must match"):
        fit_gaussians(conf, np.ones((3, 5), dtype=bool))
    with pytest.raises(ConfigError, match="boolean"):
        fit_gaussians(conf, np.ones((3, 4)))
    with pytest.raises(ConfigError, match="2-D"):
        fit_gaussians(np.zeros(4), np.ones(4, dtype=bool))
    gauss = (np.zeros(4), np.ones(4))
    with pytest.raises(ConfigError, match="broadcast"):
        online_scores(np.zeros((2, 5)), gauss, gauss)
    with pytest.raises(ConfigError, match="must match"):
        online_scores(np.zeros(4), gauss, (np.zeros(3), np.ones(3)))
    with pytest.raises(ConfigError, match="positive"):
        offline_scores(np.zeros(4), (np.zeros(4), np.zeros(4)))
    with pytest.raises(ConfigError, match="0 .negative. or 1"):
        attack_summary(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ConfigError, match="both classes"):
        attack_summary(np.zeros(3), np.ones(3))
    with pytest.raises(ConfigError, match="both classes"):
        attack_summary(np.array([1.0, np.nan]), np.array([1, 0]))
    with pytest.raises(ConfigError, match="do not match"):
        attack_summary(np.zeros(3), np.zeros(4))


def test_loss_threshold_reads_chance_when_forget_looks_like_test():
    rng = np.random.default_rng(5)
    summary = loss_threshold_attack(rng.exponential(1.0, 2000), rng.exponential(1.0, 2000))
    assert summary["auc"] == pytest.approx(50, abs=3)
    assert summary["tpr_at_1pct_fpr"] < 5 and summary["tpr_at_0.1pct_fpr"] < 2
    assert "balanced_accuracy" not in summary


def test_loss_threshold_flags_memorised_forget_samples():
    rng = np.random.default_rng(6)
    forget = rng.exponential(1e-4, 500)  # fit almost perfectly
    test = 0.5 + rng.exponential(1.0, 1000)
    summary = loss_threshold_attack(forget, test)
    assert summary["auc"] == 100.0
    assert summary["tpr_at_1pct_fpr"] == 100.0 and summary["tpr_at_0.1pct_fpr"] == 100.0


def test_per_sample_loss_keeps_confident_samples_apart():
    logits = torch.tensor([[30.0, 0.0, 0.0], [25.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    probs = torch.softmax(logits, 1)  # float32: p_y rounds to 1 in the first two rows
    labels = torch.tensor([0, 0, 0])
    loss = per_sample_loss(probs, labels)
    expected = torch.nn.functional.cross_entropy(logits.double(), labels, reduction="none")
    assert np.allclose(loss, expected.numpy(), rtol=1e-5)
    assert loss[0] < loss[1]
