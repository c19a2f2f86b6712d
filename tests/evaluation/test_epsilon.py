import functools
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import beta, binom

from unlearnkit.errors import ConfigError
from unlearnkit.evaluation import epsilon as eps_module
from unlearnkit.evaluation.epsilon import (
    EpsilonScore,
    bucket_edges,
    bucket_points,
    clopper_pearson_upper,
    epsilon_score,
    sample_epsilons,
)

DELTA = 1e-5
UNIT = {"ra_unlearned": 1.0, "ra_golden": 1.0, "ta_unlearned": 1.0, "ta_golden": 1.0}
CP = {"rates": "clopper_pearson"}


def column(*values):
    """One forget sample: a (n_models, 1) array."""
    return np.array(values, dtype=float)[:, None]


# ----------------------------------------------------------- a slow, obvious reference


@functools.cache
def cp_upper_by_root(k, n, alpha):
    """Clopper–Pearson upper bound from its definition: the p with P(Bin(n, p) <= k) = alpha."""
    if k == n:
        return 1.0
    return brentq(lambda p: binom.cdf(k, n, p) - alpha, 0.0, 1.0, xtol=1e-15, rtol=1e-15)


def reference_epsilons(
    unlearned, golden, *, delta=DELTA, cap=50.0, peaky_ratio=0.01, rates="point", alpha=0.05
):
    """The rule written out with Python loops, one rule at a time."""

    def rule(fp, n_neg, fn, n_pos):
        if rates == "point":
            fpr, fnr = fp / n_neg, fn / n_pos
        else:  # upper bounds, never 0: nothing is discarded, nothing is infinite
            fpr, fnr = cp_upper_by_root(fp, n_neg, alpha), cp_upper_by_root(fn, n_pos, alpha)
        if fpr == 0 and fnr == 0:
            return math.inf
        if (fpr == 0) != (fnr == 0):
            return None  # discarded

        def term(arg, denominator):
            return math.log(arg) - math.log(denominator) if arg > 0 else -math.inf

        return max(term(1 - delta - fpr, fnr), term(1 - delta - fnr, fpr), 0.0)

    out = []
    for s in range(unlearned.shape[1]):
        u, g = unlearned[:, s], golden[:, s]
        orientations = []
        if np.median(u) >= np.median(g):
            orientations.append((u, g))
        if np.median(g) >= np.median(u):
            orientations.append((g, u))
        values = sorted(set(np.concatenate([u, g]).tolist()))
        rules = [(t, math.inf) for t in values] + [(math.inf, math.inf)]
        rules += [(a, b) for a in values for b in values if a <= b]
        best = 0.0
        for pos, neg in orientations:
            for lo, hi in rules:
                fp = int(((neg >= lo) & (neg <= hi)).sum())
                fn = int((~((pos >= lo) & (pos <= hi))).sum())
                e = rule(fp, len(neg), fn, len(pos))
                if e is not None:
                    best = max(best, e)
        best = min(best, cap)
        spreads = [0.0 if np.ptp(x) == 0 else np.std(x, ddof=1) for x in (u, g)]
        if max(spreads) > 0 and min(spreads) < peaky_ratio * max(spreads):
            best = cap
        out.append(best)
    return np.array(out)


# ------------------------------------------------------------------- hand-computed rules


def test_identical_distributions_score_zero_and_full_points():
    rng = np.random.default_rng(0)
    golden = rng.normal(size=(16, 20))
    unlearned = golden[rng.permutation(16)]  # same values, other model order
    eps = sample_epsilons(unlearned, golden)
    assert eps.tolist() == [0.0] * 20
    assert bucket_points(eps, n_models=16).tolist() == [1.0] * 20
    result = epsilon_score(unlearned, golden, **UNIT, n_bootstrap=0)
    assert result.forget_score == 1.0 and result.score == 1.0


def test_perfect_separation_is_capped_and_scores_zero():
    golden = np.random.default_rng(1).normal(size=(16, 10))
    eps = sample_epsilons(golden + 100.0, golden)
    assert eps.tolist() == [50.0] * 10
    assert bucket_points(eps, n_models=16).tolist() == [0.0] * 10
    assert sample_epsilons(golden + 100.0, golden, cap=7.0).tolist() == [7.0] * 10


def test_hand_computed_four_models_per_side():
    # Sorted pooled values: 0g 1g 1.5u 2g 2.5u 3g 3.5u 4.5u; medians u 3.0 > g 1.5, so
    # unlearned is positive.
    #   x >= 1.5     : 4 u, 2 g -> FNR 0, FPR 1/2        -> discarded
    #   x >= 2.5     : 3 u, 1 g -> FNR 1/4, FPR 1/4      -> log((3/4 - δ) / (1/4)) ≈ log 3
    #   [1.5, 3.5]   : 3 u, 2 g -> FNR 1/4, FPR 1/2      -> log((1/2 - δ) / (1/4)) ≈ log 2
    #   [2.5, 3.5]   : 2 u, 1 g -> FNR 1/2, FPR 1/4      -> log 2
    #   x >= 3.5     : 2 u, 0 g -> FPR 0, FNR 1/2        -> discarded (else ∞)
    # Best: log 3 ≈ 1.0986. N = 4: edges 0 .. ceil(log 3) = 2, so bucket [1, 1.5): 1/4.
    golden = column(0, 1, 2, 3)
    unlearned = column(1.5, 2.5, 3.5, 4.5)
    eps = sample_epsilons(unlearned, golden)
    assert eps[0] == pytest.approx(math.log((0.75 - DELTA) / 0.25), abs=1e-12)
    assert bucket_points(eps, n_models=4).tolist() == [0.25]


def test_rule_with_one_zero_rate_is_discarded():
    # Sorted: 0g .5u 1g 1.5u 2g 2.5u 3g 10u; medians u 2.0 > g 1.5.
    # x >= 10 calls 1 u and no g positive: FPR 0, FNR 3/4. Kept, it would give ∞ (50).
    # Between any two u lies a g, so the best kept rules are 2 u + 1 g (FPR 1/4,
    # FNR 1/2) and 3 u + 2 g (FPR 1/2, FNR 1/4): log((1/2 − δ) / (1/4)) ≈ log 2.
    golden = column(0, 1, 2, 3)
    unlearned = column(0.5, 1.5, 2.5, 10)
    eps = sample_epsilons(unlearned, golden)
    assert eps[0] == pytest.approx(math.log((0.5 - DELTA) / 0.25), abs=1e-12)
    assert eps[0] < 1


def test_interval_rule_beats_every_single_threshold():
    # Golden on both sides, unlearned concentrated in the middle with one golden inside.
    # Sorted: -3g -2g -.5u .1u .2g .3u .6u 3g; medians u 0.2 > g −0.9.
    # Single thresholds x >= t (u positive):
    #   -.5: 4u 2g discarded; .1: 3u 2g -> log 2; .2: 2u 2g -> 0; .3: 2u 1g -> log 2;
    #   .6: 1u 1g -> 0; 3: 0u 1g -> 0.  Best single: log 2 ≈ 0.693.
    # Interval [-.5, .3]: 3u 1g -> FNR 1/4, FPR 1/4 -> log((3/4 − δ) / (1/4)) ≈ log 3.
    golden = column(-3, -2, 0.2, 3)
    unlearned = column(-0.5, 0.1, 0.3, 0.6)
    eps = sample_epsilons(unlearned, golden)
    assert eps[0] == pytest.approx(math.log((0.75 - DELTA) / 0.25), abs=1e-12)
    assert eps[0] > math.log(2) + 0.1


def test_clipped_below_at_zero():
    # The same two values on each side: every rule calls k of 2 on both sides positive.
    # k = 1 gives FPR = FNR = 1/2 and raw ε = log((1/2 − δ) / (1/2)) < 0; k = 0 / 2 are
    # discarded. So ε is clipped to exactly 0 (not a small negative number).
    eps = sample_epsilons(column(0, 1), column(1, 0))
    assert eps.tolist() == [0.0]


def test_peaky_rule():
    # Unlearned almost constant at 1.5 (spread ≈ 5e-5), golden spread ≈ 8.2. Its narrow
    # range [1.5, 1.5001] holds both golden 1.5s, so rules alone give only ≈ log 2.
    golden = column(1.5, 1.5, -10, 10)
    unlearned = column(1.5, 1.5, 1.5, 1.5001)
    assert sample_epsilons(unlearned, golden).tolist() == [50.0]
    assert sample_epsilons(golden, unlearned).tolist() == [50.0]
    no_peaky = sample_epsilons(unlearned, golden, peaky_ratio=0.0)
    assert no_peaky[0] == pytest.approx(math.log((0.5 - DELTA) / 0.25), abs=1e-12)
    assert sample_epsilons(unlearned, golden, cap=9.0).tolist() == [9.0]


def test_peaky_ratio_is_the_threshold():
    golden = column(0, 1, 2, 3)
    unlearned = column(0.75, 1.25, 1.75, 2.25)  # exactly half golden's spread
    plain = sample_epsilons(unlearned, golden)[0]
    assert plain < 50
    assert sample_epsilons(unlearned, golden, peaky_ratio=0.49)[0] == plain
    assert sample_epsilons(unlearned, golden, peaky_ratio=0.51)[0] == 50.0


def test_constant_sides_are_not_peaky():
    # 0 vs 0 spread: identical constants are the same distribution, different constants
    # are separated by the rules themselves. 0.1 has a mean that does not round exactly.
    same = np.full((16, 1), 0.1)
    assert sample_epsilons(same, same.copy()).tolist() == [0.0]
    assert sample_epsilons(same, same + 1).tolist() == [50.0]
    # One constant side against a spread one is peaky.
    spread = np.linspace(-1, 1, 16)[:, None]
    assert sample_epsilons(np.zeros((16, 1)), spread).tolist() == [50.0]


def test_unequal_sides():
    golden = column(0, 1, 2, 3, 4, 5)
    unlearned = column(2.5, 3.5, 4.5, 5.5)
    eps = sample_epsilons(unlearned, golden)
    assert eps == pytest.approx(reference_epsilons(unlearned, golden))
    result = epsilon_score(unlearned, golden, **UNIT, n_bootstrap=5)
    assert result.n_models == 4


def test_samples_are_independent_of_chunking(monkeypatch):
    rng = np.random.default_rng(2)
    u, g = rng.normal(size=(8, 30)), rng.normal(0.3, 1.0, size=(8, 30))
    whole = sample_epsilons(u, g)
    monkeypatch.setattr(eps_module, "_CHUNK_ELEMENTS", 1)  # one sample per chunk
    assert sample_epsilons(u, g).tolist() == whole.tolist()
    assert whole.tolist() == [sample_epsilons(u[:, [s]], g[:, [s]])[0] for s in range(30)]


# --------------------------------------------------------------------------- properties

small = st.integers(min_value=-3, max_value=3).map(float)  # many ties


@st.composite
def pair(draw, values=small):
    n_u = draw(st.integers(2, 6))
    n_g = draw(st.integers(2, 6))
    s = draw(st.integers(1, 3))
    u = np.array(draw(st.lists(values, min_size=n_u * s, max_size=n_u * s))).reshape(n_u, s)
    g = np.array(draw(st.lists(values, min_size=n_g * s, max_size=n_g * s))).reshape(n_g, s)
    return u, g


floats = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(pair())
def test_matches_reference_with_ties(uv):
    u, g = uv
    assert sample_epsilons(u, g) == pytest.approx(reference_epsilons(u, g))


@settings(max_examples=40, deadline=None)
@given(pair(floats))
def test_matches_reference_with_floats(uv):
    u, g = uv
    assert sample_epsilons(u, g) == pytest.approx(reference_epsilons(u, g))


@settings(max_examples=60, deadline=None)
@given(pair(floats), st.floats(1.0, 60.0))
def test_bounded_and_symmetric(uv, cap):
    u, g = uv
    eps = sample_epsilons(u, g, cap=cap)
    assert ((eps >= 0) & (eps <= cap)).all()
    assert sample_epsilons(g, u, cap=cap).tolist() == eps.tolist()
    # Model order within a side does not matter.
    assert sample_epsilons(u[::-1], g[::-1], cap=cap).tolist() == eps.tolist()


# ------------------------------------------------------------------------------ buckets


def test_bucket_edges():
    assert bucket_edges(16).tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]  # ceil(ln 15) = 3
    assert bucket_edges(3).tolist() == [0.0, 0.5, 1.0]  # ceil(ln 2) = 1
    assert bucket_edges(2).tolist() == [0.0]  # ln 1 = 0: nothing measurable
    assert bucket_edges(512)[-1] == 7.0


def test_bucket_points_at_edges_for_16_models():
    eps = np.array([0.0, 0.49, 0.5, 0.99, 1.0, 1.5, 2.0, 2.5, 2.99, 3.0, 50.0, np.inf])
    expected = [1, 1, 1 / 2, 1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 32, 0, 0, 0]
    assert bucket_points(eps, n_models=16).tolist() == expected
    assert bucket_points(np.array([0.0, 0.3]), n_models=2).tolist() == [0.0, 0.0]


# ------------------------------------------------------------------- score and interval


def test_final_score_multiplies_the_ratios():
    golden = np.tile(np.arange(16.0)[:, None], (1, 4))
    unlearned = golden + np.array([0.0, 0.0, 0.0, 100.0])  # F = 3/4
    result = epsilon_score(
        unlearned,
        golden,
        ra_unlearned=90.0,
        ra_golden=100.0,
        ta_unlearned=80.0,
        ta_golden=64.0,
        n_bootstrap=0,
    )
    assert result.forget_score == 0.75
    assert result.ra_ratio == pytest.approx(0.9) and result.ta_ratio == pytest.approx(1.25)
    assert result.score == pytest.approx(0.75 * 0.9 * 1.25)
    assert result.interval == (result.score, result.score)


def test_bootstrap_interval_is_seeded_percentile_over_models():
    rng = np.random.default_rng(3)
    golden = rng.normal(size=(16, 100))
    unlearned = rng.normal(size=(16, 100)) + 1.5
    kwargs = dict(UNIT, ra_unlearned=0.5, n_bootstrap=60, seed=7)
    first = epsilon_score(unlearned, golden, **kwargs)
    again = epsilon_score(unlearned, golden, **kwargs)
    assert first.interval == again.interval
    assert first.interval != epsilon_score(unlearned, golden, **{**kwargs, "seed": 8}).interval
    lo, hi = first.interval
    assert lo <= first.score <= hi

    # Percentile interval of the resampled scores, ratios held fixed: redo it by hand.
    draw = np.random.default_rng(7)
    scores = []
    for _ in range(60):
        u_b = unlearned[draw.integers(0, 16, size=16)]
        g_b = golden[draw.integers(0, 16, size=16)]
        scores.append(bucket_points(sample_epsilons(u_b, g_b), n_models=16).mean() * 0.5)
    assert [lo, hi] == pytest.approx(np.quantile(scores, [0.025, 0.975]).tolist())


def test_bootstrap_of_a_settled_case_is_degenerate():
    # Half the samples equal constants on both sides (1 point in every resample), half
    # far apart (0 points in every resample): every draw has F = 1/2.
    golden = np.concatenate(
        [np.full((16, 5), 2.0), np.random.default_rng(4).normal(size=(16, 5))], 1
    )
    unlearned = golden + np.array([0.0] * 5 + [100.0] * 5)
    result = epsilon_score(unlearned, golden, **UNIT, n_bootstrap=30)
    assert result.score == 0.5 and result.interval == (0.5, 0.5)


def test_golden_against_golden_gaussian():
    # Two independent golden sets from one Gaussian, 16 models per side. The maximum over
    # ~500 rules per sample finds chance separations: a rule calling 3 of one side and 1
    # of the other positive already gives log 3. So at N = 16 the same-distribution score
    # is far from 1 (measured ≈ 0.14 over seeds 0-4), yet clearly above a shifted
    # unlearned set (≈ 0.06 at a 1.5 σ shift).
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(16, 200)), rng.normal(size=(16, 200))
    same = epsilon_score(a, b, **UNIT, n_bootstrap=0).forget_score
    shifted = epsilon_score(a + 1.5, b, **UNIT, n_bootstrap=0).forget_score
    assert 0.1 <= same <= 0.2
    assert shifted < 0.75 * same
    assert np.median(sample_epsilons(a, b)) < 2.0


def test_report_is_json_ready():
    golden = np.tile(np.arange(16.0)[:, None], (1, 3))
    unlearned = golden + np.array([0.0, 100.0, 8.0])
    result = epsilon_score(unlearned, golden, **UNIT, n_bootstrap=10)
    assert isinstance(result, EpsilonScore)
    report = json.loads(json.dumps(result.report()))
    assert report["score"] == result.score and report["n_models"] == 16
    hist = report["histogram"]
    assert hist["edges"] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    # ε = 0, 50 (overflow) and log 9 ≈ 2.2 in [2, 2.5).
    assert hist["counts"] == [1, 0, 0, 0, 1, 0, 1]
    assert len(hist["points"]) == len(hist["counts"]) and hist["points"][-1] == 0.0
    assert report["interval"] == list(result.interval)


# ------------------------------------------------------------ Clopper–Pearson rates


def test_clopper_pearson_upper_hand_cases():
    for alpha in (0.05, 0.01):
        # 0 errors of 16: (1 − p)^16 = alpha.
        assert float(clopper_pearson_upper(0, 16, alpha)) == pytest.approx(
            1 - alpha ** (1 / 16), rel=1e-12
        )
        assert float(clopper_pearson_upper(16, 16, alpha)) == 1.0  # every model wrong
    # 15 of 16: P(Bin(16, p) <= 15) = 1 − p^16 = alpha.
    assert float(clopper_pearson_upper(15, 16, 0.05)) == pytest.approx(0.95 ** (1 / 16))
    k = np.arange(17)
    upper = clopper_pearson_upper(k, 16, 0.05)  # vectorised
    assert upper[:16] == pytest.approx(beta.ppf(0.95, k[:16] + 1, 16 - k[:16]), rel=1e-12)
    # The definition: the largest p under which k or fewer errors still has probability α.
    for kk in (1, 3, 8):
        assert binom.cdf(kk, 16, upper[kk]) == pytest.approx(0.05, rel=1e-9)
        assert upper[kk] == pytest.approx(cp_upper_by_root(kk, 16, 0.05), rel=1e-9)
    assert (np.diff(upper) > 0).all() and (upper[:16] > k[:16] / 16).all()


def test_perfect_separation_is_finite_under_clopper_pearson():
    # FPR = FNR = 0 of 16: both bounds are u0 = 1 − α^(1/16), so
    # ε = log((1 − δ − u0) / u0): ≈ 1.58 at α = 0.05 (bucket [1.5, 2), 1/8 point) and
    # ≈ 1.10 at α = 0.01 (bucket [1, 1.5), 1/4 point). Point rates give ∞ → cap → 0.
    golden = np.tile(np.arange(16.0)[:, None], (1, 2))
    unlearned = golden + 100.0  # same spread, so the peaky rule does not fire
    assert sample_epsilons(unlearned, golden).tolist() == [50.0, 50.0]
    for alpha, points in ((0.05, 1 / 8), (0.01, 1 / 4)):
        u0 = 1 - alpha ** (1 / 16)
        expected = math.log((1 - DELTA - u0) / u0)
        eps = sample_epsilons(unlearned, golden, rates="clopper_pearson", alpha=alpha)
        assert eps == pytest.approx([expected, expected], abs=1e-12)
        assert bucket_points(eps, n_models=16).tolist() == [points, points]
    assert expected == pytest.approx(1.0986, abs=1e-3)  # α = 0.01: about log 3
    # Reversed roles: the same bound.
    assert sample_epsilons(golden, unlearned, **CP)[0] == pytest.approx(1.5803, abs=1e-4)


def test_clopper_pearson_hand_computed_four_models_per_side():
    # The case of test_hand_computed_four_models_per_side (point ε ≈ log 3): with 4
    # models the bounds are wide, e.g. 1 error of 4 → 0.7514, 0 of 4 → 0.5271, and no
    # rule reaches ε > 0. Only a peaky side still scores the cap.
    golden = column(0, 1, 2, 3)
    unlearned = column(1.5, 2.5, 3.5, 4.5)
    assert sample_epsilons(unlearned, golden, **CP).tolist() == [0.0]
    peaky = column(1.5, 1.5, 1.5, 1.5001)
    assert sample_epsilons(peaky, column(1.5, 1.5, -10, 10), **CP).tolist() == [50.0]
    assert sample_epsilons(peaky, column(1.5, 1.5, -10, 10), **CP, peaky_ratio=0).tolist() == [0.0]


def test_clopper_pearson_keeps_the_rules_point_discards():
    # 10 models per side. Golden: −1 −1 0 0 1 1 1 1 1 1 (median 1, positive); unlearned:
    # −1 −1 then eight 0s. Point rates: x >= 1 calls 6 golden and no unlearned positive
    # (FPR 0, FNR 4/10, discarded); x >= 0 gives (8/10, 2/10) → 0; nothing scores, ε 0.
    # Upper bounds keep x >= 1: FPR ≤ 1 − 0.05^(1/10), FNR ≤ beta.ppf(0.95, 5, 6), and
    # ε = log(1 − δ − FNR⁺) − log FPR⁺ ≈ 0.159 > 0: the one way CP can exceed point.
    golden = column(-1, -1, 0, 0, 1, 1, 1, 1, 1, 1)
    unlearned = column(-1, -1, 0, 0, 0, 0, 0, 0, 0, 0)
    fpr, fnr = 1 - 0.05 ** (1 / 10), beta.ppf(0.95, 5, 6)
    expected = math.log(1 - DELTA - fnr) - math.log(fpr)
    assert sample_epsilons(unlearned, golden).tolist() == [0.0]
    assert sample_epsilons(unlearned, golden, **CP)[0] == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.159, abs=1e-3)


@settings(max_examples=40, deadline=None)
@given(pair(), st.sampled_from([0.01, 0.05, 0.3]))
def test_clopper_pearson_matches_reference_with_ties(uv, alpha):
    u, g = uv
    got = sample_epsilons(u, g, rates="clopper_pearson", alpha=alpha)
    assert got == pytest.approx(reference_epsilons(u, g, rates="clopper_pearson", alpha=alpha))


@settings(max_examples=30, deadline=None)
@given(pair(floats), st.sampled_from([0.01, 0.05, 0.3]))
def test_clopper_pearson_matches_reference_with_floats(uv, alpha):
    u, g = uv
    got = sample_epsilons(u, g, rates="clopper_pearson", alpha=alpha)
    assert got == pytest.approx(reference_epsilons(u, g, rates="clopper_pearson", alpha=alpha))


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.2, 0.49])
def test_clopper_pearson_rule_never_beats_a_kept_point_rule(alpha):
    # ε falls in both rates and each bound is above its observed rate (alpha < 1/2), so
    # on every rule the point rule keeps (finite or perfect separation) CP is no larger.
    for n_pos in (2, 3, 7, 16, 20):
        for n_neg in (2, 5, 16):
            point = eps_module._rule_table(n_pos, n_neg, DELTA)
            cp = eps_module._rule_table(n_pos, n_neg, DELTA, "clopper_pearson", alpha)
            assert np.isfinite(cp).all() and (cp >= 0).all()
            kept = point > -np.inf
            assert (cp[kept] <= point[kept]).all()


@st.composite
def untied_pair(draw):
    n_u, n_g = draw(st.integers(2, 16)), draw(st.integers(2, 16))
    values = draw(
        st.lists(st.integers(-1000, 1000), min_size=n_u + n_g, max_size=n_u + n_g, unique=True)
    )
    v = np.array(values, dtype=float)[:, None] / 100
    return v[:n_u], v[n_u:]


@settings(max_examples=60, deadline=None)
@given(untied_pair(), st.sampled_from([0.01, 0.05, 0.2]))
def test_clopper_pearson_below_point_for_untied_samples(uv, alpha):
    u, g = uv
    cp = sample_epsilons(u, g, rates="clopper_pearson", alpha=alpha)
    assert (cp <= sample_epsilons(u, g)).all()


@settings(max_examples=40, deadline=None)
@given(pair(floats), st.sampled_from([0.01, 0.05, 0.3]))
def test_clopper_pearson_below_point_on_the_rules_point_keeps(uv, alpha):
    # With ties the sample's CP ε can exceed point only through rules point discards
    # (see test_clopper_pearson_keeps_the_rules_point_discards); mask those and CP ε is
    # never above point ε for any sample.
    u, g = uv
    original = eps_module._rule_table

    def masked(n_pos, n_neg, delta, rates="point", a=0.05):
        point = original(n_pos, n_neg, delta)
        return np.where(point > -np.inf, original(n_pos, n_neg, delta, rates, a), -np.inf)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(eps_module, "_rule_table", masked)
        cp = sample_epsilons(u, g, rates="clopper_pearson", alpha=alpha)
    assert (cp <= sample_epsilons(u, g)).all()


def test_golden_against_golden_gaussian_clopper_pearson():
    # The N = 16 case of test_golden_against_golden_gaussian, 300 samples, both modes.
    # Upper bounds remove the chance separations: 3 of 16 against 1 of 16 (point ε
    # log 3) has FNR⁺ ≈ 0.95 and FPR⁺ ≈ 0.26, so ε 0. Measured over seeds 0-4:
    #   same distribution: point 0.139-0.148, CP 0.990-0.995
    #   1.5 σ shift:       point 0.059-0.063, CP 0.605-0.665
    #   3 σ shift:         point 0.022-0.025, CP 0.219-0.231 (floor 1/8: separation)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(16, 300)), rng.normal(size=(16, 300))
    f = {}
    for rates in ("point", "clopper_pearson"):
        for shift in (0.0, 1.5, 3.0):
            result = epsilon_score(a + shift, b, **UNIT, rates=rates, n_bootstrap=0)
            f[rates, shift] = result.forget_score
    print({f"{r} {s}σ": round(v, 4) for (r, s), v in f.items()})
    assert 0.97 <= f["clopper_pearson", 0.0] <= 1.0
    assert 0.55 <= f["clopper_pearson", 1.5] <= 0.72
    assert 0.18 <= f["clopper_pearson", 3.0] <= 0.28
    assert f["clopper_pearson", 1.5] < f["clopper_pearson", 0.0] - 0.25
    assert f["clopper_pearson", 3.0] < f["clopper_pearson", 1.5] - 0.25
    assert 0.1 <= f["point", 0.0] <= 0.2
    # Continuous confidences: CP is below point sample by sample.
    for shift in (0.0, 1.5, 3.0):
        assert (sample_epsilons(a + shift, b, **CP) <= sample_epsilons(a + shift, b)).all()


def test_clopper_pearson_bootstrap_and_report():
    rng = np.random.default_rng(3)
    golden = rng.normal(size=(16, 60))
    unlearned = rng.normal(size=(16, 60)) + 1.5
    kwargs = dict(UNIT, n_bootstrap=20, seed=7, rates="clopper_pearson", alpha=0.1)
    result = epsilon_score(unlearned, golden, **kwargs)
    assert result.epsilons.tolist() == sample_epsilons(unlearned, golden, **CP, alpha=0.1).tolist()
    # The bootstrap draws use the same rates: redo them by hand.
    draw = np.random.default_rng(7)
    scores = []
    for _ in range(20):
        u_b = unlearned[draw.integers(0, 16, size=16)]
        g_b = golden[draw.integers(0, 16, size=16)]
        eps_b = sample_epsilons(u_b, g_b, **CP, alpha=0.1)
        scores.append(bucket_points(eps_b, n_models=16).mean())
    assert list(result.interval) == pytest.approx(np.quantile(scores, [0.025, 0.975]).tolist())
    report = json.loads(json.dumps(result.report()))
    assert report["rates"] == "clopper_pearson" and report["alpha"] == 0.1
    point = epsilon_score(unlearned, golden, **UNIT, n_bootstrap=0).report()
    assert point["rates"] == "point" and point["alpha"] is None


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("unlearned", "golden", "match"),
    [
        (np.zeros((1, 3)), np.zeros((4, 3)), "at least 2 per side"),
        (np.zeros((4, 3)), np.zeros((1, 3)), "golden has 1 model"),
        (np.zeros((4, 3)), np.zeros((4, 2)), "same forget samples"),
        (np.zeros(4), np.zeros((4, 1)), r"shape \(n_models, n_samples\)"),
        (np.zeros((4, 0)), np.zeros((4, 0)), "no forget samples"),
        (np.array([[0.0], [np.nan]]), np.zeros((2, 1)), "non-finite"),
        (np.zeros((2, 1)), np.array([[0.0], [np.inf]]), "non-finite"),
    ],
)
def test_input_errors(unlearned, golden, match):
    with pytest.raises(ConfigError, match=match):
        sample_epsilons(unlearned, golden)
    with pytest.raises(ConfigError, match=match):
        epsilon_score(unlearned, golden, **UNIT)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"ra_golden": 0.0}, "ra_golden is 0"),
        ({"ta_golden": 0.0}, "ta_golden is 0"),
        ({"ta_unlearned": float("nan")}, "finite"),
        ({"ra_unlearned": -1.0}, ">= 0"),
        ({"confidence": 1.0}, "confidence"),
        ({"n_bootstrap": -1}, "n_bootstrap"),
        ({"n_bootstrap": 2.5}, "n_bootstrap"),
        ({"delta": 1.0}, "delta"),
        ({"cap": 0.0}, "cap"),
        ({"peaky_ratio": -0.1}, "peaky_ratio"),
        ({"rates": "wilson"}, "'point', 'clopper_pearson'"),
        ({"rates": None}, "rates must be one of"),
        ({"alpha": 0.0}, r"alpha must be a number in \(0, 0.5\)"),
        ({"alpha": 0.5}, "alpha"),
        ({"alpha": True}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"rates": "clopper_pearson", "alpha": -0.05}, "alpha"),
    ],
)
def test_setting_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        epsilon_score(np.zeros((2, 1)), np.zeros((2, 1)), **{**UNIT, **override})
    sample_only = {k: v for k, v in override.items() if k in ("rates", "alpha")}
    if sample_only == override:
        with pytest.raises(ConfigError, match=match):
            sample_epsilons(np.zeros((2, 1)), np.zeros((2, 1)), **override)


def test_bucket_errors():
    with pytest.raises(ConfigError, match="n_models"):
        bucket_edges(1)
    with pytest.raises(ConfigError, match="integer"):
        bucket_points(np.zeros(2), n_models=16.0)
    with pytest.raises(ConfigError, match=">= 0"):
        bucket_points(np.array([-0.1]), n_models=16)
    with pytest.raises(ConfigError, match="nan"):
        bucket_points(np.array([np.nan]), n_models=16)
