"""The identities of spec/paper.md §3, over several seeds and (hypothesis-drawn) shapes.

The reference values are computed here independently with ``np.linalg.pinv``
and explicit projection matrices, so a wrong closed form in the library fails.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearnkit.errors import ConfigError
from unlearnkit.theory import (
    evaluate,
    gd_closed_form,
    gradient_descent,
    lab_models,
    make_scenario,
    remaining_loss,
    retain_projection,
    unlearning_loss,
)

REL = 1e-8
HYP = settings(max_examples=20, deadline=None, derandomize=True)


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def reference(s):
    """The paper's formulas, straight from pinv: w_o, w_t, w_g, P_r."""
    pinv = np.linalg.pinv
    w_o = pinv(s.X) @ s.y
    P_r = pinv(s.X_r) @ s.X_r
    w_g = pinv(s.X_r) @ s.y_r
    w_t = (np.eye(len(w_o)) - P_r) @ w_o + w_g
    return w_o, w_t, w_g, P_r


@st.composite
def overparameterised(draw, *, d_o=None, noise=None):
    """Shapes with n < d and independent rows (with a margin, so pinv is well conditioned)."""
    n_f = draw(st.integers(1, 12))
    n_r = draw(st.integers(1, 25))
    d_o = draw(st.integers(0, 20)) if d_o is None else d_o
    d_f = draw(st.integers(max(0, n_f + 3 - d_o), 30))
    d_r = draw(st.integers(max(0, n_r + 3 - d_o), 35))
    d_r += max(0, n_f + n_r + 6 - (d_f + d_o + d_r))  # n < d with a margin
    sigma = draw(st.sampled_from([0.0, 0.3])) if noise is None else noise
    seed = draw(st.integers(0, 2**20))
    return make_scenario(n_f=n_f, n_r=n_r, d_f=d_f, d_o=d_o, d_r=d_r, noise=sigma, seed=seed)


@HYP
@given(overparameterised())
def test_ft_equals_pretrained_when_overparameterised(s):
    w_o, w_t, w_g, _ = reference(s)
    assert rel_err(w_t, w_o) <= REL  # the paper's identity, from pinv alone
    m = lab_models(s)
    assert rel_err(m["pretrained"], w_o) <= REL
    assert rel_err(m["FT"], w_o) <= REL
    assert rel_err(m["golden"], w_g) <= REL


@HYP
@given(overparameterised(noise=0.0))
def test_ft_fits_retain_keeps_forget_and_golden_does_not(s):
    m = lab_models(s)
    scale = np.mean(s.y**2)
    assert remaining_loss(m["FT"], s) <= 1e-16 * scale + 1e-24
    assert unlearning_loss(m["FT"], s) <= 1e-16 * scale + 1e-24
    assert remaining_loss(m["golden"], s) <= 1e-16 * scale + 1e-24
    # UL(w_g) = mean (X_f (I − P_r) w*)² exactly when noiseless (w_g = P_r w*).
    _, _, _, P_r = reference(s)
    expected = np.mean((s.X_f @ (s.w_star - P_r @ s.w_star)) ** 2)
    assert unlearning_loss(m["golden"], s) == pytest.approx(expected, rel=1e-6)
    assert expected > 0


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_golden_ul_is_about_norm_of_forget_block_when_distinct(seed):
    # Distinct features: w_g is 0 on F and exact on R, so UL(w_g) = mean (A_F w*_F)² exactly.
    s = make_scenario(n_f=10, n_r=40, d_f=50, d_o=0, d_r=60, seed=seed)
    m = lab_models(s)
    w_F = s.w_star[s.blocks["F"]]
    exact = np.mean((s.X_f[:, s.blocks["F"]] @ w_F) ** 2)
    assert unlearning_loss(m["golden"], s) == pytest.approx(exact, rel=1e-8)
    assert unlearning_loss(m["FT"], s) < 1e-20


@HYP
@given(overparameterised(d_o=0))
def test_remedies_equal_golden_when_features_are_distinct(s):
    _, _, w_g, _ = reference(s)
    m = lab_models(s)
    assert rel_err(m["B+FT"], w_g) <= REL
    assert rel_err(m["A+FT"], w_g) <= REL


@HYP
@given(overparameterised())
def test_projection_equals_golden_for_any_overlap(s):
    _, _, w_g, P_r = reference(s)
    m = lab_models(s)
    assert rel_err(m["projection"], w_g) <= REL
    assert rel_err(retain_projection(m["pretrained"], s), P_r @ m["pretrained"]) <= REL


@HYP
@given(overparameterised())
def test_retained_component_is_pretrained_outside_retain_row_space(s):
    w_o, _, w_g, P_r = reference(s)
    m = lab_models(s)
    outside = (np.eye(s.config.d) - P_r) @ w_o
    assert np.linalg.norm(m["FT"] - m["golden"] - outside) <= REL * np.linalg.norm(w_o)


def test_option_b_does_nothing_under_full_overlap():
    s = make_scenario(n_f=10, n_r=30, d_f=0, d_o=80, d_r=0, seed=5)
    m = lab_models(s)
    assert rel_err(m["B+FT"], m["FT"]) <= REL
    assert rel_err(m["FT"], m["golden"]) > 0.05  # and FT is far from golden


@pytest.mark.parametrize(
    ("shape", "seed"),
    [
        ({"n_f": 20, "n_r": 120, "d_f": 0, "d_o": 30, "d_r": 30}, 0),
        ({"n_f": 5, "n_r": 60, "d_f": 0, "d_o": 10, "d_r": 40}, 1),
        ({"n_f": 30, "n_r": 200, "d_f": 0, "d_o": 100, "d_r": 0}, 2),
    ],
)
@pytest.mark.parametrize("solver", ["closed", "gd"])
def test_ft_equals_golden_when_underparameterised(shape, seed, solver):
    # n_r >= d and X_r of full column rank: a unique retain minimiser (spec §2.4).
    s = make_scenario(**shape, noise=0.5, seed=seed)
    assert np.linalg.matrix_rank(s.X_r) == s.config.d
    m = lab_models(s, solver=solver)
    _, _, w_g, _ = reference(s)
    tol = REL if solver == "closed" else 1e-6
    assert rel_err(m["FT"], w_g) <= tol
    assert rel_err(m["golden"], w_g) <= tol
    assert rel_err(m["pretrained"], w_g) > 1e-3  # pretraining did see the forget data


@pytest.mark.parametrize(
    "shape",
    [
        {"n_f": 10, "n_r": 30, "d_f": 40, "d_o": 20, "d_r": 60},
        {"n_f": 8, "n_r": 20, "d_f": 0, "d_o": 70, "d_r": 0},
        {"n_f": 5, "n_r": 25, "d_f": 25, "d_o": 0, "d_r": 50},
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_gradient_descent_converges_to_closed_forms(shape, seed):
    s = make_scenario(**shape, noise=0.1, seed=seed)
    closed = lab_models(s, solver="closed")
    run = lab_models(s, solver="gd", tol=1e-12)
    for name, w in closed.weights.items():
        assert rel_err(run[name], w) <= 1e-7, name
        if run.info[name]["converged"] is not None:
            assert run.info[name]["converged"], name
    # FT starts at an interpolating w_o: its gradient is ~0, so GD barely moves.
    assert run.info["FT"]["steps"] < run.info["golden"]["steps"]


@pytest.mark.parametrize("ridge", [0.0, 0.5])
@pytest.mark.parametrize("steps", [0, 1, 7, 50])
def test_finite_step_closed_form_matches_gd_iterates(ridge, steps):
    rng = np.random.default_rng(steps)
    A, b, w0 = rng.normal(size=(12, 30)), rng.normal(size=12), rng.normal(size=30)
    run = gradient_descent(A, b, w0=w0, ridge=ridge, steps=steps)
    assert run.steps == steps
    closed = gd_closed_form(A, b, w0=w0, ridge=ridge, steps=steps)
    assert rel_err(run.w, closed) <= 1e-10


def test_ridge_ft_converges_to_golden_but_not_in_few_steps():
    kw = {"n_f": 10, "n_r": 30, "d_f": 40, "d_o": 20, "d_r": 60, "ridge": 1.0, "seed": 3}
    s = make_scenario(**kw)
    lam = s.config.ridge
    w_g = np.linalg.solve(s.X_r.T @ s.X_r + lam * np.eye(s.config.d), s.X_r.T @ s.y_r)
    w_o = np.linalg.solve(s.X.T @ s.X + lam * np.eye(s.config.d), s.X.T @ s.y)
    converged = lab_models(s)
    assert rel_err(converged["golden"], w_g) <= REL
    assert rel_err(converged["pretrained"], w_o) <= REL
    assert rel_err(converged["FT"], w_g) <= REL  # strictly convex: FT finds golden
    short = lab_models(s, ft_steps=10)
    assert rel_err(short["FT"], w_g) > 1e-2


def test_evaluate_scores_on_fresh_samples_and_golden_distance():
    s = make_scenario(n_f=5, n_r=20, d_f=20, d_o=10, d_r=30, noise=0.0, seed=0)
    m = lab_models(s)
    out = evaluate(s, m.weights, golden=m["golden"], n_test=500, test_seed=1)
    assert out["golden"]["dist_golden"] == 0.0
    assert out["FT"]["dist_golden"] == pytest.approx(np.linalg.norm(m["FT"] - m["golden"]))
    # Test losses use fresh draws: the interpolating FT model has UL 0 but not test error 0.
    assert out["FT"]["test_forget"] > 1e-3
    X, _ = s.sample("forget", 3, seed=1)
    assert not np.isin(X[:, 0], s.X_f[:, 0]).any()


def test_scenario_is_seeded_and_validated():
    a = make_scenario(n_f=3, n_r=5, d_f=4, d_o=2, d_r=6, seed=7)
    b = make_scenario(n_f=3, n_r=5, d_f=4, d_o=2, d_r=6, seed=7)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, make_scenario(n_f=3, n_r=5, d_f=4, d_o=2, d_r=6, seed=8).X)
    for bad, word in (
        ({"n_f": 0}, "n_f"),
        ({"d_f": 0, "d_o": 0}, "forget rows"),
        ({"noise": -1.0}, "noise"),
        ({"ridge": -0.1}, "ridge"),
    ):
        kw = {"n_f": 3, "n_r": 5, "d_f": 4, "d_o": 2, "d_r": 6, **bad}
        with pytest.raises(ConfigError, match=word):
            make_scenario(**kw)
    with pytest.raises(ConfigError, match="step_scale"):
        gradient_descent(a.X, a.y, step_scale=2.5)
