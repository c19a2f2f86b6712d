"""The real-data bridge on digits (fast): the lab's identities hold on real features."""

import numpy as np
import pytest

from unlearnkit.errors import ConfigError
from unlearnkit.theory.bridge import MODELS, markdown, relu_features, run_bridge


@pytest.fixture(scope="module")
def bridge(digits):
    return run_bridge(dataset=digits, n_features=2000, active_fraction=0.5, seed=0)


def test_bridge_reproduces_the_lab_on_real_features(bridge):
    assert bridge["n_features"] > bridge["n_train"]
    for sc in bridge["scenarios"]:
        rows = {r["model"]: r for r in sc["rows"]}
        assert list(rows) == list(MODELS)
        assert sc["ft_change_rel"] < 1e-8  # FT changes nothing: W_o already fits retain
        assert rows["FT"]["UL"] < 1e-12 < rows["golden"]["UL"]
        assert rows["FT"]["RL"] < 1e-12 and rows["golden"]["RL"] < 1e-12
        assert rows["projection"]["dist_golden"] < 1e-8 * rows["pretrained"]["dist_golden"]
        assert sc["exact_vs_golden_rel"] < 1e-8 and sc["golden_vs_refit_rel"] < 1e-8
        assert rows["exact forget"]["dist_golden"] < 1e-8 * rows["pretrained"]["dist_golden"]
    classwise = {r["model"]: r for r in bridge["scenarios"][0]["rows"]}
    assert bridge["scenarios"][0]["forget"] == "class:3"
    assert classwise["FT"]["UA"] == 0.0  # interpolates the forgotten class
    assert classwise["golden"]["UA"] > 90.0  # never saw it
    text = markdown(bridge)
    assert "forget `class:3`" in text and "| exact forget |" in text


def test_relu_features_fire_on_the_requested_fraction_and_are_seeded():
    X = np.random.default_rng(1).normal(size=(400, 10))
    a, _ = relu_features(X, X[:5], n_features=50, active_fraction=0.2, seed=3)
    b, _ = relu_features(X, X[:5], n_features=50, active_fraction=0.2, seed=3)
    assert np.array_equal(a, b)
    assert np.allclose((a > 0).mean(axis=0), 0.2, atol=0.01)
    with pytest.raises(ConfigError, match="active_fraction"):
        relu_features(X, X, n_features=5, active_fraction=0.0, seed=0)


def test_bridge_refuses_the_underparameterised_case(digits):
    with pytest.raises(ConfigError, match="overparameterised"):
        run_bridge(dataset=digits, n_features=100)
