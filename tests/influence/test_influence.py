"""The influence machinery against exact Hessians and exact inverses of small models."""

from __future__ import annotations

import pytest
import torch

import unlearnkit as uk
from unlearnkit.data.dataset import Split
from unlearnkit.errors import ConfigError, InverseSolveError
from unlearnkit.influence import (
    CurvatureOperator,
    ParameterVector,
    conjugate_gradient,
    inverse_product,
    lissa,
    objective_gradient,
    per_sample_gradients,
)
from unlearnkit.influence.gradients import summed_loss
from unlearnkit.models import fit_preprocessing, reset_parameters
from unlearnkit.training import train

WEIGHT_DECAY = 1e-2


@pytest.fixture(scope="module")
def small(digits):
    return digits.train.take(torch.arange(120))


@pytest.fixture(scope="module")
def logreg(digits, small):
    model = uk.models.make("logreg", digits, preprocessing="standardize")
    return train(model, small, seed=0, epochs=5)


@pytest.fixture(scope="module")
def linear_regression(small):
    """A linear regression of a real target on 8 features (MSE)."""
    g = torch.Generator().manual_seed(0)
    X = small.X[:, :8] / 16
    y = X @ torch.randn(8, generator=g) + 0.1 * torch.randn(len(X), generator=g)
    data = Split(ids=small.ids, X=X, y=y.unsqueeze(1))
    model = uk.models.make("linear", input_shape=(8,), num_outputs=1, preprocessing="none")
    reset_parameters(model, seed=0)
    return model, data


def exact_hessian(model, data, weight_decay):
    params = ParameterVector(model)

    def objective(flat):
        loss = summed_loss(params.functional(flat, data.X), data.y) / len(data)
        return loss + weight_decay / 2 * flat.pow(2).sum()

    return torch.autograd.functional.hessian(objective, params.flat())


def test_hessian_products_equal_the_exact_hessian(logreg, small):
    exact = exact_hessian(logreg, small, WEIGHT_DECAY)
    H = CurvatureOperator(logreg, small, kind="hessian", weight_decay=WEIGHT_DECAY, batch_size=50)
    assert torch.allclose(H.dense(), exact, atol=1e-6, rtol=1e-4)
    # Logistic regression is linear in its parameters: Gauss-Newton is the Hessian.
    GN = CurvatureOperator(logreg, small, kind="gauss_newton", weight_decay=WEIGHT_DECAY)
    assert torch.allclose(GN.dense(), exact, atol=1e-6, rtol=1e-4)


def test_linear_regression_hessian_is_twice_the_gram_matrix(linear_regression):
    model, data = linear_regression
    H = CurvatureOperator(model, data, kind="hessian", weight_decay=WEIGHT_DECAY).dense()
    gram = 2 * data.X.T @ data.X / len(data) + WEIGHT_DECAY * torch.eye(8)
    assert torch.allclose(H, gram, atol=1e-6, rtol=1e-5)
    assert torch.allclose(exact_hessian(model, data, WEIGHT_DECAY), gram, atol=1e-6, rtol=1e-5)
    b = torch.arange(8.0)
    solved = conjugate_gradient(
        CurvatureOperator(model, data, kind="gauss_newton", weight_decay=WEIGHT_DECAY), b
    )
    assert solved.converged and solved.iterations <= 20  # 8 in exact arithmetic; float32 products
    assert torch.allclose(
        solved.x, torch.linalg.solve(gram.double(), b.double()).float(), rtol=1e-4
    )


def test_the_empirical_fisher_is_the_mean_outer_product_of_sample_gradients(logreg, small):
    G = per_sample_gradients(logreg, small)
    F = CurvatureOperator(logreg, small, kind="fisher", weight_decay=WEIGHT_DECAY)
    expected = G.T @ G / len(small) + WEIGHT_DECAY * torch.eye(G.shape[1])
    assert torch.allclose(F.dense(), expected, atol=1e-6, rtol=1e-4)
    recomputed = CurvatureOperator(logreg, small, kind="fisher", max_floats=1000)  # chunked
    v = torch.randn(G.shape[1], generator=torch.Generator().manual_seed(1))
    assert torch.allclose(recomputed @ v, G.T @ (G @ v) / len(small), atol=1e-6, rtol=1e-4)
    # The gradient of the objective is the mean of the sample gradients plus decay.
    theta = ParameterVector(logreg).flat()
    gradient = objective_gradient(logreg, small, weight_decay=WEIGHT_DECAY)
    assert torch.allclose(gradient, G.mean(0) + WEIGHT_DECAY * theta, atol=1e-6)


@pytest.mark.parametrize("kind", ["hessian", "gauss_newton", "fisher"])
def test_cg_inverse_equals_the_exact_inverse(logreg, small, kind):
    op = CurvatureOperator(logreg, small, kind=kind, weight_decay=WEIGHT_DECAY)
    b = objective_gradient(logreg, small)
    damping = 1e-3
    exact = torch.linalg.solve(
        op.dense().double() + damping * torch.eye(op.size).double(), b.double()
    )
    solved = inverse_product(op, b, damping=damping, tol=1e-8, max_iterations=500)
    assert solved.converged and solved.residual < 1e-5 and solved.negative_curvature is None
    assert (solved.x.double() - exact).norm() / exact.norm() < 1e-3
    assert solved.report()["iterations"] == solved.iterations > 0


def test_lissa_approaches_the_exact_inverse(logreg, small):
    op = CurvatureOperator(logreg, small, kind="hessian", weight_decay=WEIGHT_DECAY)
    damping = 0.05
    dense = op.dense().double() + damping * torch.eye(op.size).double()
    scale = float(torch.linalg.eigvalsh(dense)[-1]) * 1.5
    b = objective_gradient(logreg, small)
    batches = {}

    def operator_for_batch(generator):  # mini-batches of 100 of the 120 samples
        rows = torch.randperm(len(small), generator=generator)[:100]
        key = tuple(rows.tolist())
        if key not in batches:
            batches[key] = CurvatureOperator(logreg, small.take(rows), kind="hessian",
                                             weight_decay=WEIGHT_DECAY)  # fmt: skip
        return batches[key]

    solved = lissa(operator_for_batch, b, full_operator=op, damping=damping, scale=scale,
                   depth=300, repeats=3, seed=0, tol=0.1)  # fmt: skip
    exact = torch.linalg.solve(dense, b.double())
    assert solved.converged and solved.iterations == 900
    assert (solved.x.double() - exact).norm() / exact.norm() < 0.1


def test_cg_reports_negative_curvature_on_a_non_convex_mlp(digits, small):
    model = uk.models.make("mlp", digits, hidden=[8], preprocessing="standardize")
    fit_preprocessing(model, small.X)
    reset_parameters(model, seed=0)
    H = CurvatureOperator(model, small, kind="hessian")
    assert torch.linalg.eigvalsh(H.dense())[0] < -0.1  # the Hessian really is indefinite
    b = objective_gradient(model, small)
    result = conjugate_gradient(H, b, max_iterations=100)
    assert result.negative_curvature is not None and result.negative_curvature < 0
    assert not result.converged
    with pytest.raises(InverseSolveError, match="negative curvature.*gauss_newton"):
        inverse_product(H, b, max_iterations=100)
    # The Gauss-Newton matrix of the same model is PSD: with damping, CG converges.
    GN = CurvatureOperator(model, small, kind="gauss_newton")
    assert inverse_product(GN, b, damping=1e-2, max_iterations=500).converged


def test_bad_options_are_refused(logreg, small):
    with pytest.raises(ConfigError, match="curvature must be one of"):
        CurvatureOperator(logreg, small, kind="kfac")
    with pytest.raises(ConfigError, match="solver must be one of"):
        inverse_product(CurvatureOperator(logreg, small), torch.ones(650), solver="newton")
    op = CurvatureOperator(logreg, small)
    with pytest.raises(InverseSolveError, match="did not converge"):
        inverse_product(op, objective_gradient(logreg, small), max_iterations=2)
