"""PUMA: its scores against exact re-weighted retraining, its re-weighting solvers, its cache."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from convex import as_float64, fit_to_optimum, relative_distance
from hypothesis import example, given, settings
from hypothesis import strategies as st

import unlearnkit as uk
from unlearnkit.data.forget import ForgetSplit
from unlearnkit.errors import ConfigError
from unlearnkit.influence import ParameterVector, objective_gradient
from unlearnkit.influence.scores import criterion_influence, sample_losses
from unlearnkit.methods.puma import l2_reweighting, linprog_reweighting

WD = 1e-2
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def convex(digits):
    """An L2 logistic regression at its exact optimum (float64), and a validation split."""
    split = uk.select_forget(digits, "random:20", seed=0, validation=0.2)
    fields = {f: getattr(split, f) for f in ("spec", "seed", "num_classes")}
    split = ForgetSplit(
        **fields,
        **{p: as_float64(getattr(split, p)) for p in ("train", "retain", "forget", "test")},
        validation=as_float64(split.validation),
    )
    model = uk.models.make("logreg", digits, preprocessing="none").double()
    return fit_to_optimum(model, split.train, weight_decay=WD), split


def test_scores_are_the_criterion_change_per_unit_weight(convex):
    """a_i against exact retraining with sample i's weight raised by ε."""
    model, split = convex
    cache = criterion_influence(
        model, split.train, split.validation, weight_decay=WD, curvature="hessian",
        damping=0.0, tol=1e-10, max_iterations=500,
    )  # fmt: skip
    before = float(sample_losses(model, split.validation).mean())
    eps = 0.01
    for row in torch.topk(cache.scores.abs(), 3).indices.tolist():  # the clearest signals
        weights = torch.ones(len(split.train), dtype=torch.float64)
        weights[row] += eps
        moved = fit_to_optimum(copy.deepcopy(model), split.train, weight_decay=WD, weights=weights)
        actual = float(sample_losses(moved, split.validation).mean()) - before
        predicted = eps * float(cache.scores[row])
        assert predicted == pytest.approx(actual, rel=0.03, abs=1e-8)


def test_the_patch_is_the_newton_step_to_the_reweighted_optimum(convex):
    """θ_puma against exact retraining with the weights PUMA chose (forget at 0)."""
    model, split = convex
    method = uk.methods.get("puma")(
        weight_decay=WD, damping=0.0, curvature="hessian", tolerance=1e-10,
        max_iterations=500, curvature_samples=None, support=1.0,
    )  # fmt: skip
    out = method.unlearn(model, split)
    weights = torch.ones(len(split.train), dtype=torch.float64)
    weights[split.train.positions(split.retain.ids)] += method._weights(
        out.puma_cache, split
    ).double()
    weights[split.train.positions(split.forget.ids)] = 0
    exact = fit_to_optimum(copy.deepcopy(model), split.train, weight_decay=WD, weights=weights)
    assert relative_distance(out, exact) < 1e-2
    # The re-weighting cancels the removal's first-order change of the criterion as the
    # cached scores (full-data curvature) predict it; the patch's retained-data curvature
    # keeps only part of that (here about a third of IU's change is cancelled): less
    # than a plain removal (IU's Newton step) moves it, not zero.
    grad_c = objective_gradient(model, split.validation)
    theta = ParameterVector(model).flat()
    iu = uk.methods.get("influence")(
        weight_decay=WD, damping=0.0, curvature="hessian", tolerance=1e-10, max_iterations=500
    ).unlearn(model, split)
    first_order_puma = float(grad_c @ (ParameterVector(out).flat() - theta))
    first_order_iu = float(grad_c @ (ParameterVector(iu).flat() - theta))
    assert abs(first_order_puma) < 0.8 * abs(first_order_iu)


@settings(max_examples=30, deadline=None)
@given(
    scores=st.lists(st.floats(-5, 5), min_size=3, max_size=60),
    target=st.floats(-3, 3),
    support=st.floats(0.1, 1.0),
    upper=st.floats(0.1, 2.0),
)
def test_l2_reweighting_stays_in_its_box_and_support(scores, target, support, upper):
    a = torch.tensor(scores)
    dw = l2_reweighting(a, target, support=support, upper=upper)
    assert bool((dw >= -1 - 1e-6).all() and (dw <= upper + 1e-6).all())
    assert int((dw != 0).sum()) <= max(1, round(support * len(a)))
    reachable = float(torch.where(a > 0, upper * a, -a).sum() if target > 0 else 0)
    if target > 0 and abs(target) < 0.5 * reachable and support == 1.0:
        assert float(dw.double() @ a.double()) == pytest.approx(target, rel=1e-3, abs=1e-5)


@settings(max_examples=20, deadline=None)
@given(
    scores=st.lists(st.floats(-5, 5), min_size=2, max_size=40),
    budget=st.floats(0.1, 10),
    upper=st.floats(0.1, 2.0),
)
@example(scores=[-1.0] + [-5.0] * 7, budget=7.0, upper=0.8390786930371461)  # float32 rounding
def test_linprog_reweighting_is_the_budgeted_optimum(scores, budget, upper):
    a = np.array(scores)
    dw = linprog_reweighting(torch.tensor(scores), budget=budget, upper=upper).double().numpy()
    assert np.abs(dw).sum() <= budget + 1e-6
    assert (dw >= -1 - 1e-7).all() and (dw <= upper + 1e-7).all()
    # The optimum is greedy: each unit of ℓ1 budget buys |a_r| of decrease, so the
    # largest |a| go first, each as far as its bound (upper for a < 0, −1 for a > 0).
    left, best = budget, 0.0
    for x in sorted(a, key=abs, reverse=True):
        cap = upper if x < 0 else 1.0
        take = min(cap, left)
        best -= abs(x) * take
        left -= take
    # The weights come back as float32: allow its rounding, relative to the objective.
    assert float(a @ dw) == pytest.approx(best, rel=1e-5, abs=1e-6)


def test_the_cache_serves_the_next_request(digits):
    split = uk.select_forget(digits, "random:30", seed=0, validation=0.1)
    model = uk.train(uk.models.make("mlp", digits, hidden=(32,)), split.train, seed=0, epochs=3)
    method = uk.methods.get("puma")()
    first = method.unlearn(model, split)
    assert not first.unlearn_info["cache_reused"] and first.unlearn_info["cache_seconds"] > 0
    # The next request removes 10 more of the remaining samples from the patched model.
    gone = torch.zeros(len(split.retain), dtype=torch.bool)
    gone[torch.randperm(len(gone), generator=torch.Generator().manual_seed(1))[:10]] = True
    second_split = ForgetSplit(
        train=split.retain, retain=split.retain.take(~gone), forget=split.retain.take(gone),
        test=split.test, spec="ids", seed=0, num_classes=10, validation=split.validation,
    )  # fmt: skip
    second = method.unlearn(first, second_split)
    assert second.unlearn_info["cache_reused"] and second.unlearn_info["cache_seconds"] == 0
    explicit = method.unlearn(first, second_split, cache=first.puma_cache)
    assert all(
        torch.equal(p, q) for p, q in zip(second.parameters(), explicit.parameters(), strict=True)
    )
    other = uk.methods.get("puma")(criterion="retain_loss").unlearn(first, second_split)
    assert not other.unlearn_info["cache_reused"]  # another criterion: another cache


def test_puma_needs_a_validation_split(digits):
    split = uk.select_forget(digits, "random:30", seed=0)
    model = uk.train(uk.models.make("logreg", digits), split.train, seed=0, epochs=1)
    with pytest.raises(ConfigError, match="validation"):
        uk.methods.get("puma")().unlearn(model, split)
    out = uk.methods.get("puma")(criterion="retain_loss").unlearn(model, split)
    assert out.unlearn_info["reweighted"] > 0
