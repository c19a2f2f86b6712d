"""Markdown reports: one table per forget scenario, method x metric, mean ± std over seeds."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from unlearnkit.evaluation.metrics import IDEALS
from unlearnkit.evaluation.mia import UNINFORMATIVE_BELOW

REPORT_METRICS = ("UA", "RA", "TA", "MIA", "avg_gap", "tow", "kl_forget", "time_s", "speedup")


def _mean_std(values: list[float]) -> str:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if arr.size == 0:
        return "–"
    if arr.size == 1:
        return f"{arr[0]:.2f}"
    return f"{arr.mean():.2f} ± {arr.std(ddof=1):.2f}"


def summarise(records: list[dict]) -> dict[str, dict[str, dict[str, list[float]]]]:
    """``{forget spec: {method: {metric: [value per seed]}}}``, methods in first-seen order."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for rec in records:
        for metric in REPORT_METRICS:
            table[rec["forget"]][rec["method"]][metric].append(rec.get(metric))
    return table


def markdown_table(per_method: dict[str, dict[str, list[float]]], *, metrics=REPORT_METRICS) -> str:
    """Rows: golden first, then methods in order. The best (lowest) mean avg_gap is bold."""
    order = sorted(per_method, key=lambda m: m != "golden")
    gaps = {
        m: float(np.mean(v["avg_gap"]))
        for m, v in per_method.items()
        if m != "golden" and v.get("avg_gap") and None not in v["avg_gap"]
    }
    best = min(gaps, key=gaps.get) if gaps else None
    lines = [
        "| method | " + " | ".join(metrics) + " |",
        "|---|" + "---|" * len(metrics),
    ]
    for method in order:
        cells = []
        for metric in metrics:
            text = _mean_std(per_method[method][metric])
            cells.append(f"**{text}**" if metric == "avg_gap" and method == best else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def legend(metrics=REPORT_METRICS) -> str:
    return "Ideal values: " + "; ".join(f"`{m}` {IDEALS[m]}" for m in metrics) + "."


def uninformative_mia_warning(records: list[dict]) -> list[str]:
    """Report lines naming the (scenario, method) cells whose population MIA says little."""
    acc: dict = defaultdict(list)
    for r in records:
        if r.get("MIA_attack_acc") is not None and not math.isnan(r["MIA_attack_acc"]):
            acc[(r["forget"], r["method"])].append(r["MIA_attack_acc"])
    weak = {k: float(np.mean(v)) for k, v in acc.items() if np.mean(v) < UNINFORMATIVE_BELOW}
    if not weak:
        return []
    lines = [
        f"**Warning: the membership attack is uninformative** for these cells: on held-out "
        f"retain/test samples it tells members from non-members with a balanced accuracy "
        f"below {UNINFORMATIVE_BELOW:.0f}% (chance is 50%), so their MIA column says little "
        "about whether the forget set still looks like training data.",
        "",
    ]
    lines += [f"- `{spec}`, {method}: {value:.1f}%" for (spec, method), value in weak.items()]
    return [*lines, ""]


def schema_lines(schema: dict | None) -> list[str]:
    """Report lines naming remapped classes and one-hot encoded columns (``Dataset.schema()``).

    >>> schema_lines({"label_names": ["cat", "dog"], "labels_remapped": True})
    ['Classes: 0 = cat, 1 = dog']
    """
    schema = schema or {}
    lines = []
    if schema.get("labels_remapped"):
        names = schema["label_names"]
        lines.append("Classes: " + ", ".join(f"{i} = {n}" for i, n in enumerate(names)))
    for column, vocabulary in (schema.get("categories") or {}).items():
        lines.append(f"One-hot encoded `{column}`: {', '.join(map(str, vocabulary))}")
    return lines


def render_report(
    records: list[dict],
    *,
    title: str = "Unlearning report",
    config: dict | None = None,
    schema: dict | None = None,
) -> str:
    """The whole ``report.md``: a table per forget scenario, then the legend and config.

    ``schema`` (a data set's ``schema()``) adds the class names and encoded columns.
    """
    parts = [f"# {title}", ""]
    if config:
        parts += ["Configuration: " + ", ".join(f"`{k}={v}`" for k, v in config.items()), ""]
    for line in schema_lines(schema):
        parts += [line, ""]
    seeds = sorted({r["seed"] for r in records})
    parts += [f"Mean ± std over seeds {seeds}; percentages for UA, RA, TA, MIA.", ""]
    for scenario, per_method in summarise(records).items():
        parts += [f"## forget `{scenario}`", "", markdown_table(per_method), ""]
    class_specs = {r["forget"] for r in records if r["forget"].startswith("class:")}
    if len(class_specs) > 1:
        # Class-wise forgetting is reported per class and as the mean over classes.
        pooled = [{**r, "forget": "class-wise"} for r in records if r["forget"] in class_specs]
        parts += [
            f"## class-wise mean over {', '.join(sorted(class_specs))}",
            "",
            "Mean ± std over every (class, seed) pair.",
            "",
            markdown_table(summarise(pooled)["class-wise"]),
            "",
        ]
    parts += uninformative_mia_warning(records)
    diverged = [r for r in records if r.get("diverged")]
    if diverged:
        parts += ["Runs that diverged (non-finite outputs; left out of the means above):", ""]
        parts += [f"- {r['method']} on `{r['forget']}`, seed {r['seed']}" for r in diverged]
        parts += [""]
    parts += [legend(), ""]
    return "\n".join(parts)
