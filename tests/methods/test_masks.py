"""Saliency masks (spec/paper.md §4): exact fraction kept, deterministic ties, real freezing."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import unlearnkit as uk
from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError
from unlearnkit.methods import get
from unlearnkit.methods.masking import (
    _fisher_by_layers,
    _fisher_by_vmap,
    fisher_saliency,
    gradient_saliency,
    saliency_mask,
    top_fraction_mask,
)


@pytest.fixture(scope="module")
def trained(digits):
    split = uk.select_forget(digits, "class:3", seed=0)
    model = uk.train(uk.models.make("mlp", digits, hidden=(32,)), split.train, seed=0, epochs=5)
    return model, split


def _reference_mask(flat: torch.Tensor, keep: float) -> torch.Tensor:
    """Top-k by (score descending, index ascending), written out the slow obvious way."""
    k = math.floor(keep * flat.numel() + 0.5)
    ranked = sorted(range(flat.numel()), key=lambda i: (-float(flat[i]), i))
    out = torch.zeros(flat.numel())
    out[ranked[:k]] = 1.0
    return out


# Few distinct integer scores, so ties are common and the tie-break rule is exercised.
scores_strategy = st.lists(
    st.lists(st.integers(0, 3), min_size=1, max_size=30), min_size=1, max_size=4
)


@settings(max_examples=60, deadline=None)
@given(scores=scores_strategy, keep=st.floats(0.01, 1.0))
def test_global_mask_keeps_exact_fraction_and_breaks_ties_by_position(scores, keep):
    tensors = {f"p{i}": torch.tensor(s, dtype=torch.float32) for i, s in enumerate(scores)}
    mask = top_fraction_mask(tensors, keep=keep, scope="global")
    flat_mask = torch.cat([mask[n] for n in tensors])
    flat = torch.cat(list(tensors.values()))
    assert int(flat_mask.sum()) == math.floor(keep * flat.numel() + 0.5)
    assert torch.equal(flat_mask, _reference_mask(flat, keep))
    assert set(torch.unique(flat_mask).tolist()) <= {0.0, 1.0}
    assert all(mask[n].shape == tensors[n].shape for n in tensors)


@settings(max_examples=40, deadline=None)
@given(scores=scores_strategy, keep=st.floats(0.01, 1.0))
def test_per_tensor_mask_keeps_the_fraction_in_each_tensor(scores, keep):
    tensors = {
        f"p{i}": torch.tensor(s, dtype=torch.float32).reshape(-1, 1) for i, s in enumerate(scores)
    }
    mask = top_fraction_mask(tensors, keep=keep, scope="per_tensor")
    for n, s in tensors.items():
        assert torch.equal(mask[n].reshape(-1), _reference_mask(s.reshape(-1), keep))


def test_mask_rejects_bad_options_with_a_clear_message():
    scores = {"w": torch.ones(4)}
    with pytest.raises(ConfigError, match="keep must be a fraction"):
        top_fraction_mask(scores, keep=0.0)
    with pytest.raises(ConfigError, match="scope must be one of"):
        top_fraction_mask(scores, keep=0.5, scope="layer")
    with pytest.raises(ConfigError, match="NaN or infinite"):
        top_fraction_mask({"w": torch.tensor([1.0, float("nan")])}, keep=0.5)


def test_gradient_saliency_is_the_abs_full_data_gradient(trained):
    model, split = trained
    before = {n: p.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(split.forget.X), split.forget.y).backward()
    expected = {n: p.grad.abs() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    for batch_size in (7, 10_000):  # batching must not change the result beyond rounding
        got = gradient_saliency(model, split.forget, batch_size=batch_size)
        for n in expected:
            torch.testing.assert_close(got[n], expected[n], rtol=1e-4, atol=1e-7)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert not model.training


def _per_sample_fisher(model, data: Split) -> dict[str, torch.Tensor]:
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for i in range(len(data)):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.X[i : i + 1]), data.y[i : i + 1]).backward()
        for n, p in model.named_parameters():
            total[n] += p.grad.pow(2)
    model.zero_grad(set_to_none=True)
    return {n: t / len(data) for n, t in total.items()}


def test_fisher_saliency_matches_a_per_sample_loop_on_an_mlp(trained):
    model, split = trained
    sample = split.retain.take(torch.arange(40))
    expected = _per_sample_fisher(model, sample)
    for got in (fisher_saliency(model, sample, batch_size=16), _fisher_by_vmap(model, sample)):
        for n in expected:
            torch.testing.assert_close(got[n], expected[n], rtol=1e-4, atol=1e-9)


def test_fisher_closed_form_matches_vmap_on_a_cnn():
    generator = torch.Generator().manual_seed(0)
    data = Split(
        ids=torch.arange(12),
        X=torch.randn(12, 1, 8, 8, generator=generator),
        y=torch.randint(0, 4, (12,), generator=generator),
    )
    model = uk.models.make("cnn", input_shape=(1, 8, 8), num_outputs=4, channels=(2, 3), hidden=5)
    fast = _fisher_by_layers(model, data, batch_size=5)
    assert fast is not None  # conv + linear layers take the closed-form path
    slow = _fisher_by_vmap(model, data)
    for n in slow:
        torch.testing.assert_close(fast[n], slow[n], rtol=1e-4, atol=1e-9)


def test_saliency_mask_rejects_unknown_saliency(trained):
    model, split = trained
    with pytest.raises(ConfigError, match="saliency must be one of"):
        saliency_mask(model, split.retain, saliency="hessian")


class _RecordingSGD(torch.optim.SGD):
    instances: list[torch.optim.SGD] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _RecordingSGD.instances.append(self)


def test_salun_frozen_weights_and_their_momentum_stay_exactly_zero(trained, monkeypatch):
    model, split = trained
    monkeypatch.setattr(torch.optim, "SGD", _RecordingSGD)
    _RecordingSGD.instances.clear()
    method = get("salun")(keep=0.3, epochs=2, lr=0.05, weight_decay=5e-4, seed=0)
    mask = saliency_mask(model, split.forget, saliency="gradient", keep=0.3)
    new = method.unlearn(model, split)
    (optimizer,) = _RecordingSGD.instances
    params = dict(new.named_parameters())
    state = {id(p): optimizer.state[p] for p in new.parameters()}
    moved = 0
    for n, p in model.named_parameters():
        frozen = mask[n] == 0
        assert torch.equal(params[n][frozen], p[frozen]), n  # bit-identical
        buffer = state[id(params[n])]["momentum_buffer"]
        assert bool((buffer[frozen] == 0).all()), n
        moved += int((params[n][~frozen] != p[~frozen]).sum())
    assert moved > 0.5 * sum(int(m.sum()) for m in mask.values())  # the kept weights did train


def test_rbm_zero_reset_and_reinit_put_the_expected_values_outside_the_mask(trained):
    model, split = trained
    mask = saliency_mask(model, split.retain, saliency="fisher", keep=0.4)
    for reset in ("zero", "reinit"):
        method = get("rbm")(keep=0.4, reset=reset, seed=3)
        started, _, _ = method.prepare(copy.deepcopy(model), split)  # where RBM's FT starts
        fresh = dict(uk.models.reset_parameters(copy.deepcopy(model), seed=3).named_parameters())
        for n, p in started.named_parameters():
            kept = mask[n].bool()
            expected_out = torch.zeros_like(p) if reset == "zero" else fresh[n]
            assert torch.equal(p[kept], dict(model.named_parameters())[n][kept])
            assert torch.equal(p[~kept], expected_out[~kept])


def test_rbm_keeping_everything_is_plain_finetuning(trained):
    model, split = trained
    rbm = get("rbm")(keep=1.0, epochs=1, lr=0.02, seed=1).unlearn(model, split)
    ft = get("finetune")(epochs=1, lr=0.02, seed=1).unlearn(model, split)
    assert all(torch.equal(a, b) for a, b in zip(rbm.parameters(), ft.parameters(), strict=True))


def test_masking_methods_reject_bad_options_at_construction():
    with pytest.raises(ConfigError, match="salun.keep must be"):
        get("salun")(keep=1.5)
    with pytest.raises(ConfigError, match="rbm.reset must be one of"):
        get("rbm")(reset="random")
    with pytest.raises(ConfigError, match="rbm.saliency must be one of"):
        get("rbm")(saliency="hessian")


def test_salun_keeping_everything_is_the_unmasked_random_label_objective(trained):
    # keep=1 freezes nothing, so the hook-applied weight decay must match the optimiser's own.
    model, split = trained
    options = {"epochs": 2, "lr": 0.02, "seed": 6, "weight_decay": 1e-2}
    salun = get("salun")(keep=1.0, **options).unlearn(model, split)
    ce_ft = get("ce_ft")(alpha=1.0, **options).unlearn(model, split)
    assert not all(
        torch.equal(a, b) for a, b in zip(salun.parameters(), model.parameters(), strict=True)
    )
    for a, b in zip(salun.parameters(), ce_ft.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
