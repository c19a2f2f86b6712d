import math

import pytest
import torch

import unlearnkit as uk
from unlearnkit.errors import ConfigError
from unlearnkit.evaluation import (
    attack_features,
    compare_to_golden,
    evaluate,
    kl_divergence,
    mia_efficacy,
)
from unlearnkit.evaluation.report import render_report


@pytest.fixture(scope="module")
def trained(digits):
    split = uk.select_forget(digits, "class:3")
    original = uk.train(uk.models.make("logreg", digits), split.train, seed=0, epochs=3)
    golden = uk.train(uk.models.make("logreg", digits), split.retain, seed=0, epochs=3)
    return split, original, golden


def test_accuracies_match_their_definitions(trained):
    split, original, golden = trained
    m = evaluate(original, split)
    assert m["UA"] == pytest.approx(100 - uk.accuracy(original, split.forget))
    assert m["RA"] == pytest.approx(uk.accuracy(original, split.retain))
    assert m["TA"] == pytest.approx(uk.accuracy(original, split.test))
    assert "avg_gap" not in m
    g = evaluate(golden, split)
    assert g["UA"] > 95  # golden never saw class 3


def test_golden_against_itself_has_no_gap(trained):
    split, _, golden = trained
    m = evaluate(golden, split, golden=golden)
    assert m["avg_gap"] == 0 and m["tow"] == 1 and m["kl_forget"] == pytest.approx(0, abs=1e-12)


def test_gap_metrics_follow_the_spec(trained):
    split, original, golden = trained
    m = evaluate(original, split, golden=golden)
    g = evaluate(golden, split)
    expected_gap = sum(abs(m[k] - g[k]) for k in ("UA", "RA", "TA", "MIA")) / 4
    assert m["avg_gap"] == pytest.approx(expected_gap)
    expected_tow = math.prod(1 - abs(m[k] - g[k]) / 100 for k in ("UA", "RA", "TA"))
    assert m["tow"] == pytest.approx(expected_tow)
    assert m["kl_forget"] > 0.5  # the original still knows class 3, golden does not


def test_compare_to_golden_by_hand():
    gap = compare_to_golden(
        {"UA": 10, "RA": 90, "TA": 80, "MIA": 20}, {"UA": 20, "RA": 100, "TA": 80, "MIA": 0}
    )
    assert gap["avg_gap"] == pytest.approx((10 + 10 + 0 + 20) / 4)
    assert gap["tow"] == pytest.approx(0.9 * 0.9 * 1.0)


def test_kl_divergence_is_zero_only_for_equal_rows():
    p = torch.tensor([[0.5, 0.5], [0.9, 0.1]])
    assert kl_divergence(p, p) == pytest.approx(0)
    q = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    expected = (0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)) / 2
    assert kl_divergence(p, q) == pytest.approx(expected)


def test_mia_separates_confident_members_from_unsure_non_members():
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(200, dtype=torch.int64)

    def probs(conf):
        p = torch.stack([conf, 1 - conf], 1)
        return p

    members = probs(0.95 + 0.05 * torch.rand(200, generator=gen))
    non_members = probs(0.3 + 0.3 * torch.rand(200, generator=gen))
    common = {
        "retain_probs": members,
        "retain_labels": labels,
        "test_probs": non_members,
        "test_labels": labels,
    }
    assert mia_efficacy(**common, forget_probs=members[:50], forget_labels=labels[:50]) < 10
    assert mia_efficacy(**common, forget_probs=non_members[:50], forget_labels=labels[:50]) > 90


@pytest.mark.parametrize("feature", ["confidence", "correctness", "entropy", "m_entropy", "prob"])
def test_attack_features_shapes(feature):
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    y = torch.tensor([0, 1])
    out = attack_features(p, y, feature)
    assert out.shape == ((2, 3) if feature == "prob" else (2, 1))
    if feature == "confidence":
        assert out[:, 0].tolist() == pytest.approx([0.7, 0.1])
    with pytest.raises(ConfigError, match="valid: confidence"):
        attack_features(p, y, "loss")


# Metric values shared by the hand-made records of the report tests.
REPORT_ROW = {"UA": 1.0, "RA": 2.0, "TA": 3.0, "MIA": 4.0, "tow": 1.0, "kl_forget": 0.0}
REPORT_ROW |= {"time_s": 1.0, "speedup": 1.0}


def test_report_puts_golden_first_and_bolds_best_gap():
    records = [
        {**REPORT_ROW, "method": "a", "seed": 0, "forget": "class:3", "avg_gap": 5.0},
        {**REPORT_ROW, "method": "golden", "seed": 0, "forget": "class:3", "avg_gap": 0.0},
        {**REPORT_ROW, "method": "b", "seed": 0, "forget": "class:3", "avg_gap": 2.0},
        {**REPORT_ROW, "method": "b", "seed": 1, "forget": "class:3", "avg_gap": 4.0},
    ]
    text = render_report(records)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "method" not in line]
    assert rows[0].startswith("| golden")
    assert "**3.00 ± 1.41**" in rows[2]
    assert "Ideal values" in text


def test_report_pools_several_class_scenarios():
    records = [
        {**REPORT_ROW, "method": "golden", "seed": 0, "forget": spec, "avg_gap": 0.0, "UA": ua}
        for spec, ua in (("class:3", 90.0), ("class:6", 100.0), ("random:0.1", 5.0))
    ]
    text = render_report(records)
    assert "## class-wise mean over class:3, class:6" in text
    pooled = text.split("## class-wise mean")[1]
    assert "| golden | 95.00 ± 7.07 |" in pooled
