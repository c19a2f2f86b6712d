"""Sweeps of the linear lab: one scenario parameter varied, every model scored, over seeds.

Each sweep starts from a documented base scenario **(choice)**: ``n_f = 20``,
``n_r = 80`` (``n = 100``) and ``d = 200`` features split ``d_f = 60``,
``d_o = 40``, ``d_r = 100``, noiseless, no ridge — overparameterised (``n < d``)
as in the paper. What each sweep changes:

- ``overlap``: ``d_o / d`` from 0 to 1 at ``d = 200``; the rest split evenly
  between ``F`` and ``R``.
- ``forget-ratio``: ``n_f / n`` at ``n = 100``.
- ``width``: ``d / n`` from 0.25 to 4 with noise ``σ = 0.5`` and **no
  forget-only block** (``d_f = 0``, ``d_o = d_r``): with ``d_f > 0`` the retain
  data never constrain the ``F`` coordinates at *any* width, while with
  ``d_f = 0`` the underparameterised end (``n_r ≥ d``) has a unique retain
  minimiser and FT equals golden (spec §2.4). The noise keeps that end non-trivial
  (noiseless, every model would equal ``w*`` there).
- ``noise``: ``σ`` from 0 to 1.
- ``ridge``: ``λ`` from 0 to 100, with fine-tuning limited to 100 GD steps:
  converged FT under ridge is golden by strict convexity, so only a finite
  budget shows what ridge buys in practice.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from unlearnkit.checkpoint import atomic_write_bytes, atomic_write_text
from unlearnkit.errors import ConfigError
from unlearnkit.params import check_seeds
from unlearnkit.theory.metrics import METRIC_HELP, METRICS, evaluate
from unlearnkit.theory.models import MODELS, lab_models
from unlearnkit.theory.scenario import ScenarioConfig, from_config

BASE = {"n_f": 20, "n_r": 80, "d_f": 60, "d_o": 40, "d_r": 100}
DEFAULT_SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the quantity varied, its default values and how a value becomes a scenario."""

    name: str
    quantity: str
    values: tuple[float, ...]
    make: Callable[[float, int], ScenarioConfig]
    description: str
    ft_steps: int | None = None


def _overlap(r: float, seed: int) -> ScenarioConfig:
    d = 200
    d_o = round(r * d)
    d_f = (d - d_o) // 2
    return ScenarioConfig(n_f=20, n_r=80, d_f=d_f, d_o=d_o, d_r=d - d_o - d_f, seed=seed)


def _forget_ratio(r: float, seed: int) -> ScenarioConfig:
    n_f = round(r * 100)
    return ScenarioConfig(**{**BASE, "n_f": n_f, "n_r": 100 - n_f}, seed=seed)


def _width(ratio: float, seed: int) -> ScenarioConfig:
    d = round(ratio * 100)
    return ScenarioConfig(n_f=20, n_r=80, d_f=0, d_o=d // 2, d_r=d - d // 2, noise=0.5, seed=seed)


def _noise(sigma: float, seed: int) -> ScenarioConfig:
    return ScenarioConfig(**BASE, noise=sigma, seed=seed)


def _ridge(lam: float, seed: int) -> ScenarioConfig:
    return ScenarioConfig(**BASE, ridge=lam, seed=seed)


SWEEPS: dict[str, SweepSpec] = {
    s.name: s
    for s in (
        SweepSpec(
            "overlap", "d_o / d", (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
            _overlap, "share of features used by both forget and retain rows (d = 200, n = 100)",
        ),
        SweepSpec(
            "forget-ratio", "n_f / n", (0.05, 0.1, 0.2, 0.3, 0.4, 0.5), _forget_ratio,
            "share of the training rows that are forgotten (n = 100, d = 200)",
        ),
        SweepSpec(
            "width", "d / n", (0.25, 0.5, 0.75, 0.9, 1.25, 1.5, 2.0, 3.0, 4.0), _width,
            "features per sample (n = 100, d_f = 0, noise 0.5); n_r >= d is underparameterised",
        ),
        SweepSpec(
            "noise", "sigma", (0.0, 0.1, 0.25, 0.5, 1.0), _noise,
            "standard deviation of the target noise (n = 100, d = 200)",
        ),
        SweepSpec(
            "ridge", "lambda", (0.0, 0.1, 1.0, 10.0, 100.0), _ridge,
            "ridge strength; fine-tuning limited to 100 GD steps (n = 100, d = 200)",
            ft_steps=100,
        ),
    )
}  # fmt: skip


def names() -> list[str]:
    return list(SWEEPS)


def get(name: str) -> SweepSpec:
    if name not in SWEEPS:
        raise ConfigError(f"unknown sweep {name!r}; valid sweeps: {', '.join(SWEEPS)}")
    return SWEEPS[name]


@dataclass
class SweepResult:
    """Per-seed records and their mean/std summary; writes the table, CSV, JSON and figure."""

    sweep: str
    quantity: str
    values: list[float]
    seeds: list[int]
    settings: dict
    records: list[dict] = field(default_factory=list)

    @property
    def summary(self) -> list[dict]:
        """One row per (value, model): mean and std over seeds of every metric."""
        rows = []
        for v in self.values:
            for m in MODELS:
                recs = [r for r in self.records if r["value"] == v and r["model"] == m]
                row = {"sweep": self.sweep, "quantity": self.quantity, "value": v, "model": m}
                for k in METRICS:
                    arr = np.array([r[k] for r in recs])
                    row[f"{k}_mean"] = float(arr.mean())
                    row[f"{k}_std"] = float(arr.std())
                row["seeds"] = len(recs)
                rows.append(row)
        return rows

    def table(self) -> str:
        """The summary as an aligned text table (means over seeds)."""
        head = [self.quantity, "model", *METRICS]
        lines = [head]
        for row in self.summary:
            lines.append(
                [f"{row['value']:g}", row["model"], *(f"{row[f'{k}_mean']:.4g}" for k in METRICS)]
            )
        widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
        fmt = lambda line: "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True))
        out = [fmt(lines[0]), "  ".join("-" * w for w in widths)]
        prev = None
        for line in lines[1:]:
            if prev is not None and line[0] != prev:
                out.append("")
            prev = line[0]
            out.append(fmt(line))
        return "\n".join(out)

    def to_csv(self) -> str:
        buf = io.StringIO()
        rows = self.summary
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue()

    def to_json(self) -> dict:
        return {
            "sweep": self.sweep,
            "quantity": self.quantity,
            "values": self.values,
            "seeds": self.seeds,
            "settings": self.settings,
            "metrics": METRIC_HELP,
            "models": list(MODELS),
            "summary": self.summary,
            "records": self.records,
            "versions": {"python": platform.python_version(), "numpy": np.__version__},
        }

    def figure(self):
        """Unlearning loss and distance to golden against the swept quantity, one curve per model."""
        import matplotlib

        matplotlib.use("Agg")  # files only; never needs a display
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
        styles = {
            "pretrained": ("tab:gray", "o", "-"),
            "FT": ("tab:red", "s", "--"),
            "A": ("tab:olive", "v", ":"),
            "A+FT": ("tab:blue", "^", "-"),
            "B+FT": ("tab:green", "D", "--"),
            "projection": ("tab:purple", "x", ":"),
        }
        summary = self.summary
        for ax, metric, label in (
            (axes[0], "UL", "unlearning loss (forget MSE)"),
            (axes[1], "dist_golden", "distance to golden ‖w − w_g‖"),
        ):
            for m in MODELS:
                ys = [r[f"{metric}_mean"] for r in summary if r["model"] == m]
                if m == "golden":
                    ax.plot(self.values, ys, color="black", lw=3, alpha=0.35, label="golden")
                    continue
                c, marker, ls = styles[m]
                # Several curves coincide (FT = pretrained, projection = golden); wide pale
                # lines under narrow styled ones keep each of them visible.
                wide = m == "pretrained"
                ax.plot(
                    self.values, ys, color=c, marker=marker, ls=ls, label=m,
                    ms=9 if wide else 5, lw=4 if wide else 1.5, alpha=0.4 if wide else 0.9,
                )  # fmt: skip
            ax.set_xlabel(self.quantity)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8, ncol=2)
        fig.suptitle(f"linear lab, {self.sweep} sweep (mean over {len(self.seeds)} seeds)")
        return fig

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``theory.csv``, ``theory.json`` and ``theory.png`` into ``out_dir`` (atomically)."""
        import matplotlib.pyplot as plt

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {k: out / f"theory.{k}" for k in ("csv", "json", "png")}
        atomic_write_text(paths["csv"], self.to_csv())
        atomic_write_text(paths["json"], json.dumps(self.to_json(), indent=2))
        fig = self.figure()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
        plt.close(fig)
        atomic_write_bytes(paths["png"], buf.getvalue())
        for path in paths.values():
            # The atomic writer's temporary file is private (0600); results are for sharing.
            path.chmod(0o644)
        return paths


def run_sweep(
    name: str,
    *,
    values: Sequence[float] | None = None,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    solver: str = "closed",
    ft_steps: int | None | str = "default",
    n_test: int = 1000,
) -> SweepResult:
    """Run sweep ``name`` (see :data:`SWEEPS`) over ``values`` and ``seeds``.

    ``ft_steps="default"`` takes the sweep's own setting (100 for ``ridge``,
    convergence otherwise). Each seed draws its own scenario and test samples.

    >>> r = run_sweep("overlap", values=[0.0, 1.0], seeds=[0], n_test=100)
    >>> row = {(x["value"], x["model"]): x for x in r.summary}
    >>> row[0.0, "FT"]["UL_mean"] < 1e-20 < row[0.0, "golden"]["UL_mean"]
    True
    """
    spec = get(name)
    values = [float(v) for v in (spec.values if values is None else values)]
    seeds = check_seeds(seeds, what="seeds")
    if not values:
        raise ConfigError("a sweep needs at least one value")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ConfigError(f"sweep values must be finite numbers; got {bad[0]} among {values}")
    if n_test < 1:
        raise ConfigError(f"n_test must be >= 1; got {n_test}")
    steps = spec.ft_steps if ft_steps == "default" else ft_steps
    result = SweepResult(
        sweep=name,
        quantity=spec.quantity,
        values=values,
        seeds=seeds,
        settings={
            "description": spec.description,
            "solver": solver,
            "ft_steps": steps,
            "n_test": n_test,
        },
    )
    # The lab's matrices are ~100 x 200: BLAS threads cost more to start than they save
    # (10x slower on a busy 2-core machine), so the sweep runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        for v in values:
            for seed in seeds:
                _run_one(result, spec.make(v, seed), v, solver=solver, steps=steps, n_test=n_test)
    return result


def _run_one(
    result: SweepResult,
    config: ScenarioConfig,
    value: float,
    *,
    solver: str,
    steps: int | None,
    n_test: int,
) -> None:
    """Score every model on one drawn scenario and append the records to ``result``."""
    scenario = from_config(config)
    models = lab_models(scenario, solver=solver, ft_steps=steps)
    scores = evaluate(scenario, models.weights, golden=models["golden"], n_test=n_test)
    cfg = {k: getattr(config, k) for k in ("n_f", "n_r", "d_f", "d_o", "d_r", "noise", "ridge")}
    for m in MODELS:
        gd = {f"gd_{k}": x for k, x in models.info.get(m, {}).items()}
        result.records.append(
            {"value": value, "seed": config.seed, "model": m, **cfg, **scores[m], **gd}
        )
