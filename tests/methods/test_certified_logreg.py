"""Certified removal for logistic regression (Guo et al., 2020): the estimator and the method.

The Newton step is checked against the paper's reference, a fit on the remaining
data with the *same* objective perturbation ``b`` (same seed, same shape); the
budget against its two policies; the method against its model restriction.
Digits features are scaled by 1/16 (pixels are 0..16), so each norm is about 2.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

import unlearnkit as uk
from unlearnkit.errors import CertificationBudgetError, ConfigError
from unlearnkit.methods import certified
from unlearnkit.methods.certified import (
    HESSIAN_LIPSCHITZ,
    CertifiedLogisticRegression,
    certificate_constant,
)
from unlearnkit.training import TrainConfig

OPTIONS = {"l2": 1e-3, "noise": 0.1, "seed": 0}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(digits):
    return digits.train.X / 16, digits.train.y


@pytest.fixture(scope="module")
def fitted(data):
    return CertifiedLogisticRegression(**OPTIONS).fit(*data)


def _copy(estimator):
    return copy.deepcopy(estimator)


def _relative(a, b) -> float:
    return float((a.theta_ - b.theta_).norm() / b.theta_.norm())


def test_fit_reaches_the_optimum_and_is_deterministic(data, fitted):
    X, y = data
    assert fitted.residual / len(y) <= 1e-10  # gradient of the mean objective
    again = CertifiedLogisticRegression(**OPTIONS).fit(X, y)
    assert torch.equal(again.theta_, fitted.theta_)
    assert fitted.coef_.shape == (10, 64) and fitted.intercept_.shape == (10,)
    assert fitted.certified and fitted.steps == 0 and not fitted.retrain_due


def test_gradient_and_hessian_are_the_autograd_ones(data):
    X, y = data
    estimator = CertifiedLogisticRegression(**OPTIONS).fit(X[:60], y[:60])
    theta = estimator.theta_ + 0.1 * torch.randn(
        estimator.theta_.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    Xt, labels = estimator.Xt_, estimator.y_

    def objective(t):
        return estimator._objective(t, Xt, labels)

    assert torch.allclose(
        estimator._gradient(theta, Xt, labels), torch.func.grad(objective)(theta), atol=1e-10
    )
    exact = torch.autograd.functional.hessian(objective, theta).reshape(theta.numel(), -1)
    assert torch.allclose(estimator._dense_hessian(theta, Xt, labels), exact, atol=1e-10)


def test_noise_perturbs_the_weights(data, fitted):
    X, y = data
    plain = CertifiedLogisticRegression(**{**OPTIONS, "noise": 0.0}).fit(X, y)
    other_seed = CertifiedLogisticRegression(**{**OPTIONS, "seed": 1}).fit(X, y)
    assert _relative(plain, fitted) > 1e-6
    assert _relative(other_seed, fitted) > 1e-6
    assert torch.equal(plain.b_, torch.zeros_like(plain.b_))


@pytest.mark.parametrize(("m", "within"), [(1, 1e-3), (14, 1e-2)])  # one sample; 1% of 1437
def test_newton_removal_lands_on_refitting_with_the_same_noise(data, fitted, m, within):
    X, y = data
    rows = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:m]
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[rows] = False
    refit = CertifiedLogisticRegression(**OPTIONS).fit(X[keep], y[keep])
    assert torch.equal(refit.b_, fitted.b_)  # the paper's comparison: same b
    removed = _copy(fitted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 14 at once exceeds the budget
        removed.remove(rows)
    gap, untouched = _relative(removed, refit), _relative(fitted, refit)
    assert gap < within and gap < 0.05 * untouched, (gap, untouched)
    # The exact residual is below the bound that the budget is charged with.
    assert 0 < removed.residual <= removed.spent
    assert removed.steps == 1 and removed.removed == m and removed.n_remaining == len(y) - m


def test_softmax_hessian_lipschitz_constant_holds():
    """``||A(z + u) − A(z)||₂ ≤ γ ||u||`` for ``A = diag(p) − ppᵀ``, on random logits."""
    g = torch.Generator().manual_seed(0)

    def A(z):
        p = torch.softmax(z, -1)
        return torch.diag_embed(p) - p[..., :, None] * p[..., None, :]

    for K in (2, 10):
        z = 3 * torch.randn(4000, K, generator=g, dtype=torch.float64)
        u = 0.1 * torch.randn(4000, K, generator=g, dtype=torch.float64)
        ratio = torch.linalg.matrix_norm(A(z + u) - A(z), ord=2) / u.norm(dim=1)
        assert float(ratio.max()) <= HESSIAN_LIPSCHITZ


@pytest.mark.filterwarnings("ignore:certified removal budget exceeded")
def test_conjugate_gradient_path_agrees_with_the_dense_solve(data, monkeypatch):
    X, y = data
    X, y = X[:200], y[:200]
    dense = CertifiedLogisticRegression(**OPTIONS).fit(X, y)
    dense_removed = _copy(dense).remove(torch.tensor([7]))
    monkeypatch.setattr(certified, "DENSE_LIMIT", 0)  # every solve by CG on H-vector products
    iterative = CertifiedLogisticRegression(**OPTIONS).fit(X, y)
    assert _relative(iterative, dense) < 1e-8
    iterative.remove(torch.tensor([7]))
    assert _relative(iterative, dense_removed) < 1e-8
    assert iterative.spent == pytest.approx(dense_removed.spent, rel=1e-6)


def test_budget_is_sigma_epsilon_over_c(fitted):
    c = math.sqrt(2 * math.log(1.5 / 1e-4))
    assert certificate_constant(1e-4) == pytest.approx(c)
    assert fitted.budget == pytest.approx(0.1 * 1.0 / c)


def test_exceeding_the_budget_raises_or_warns(data):
    X, y = data
    rows = torch.arange(20)
    strict = CertifiedLogisticRegression(**OPTIONS, on_budget="raise").fit(X, y)
    before = strict.theta_.clone()
    with pytest.raises(CertificationBudgetError, match=r"budget .*retrain.*fit\(\)"):
        strict.remove(rows)
    assert torch.equal(strict.theta_, before) and strict.steps == 0  # nothing applied

    lenient = CertifiedLogisticRegression(**OPTIONS).fit(X, y)
    with pytest.warns(RuntimeWarning, match="budget exceeded"):
        lenient.remove(rows)
    assert lenient.retrain_due and not lenient.certified and lenient.steps == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, not at every later step
        lenient.remove(torch.arange(20, 25))


def test_without_noise_nothing_is_certified_and_nothing_warns(data):
    X, y = data
    estimator = CertifiedLogisticRegression(**{**OPTIONS, "noise": 0.0}, on_budget="raise")
    estimator.fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimator.remove(torch.arange(20))
    report = estimator.report()
    assert report["budget"] == 0 and not report["certified"] and not report["retrain_due"]


@pytest.mark.filterwarnings("ignore:certified removal budget exceeded")
def test_state_dict_round_trip(fitted):
    removed = _copy(fitted).remove(torch.tensor([3]))
    restored = CertifiedLogisticRegression(**OPTIONS).load_state_dict(removed.state_dict())
    assert torch.equal(restored.theta_, removed.theta_)
    assert restored.report() == removed.report()
    # It continues where the original left off.
    a, b = removed.remove(torch.tensor([5])), restored.remove(torch.tensor([5]))
    assert torch.equal(a.theta_, b.theta_)
    with pytest.raises(ConfigError, match="same hyper-parameters"):
        CertifiedLogisticRegression(l2=1e-2).load_state_dict(removed.state_dict())


@pytest.fixture(scope="module")
def logreg_setting(digits):
    split = uk.select_forget(digits, "random:3", seed=0)
    model = uk.models.make("logreg", digits, preprocessing="standardize")
    model = uk.train(model, split.train, seed=0, config=TrainConfig(epochs=1))
    return model, split


def test_method_removes_the_forget_set(logreg_setting):
    model, split = logreg_setting
    before = {k: v.clone() for k, v in model.state_dict().items()}
    method = uk.methods.get("certified_logreg")(noise=1.0, request_size=1)
    prepared = method.setup(model, split)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = method.unlearn(prepared, split)
        direct = uk.methods.get("certified_logreg")(noise=1.0, request_size=1).unlearn(model, split)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    info = out.unlearn_info
    assert info["steps"] == 3 and info["removed"] == 3 and not info["fitted_in_unlearn"]
    assert direct.unlearn_info["fitted_in_unlearn"]
    assert all(
        torch.equal(a, b) for a, b in zip(out.parameters(), direct.parameters(), strict=True)
    )
    assert not torch.equal(out.net[1].weight, prepared.net[1].weight)
    assert out(split.test.X[:4]).shape == (4, 10)


def test_method_refuses_other_models(digits, logreg_setting):
    _, split = logreg_setting
    mlp = uk.models.make("mlp", digits, hidden=(8,))
    method = uk.methods.get("certified_logreg")()
    with pytest.raises(ConfigError, match="--model logreg"):
        method.setup(mlp, split)
    with pytest.raises(ConfigError, match="--model logreg"):
        method.unlearn(mlp, split)
