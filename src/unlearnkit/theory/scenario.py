"""The linear-regression scenario of spec/paper.md §1 (Ding, Xu, Ji 2024).

The ``d`` coordinates are split into three blocks: ``F`` (forget-only),
``O`` (overlap) and ``R`` (retain-only). Forget rows are ``[A_F, A_O, 0]``,
retain rows ``[0, B_O, B_R]``, non-zero blocks i.i.d. ``N(0, 1)``; targets
``y = X w* + ε`` with ``ε ~ N(0, σ²)`` and ``w* ~ N(0, I/d)`` **(choice**: the
paper leaves the prior of ``w*`` open; ``I/d`` keeps ``‖w*‖ ≈ 1`` at every width).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unlearnkit.errors import ConfigError

PARTS = ("retain", "forget")


@dataclass(frozen=True)
class ScenarioConfig:
    """Sizes, noise, ridge strength and seed of one scenario.

    ``ridge`` is the strength ``λ`` of ``(λ/2)‖w‖²`` added to every training
    objective (pretraining, fine-tuning, golden); ``0`` gives the min-norm
    solutions the paper analyses.

    >>> ScenarioConfig(n_f=2, n_r=8, d_f=5, d_o=5, d_r=10).overlap_ratio
    0.25
    """

    n_f: int
    n_r: int
    d_f: int
    d_o: int
    d_r: int
    noise: float = 0.0
    ridge: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_f", "n_r", "d_f", "d_o", "d_r", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer; got {value!r}")
        if self.n_f < 1 or self.n_r < 1:
            raise ConfigError(
                f"need at least one forget and one retain sample; got n_f={self.n_f}, "
                f"n_r={self.n_r}"
            )
        if self.d_f + self.d_o < 1:
            raise ConfigError("forget rows have no feature (d_f + d_o = 0); make d_f or d_o > 0")
        if self.d_o + self.d_r < 1:
            raise ConfigError("retain rows have no feature (d_o + d_r = 0); make d_o or d_r > 0")
        if not (np.isfinite(self.noise) and self.noise >= 0):
            raise ConfigError(f"noise must be a finite value >= 0; got {self.noise!r}")
        if not (np.isfinite(self.ridge) and self.ridge >= 0):
            raise ConfigError(f"ridge must be a finite value >= 0; got {self.ridge!r}")

    @property
    def d(self) -> int:
        return self.d_f + self.d_o + self.d_r

    @property
    def n(self) -> int:
        return self.n_f + self.n_r

    @property
    def overlap_ratio(self) -> float:
        """``d_o / d``, the quantity the overlap sweep varies."""
        return self.d_o / self.d

    @property
    def forget_ratio(self) -> float:
        return self.n_f / self.n

    @property
    def overparameterised(self) -> bool:
        """``n ≤ d``: the pretrained min-norm model can interpolate all the data."""
        return self.n <= self.d


@dataclass(frozen=True, eq=False)
class Scenario:
    """One drawn scenario: ``w_star``, forget data ``(X_f, y_f)`` and retain data ``(X_r, y_r)``."""

    config: ScenarioConfig
    w_star: np.ndarray
    X_f: np.ndarray
    y_f: np.ndarray
    X_r: np.ndarray
    y_r: np.ndarray

    @property
    def X(self) -> np.ndarray:
        """All training rows, forget first (``X = [X_f; X_r]``)."""
        return np.vstack([self.X_f, self.X_r])

    @property
    def y(self) -> np.ndarray:
        return np.concatenate([self.y_f, self.y_r])

    @property
    def blocks(self) -> dict[str, slice]:
        """Coordinate ranges of the ``F``, ``O`` and ``R`` feature blocks."""
        c = self.config
        return {
            "F": slice(0, c.d_f),
            "O": slice(c.d_f, c.d_f + c.d_o),
            "R": slice(c.d_f + c.d_o, c.d),
        }

    def sample(self, part: str, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` fresh rows drawn like the ``part`` ("retain" or "forget") data, with targets.

        Fresh samples use their own random stream (the scenario seed, ``part``
        and ``seed``), so they never repeat the training draws.

        >>> s = make_scenario(n_f=2, n_r=4, d_f=3, d_o=1, d_r=2, seed=0)
        >>> X, y = s.sample("forget", 5, seed=1)
        >>> X.shape, bool((X[:, 4:] == 0).all())
        ((5, 6), True)
        """
        if part not in PARTS:
            raise ConfigError(f"part must be one of {PARTS}; got {part!r}")
        if n < 1:
            raise ConfigError(f"n must be >= 1; got {n}")
        rng = np.random.default_rng([self.config.seed, 1 + PARTS.index(part), seed])
        X = _rows(rng, n, self.config, forget=(part == "forget"))
        return X, X @ self.w_star + self.config.noise * rng.standard_normal(n)


def _rows(rng: np.random.Generator, n: int, c: ScenarioConfig, *, forget: bool) -> np.ndarray:
    X = np.zeros((n, c.d))
    if forget:  # [A_F, A_O, 0]
        X[:, : c.d_f + c.d_o] = rng.standard_normal((n, c.d_f + c.d_o))
    else:  # [0, B_O, B_R]
        X[:, c.d_f :] = rng.standard_normal((n, c.d_o + c.d_r))
    return X


def make_scenario(
    *,
    n_f: int,
    n_r: int,
    d_f: int,
    d_o: int,
    d_r: int,
    noise: float = 0.0,
    ridge: float = 0.0,
    seed: int = 0,
) -> Scenario:
    """Draw a scenario (everything from ``seed``; same seed, same arrays).

    >>> s = make_scenario(n_f=10, n_r=40, d_f=30, d_o=20, d_r=50, seed=0)
    >>> s.X_f.shape, s.X_r.shape, bool((s.X_r[:, s.blocks["F"]] == 0).all())
    ((10, 100), (40, 100), True)
    """
    config = ScenarioConfig(
        n_f=n_f, n_r=n_r, d_f=d_f, d_o=d_o, d_r=d_r, noise=noise, ridge=ridge, seed=seed
    )
    return from_config(config)


def from_config(config: ScenarioConfig) -> Scenario:
    """Draw the scenario that ``config`` describes."""
    rng = np.random.default_rng([config.seed, 0])
    w_star = rng.standard_normal(config.d) / np.sqrt(config.d)
    X_f = _rows(rng, config.n_f, config, forget=True)
    X_r = _rows(rng, config.n_r, config, forget=False)
    y_f = X_f @ w_star + config.noise * rng.standard_normal(config.n_f)
    y_r = X_r @ w_star + config.noise * rng.standard_normal(config.n_r)
    return Scenario(config=config, w_star=w_star, X_f=X_f, y_f=y_f, X_r=X_r, y_r=y_r)
