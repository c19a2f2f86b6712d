"""Exact linear unlearning: after forget(ids) the model equals a fresh fit without ids.

References are computed independently (normal equations with ``np.linalg.solve``
for ridge, ``np.linalg.pinv`` for min-norm), besides the engine's own fresh fit.
The data here are well conditioned; hard designs are in test_linear_conditioning.py.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearnkit.data import Split
from unlearnkit.errors import (
    AlreadyDeletedError,
    ConfigError,
    DatasetError,
    DuplicateIdsError,
    ForgetSelectionError,
    StoreError,
    UnknownIdsError,
)
from unlearnkit.exact.linear import LinearRegressionUnlearner, NotFittedError

REL = 1e-8


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)


def reference(X, y, ridge):
    if ridge > 0:
        return np.linalg.solve(X.T @ X + ridge * np.eye(X.shape[1]), X.T @ y).T
    return (np.linalg.pinv(X) @ y).T


def data(n, d, *, targets=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.normal(size=n) if targets == 1 else rng.normal(size=(n, targets))
    ids = rng.permutation(n * 5)[:n].astype(np.int64) + 100  # not positions
    return X, y, ids


CASES = [
    pytest.param(400, 30, 1.0, 1, "primal", id="ridge-primal"),
    pytest.param(400, 30, 0.0, 1, "primal", id="lstsq-primal"),
    pytest.param(60, 150, 0.0, 1, "gram", id="minnorm-gram"),
    pytest.param(60, 150, 2.0, 1, "gram", id="ridge-gram"),
    pytest.param(300, 40, 0.5, 3, "primal", id="ridge-multi-output"),
]


@pytest.mark.parametrize(("n", "d", "ridge", "targets", "form"), CASES)
def test_forget_equals_fresh_fit_after_every_request(n, d, ridge, targets, form):
    X, y, ids = data(n, d, targets=targets, seed=n + d)
    model = LinearRegressionUnlearner(ridge=ridge).fit(X, y, ids=ids)
    assert model.form_ == form
    assert rel_err(model.coef_, reference(X, y, ridge)) <= REL
    alive = np.ones(n, bool)
    rng = np.random.default_rng(1)
    paths = set()
    for k in (1, 1, 3, 7, 1, 12, 2, 25, 1):
        pick = rng.choice(np.flatnonzero(alive), size=k, replace=False)
        result = model.forget(ids[pick])
        alive[pick] = False
        paths.add(result.path)
        assert result.removed == k and result.n_remaining == alive.sum()
        fresh = LinearRegressionUnlearner(ridge=ridge).fit(X[alive], y[alive], ids=ids[alive])
        assert rel_err(model.coef_, fresh.coef_) <= REL, result
        assert rel_err(model.coef_, reference(X[alive], y[alive], ridge)) <= REL
        assert not result.fallback
    assert {"woodbury", "refactorisation"} <= paths
    assert np.array_equal(model.ids_, ids[alive])
    assert set(model.deleted_ids_) == set(ids[~alive])
    assert model.coef_.shape == ((d,) if targets == 1 else (targets, d))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    n=st.integers(5, 60),
    d=st.integers(2, 60),
    ridge=st.sampled_from([0.0, 0.3, 5.0]),
    k=st.integers(1, 4),
    seed=st.integers(0, 1000),
)
def test_forget_is_exact_for_any_shape(n, d, ridge, k, seed):
    if ridge == 0 and abs(n - k - d) < 4:
        d += 8  # min-norm with n ≈ d is ill-posed for any solver; keep a margin
    X, y, ids = data(n + k, d, seed=seed)
    model = LinearRegressionUnlearner(ridge=ridge).fit(X, y, ids=ids)
    gone = np.random.default_rng(seed).choice(n + k, size=k, replace=False)
    model.forget(ids[gone])
    keep = np.setdiff1d(np.arange(n + k), gone)
    assert rel_err(model.coef_, reference(X[keep], y[keep], ridge)) <= REL
    fresh = LinearRegressionUnlearner(ridge=ridge).fit(X[keep], y[keep])
    assert rel_err(model.coef_, fresh.coef_) <= REL


def test_ill_conditioned_downdate_falls_back_to_exact_refit():
    # Row 0 is the only one touching feature 0: its leverage is 1, so removing it
    # makes XᵀX singular (ridge = 0) and the Woodbury capacitance C = 1 − h ≈ 0.
    X, y, ids = data(80, 10, seed=3)
    X[1:, 0] = 0.0
    model = LinearRegressionUnlearner(ridge=0.0).fit(X, y, ids=ids)
    result = model.forget([ids[0]])
    assert result.fallback and result.path == "refit"
    assert "ill-conditioned" in result.reason and result.rcond < 1e-6
    keep = np.arange(1, 80)
    assert rel_err(model.coef_, reference(X[keep], y[keep], 0.0)) <= REL
    # min-norm: the unconstrained coordinate stays at zero (to the SVD's rounding)
    assert abs(model.coef_[0]) <= 1e-12 * np.linalg.norm(model.coef_)
    # Later requests on the singular statistics keep refitting, and stay exact.
    result = model.forget(ids[5:8])
    assert result.fallback and "singular" in result.reason
    keep = np.setdiff1d(keep, [5, 6, 7])
    assert rel_err(model.coef_, reference(X[keep], y[keep], 0.0)) <= REL


def test_forgetting_below_d_switches_from_primal_to_gram_exactly():
    X, y, ids = data(45, 40, seed=4)
    model = LinearRegressionUnlearner(ridge=0.0).fit(X, y, ids=ids)
    assert model.form_ == "primal"
    result = model.forget(ids[:10])  # 35 samples left for 40 features
    assert result.form == "gram" and result.path == "refit"
    assert not result.fallback and "switched from the primal to the Gram form" in result.reason
    assert rel_err(model.coef_, reference(X[10:], y[10:], 0.0)) <= REL
    result = model.forget(ids[10:12])  # now downdating the Gram form
    assert result.path in ("woodbury", "refactorisation") and not result.fallback
    assert rel_err(model.coef_, reference(X[12:], y[12:], 0.0)) <= REL


def test_bad_requests_raise_and_leave_state_untouched():
    X, y, ids = data(50, 5, seed=5)
    model = LinearRegressionUnlearner(ridge=1.0).fit(X, y, ids=ids)
    model.forget([ids[0]])
    before = (model.coef_, model.ids_, model._factor)
    bad = [
        ([10**9], UnknownIdsError, "never part of the training data"),
        ([ids[0]], AlreadyDeletedError, "already forgotten"),
        ([ids[1], ids[0]], AlreadyDeletedError, "already forgotten"),
        ([ids[2], ids[2]], DuplicateIdsError, "more than once"),
        ([ids[0], ids[0]], DuplicateIdsError, "more than once"),  # duplicates are checked first
        ([], ForgetSelectionError, "empty"),
        (ids[1:], ForgetSelectionError, "every remaining sample"),
        ([1.5], ForgetSelectionError, "integers"),
    ]
    for request, error, words in bad:
        with pytest.raises(error, match=words):
            model.forget(request)
        assert np.array_equal(model.coef_, before[0]) and np.array_equal(model.ids_, before[1])
        assert model._factor is before[2]
    # The model still works and is still exact.
    model.forget([ids[1]])
    assert rel_err(model.coef_, reference(X[2:], y[2:], 1.0)) <= REL


def test_a_failure_inside_the_update_leaves_state_untouched(monkeypatch):
    X, y, ids = data(60, 6, seed=6)
    model = LinearRegressionUnlearner(ridge=1.0).fit(X, y, ids=ids)
    coef = model.coef_

    def boom(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(model, "_solve", boom)
    with pytest.raises(MemoryError):
        model.forget(ids[:2])
    monkeypatch.undo()
    assert np.array_equal(model.coef_, coef) and model.n_samples_ == 60
    model.forget(ids[:2])
    assert rel_err(model.coef_, reference(X[2:], y[2:], 1.0)) <= REL


@pytest.mark.parametrize(("n", "d"), [(200, 12), (30, 80)])
def test_save_and_load_continue_exactly(tmp_path, n, d):
    X, y, ids = data(n, d, seed=7)
    model = LinearRegressionUnlearner(ridge=0.0).fit(X, y, ids=ids)
    model.forget(ids[:3])
    path = model.save(tmp_path / "state")
    assert path.suffix == ".npz"
    loaded = LinearRegressionUnlearner.load(path)
    assert loaded.get_params() == model.get_params()
    assert np.array_equal(loaded.coef_, model.coef_)
    assert np.array_equal(loaded.deleted_ids_, model.deleted_ids_)
    r1, r2 = model.forget(ids[3:5]), loaded.forget(ids[3:5])
    assert r1.path == r2.path
    assert np.array_equal(loaded.coef_, model.coef_)
    with pytest.raises(AlreadyDeletedError, match="already forgotten"):
        loaded.forget([ids[0]])


def test_corrupt_or_missing_state_is_a_store_error(tmp_path):
    X, y, ids = data(40, 4, seed=8)
    path = LinearRegressionUnlearner().fit(X, y, ids=ids).save(tmp_path / "s.npz")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2 : len(blob) // 2 + 64] = b"\x00" * 64
    path.write_bytes(bytes(blob))
    with pytest.raises(StoreError, match="corrupt"):
        LinearRegressionUnlearner.load(path)
    with pytest.raises(StoreError, match="no linear unlearner state at"):
        LinearRegressionUnlearner.load(tmp_path / "missing.npz")


def test_configuration_and_input_errors():
    X, y, ids = data(20, 3)
    for params, words in (
        ({"ridge": -1.0}, "ridge"),
        ({"solver": "qr"}, "solver"),
        ({"rcond_tol": 0.0}, "rcond_tol"),
        ({"tol": 2.0}, "tol"),
        ({"max_pending": 0}, "max_pending"),
    ):
        with pytest.raises(ConfigError, match=words):
            LinearRegressionUnlearner(**params).fit(X, y)
    with pytest.raises(DatasetError, match="unique"):
        LinearRegressionUnlearner().fit(X, y, ids=np.zeros(20, dtype=np.int64))
    with pytest.raises(DatasetError, match="one id per row"):
        LinearRegressionUnlearner().fit(X, y, ids=np.arange(3))
    with pytest.raises(DatasetError, match="NaN"):
        LinearRegressionUnlearner().fit(np.full((3, 2), np.nan), np.zeros(3))
    with pytest.raises(NotFittedError, match="fit"):
        LinearRegressionUnlearner().forget([1])


def test_fit_from_a_split_and_predict():
    rng = np.random.default_rng(9)
    split = Split(
        ids=torch.arange(50, dtype=torch.int64) * 3,
        X=torch.as_tensor(rng.normal(size=(50, 2, 3)), dtype=torch.float32),
        y=torch.as_tensor(rng.normal(size=50), dtype=torch.float32),
    )
    model = LinearRegressionUnlearner(ridge=0.1).fit(split)
    X = split.X.numpy().reshape(50, 6).astype(np.float64)
    y = split.y.numpy().astype(np.float64)
    assert np.allclose(model.predict(X), X @ reference(X, y, 0.1), rtol=1e-10, atol=1e-12)
    model.forget([3, 6])
    keep = np.setdiff1d(np.arange(50), [1, 2])
    assert rel_err(model.coef_, reference(X[keep], y[keep], 0.1)) <= REL


def test_a_format_1_state_loads_by_refitting_once():
    # Format 1 stored normal-equation factors without error bookkeeping; they are
    # rebuilt from the saved rows (stable SVD refit) instead of being trusted.
    X, y, ids = data(120, 8, seed=10)
    model = LinearRegressionUnlearner(ridge=0.5).fit(X, y, ids=ids)
    model.forget(ids[:4])
    state = model.state_dict()
    meta = dict(state["meta"], format_version=1, kind="cholesky")
    for key in ("scale", "inv_norm", "b_scale", "x_norm", "cond"):
        del meta[key]
    del meta["params"]["tol"]
    arrays = {k: v for k, v in state["arrays"].items() if k not in ("Q", "e")}
    loaded = LinearRegressionUnlearner().load_state_dict({"meta": meta, "arrays": arrays})
    assert loaded.tol == 1e-10 and loaded.n_samples_ == 116
    assert rel_err(loaded.coef_, reference(X[4:], y[4:], 0.5)) <= REL
    assert loaded.forget(ids[4:6]).path == "woodbury"
    assert rel_err(loaded.coef_, reference(X[6:], y[6:], 0.5)) <= REL
