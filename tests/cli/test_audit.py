"""``unlearnkit audit``: plan and estimate, the bank, resume, reports; U-LiRA's bookkeeping."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from cli_in_process import cli

from unlearnkit.audit import lira_calibration, ulira_of
from unlearnkit.evaluation.bank import Entry

AUDIT = ("audit", "--dataset", "digits", "--model", "logreg", "--epochs", "2", "--models", "4",
         "--executor", "serial", "--fixed-variance", "--no-progress")  # fmt: skip


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    result = cli(*AUDIT, "--methods", "golden,finetune", "--out", out)
    return result, out


def test_the_audit_plans_estimates_and_writes_json_markdown_and_html(audited):
    result, out = audited
    assert result.returncode == 0, result.stderr
    plan = re.search(r"(\d+) models in the bank \((\d+) finished\); to build: (\d+) trainings "
                     r"and (\d+) unlearning runs, about [\d.]+ min", result.stdout)  # fmt: skip
    assert plan, result.stdout
    # seeds and halves: 4 originals + 4 goldens + 4 goldens as the method, 4 finetuned.
    assert plan.group(1) == "32" and plan.group(3) == "22" and plan.group(4) == "8"
    payload = json.loads((out / "audit.json").read_text())
    assert payload["methods"] == ["golden", "finetune"]
    for method in payload["methods"]:
        eps = payload["epsilon"][method]
        assert 0 <= eps["forget_score"] <= 1 and eps["interval"][0] <= eps["interval"][1]
        online = payload["ulira"][method]["online"]
        assert 0 <= online["balanced_accuracy"] <= 100 and online["n_positive"] > 0
        assert len(payload["metrics"][method]["UA"]) == 4
    assert payload["cost"]["trained"] == 30 and payload["lira"]["original"]["auc"] is not None
    assert "| golden |" in (out / "report.md").read_text()
    images = []

    class Images(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                images.append(dict(attrs)["src"])

    html = (out / "report.html").read_text()
    Images().feed(html)
    assert images and all(src.startswith("data:image/png;base64,") for src in images)
    assert "http://" not in html and "https://" not in html


def test_a_second_audit_reuses_the_bank_and_a_new_method_trains_only_its_models(audited):
    _, out = audited
    again = cli(*AUDIT, "--methods", "golden,finetune", "--out", out)
    assert again.returncode == 0, again.stderr
    assert (
        "32 models in the bank (32 finished); to build: 0 trainings and 0 unlearning"
        in again.stdout
    )
    more = cli(*AUDIT, "--methods", "golden,finetune,gradient_ascent", "--out", out,
               "--executor", "process", "--workers", "2")  # fmt: skip
    assert more.returncode == 0, more.stderr
    assert (
        "40 models in the bank (32 finished); to build: 0 trainings and 8 unlearning" in more.stdout
    )
    assert json.loads((out / "audit.json").read_text())["cost"]["trained"] == 8


def test_bad_audits_fail_before_any_training(tmp_path):
    result = cli(*AUDIT, "--methods", "sisa", "--out", tmp_path / "a")
    assert result.returncode == 2 and "exact engine" in result.stderr
    assert not (tmp_path / "a" / "bank" / "models").exists()
    result = cli(*AUDIT, "--methods", "finetune", "--models", "1", "--out", tmp_path / "b")
    assert result.returncode == 2 and ">= 2" in result.stderr
    result = cli(*AUDIT[:-2], "--methods", "finetune", "--out", tmp_path / "c", "--model", "mlp",
                 "--bank", tmp_path / "a" / "bank")  # fmt: skip
    assert result.returncode == 2 and "another setting" in result.stderr


class SyntheticBank:
    """The reading side of a ModelBank over made-up confidences (pool = every sample)."""

    def __init__(self, *, models=16, samples=400, leak=0.0, seed=0):
        rng = np.random.default_rng(seed)
        self.member = rng.random((models, samples)) < 0.5
        mean = rng.normal(2, 1, samples)  # per-sample difficulty, shared by every model
        draw = lambda: mean + rng.normal(0, 0.5, (models, samples))  # noqa: E731
        self.conf = {
            "original": draw() + 2.0 * self.member,  # members score higher
            "golden": draw(),
            "unlearned": draw() + leak * self.member,  # leak: what unlearning left behind
        }

    def pool(self):
        return np.arange(self.member.shape[1])

    def members(self, entry):
        return self.member[entry.seed]

    def method_entries(self, method, protocol, models, options=None):
        return [Entry(protocol, "unlearned", k, method) for k in range(models)]

    def stack(self, entries, positions):
        return np.stack([self.conf[e.role][e.seed][positions] for e in entries])


def test_ulira_is_at_chance_for_a_golden_like_method_and_sees_a_leak():
    fair = ulira_of(SyntheticBank(leak=0.0), "m", 16, {})["online"]
    assert abs(fair["balanced_accuracy"] - 50) < 3 and abs(fair["auc"] - 50) < 4
    leaky = ulira_of(SyntheticBank(leak=1.5), "m", 16, {})
    assert leaky["online"]["balanced_accuracy"] > 80 and leaky["offline"]["auc"] > 80


def test_lira_calibration_attacks_the_original_but_not_golden():
    calibration = lira_calibration(SyntheticBank(), 16)
    assert calibration["original"]["auc"] > 90
    assert abs(calibration["golden"]["auc"] - 50) < 4
