"""The paper's fine-tuning objectives (spec/paper.md §4): formulas, options, behaviour."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import unlearnkit as uk
from unlearnkit.errors import ConfigError
from unlearnkit.methods import get, random_wrong_labels
from unlearnkit.methods.paper import kl_target


@pytest.fixture(scope="module")
def trained(digits):
    split = uk.select_forget(digits, "class:3", seed=0)
    model = uk.train(uk.models.make("mlp", digits, hidden=(32,)), split.train, seed=0, epochs=10)
    return model, split


def _same(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("name", ["ce_ft", "ice_ft"])
def test_alpha_one_is_the_random_label_objective(trained, name):
    # Both objectives reduce to CE(D_f with y') + CE(D_r) at α = 1 (spec §4 table). Equal up
    # to rounding only: ours run one forward pass over the mixed batch, random_label two.
    model, split = trained
    options = {"epochs": 1, "lr": 0.02, "seed": 4}
    ours = get(name)(alpha=1.0, **options).unlearn(model, split)
    reference = get("random_label")(**options).unlearn(model, split)
    assert not _same(ours, model)
    for a, b in zip(ours.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    other = get(name)(alpha=0.5, **options).unlearn(model, split)
    assert (
        max(
            float((a - b).detach().abs().max())
            for a, b in zip(other.parameters(), reference.parameters(), strict=True)
        )
        > 1e-3
    )


def test_ce_ft_and_ice_ft_weight_opposite_terms(trained):
    model, split = trained
    retain, forget = split.retain.take(torch.arange(20)), split.forget.take(torch.arange(5))
    ce_r = F.cross_entropy(model(retain.X), retain.y)
    ce_f = F.cross_entropy(model(forget.X), forget.y)
    ce_ft, ice_ft = get("ce_ft")(alpha=0.25), get("ice_ft")(alpha=0.25)
    torch.testing.assert_close(ce_ft.loss(model, retain, forget), ce_f + 0.25 * ce_r)
    torch.testing.assert_close(ice_ft.loss(model, retain, forget), ce_r + 0.25 * ce_f)


def test_forget_term_uses_wrong_labels_drawn_once_from_the_seed(trained):
    model, split = trained
    _, _, forget = get("ce_ft")(seed=5).prepare(model, split)
    expected = random_wrong_labels(split.forget.y, split.num_classes, seed=5)
    assert torch.equal(forget.y, expected)
    assert bool((forget.y != split.forget.y).all())


@pytest.mark.parametrize("target", ["uniform_wrong", "uniform", "smoothed_wrong_label"])
def test_kl_targets_are_distributions_without_the_true_label_peak(target):
    y = torch.tensor([0, 3, 9, 3])
    q = kl_target(y, 10, target=target, seed=1, smoothing=0.2)
    torch.testing.assert_close(q.sum(1), torch.ones(4))
    assert bool((q >= 0).all())
    true_mass = q[torch.arange(4), y]
    if target == "uniform_wrong":
        assert bool((true_mass == 0).all())
        torch.testing.assert_close(q[0, 1:], torch.full((9,), 1 / 9))
    elif target == "uniform":
        torch.testing.assert_close(q, torch.full((4, 10), 0.1))
    else:
        wrong = random_wrong_labels(y, 10, seed=1)
        assert torch.equal(q.argmax(1), wrong)
        torch.testing.assert_close(q.max(1).values, torch.full((4,), 0.8 + 0.02))


def test_kl_ft_loss_is_retain_ce_plus_alpha_kl(trained):
    model, split = trained
    method = get("kl_ft")(alpha=0.5, target="uniform_wrong")
    _, retain, forget = method.prepare(model, split)
    retain, forget = retain.take(torch.arange(16)), forget.take(torch.arange(6))
    p = F.softmax(model(forget.X), dim=1)
    q = forget.y
    kl = (
        sum(
            sum(float(q[i, c]) * torch.log(q[i, c] / p[i, c]) for c in range(10) if q[i, c] > 0)
            for i in range(6)
        )
        / 6
    )
    expected = F.cross_entropy(model(retain.X), retain.y) + 0.5 * kl
    torch.testing.assert_close(method.loss(model, retain, forget), expected, rtol=1e-5, atol=1e-6)


def test_l1_sparse_schedule_and_zero_gamma(trained):
    model, split = trained
    method = get("l1_sparse")(gamma=0.01, epochs=4)
    seen = []
    for epoch in range(4):
        method.on_epoch_start(epoch)
        seen.append(method._gamma_now)
    assert seen == pytest.approx([0.01, 0.0075, 0.005, 0.0025])
    options = {"epochs": 2, "lr": 0.02, "seed": 2}
    assert _same(
        get("l1_sparse")(gamma=0.0, **options).unlearn(model, split),
        get("finetune")(**options).unlearn(model, split),
    )
    l1 = lambda m: sum(float(p.detach().abs().sum()) for p in m.parameters())
    sparse = get("l1_sparse")(gamma=1e-3, **options).unlearn(model, split)
    plain = get("finetune")(**options).unlearn(model, split)
    assert l1(sparse) < l1(plain)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("ce_ft", {"alpha": 0.0}, r"ce_ft.alpha must be a finite number in \(0, 1\]"),
        ("ice_ft", {"alpha": 1.5}, r"ice_ft.alpha must be a finite number in \(0, 1\]"),
        ("kl_ft", {"alpha": -1}, r"kl_ft.alpha must be a finite number in \(0, 1\]"),
        ("kl_ft", {"target": "onehot"}, "kl_ft.target must be one of"),
        ("kl_ft", {"smoothing": 1.0}, r"kl_ft.smoothing must be a finite number in \[0, 1\)"),
        ("l1_sparse", {"gamma": -1e-3}, "l1_sparse.gamma must be a finite number >= 0"),
    ],
)
def test_bad_hyperparameters_raise_config_error_at_construction(name, options, message):
    with pytest.raises(ConfigError, match=message):
        get(name)(**options)


def test_forget_terms_forget_a_class_that_plain_finetuning_keeps(trained):
    # spec/paper.md §5 claim (1) in miniature: FT keeps predicting the forgotten class,
    # the regularised objectives do not.
    model, split = trained
    forget_acc = {
        name: uk.accuracy(get(name)(epochs=2, lr=0.02).unlearn(model, split), split.forget)
        for name in ("finetune", "ce_ft", "ice_ft", "kl_ft")
    }
    assert forget_acc["finetune"] > 90
    for name in ("ce_ft", "ice_ft", "kl_ft"):
        assert forget_acc[name] < 20, forget_acc
