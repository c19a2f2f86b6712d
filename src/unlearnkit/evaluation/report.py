"""Markdown reports: one table per forget scenario, method x metric, mean ± std over seeds."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from unlearnkit.evaluation.metrics import IDEALS
from unlearnkit.evaluation.mia import UNINFORMATIVE_BELOW

# LT_AUC (loss-threshold attack) sits after the golden-gap columns: it is not in avg_gap.
REPORT_METRICS = (
    "UA", "RA", "TA", "MIA", "avg_gap", "tow", "kl_forget", "LT_AUC", "time_s", "speedup",
)  # fmt: skip


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


def method_order(per_method: dict) -> list[str]:
    """The table's row order: golden first, the other methods as first seen."""
    return sorted(per_method, key=lambda m: m != "golden")


def best_method(per_method: dict[str, dict[str, list[float]]]) -> str | None:
    """The non-golden method with the lowest mean avg_gap (none where no method has one)."""
    gaps = {
        m: float(np.mean(v["avg_gap"]))
        for m, v in per_method.items()
        if m != "golden" and v.get("avg_gap") and None not in v["avg_gap"]
    }
    return min(gaps, key=gaps.get) if gaps else None


def markdown_table(per_method: dict[str, dict[str, list[float]]], *, metrics=REPORT_METRICS) -> str:
    """Rows: golden first, then methods in order. The best (lowest) mean avg_gap is bold."""
    order = method_order(per_method)
    best = best_method(per_method)
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


# Why a weak attack makes the MIA column meaningless; shared by the Markdown and HTML reports.
UNINFORMATIVE_MIA_TEXT = (
    "on held-out retain/test samples it tells members from non-members with a balanced "
    f"accuracy below {UNINFORMATIVE_BELOW:.0f}% (chance is 50%), so their MIA column says "
    "little about whether the forget set still looks like training data."
)


def uninformative_mia_cells(records: list[dict]) -> dict[tuple[str, str], float]:
    """``{(scenario, method): mean attack accuracy}`` of the cells whose population MIA says little."""
    acc: dict = defaultdict(list)
    for r in records:
        if r.get("MIA_attack_acc") is not None and not math.isnan(r["MIA_attack_acc"]):
            acc[(r["forget"], r["method"])].append(r["MIA_attack_acc"])
    return {k: float(np.mean(v)) for k, v in acc.items() if np.mean(v) < UNINFORMATIVE_BELOW}


def uninformative_mia_warning(records: list[dict]) -> list[str]:
    """Report lines naming the (scenario, method) cells whose population MIA says little."""
    weak = uninformative_mia_cells(records)
    if not weak:
        return []
    lines = [
        "**Warning: the membership attack is uninformative** for these cells: "
        + UNINFORMATIVE_MIA_TEXT,
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
    parts += [f"Mean ± std over seeds {seeds}; percentages for UA, RA, TA, MIA, LT_AUC.", ""]
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


# Ideals of the audit's measures (unlearnkit.audit): an unlearned model should look golden.
AUDIT_IDEALS = {
    "eps_score": "1 (max: every forget sample in the top bucket, RA and TA as golden's)",
    "forget_score": "1 (max)",
    "ulira_bacc": "50 (golden's: unlearned cannot be told from retrained)",
    "ulira_auc": "50",
    "ulira_tpr": "golden's (at the level of the FPR: 1 or 0.1)",
}


def _pct(value) -> str:
    return (
        "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1f}"
    )


def render_audit_report(payload: dict) -> str:
    """The audit's ``report.md``: ε-score and U-LiRA per method, LiRA calibration, metrics."""
    setting = payload["setting"]
    lines = [
        f"# Privacy audit on {setting['dataset']} ({setting['model']}), forget `{setting['forget']}`",
        "",
        f"{setting['models']} models per side and protocol. ε-score: unlearned vs golden "
        "models of the same seeds (bootstrap 95% interval over models), rates "
        f"{next(iter(payload['epsilon'].values()), {}).get('rates', '?')}; the forget "
        "score with the challenge's point rates beside it. U-LiRA: leave one "
        "slot of the random-halves bank out as the target (online: likelihood ratio of "
        "the 'unlearned' and 'retrained' Gaussians; offline: distance above the retrained "
        "one). Percentages except the ε-score.",
        "",
        "| method | ε-score | interval | forget score | forget score (point rates) | "
        "U-LiRA bal. acc | U-LiRA AUC | TPR@1% FPR | TPR@0.1% FPR | offline bal. acc | "
        "UA | RA | TA | MIA | LT_AUC | avg_gap |",
        "|---" * 16 + "|",
    ]
    order = sorted(payload["methods"], key=lambda m: m != "golden")
    for method in order:
        eps = payload["epsilon"].get(method, {})
        attack = payload["ulira"].get(method, {})
        online, offline = attack.get("online", {}), attack.get("offline", {})
        metrics = payload["metrics"].get(method, {})
        population = [
            _mean_std(metrics.get(m, [])) for m in ("UA", "RA", "TA", "MIA", "LT_AUC", "avg_gap")
        ]
        interval = eps.get("interval") or [float("nan")] * 2
        point = payload.get("epsilon_point", {}).get(method, {}).get("forget_score", float("nan"))
        lines.append(
            f"| {method} | {eps.get('score', float('nan')):.3f} | "
            f"[{interval[0]:.3f}, {interval[1]:.3f}] | {eps.get('forget_score', float('nan')):.3f} | "
            f"{point:.3f} | "
            f"{_pct(online.get('balanced_accuracy'))} | {_pct(online.get('auc'))} | "
            f"{_pct(online.get('tpr_at_1pct_fpr'))} | {_pct(online.get('tpr_at_0.1pct_fpr'))} | "
            f"{_pct(offline.get('balanced_accuracy'))} | " + " | ".join(population) + " |"
        )
    lines += [
        "",
        "Ideals: ε-score " + AUDIT_IDEALS["eps_score"] + "; U-LiRA balanced accuracy and AUC "
        "50 (what golden gets); UA, RA, TA, MIA, LT_AUC: golden's; avg_gap 0.",
        "",
        "## LiRA calibration (IN/OUT originals of the halves bank)",
        "",
        "| target | bal. acc | AUC | TPR@1% FPR | TPR@0.1% FPR |",
        "|---|---|---|---|---|",
    ]
    for name, attack in payload.get("lira", {}).items():
        lines.append(
            f"| {name} | {_pct(attack.get('balanced_accuracy'))} | {_pct(attack.get('auc'))} | "
            f"{_pct(attack.get('tpr_at_1pct_fpr'))} | {_pct(attack.get('tpr_at_0.1pct_fpr'))} |"
        )
    lines += ["", "The original should be attackable; golden never saw the pool: ideal 50.", ""]
    notes = {
        attack["note"]
        for attacks in [payload.get("lira", {}), *[
            {f"{m} {k}": v for k, v in a.items()} for m, a in payload.get("ulira", {}).items()
        ]]
        for attack in attacks.values()
        if attack.get("note")
    }  # fmt: skip
    lines += [f"Note: {note}." for note in sorted(notes)] + ([""] if notes else [])
    for warning in payload.get("warnings", []):
        lines += [f"**Warning:** {warning}", ""]
    return "\n".join(lines)
