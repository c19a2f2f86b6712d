"""The model bank: keyed entries, resumable builds, reuse across methods, one setting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from unlearnkit.errors import BankMismatchError, ConfigError
from unlearnkit.evaluation.bank import BankSetting, Entry, ModelBank, half_positions
from unlearnkit.evaluation.confidence import logit_confidence

SETTING = BankSetting(dataset="digits", model="logreg", forget="random:0.1", train={"epochs": 2})


def _scores_state(bank: ModelBank) -> dict[str, tuple[int, bytes]]:
    files = sorted((bank.root / "scores").rglob("*.npz"))
    return {str(p.relative_to(bank.root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}


def test_logit_confidence_is_stable_and_matches_its_definition():
    logits = torch.randn(50, 10, dtype=torch.float64) * 3
    labels = torch.randint(0, 10, (50,))
    p = torch.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
    assert torch.allclose(logit_confidence(logits, labels), torch.log(p) - torch.log1p(-p))
    # A memorised sample: p_y rounds to 1, the statistic stays finite (and large).
    huge = torch.tensor([[200.0, 0.0, -5.0]])
    value = logit_confidence(huge, torch.tensor([0]))
    assert torch.isfinite(value).all() and float(value) > 199


def test_build_resume_and_reuse(tmp_path):
    bank = ModelBank(tmp_path / "bank", SETTING)
    entries = bank.plan(methods=["golden", "finetune"], models=2)
    keys = [e.key for e in entries]
    assert keys[:4] == [
        "seeds/original/seed0",
        "seeds/golden/seed0",
        "seeds/original/seed1",
        "seeds/golden/seed1",
    ]
    assert "seeds/golden/seed2" in keys and "seeds/golden/seed3" in keys  # golden as a method
    assert all(e.role != "unlearned" for e in entries[: len(entries) - 4])  # unlearned last
    first = bank.build(entries, executor="serial", progress=False)
    assert sorted(first.trained) == sorted(keys) and first.reused == []
    state = _scores_state(bank)
    # Adding a method trains only its own models; everything finished is kept as it was.
    more = bank.plan(methods=["golden", "finetune", "gradient_ascent"], models=2)
    second = bank.build(more, executor="serial", progress=False)
    assert sorted(second.trained) == sorted(e.key for e in more if e.method == "gradient_ascent")
    after = _scores_state(bank)
    assert all(after[k] == v for k, v in state.items())
    # The stored statistics are the model's own: recompute one from its checkpoint.
    entry = Entry("halves", "original", 1)
    model = bank.model(entry)
    data_split = bank.slot_split("seeds", 0)
    with torch.no_grad():
        logits = model.eval()(data_split.train.X)
    stored = bank.scores(entry)
    assert np.allclose(stored["confidence"], logit_confidence(logits, data_split.train.y).numpy())
    assert stored["meta"]["train_ids_sha256"] == bank.slot_split("halves", 1).train.ids_sha256()


def test_halves_protocol_members_and_pool(tmp_path):
    bank = ModelBank(tmp_path / "bank", SETTING)
    pool = bank.pool()
    n = len(bank.slot_split("seeds", 0).train)
    half = half_positions(n, 3).numpy()
    original = bank.members(Entry("halves", "original", 3))
    golden = bank.members(Entry("halves", "golden", 3))
    assert original.sum() == n // 2 and set(np.flatnonzero(original)) == set(half)
    assert not golden[pool].any() and set(np.flatnonzero(golden)) == set(half) - set(pool)
    split = bank.slot_split("halves", 3)
    assert set(split.forget.ids.tolist()) == set(
        bank.slot_split("seeds", 0).forget.ids.tolist()
    ) & set(split.train.ids.tolist())
    assert len(split.retain) + len(split.forget) == len(split.train)


def test_a_bank_holds_one_setting(tmp_path):
    ModelBank(tmp_path / "bank", SETTING)
    other = BankSetting(dataset="digits", model="mlp", forget="random:0.1", train={"epochs": 2})
    with pytest.raises(BankMismatchError, match="model"):
        ModelBank(tmp_path / "bank", other)


def test_plan_refuses_what_a_bank_cannot_hold(tmp_path):
    bank = ModelBank(tmp_path / "bank", SETTING)
    with pytest.raises(ConfigError, match="exact engine"):
        bank.plan(methods=["sisa"], models=2)
    with pytest.raises(ConfigError, match="validation"):
        bank.plan(methods=["puma"], models=2)
    with pytest.raises(ConfigError, match=">= 2"):
        bank.plan(methods=["finetune"], models=1)
    with pytest.raises(ConfigError, match="not being audited"):
        bank.plan(methods=["finetune"], models=2, method_options={"kl_ft": {"alpha": 1}})


BUILD = """
import sys
from unlearnkit.evaluation.bank import BankSetting, ModelBank
setting = BankSetting(**{setting})
bank = ModelBank(sys.argv[1], setting)
bank.build(bank.plan(methods=["finetune"], models=4), executor="serial", progress=False)
"""


def test_a_killed_build_resumes_without_retraining_finished_models(tmp_path):
    root = tmp_path / "bank"
    script = BUILD.format(setting=repr(
        {"dataset": "digits", "model": "logreg", "forget": "random:0.1", "train": {"epochs": 2}}
    ))  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", script, str(root)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if len(list((root / "scores").rglob("*.npz"))) >= 3:
                break
            if process.poll() is not None:
                pytest.fail("the build finished before it could be interrupted")
            time.sleep(0.05)
        else:
            pytest.fail("the build made no progress in 120 s")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    bank = ModelBank(root, SETTING)
    entries = bank.plan(methods=["finetune"], models=4)
    finished_before = _scores_state(bank)
    assert 3 <= len(finished_before) < len(entries)
    report = bank.build(entries, executor="serial", progress=False)
    assert set(report.reused) == {k.removeprefix("scores/").removesuffix(".npz")
                                  for k in finished_before}  # fmt: skip
    assert not set(report.trained) & set(report.reused)
    assert len(report.trained) + len(report.reused) == len(entries)
    after = _scores_state(bank)
    assert all(after[k] == v for k, v in finished_before.items())  # untouched
    assert json.loads((root / "bank.json").read_text())["setting"]["model"] == "logreg"
