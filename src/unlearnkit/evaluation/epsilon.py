"""Forget-quality ε-score in the style of the NeurIPS 2023 machine-unlearning challenge.

Train ``N_u`` unlearned models and ``N_g`` golden models (retrained without the forget
set, different seeds). For every forget sample take, under every model, the
logit-scaled confidence ``log p_y − log(1 − p_y)``
(:func:`unlearnkit.evaluation.confidence.logit_confidence`). Inputs are two arrays of
shape ``(n_models, n_samples)``: ``unlearned`` and ``golden``.

Per sample, an attacker tries to tell the two sets of models apart from that one
number:

1. The *positive* set is the one with the larger median; the other is *negative*.
2. Decision rules are swept over the pooled confidences of the sample: a single
   threshold ``t`` calling ``x >= t`` positive, and a pair ``t1 <= t2`` calling the
   closed interval ``[t1, t2]`` positive. ``FPR`` is the fraction of negative models
   called positive, ``FNR`` the fraction of positive models called negative.
3. Each rule scores ``ε = max(log(1 − δ − FPR) − log FNR, log(1 − δ − FNR) − log FPR)``
   clipped below at 0 (``delta``, default ``1e-5``). A term whose log argument is
   ``<= 0`` counts as ``−inf``. A rule with exactly one of ``FPR``, ``FNR`` equal to 0 is
   discarded (an estimate of ``log(x / 0)`` from a handful of models is noise, not
   evidence); ``FPR = FNR = 0`` (perfect separation) is ``+inf``.
4. The sample's ε is the maximum over the rules, capped at ``cap`` (default 50). When
   one set's spread is under ``peaky_ratio`` (default 1%) of the other's, the sample's
   ε is ``cap``: a near-constant set is trivially recognised by a narrow interval.
5. Points per sample by buckets of width 0.5 from 0 up to ``ceil(log(N − 1))``
   (natural log): 1 point for ``[0, 0.5)``, 1/2 for ``[0.5, 1)``, 1/4 for ``[1, 1.5)``,
   ..., halving each bucket, 0 at or beyond the last edge. With ``N`` models per side the
   largest finite ε a rule can reach is about ``log(N − 1)`` (``FPR = FNR = 1/N``), so
   the buckets span what ``N`` models can measure.
6. The forget score ``F`` is the mean of the points; the final score is
   ``F × (RA_unlearned / RA_golden) × (TA_unlearned / TA_golden)``.

Choices made where the rule leaves room (each documented where it is used):

- **Rule set.** Thresholds run over the pooled values of the sample. Single thresholds
  are the intervals ``[t, max]``; the rules "nobody positive" (``t = +inf``) and
  "everybody positive" (``t = −inf``, i.e. ``t = min``) have ``(FPR, FNR)`` of
  ``(0, 1)`` and ``(1, 0)`` and are always discarded, so they are not enumerated.
  Tied values are never split: a threshold at a tied value includes all its copies.
  When no rule survives (e.g. every model gives the same value) the sample's ε is 0.
- **Median tie.** When both medians are equal, both orientations are scored and the
  larger ε is kept, so the result does not depend on which array is passed first and
  does not under-report leakage.
- **Spread** is the sample standard deviation (``ddof=1``); a side whose values are all
  identical has spread exactly 0 (rounding in the mean cannot make it tiny but
  positive). The peaky rule applies only when the larger spread is ``> 0``: two constant
  sides are either the same distribution (ε 0) or perfectly separated (ε ``cap``
  through the rules), never "peaky".
- **Unequal sides.** ``N`` in the bucket edges is ``min(N_u, N_g)``: the smaller side
  limits the resolution of ``FPR``/``FNR``.
- **Rate estimates** (``rates``). ``"point"`` (the default, the rule above) uses the
  observed fractions ``k / n``. ``"clopper_pearson"`` replaces each rule's ``FPR`` and
  ``FNR`` by the one-sided Clopper–Pearson *upper* confidence bound at level ``alpha``
  (default 0.05, must be in ``(0, 0.5)``) for ``k`` errors among the ``n`` models of
  that side, as in DP auditing (Jagielski et al., 2020; Nasr et al., 2021):
  ``beta.ppf(1 − alpha, k + 1, n − k)`` (``1 − alpha ** (1 / n)`` for ``k = 0``, 1 for
  ``k = n``). ``ε`` falls as either rate grows, so each rule's ``ε`` becomes a lower
  confidence bound (level at least ``1 − 2·alpha`` for the pair of rates) instead of a
  point estimate, and chance separations among a few models (3 of one side against 1 of
  the other, ``log 3`` under ``"point"``) score 0. Details of this mode:

  - No bound is ever 0, so the discard rule and the ``+inf`` of perfect separation
    never fire; a perfectly separated sample gets the finite
    ``log((1 − δ − u₀) / u₀)`` with ``u₀ = 1 − alpha ** (1 / N)`` (about 1.58 for
    ``N = 16``, ``alpha = 0.05``: 1/8 point rather than 0). This is the most ``N``
    models can certify; the buckets are not changed, so some leakage always scores a
    little in this mode. The "nobody / everybody positive" rules score 0 here too
    (their rate of 1 makes one term ``−inf`` and the other ``<= 0``), so leaving them
    out changes nothing.
  - Rules that ``"point"`` discards (exactly one rate 0) are kept here: their bounds
    are finite and are exactly the evidence the discard rule could not weigh. So a
    sample's ε can exceed its ``"point"`` ε when the winning rule is one of them (e.g.
    with heavy ties: 6 of 10 golden at a value above every unlearned model, the rest
    mixed, gives ε 0 under ``"point"`` and about 0.16 here). On every rule that
    ``"point"`` keeps, and on perfect separation, the bound gives the smaller ε. Without
    ties and with ``alpha <= 0.2`` the sample's ε was never larger in our checks (random
    cases up to 20 models per side, Gaussian confidences at ``N = 16``); near
    ``alpha = 0.5`` with 2 or 3 models it can be.
  - The maximum over rules is not corrected for multiple comparisons: a sample's ε is
    the best per-rule lower bound, not a simultaneous one. It shrinks the chance
    separations; it is not a calibrated test.
  - ``cap`` and the peaky rule are kept as they are: a side under 1% of the other's
    spread still gives ε = ``cap`` (0 points). That rule is a judgement about the
    spreads, not a rate estimate, so a confidence bound does not apply to it; it can
    exceed what the bounds could certify from ``N`` models (turn it off with
    ``peaky_ratio=0``).
- **Bootstrap.** The interval resamples the models of each side with replacement
  (``n_bootstrap`` draws from ``numpy.random.default_rng(seed)``), recomputes ``F`` and
  reports the percentile interval of the final score at level ``confidence``; the
  RA/TA ratios are held fixed. Resampling duplicates models, which tends to make the
  sides look more distinguishable, so the interval can sit slightly below the point
  estimate.

Everything is numpy (scipy for the Clopper–Pearson bounds), on CPU, and vectorised over
rules and samples: per sample the pooled values are sorted once, and the counts of each
side inside every interval come from cumulative counts; ``ε`` depends only on those two
integer counts, so it is read from a small precomputed table instead of taking logs per
rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta

from unlearnkit.errors import ConfigError

# Bound on (samples × rules) integers held at once; N = 64 per side has 8,256 rules
# per sample, so a few hundred samples per chunk.
_CHUNK_ELEMENTS = 2_000_000

# How rule rates are estimated (see "Rate estimates" in the module docstring).
RATES = ("point", "clopper_pearson")


# --------------------------------------------------------------------------- validation


def _as_confidences(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise ConfigError(
            f"{name} must have shape (n_models, n_samples); got shape {array.shape}. "
            "Stack one row of per-sample confidences per model (use x[:, None] for one sample)."
        )
    if array.shape[0] < 2:
        raise ConfigError(
            f"{name} has {array.shape[0]} model(s); the ε-score needs at least 2 per side "
            "(about 16 for a meaningful score). Train more models with different seeds."
        )
    if array.shape[1] < 1:
        raise ConfigError(f"{name} has no forget samples; pass at least one column.")
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ConfigError(
            f"{name} has {bad} non-finite confidence(s) (nan or inf). Compute them from logits "
            "with unlearnkit.evaluation.confidence.logit_confidence, which stays finite."
        )
    return array


def _check_pair(unlearned, golden) -> tuple[np.ndarray, np.ndarray]:
    u = _as_confidences(unlearned, "unlearned")
    g = _as_confidences(golden, "golden")
    if u.shape[1] != g.shape[1]:
        raise ConfigError(
            f"unlearned has {u.shape[1]} samples but golden has {g.shape[1]}; both must hold "
            "the confidences of the same forget samples, in the same column order."
        )
    return u, g


def _check_settings(
    delta: float, cap: float, peaky_ratio: float, rates: str = "point", alpha: float = 0.05
) -> None:
    if not (isinstance(rates, str) and rates in RATES):
        valid = ", ".join(repr(r) for r in RATES)
        raise ConfigError(f"rates must be one of {valid}; got {rates!r}.")
    if not (
        isinstance(alpha, int | float | np.floating | np.integer)
        and not isinstance(alpha, bool)
        and 0 < alpha < 0.5
    ):
        raise ConfigError(
            f"alpha must be a number in (0, 0.5) (the level of the Clopper–Pearson upper "
            f"bounds; from 0.5 up the bound can fall below the observed rate); got {alpha!r}, "
            "e.g. 0.05."
        )
    if not 0 <= delta < 1:
        raise ConfigError(f"delta must be in [0, 1); got {delta}. The challenge used 1e-5.")
    if not (cap > 0 and math.isfinite(cap)):
        raise ConfigError(f"cap must be a positive finite number; got {cap}. The default is 50.")
    if not (peaky_ratio >= 0 and math.isfinite(peaky_ratio)):
        raise ConfigError(f"peaky_ratio must be >= 0; got {peaky_ratio}. The default is 0.01.")


def _check_n_models(n_models) -> int:
    if isinstance(n_models, bool) or not isinstance(n_models, int | np.integer):
        raise ConfigError(f"n_models must be an integer; got {n_models!r}.")
    if n_models < 2:
        raise ConfigError(f"n_models must be >= 2 (models per side); got {n_models}.")
    return int(n_models)


# ------------------------------------------------------------------------ per-rule table


def clopper_pearson_upper(errors, n: int, alpha: float) -> np.ndarray:
    """One-sided Clopper–Pearson upper bound at level ``alpha`` on a rate, ``k`` of ``n``.

    ``beta.ppf(1 − alpha, k + 1, n − k)``, and 1 for ``k = n``; vectorised over ``errors``.

    >>> round(float(clopper_pearson_upper(0, 16, 0.05)), 6), round(1 - 0.05 ** (1 / 16), 6)
    (0.17075, 0.17075)
    >>> clopper_pearson_upper(np.array([16]), 16, 0.05).tolist()
    [1.0]
    """
    k = np.asarray(errors, dtype=np.float64)
    upper = beta.ppf(1 - alpha, k + 1, np.maximum(n - k, 1))
    return np.where(k >= n, 1.0, upper)


def _rates(errors: np.ndarray, n: int, rates: str, alpha: float) -> np.ndarray:
    if rates == "point":
        return errors / n
    return clopper_pearson_upper(errors, n, alpha)


def _rule_table(
    n_pos: int, n_neg: int, delta: float, rates: str = "point", alpha: float = 0.05
) -> np.ndarray:
    """``ε`` of a rule by ``[positives called positive, negatives called positive]``.

    Discarded rules are ``−inf`` so a maximum ignores them; perfect separation is
    ``+inf``. With ``rates="clopper_pearson"`` the rates are upper bounds, never 0, so
    neither happens.
    """
    tp = np.arange(n_pos + 1)[:, None]
    fp = np.arange(n_neg + 1)[None, :]
    fnr = _rates(n_pos - tp, n_pos, rates, alpha)
    fpr = _rates(fp, n_neg, rates, alpha)
    fnr, fpr = np.broadcast_arrays(fnr, fpr)
    with np.errstate(divide="ignore", invalid="ignore"):
        # log of a non-positive argument is −inf (not nan): that term cannot win.
        a = np.where(1 - delta - fpr > 0, np.log(np.maximum(1 - delta - fpr, 1e-300)), -np.inf)
        b = np.where(1 - delta - fnr > 0, np.log(np.maximum(1 - delta - fnr, 1e-300)), -np.inf)
        term1 = a - np.log(fnr)  # fnr > 0 wherever this is kept
        term2 = b - np.log(fpr)
    eps = np.maximum(np.maximum(term1, term2), 0.0)
    eps = np.where((fpr == 0) ^ (fnr == 0), -np.inf, eps)
    return np.where((fpr == 0) & (fnr == 0), np.inf, eps)


def _interval_counts(u: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How many unlearned and golden models fall in each closed interval ``[v_i, v_j]``.

    ``u`` is ``(S, N_u)``, ``g`` is ``(S, N_g)`` (samples first). Returns two ``(S, R)``
    integer arrays over the ``R = n(n + 1) / 2`` pairs ``i <= j`` of sorted pooled values.
    """
    n_u = u.shape[1]
    pooled = np.concatenate([u, g], axis=1)
    n = pooled.shape[1]
    order = np.argsort(pooled, axis=1, kind="stable")
    values = np.take_along_axis(pooled, order, axis=1)
    is_u = order < n_u
    # cum_u[:, k] = unlearned models among the k smallest values.
    cum_u = np.zeros((len(pooled), n + 1), dtype=np.int32)
    np.cumsum(is_u, axis=1, out=cum_u[:, 1:])
    cum_all = np.arange(n + 1, dtype=np.int32)

    # A threshold at a tied value must include every copy: map each position to the
    # first and last position of its run of equal values.
    index = np.arange(n)
    new_run = np.ones_like(values, dtype=bool)
    new_run[:, 1:] = values[:, 1:] != values[:, :-1]
    first = np.maximum.accumulate(np.where(new_run, index, 0), axis=1)
    end_run = np.ones_like(values, dtype=bool)
    end_run[:, :-1] = new_run[:, 1:]
    last = np.minimum.accumulate(np.where(end_run, index, n - 1)[:, ::-1], axis=1)[:, ::-1]

    below_u = np.take_along_axis(cum_u, first, axis=1)  # strictly below v_i
    upto_u = np.take_along_axis(cum_u, last + 1, axis=1)  # at or below v_j
    below_all = cum_all[first]
    upto_all = cum_all[last + 1]
    lo, hi = np.triu_indices(n)
    in_u = upto_u[:, hi] - below_u[:, lo]
    in_all = upto_all[:, hi] - below_all[:, lo]
    return in_u, in_all - in_u


def _spread(x: np.ndarray) -> np.ndarray:
    # Exactly 0 for a constant side: np.std of identical values can round to ~1e-17,
    # which would make a constant-vs-constant pair look "peaky".
    constant = np.ptp(x, axis=0) == 0
    return np.where(constant, 0.0, np.std(x, axis=0, ddof=1))


def _epsilons(
    u: np.ndarray,
    g: np.ndarray,
    delta: float,
    cap: float,
    peaky_ratio: float,
    rates: str = "point",
    alpha: float = 0.05,
):
    n_u, n_g = u.shape[0], g.shape[0]
    n_samples = u.shape[1]
    # unlearned positive: [in_u, in_g]; golden positive, re-indexed [in_u, in_g].
    table_u = _rule_table(n_u, n_g, delta, rates, alpha)
    table_g = _rule_table(n_g, n_u, delta, rates, alpha).T
    med_u, med_g = np.median(u, axis=0), np.median(g, axis=0)

    n = n_u + n_g
    rules = n * (n + 1) // 2
    chunk = max(1, _CHUNK_ELEMENTS // rules)
    best = np.empty(n_samples)
    for start in range(0, n_samples, chunk):
        stop = min(start + chunk, n_samples)
        in_u, in_g = _interval_counts(u[:, start:stop].T, g[:, start:stop].T)
        eps_u = table_u[in_u, in_g].max(axis=1)
        eps_g = table_g[in_u, in_g].max(axis=1)
        mu, mg = med_u[start:stop], med_g[start:stop]
        # Equal medians: keep the larger of both orientations (see module docstring).
        best[start:stop] = np.where(
            mu > mg, eps_u, np.where(mg > mu, eps_g, np.maximum(eps_u, eps_g))
        )

    # No surviving rule (-inf) means nothing tells the sides apart.
    eps = np.clip(best, 0.0, cap)
    s_u, s_g = _spread(u), _spread(g)
    wide, narrow = np.maximum(s_u, s_g), np.minimum(s_u, s_g)
    peaky = (wide > 0) & (narrow < peaky_ratio * wide)
    return np.where(peaky, cap, eps)


# ------------------------------------------------------------------------------ public


def sample_epsilons(
    unlearned: np.ndarray,
    golden: np.ndarray,
    *,
    delta: float = 1e-5,
    cap: float = 50.0,
    peaky_ratio: float = 0.01,
    rates: str = "point",
    alpha: float = 0.05,
) -> np.ndarray:
    """Per-sample ε, shape ``(n_samples,)``, in ``[0, cap]``.

    ``unlearned`` is ``(N_u, S)`` and ``golden`` is ``(N_g, S)``: the logit-scaled
    confidence of each forget sample under each model. See the module docstring for the
    rule. ``rates`` is ``"point"`` (the challenge's rule) or ``"clopper_pearson"``
    (each rule's FPR and FNR replaced by their upper confidence bounds at level
    ``alpha``; see "Rate estimates" in the module docstring).

    >>> golden = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> sample_epsilons(golden + 10.0, golden).tolist()  # perfectly separated
    [50.0]
    >>> sample_epsilons(golden, golden).tolist()  # same distribution
    [0.0]

    With 4 models per side the bounds cannot certify much: perfect separation gives
    ``log((1 − δ − u₀) / u₀)`` with ``u₀ = 1 − 0.05 ** (1 / 4) ≈ 0.527``, below 0.

    >>> sample_epsilons(golden + 10.0, golden, rates="clopper_pearson").tolist()
    [0.0]
    """
    _check_settings(delta, cap, peaky_ratio, rates, alpha)
    u, g = _check_pair(unlearned, golden)
    return _epsilons(u, g, delta, cap, peaky_ratio, rates, alpha)


def bucket_edges(n_models: int) -> np.ndarray:
    """Bucket edges ``0, 0.5, ..., ceil(log(n_models − 1))`` (natural log).

    ``n_models`` is the number of models per side (the smaller side when unequal). With
    2 models the only edge is 0, so every sample scores 0 points: 2 models cannot
    measure any ε.

    >>> bucket_edges(16).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    """
    n_models = _check_n_models(n_models)
    top = math.ceil(math.log(n_models - 1)) if n_models > 2 else 0
    return np.arange(2 * top + 1) * 0.5


def bucket_points(epsilons: np.ndarray, *, n_models: int) -> np.ndarray:
    """Points per sample: 1 for ε in ``[0, 0.5)``, halving each bucket, 0 past the last edge.

    >>> bucket_points(np.array([0.49, 0.5, 2.99, 3.0, np.inf]), n_models=16).tolist()
    [1.0, 0.5, 0.03125, 0.0, 0.0]
    """
    n_buckets = len(bucket_edges(n_models)) - 1
    eps = np.asarray(epsilons, dtype=np.float64)
    if np.isnan(eps).any() or (eps < 0).any():
        raise ConfigError(
            "epsilons must be >= 0 and not nan; compute them with sample_epsilons, which "
            "clips every rule below at 0."
        )
    # 2·ε is exact in floating point, so an ε on an edge lands in the bucket above it.
    bucket = np.where(np.isfinite(eps), np.floor(2.0 * eps), n_buckets)
    return np.where(bucket < n_buckets, 0.5 ** np.minimum(bucket, n_buckets), 0.0)


@dataclass(frozen=True)
class EpsilonScore:
    """Result of :func:`epsilon_score`; :meth:`report` gives a JSON-ready summary."""

    score: float
    forget_score: float
    interval: tuple[float, float]
    epsilons: np.ndarray
    points: np.ndarray
    n_models: int
    ra_ratio: float
    ta_ratio: float
    rates: str = "point"
    alpha: float | None = None  # level of the Clopper–Pearson bounds; None for "point"

    def report(self) -> dict:
        """Plain floats, ints and lists: scores, interval, ε statistics and a histogram.

        The histogram counts samples per bucket ``[edge_k, edge_k+1)`` plus one overflow
        bin for ε at or beyond the last edge (0 points; includes samples at the cap).
        """
        edges = bucket_edges(self.n_models)
        eps = np.asarray(self.epsilons, dtype=np.float64)
        inner, _ = np.histogram(eps[eps < edges[-1]], bins=edges) if len(edges) > 1 else ([], 0)
        counts = [int(c) for c in inner] + [int((eps >= edges[-1]).sum())]
        points = [float(0.5**k) for k in range(len(edges) - 1)] + [0.0]
        return {
            "score": float(self.score),
            "forget_score": float(self.forget_score),
            "interval": [float(self.interval[0]), float(self.interval[1])],
            "ra_ratio": float(self.ra_ratio),
            "ta_ratio": float(self.ta_ratio),
            "n_models": int(self.n_models),
            "rates": str(self.rates),
            "alpha": None if self.alpha is None else float(self.alpha),
            "n_samples": int(eps.size),
            "epsilon_mean": float(eps.mean()),
            "epsilon_median": float(np.median(eps)),
            "epsilon_max": float(eps.max()),
            "histogram": {
                "edges": [float(e) for e in edges],
                "counts": counts,
                "points": points,
            },
        }


def _ratio(numerator: float, denominator: float, name: str) -> float:
    for value, label in ((numerator, f"{name}_unlearned"), (denominator, f"{name}_golden")):
        if not (isinstance(value, int | float | np.floating | np.integer) and math.isfinite(value)):
            raise ConfigError(f"{label} must be a finite number; got {value!r}.")
        if value < 0:
            raise ConfigError(f"{label} must be >= 0 (an accuracy); got {value}.")
    if denominator == 0:
        raise ConfigError(
            f"{name}_golden is 0, so the ratio {name}_unlearned / {name}_golden is undefined. "
            "Check that the golden models were trained and evaluated on the right split."
        )
    return float(numerator) / float(denominator)


def epsilon_score(
    unlearned: np.ndarray,
    golden: np.ndarray,
    *,
    ra_unlearned: float,
    ra_golden: float,
    ta_unlearned: float,
    ta_golden: float,
    delta: float = 1e-5,
    cap: float = 50.0,
    peaky_ratio: float = 0.01,
    rates: str = "point",
    alpha: float = 0.05,
    n_bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> EpsilonScore:
    """Forget-quality score ``F × RA ratio × TA ratio`` with a bootstrap interval over models.

    ``unlearned`` is ``(N_u, S)``, ``golden`` is ``(N_g, S)`` (logit-scaled confidences of
    the forget samples); RA and TA are retain and test accuracies in any consistent unit.
    ``n_bootstrap=0`` gives the degenerate interval ``(score, score)``. ``rates`` and
    ``alpha`` choose how each rule's FPR and FNR are estimated (``"point"``, the
    default, or ``"clopper_pearson"`` upper bounds; see the module docstring) and apply
    to the bootstrap draws too; :meth:`EpsilonScore.report` records them.

    Three samples under 16 models per side (golden confidences 0, 1, ..., 15): unlearned
    matches golden exactly (ε 0, 1 point), is shifted far away (ε 50, 0 points), or is
    shifted by 8. For the last, the threshold ``x >= 9`` calls 15 of 16 unlearned and 7 of
    16 golden positive, so ``ε = log((1 − δ − 7/16) / (1/16)) ≈ log 9 ≈ 2.20``: bucket
    ``[2, 2.5)``, 1/16 point. ``F = (1 + 0 + 1/16) / 3`` and the score is ``F × 0.9 × 1``:

    >>> golden = np.tile(np.arange(16.0)[:, None], (1, 3))
    >>> unlearned = golden + np.array([0.0, 100.0, 8.0])
    >>> result = epsilon_score(
    ...     unlearned, golden, ra_unlearned=0.9, ra_golden=1.0,
    ...     ta_unlearned=0.8, ta_golden=0.8, n_bootstrap=20,
    ... )
    >>> result.epsilons.round(2).tolist()
    [0.0, 50.0, 2.2]
    >>> result.points.tolist()
    [1.0, 0.0, 0.0625]
    >>> round(result.forget_score, 4), round(result.score, 4)
    (0.3542, 0.3188)
    """
    _check_settings(delta, cap, peaky_ratio, rates, alpha)
    u, g = _check_pair(unlearned, golden)
    ra_ratio = _ratio(ra_unlearned, ra_golden, "ra")
    ta_ratio = _ratio(ta_unlearned, ta_golden, "ta")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int | np.integer):
        raise ConfigError(f"n_bootstrap must be an integer >= 0; got {n_bootstrap!r}.")
    if n_bootstrap < 0:
        raise ConfigError(f"n_bootstrap must be >= 0; got {n_bootstrap}. The default is 200.")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1); got {confidence}, e.g. 0.95.")

    n_models = min(u.shape[0], g.shape[0])
    factor = ra_ratio * ta_ratio
    epsilons = _epsilons(u, g, delta, cap, peaky_ratio, rates, alpha)
    points = bucket_points(epsilons, n_models=n_models)
    forget = float(points.mean())
    score = forget * factor

    if n_bootstrap == 0:
        interval = (score, score)
    else:
        rng = np.random.default_rng(seed)
        draws = np.empty(n_bootstrap)
        for b in range(n_bootstrap):
            u_b = u[rng.integers(0, u.shape[0], size=u.shape[0])]
            g_b = g[rng.integers(0, g.shape[0], size=g.shape[0])]
            eps_b = _epsilons(u_b, g_b, delta, cap, peaky_ratio, rates, alpha)
            draws[b] = bucket_points(eps_b, n_models=n_models).mean() * factor
        tail = (1 - confidence) / 2
        lo, hi = np.quantile(draws, [tail, 1 - tail])
        interval = (float(lo), float(hi))

    return EpsilonScore(
        score=score,
        forget_score=forget,
        interval=interval,
        epsilons=epsilons,
        points=points,
        n_models=n_models,
        ra_ratio=ra_ratio,
        ta_ratio=ta_ratio,
        rates=rates,
        alpha=float(alpha) if rates == "clopper_pearson" else None,
    )


__all__ = [
    "RATES",
    "EpsilonScore",
    "bucket_edges",
    "bucket_points",
    "clopper_pearson_upper",
    "epsilon_score",
    "sample_epsilons",
]
