"""Figures of the HTML reports, as matplotlib :class:`~matplotlib.figure.Figure` objects.

Every function takes plain Python / NumPy data (never a model) and returns a new
figure. Figures are built with :class:`Figure` and an Agg canvas directly, not
through ``pyplot``: pyplot keeps every figure it makes in a global registry until
it is closed, and picks a backend from the environment, so a report written from
a long-running process (the deletion service, a notebook) would leak figures or
try to open windows. These figures live only as long as their caller holds them;
:func:`to_png_data_uri` encodes one and clears it.

>>> fig = ua_ra_scatter({"golden": [(0.0, 99.0)], "finetune": [(3.0, 97.0), (4.0, 96.5)]})
>>> to_png_data_uri(fig).startswith("data:image/png;base64,")
True
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# The run report's bar panels: the four accuracies and their mean distance to golden.
BAR_METRICS = ("UA", "RA", "TA", "MIA", "avg_gap")

# 100 dpi at these sizes keeps each PNG at tens of kB, so a report with a few
# scenarios stays a small single file.
DPI = 100
GOLDEN_COLOUR = "#222222"


def _new_figure(*, width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly, whatever backend the process has chosen
    return fig


def _finite(values) -> np.ndarray:
    """The finite floats among ``values`` (None, NaN and infinity are dropped)."""
    out = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return np.asarray(out, dtype=float)


def _colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name; golden always dark so it reads as the reference."""
    cycle = [f"C{i}" for i in range(10)]
    others = [n for n in names if n != "golden"]
    colours = {n: cycle[i % len(cycle)] for i, n in enumerate(others)}
    if "golden" in names:
        colours["golden"] = GOLDEN_COLOUR
    return colours


def _golden_first(names) -> list[str]:
    return sorted(names, key=lambda n: n != "golden")


def to_png_data_uri(fig: Figure, *, clear: bool = True) -> str:
    """``fig`` as a ``data:image/png;base64,...`` URI; cleared afterwards unless ``clear=False``.

    Clearing drops the figure's artists at once, so a report with many figures
    holds at most one figure's drawing state at a time.
    """
    buffer = io.BytesIO()
    # metadata={"Software": None}: the PNG carries no version string, so the same
    # data gives byte-identical reports on any matplotlib release.
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    if clear:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def ua_ra_scatter(
    points: Mapping[str, Sequence[tuple[float, float]]], *, title: str | None = None
) -> Figure:
    """UA (x) against RA (y), one point per method and seed; golden as a star.

    Dashed lines mark golden's mean UA and RA: the target an unlearned model
    should land on (ideal UA and RA are golden's, not 0 or 100).
    """
    fig = _new_figure(width=6.4, height=4.6)
    ax = fig.add_subplot()
    colours = _colours(list(points))
    for method in _golden_first(points):
        pairs = [
            (ua, ra)
            for ua, ra in points[method]
            if ua is not None and ra is not None and math.isfinite(ua) and math.isfinite(ra)
        ]
        if not pairs:
            continue
        ua, ra = np.asarray(pairs, dtype=float).T
        if method == "golden":
            ax.scatter(ua, ra, marker="*", s=260, c=GOLDEN_COLOUR, label="golden", zorder=3)
            ax.axvline(ua.mean(), color=GOLDEN_COLOUR, linestyle="--", linewidth=0.8, zorder=1)
            ax.axhline(ra.mean(), color=GOLDEN_COLOUR, linestyle="--", linewidth=0.8, zorder=1)
        else:
            ax.scatter(ua, ra, s=46, c=colours[method], label=method, alpha=0.85, zorder=2)
    ax.set_xlabel("UA: unlearning accuracy on the forget set (%)")
    ax.set_ylabel("RA: retain accuracy (%)")
    ax.grid(True, alpha=0.3)
    if ax.collections:
        ax.legend(fontsize="small", loc="best")
    ax.set_title(title or "UA vs RA (one point per seed; ideal: on golden's star)")
    return fig


def metric_bars(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    metrics: Sequence[str] = BAR_METRICS,
    title: str | None = None,
) -> Figure:
    """One panel per metric: a bar per method at its mean over seeds, the seeds as dots.

    ``values[method][metric]`` holds one value per seed (None / NaN are skipped).
    Error bars are the sample standard deviation over seeds (none for a single
    seed); golden's mean is drawn across each panel because golden is the ideal
    of UA, RA, TA and MIA.
    """
    methods = _golden_first(values)
    colours = _colours(methods)
    fig = _new_figure(width=max(6.0, 2.3 * len(metrics)), height=3.6)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    x = np.arange(len(methods))
    for ax, metric in zip(axes, metrics, strict=True):
        for i, method in enumerate(methods):
            seeds = _finite(values[method].get(metric, []))
            if seeds.size == 0:
                continue
            spread = seeds.std(ddof=1) if seeds.size > 1 else 0.0
            ax.bar(
                i,
                seeds.mean(),
                yerr=spread if seeds.size > 1 else None,
                color=colours[method],
                alpha=0.75,
                capsize=3,
                width=0.7,
            )
            # Spread the dots a little so equal seeds stay visible as several points.
            offsets = np.linspace(-0.15, 0.15, seeds.size) if seeds.size > 1 else [0.0]
            ax.scatter(i + np.asarray(offsets), seeds, s=10, c="black", zorder=3)
            if method == "golden" and metric != "avg_gap":
                ax.axhline(seeds.mean(), color=GOLDEN_COLOUR, linestyle="--", linewidth=0.8)
        ax.set_title(metric)
        ax.set_xticks(x, methods, rotation=45, ha="right", fontsize="small")
        ax.grid(True, axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def _as_fraction(values) -> np.ndarray:
    """Rates as fractions in [0, 1]; rates given in percent (any value above 1) are divided."""
    arr = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    if np.isfinite(arr).any() and np.nanmax(arr) > 1.0 + 1e-9:
        arr = arr / 100.0
    return arr


def roc_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    log_scale: bool,
    dashed: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    kinds: tuple[str, str] = ("online", "offline"),
    title: str | None = None,
) -> Figure:
    """ROC curves ``{name: (fpr, tpr)}`` on one axes, with the chance diagonal.

    ``dashed`` adds a second curve per name in the same colour, dashed (the
    offline attack beside the online one); ``kinds`` names the two in the legend.
    Rates may be fractions or percentages (a curve with a value above 1 is read
    as percent). ``log_scale`` draws both axes logarithmically, where the low-FPR
    regime that matters for privacy (Carlini et al., 2022) is visible; rates of
    0 are drawn at the smallest positive rate any curve reaches (at most 1e-3),
    since a log axis has no 0.
    """
    dashed = dashed or {}
    fig = _new_figure(width=5.4, height=4.8)
    ax = fig.add_subplot()
    lines = [(name, "-", fpr, tpr) for name, (fpr, tpr) in curves.items()]
    lines += [(name, "--", fpr, tpr) for name, (fpr, tpr) in dashed.items()]
    rates = [(name, style, _as_fraction(f), _as_fraction(t)) for name, style, f, t in lines]
    positive = [v for *_, f, t in rates for v in (*f, *t) if math.isfinite(v) and v > 0]
    floor = min(min(positive, default=1e-3), 1e-3)
    colours = _colours(_golden_first(dict.fromkeys([*curves, *dashed])))
    for name, style, fpr, tpr in rates:
        keep = np.isfinite(fpr) & np.isfinite(tpr)
        fpr, tpr = fpr[keep], tpr[keep]
        if fpr.size == 0:
            continue
        if log_scale:
            fpr, tpr = np.maximum(fpr, floor), np.maximum(tpr, floor)
        label = name if not dashed else f"{name} ({kinds[style == '--']})"
        ax.plot(fpr, tpr, label=label, linestyle=style, color=colours[name], linewidth=1.4)
    low = floor if log_scale else 0.0
    ax.plot([low, 1.0], [low, 1.0], color="grey", linestyle=":", linewidth=1, label="chance")
    if log_scale:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlim(low, 1.0)
    ax.set_ylim(low, 1.0)
    ax.set_xlabel("false positive rate" + (" (log)" if log_scale else ""))
    ax.set_ylabel("true positive rate" + (" (log)" if log_scale else ""))
    ax.grid(True, which="both" if log_scale else "major", alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    ax.set_title(title or ("ROC, log-log" if log_scale else "ROC"))
    return fig


def _fraction(value: float) -> str:
    """``0.0625`` as ``"1/16"``: the bucket points are powers of 1/2, short as fractions."""
    return str(Fraction(value).limit_denominator(1 << 20))


def bucket_labels(edges: Sequence[float], n_counts: int) -> list[str]:
    """Labels of the ε buckets ``[e_i, e_i+1)``, plus ``≥ E`` for an overflow count.

    >>> bucket_labels([0, 0.5, 1.0], 3)
    ['0–0.5', '0.5–1', '≥1']
    """
    labels = [f"{lo:g}–{hi:g}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    if n_counts > len(labels):
        labels.append(f"≥{edges[-1]:g}")
    return labels[:n_counts]


def epsilon_histograms(
    histograms: Mapping[str, Mapping[str, Sequence[float]]], *, title: str | None = None
) -> Figure:
    """One panel per method: forget samples per ε bucket (``{"edges", "counts"}`` each).

    ``counts`` has one entry per bucket ``[edge_k, edge_k+1)`` and may end with an
    overflow count (ε at or beyond the last edge); an optional ``points`` list
    (each bucket's worth in the forget score) is printed under the bucket labels.

    The first bucket scores 1 point, each next one half the last, the overflow
    bucket 0 (spec/evaluation.md), so mass on the left is good forgetting.
    """
    methods = _golden_first(histograms)
    columns = max(1, min(3, len(methods)))
    rows = max(1, math.ceil(len(methods) / columns))
    fig = _new_figure(width=4.2 * columns, height=3.2 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    colours = _colours(methods)
    for ax, method in zip(axes, methods, strict=False):
        histogram = histograms[method]
        counts = [0 if c is None else c for c in histogram.get("counts", [])]
        labels = bucket_labels(list(histogram.get("edges", [])), len(counts))
        counts = counts[: len(labels)]
        points = histogram.get("points")
        if points and len(points) >= len(labels):
            # What each bucket is worth in the forget score, under its range.
            labels = [
                f"{label}\n{_fraction(p)} pt" for label, p in zip(labels, points, strict=False)
            ]
        ax.bar(np.arange(len(counts)), counts, color=colours[method], alpha=0.8, width=0.85)
        # Upright labels read best; past about 8 buckets (banks of hundreds of models) they collide.
        upright = len(labels) <= 8
        ax.set_xticks(
            np.arange(len(counts)),
            labels,
            rotation=0 if upright else 90,
            ha="center",
            fontsize="x-small",
        )
        ax.set_title(method)
        ax.set_ylabel("forget samples")
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(methods) :]:
        ax.set_axis_off()
    fig.suptitle(title or "ε per forget sample (bucket width 0.5; left is better)")
    return fig


__all__ = [
    "BAR_METRICS",
    "bucket_labels",
    "epsilon_histograms",
    "metric_bars",
    "roc_curves",
    "to_png_data_uri",
    "ua_ra_scatter",
]
