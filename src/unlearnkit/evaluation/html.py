"""Self-contained HTML reports: the run report (``report.html``) and the privacy audit's.

One file each, readable offline and safe to mail or archive: the CSS is inline
in a ``<style>`` element, the figures are PNG images inlined as base64
``data:`` URIs (matplotlib's Agg renderer, see :mod:`unlearnkit.evaluation.figures`),
and nothing refers to anything outside the file (no scripts, no stylesheets,
no fonts, no URLs). PNG rather than inline SVG: matplotlib's SVG names the
``http://www.w3.org`` namespaces and embeds its glyphs as paths, which makes
it larger and harder to check for external references.

The page is assembled with a tiny builder: :func:`element` escapes every
plain string it is given (:func:`html.escape`) and passes :class:`Markup`
through, so text from records (method names, forget specs, file paths) can
never inject markup.

>>> str(element("td", "a < b", attrs={"class": "best"}))
'<td class="best">a &lt; b</td>'
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence

from unlearnkit.evaluation.metrics import IDEALS
from unlearnkit.evaluation.report import (
    REPORT_METRICS,
    UNINFORMATIVE_MIA_TEXT,
    _mean_std,
    best_method,
    method_order,
    schema_lines,
    summarise,
    uninformative_mia_cells,
)

NOT_COMPUTED = "not computed"


# ---------------------------------------------------------------- the builder


class Markup(str):
    """A string of HTML that is already safe: :func:`element` inserts it as it is."""


def escape(text) -> Markup:
    """``text`` (any value, via ``str``) with ``& < > " '`` escaped, as :class:`Markup`."""
    return text if isinstance(text, Markup) else Markup(html.escape(str(text), quote=True))


def _children(children) -> Iterable[Markup]:
    for child in children:
        if child is None:
            continue
        if isinstance(child, (list, tuple)):
            yield from _children(child)
        else:
            yield escape(child)


# Elements HTML defines without content or end tag.
_VOID = frozenset({"img", "meta", "br", "hr"})


def element(tag: str, *children, attrs: Mapping[str, object] | None = None) -> Markup:
    """``<tag attrs>children</tag>``; plain strings are escaped, lists flattened, None skipped.

    An attribute whose value is None is left out; True writes the bare name.
    """
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        parts.append(name if value is True else f'{name}="{escape(value)}"')
    opening = f"<{' '.join(parts)}>"
    if tag in _VOID:
        return Markup(opening)
    return Markup(opening + "".join(_children(children)) + f"</{tag}>")


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d1d1f; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1360px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.25rem; margin-top: 2.4rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em;
       background: #f3f3f5; padding: 0 0.25em; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.6rem 0 0.4rem; font-size: 0.85rem; }
th, td { border: 1px solid #d6d6da; padding: 0.26rem 0.45rem; text-align: right;
         font-variant-numeric: tabular-nums; white-space: nowrap; }
thead th { white-space: normal; min-width: 3.5rem; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f1f1f4; }
tr.ideal th, tr.ideal td { background: #fafafc; color: #555; font-weight: normal;
                           font-style: italic; white-space: normal; font-size: 0.8rem; }
tr.golden td { background: #fbf8ec; }
td.missing { color: #999; }
table.keys td { text-align: left; white-space: normal; }
.table-wrap { overflow-x: auto; }
p.legend, p.note { color: #444; font-size: 0.86rem; max-width: 80rem; }
.warning { background: #fff4e5; border-left: 4px solid #f0a030; padding: 0.5rem 0.9rem;
           margin: 0.8rem 0; max-width: 80rem; }
.missing-section { color: #777; font-style: italic; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
figure { margin: 0.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.82rem; color: #555; max-width: 40rem; }
nav ul { columns: 2; font-size: 0.9rem; }
"""


def document(*, title: str, body: Sequence) -> str:
    """The whole page: doctype, inline style, ``title`` as heading, then ``body``."""
    head = element(
        "head",
        element("meta", attrs={"charset": "utf-8"}),
        element(
            "meta", attrs={"name": "viewport", "content": "width=device-width, initial-scale=1"}
        ),
        element("title", title),
        element("style", Markup(STYLE)),
    )
    page = element(
        "html",
        head,
        element("body", element("main", element("h1", title), *body)),
        attrs={"lang": "en"},
    )
    return "<!DOCTYPE html>\n" + page + "\n"


def table(
    *,
    header: Sequence,
    rows: Sequence[Sequence],
    ideals: Sequence | None = None,
    row_classes: Sequence[str | None] | None = None,
    css_class: str | None = None,
) -> Markup:
    """A table; ``ideals`` adds a header row stating each column's ideal.

    A cell may be text, :class:`Markup` (e.g. a ``<strong>``) or None (shown as
    "–", marked missing).
    """
    head_rows = [element("tr", [element("th", h) for h in header])]
    if ideals is not None:
        head_rows.append(
            element("tr", [element("th", i) for i in ideals], attrs={"class": "ideal"})
        )
    body_rows = []
    for i, row in enumerate(rows):
        cells = [
            element("td", "–", attrs={"class": "missing"}) if c is None else element("td", c)
            for c in row
        ]
        row_class = row_classes[i] if row_classes else None
        body_rows.append(element("tr", cells, attrs={"class": row_class}))
    return element(
        "div",
        element(
            "table",
            element("thead", head_rows),
            element("tbody", body_rows),
            attrs={"class": css_class},
        ),
        attrs={"class": "table-wrap"},
    )


def image(fig, *, alt: str, caption: str | None = None) -> Markup:
    """A matplotlib figure as an inline PNG ``<figure>`` (the figure is cleared afterwards)."""
    from unlearnkit.evaluation.figures import to_png_data_uri

    return element(
        "figure",
        element("img", attrs={"src": to_png_data_uri(fig), "alt": alt}),
        element("figcaption", caption) if caption else None,
    )


def _missing(what: str) -> Markup:
    return element("p", f"{what}: {NOT_COMPUTED}.", attrs={"class": "missing-section"})


def _warning(*content) -> Markup:
    return element("div", *content, attrs={"class": "warning"})


def _number(value, *, digits: int = 2) -> str | None:
    """``value`` with ``digits`` decimals; None (shown as "–") for None, NaN and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}f}"


def _jsonish(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


# ---------------------------------------------------------------- the run report


def _run_table(per_method: dict[str, dict[str, list]], *, metrics: Sequence[str]) -> Markup:
    best = best_method(per_method)
    order = method_order(per_method)
    rows = []
    for method in order:
        row = [method]
        for metric in metrics:
            text = _mean_std(per_method[method][metric])
            cell = None if text == "–" else text
            if metric == "avg_gap" and method == best and cell is not None:
                cell = element("strong", cell)
            row.append(cell)
        rows.append(row)
    return table(
        header=["method", *metrics],
        ideals=["ideal", *(IDEALS.get(m, "") for m in metrics)],
        rows=rows,
        row_classes=["golden" if m == "golden" else None for m in order],
    )


def _run_legend(metrics: Sequence[str]) -> Markup:
    text = "; ".join(f"{m}: {IDEALS[m]}" for m in metrics if m in IDEALS)
    return element(
        "p",
        f"Mean ± std over seeds (UA, RA, TA, MIA, LT_AUC in %). Golden first; the lowest mean avg_gap "
        f"of the unlearning methods in bold; – where a value is missing. Ideal values: {text}.",
        attrs={"class": "legend"},
    )


def _run_figures(records: list[dict], per_method: dict, *, scenario: str) -> Markup:
    from unlearnkit.evaluation.figures import BAR_METRICS, metric_bars, ua_ra_scatter

    points: dict[str, list[tuple[float, float]]] = {m: [] for m in method_order(per_method)}
    for r in records:
        if r.get("UA") is not None and r.get("RA") is not None:
            points[r["method"]].append((r["UA"], r["RA"]))
    bars = {m: {k: per_method[m][k] for k in BAR_METRICS} for m in per_method}
    return element(
        "div",
        image(
            ua_ra_scatter(points),
            alt=f"UA against RA per method and seed, forget {scenario}",
            caption="One point per method and seed; golden is the star, its mean UA and RA "
            "the dashed lines. Ideal: on golden.",
        ),
        image(
            metric_bars(bars, metrics=BAR_METRICS),
            alt=f"mean UA, RA, TA, MIA and avg_gap per method, forget {scenario}",
            caption="Bars: mean over seeds, error bars: std, dots: the seeds. The dashed line is "
            "golden's mean (the ideal of UA, RA, TA and MIA); avg_gap's ideal is 0.",
        ),
        attrs={"class": "figures"},
    )


def render_run_html(
    records: list[dict],
    *,
    title: str = "Unlearning report",
    config: dict | None = None,
    schema: dict | None = None,
) -> str:
    """The whole ``report.html`` of a run: what ``report.md`` says, with figures per scenario.

    Per forget scenario: the method × metric table (mean ± std over seeds, golden
    first, best avg_gap bold, a row of ideals), the uninformative-MIA warning of
    its cells, a UA-vs-RA scatter and per-metric bars. ``config`` and ``schema``
    as for :func:`unlearnkit.evaluation.report.render_report`.
    """
    metrics = REPORT_METRICS
    body: list = []
    if config:
        body.append(
            table(
                header=["setting", "value"],
                rows=[[k, _jsonish(v)] for k, v in config.items()],
                css_class="keys",
            )
        )
    body += [element("p", line) for line in schema_lines(schema)]
    seeds = sorted({r["seed"] for r in records})
    body.append(element("p", f"{len(records)} runs; seeds {seeds}."))
    table_by_scenario = summarise(records)
    weak = uninformative_mia_cells(records)
    scenarios = list(table_by_scenario)
    class_specs = sorted({r["forget"] for r in records if r["forget"].startswith("class:")})
    sections = [(f"forget {s}", s) for s in scenarios]
    if len(class_specs) > 1:
        sections.append((f"class-wise mean over {', '.join(class_specs)}", None))
    if len(sections) > 1:
        body.append(
            element(
                "nav",
                element(
                    "ul",
                    [
                        element("li", element("a", name, attrs={"href": f"#scenario-{i}"}))
                        for i, (name, _) in enumerate(sections)
                    ],
                ),
            )
        )
    if not records:
        body.append(_missing("results"))
    for i, (name, scenario) in enumerate(sections):
        if scenario is None:
            # Class-wise forgetting is also reported as the mean over classes (as report.md).
            chosen = [{**r, "forget": "class-wise"} for r in records if r["forget"] in class_specs]
            per_method = summarise(chosen)["class-wise"]
            note = element(
                "p", "Mean ± std over every (class, seed) pair.", attrs={"class": "note"}
            )
        else:
            chosen = [r for r in records if r["forget"] == scenario]
            per_method = table_by_scenario[scenario]
            note = None
        body.append(element("h2", name, attrs={"id": f"scenario-{i}"}))
        body += [note, _run_table(per_method, metrics=metrics), _run_legend(metrics)]
        cells = {m: v for (s, m), v in weak.items() if s == scenario}
        if cells:
            body.append(
                _warning(
                    element("strong", "Warning: the membership attack is uninformative"),
                    " for " + ", ".join(f"{m} ({v:.1f}%)" for m, v in cells.items()) + ": ",
                    UNINFORMATIVE_MIA_TEXT,
                )
            )
        body.append(_run_figures(chosen, per_method, scenario=name))
    diverged = [r for r in records if r.get("diverged")]
    if diverged:
        body.append(
            _warning(
                "Runs that diverged (non-finite outputs; left out of the means above):",
                element(
                    "ul",
                    [
                        element("li", f"{r['method']} on {r['forget']}, seed {r['seed']}")
                        for r in diverged
                    ],
                ),
            )
        )
    return document(title=title, body=body)


# ---------------------------------------------------------------- the audit report

# Each summary column's ideal, as its header row states it: an unlearned model
# should be indistinguishable from golden (spec/evaluation.md, "Stronger privacy").
AUDIT_COLUMNS = (
    ("ε-score", "1 (top)"),
    ("95% interval", "narrow"),
    ("forget score F", "1 (top)"),
    ("RA / golden", "1"),
    ("TA / golden", "1"),
    ("U-LiRA bal. acc. (%)", "50% (golden's)"),
    ("U-LiRA AUC (%)", "50 (golden's)"),
    ("TPR @ 1% FPR (%)", "1 (chance)"),
    ("TPR @ 0.1% FPR (%)", "0.1 (chance)"),
    ("UA", "golden's"),
    ("RA", "golden's"),
    ("TA", "golden's"),
)
POPULATION_IDEALS = {
    "UA": "golden's",
    "RA": "golden's",
    "TA": "golden's",
    "MIA": "golden's",
    "LT_AUC": "golden's (≈ 50)",
    "avg_gap": IDEALS["avg_gap"],
}
ATTACK_FIELDS = (
    ("balanced accuracy (%)", "balanced_accuracy"),
    ("AUC (%)", "auc"),
    ("TPR @ 1% FPR (%)", "tpr_at_1pct_fpr"),
    ("TPR @ 0.1% FPR (%)", "tpr_at_0.1pct_fpr"),
    ("positives", "n_positive"),
    ("negatives", "n_negative"),
)


def _section(payload: dict, key: str):
    """``payload[key]`` when it holds something, else None (the section was not computed)."""
    value = payload.get(key)
    return value if value else None


def _attack_cells(attack: Mapping | None) -> list:
    attack = attack or {}
    cells = []
    for _, key in ATTACK_FIELDS:
        digits = 0 if key.startswith("n_") else 1
        cells.append(_number(attack.get(key), digits=digits))
    return cells


def _audit_summary(payload: dict, methods: list[str]) -> Markup:
    epsilon = payload.get("epsilon") or {}
    ulira = payload.get("ulira") or {}
    metrics = payload.get("metrics") or {}
    scores = {
        m: epsilon[m]["score"]
        for m in methods
        if m != "golden" and _number((epsilon.get(m) or {}).get("score")) is not None
    }
    best = max(scores, key=scores.get) if scores else None
    rows = []
    for method in methods:
        eps = epsilon.get(method)
        if eps:
            interval = eps.get("interval") or [None, None]
            lo, hi = (_number(v, digits=3) for v in interval[:2])
            score = _number(eps.get("score"), digits=3)
            eps_cells = [
                element("strong", score) if method == best and score else score,
                f"[{lo or '–'}, {hi or '–'}]",
                _number(eps.get("forget_score"), digits=3),
                _number(eps.get("ra_ratio"), digits=3),
                _number(eps.get("ta_ratio"), digits=3),
            ]
        else:
            eps_cells = [NOT_COMPUTED, None, None, None, None]
        online = (ulira.get(method) or {}).get("online")
        attack_cells = _attack_cells(online)[:4] if online else [NOT_COMPUTED, None, None, None]
        population = metrics.get(method) or {}
        accuracy = [
            _mean_std(population[m]) if population.get(m) else None for m in ("UA", "RA", "TA")
        ]
        accuracy = [None if a == "–" else a for a in accuracy]
        rows.append([method, *eps_cells, *attack_cells, *accuracy])
    return table(
        header=["method", *(name for name, _ in AUDIT_COLUMNS)],
        ideals=["ideal", *(ideal for _, ideal in AUDIT_COLUMNS)],
        rows=rows,
        row_classes=["golden" if m == "golden" else None for m in methods],
    )


def _models_per_side(payload: dict) -> str:
    """The number of models behind the ε-scores, as one number when all methods agree."""
    counts = {e.get("n_models") for e in (payload.get("epsilon") or {}).values() if e}
    counts.discard(None)
    if not counts:
        return str((payload.get("setting") or {}).get("models", "?"))
    return ", ".join(str(c) for c in sorted(counts))


def _audit_population(payload: dict, methods: list[str]) -> Markup:
    metrics = payload["metrics"]
    columns = [m for m in POPULATION_IDEALS if any(m in (metrics.get(k) or {}) for k in methods)]
    rows = []
    for method in methods:
        values = metrics.get(method) or {}
        cells = [_mean_std(values[m]) if values.get(m) else "–" for m in columns]
        rows.append([method, *(None if c == "–" else c for c in cells)])
    return table(
        header=["method", *columns],
        ideals=["ideal", *(POPULATION_IDEALS[m] for m in columns)],
        rows=rows,
        row_classes=["golden" if m == "golden" else None for m in methods],
    )


def _roc(attack: Mapping | None):
    roc = (attack or {}).get("roc") or {}
    if roc.get("fpr") and roc.get("tpr"):
        return roc["fpr"], roc["tpr"]
    return None


def _audit_ulira(payload: dict, methods: list[str]) -> list:
    from unlearnkit.evaluation.figures import roc_curves

    ulira = payload["ulira"]
    rows, classes = [], []
    online_curves, offline_curves = {}, {}
    for method in methods:
        for kind in ("online", "offline"):
            attack = (ulira.get(method) or {}).get(kind)
            rows.append([method, kind, *(_attack_cells(attack) if attack else [NOT_COMPUTED])])
            classes.append("golden" if method == "golden" else None)
            curve = _roc(attack)
            if curve:
                (online_curves if kind == "online" else offline_curves)[method] = curve
    parts: list = [
        table(
            header=["method", "attack", *(name for name, _ in ATTACK_FIELDS)],
            ideals=["ideal", "", "50% (golden's)", "50", "1 (chance)", "0.1 (chance)", "", ""],
            rows=[r + [None] * (2 + len(ATTACK_FIELDS) - len(r)) for r in rows],
            row_classes=classes,
        ),
        element(
            "p",
            "Positives: the target model's unlearned samples scored under its unlearned model; "
            "negatives: the same samples under its golden model. Online: likelihood ratio of the "
            "'unlearned' and 'retrained' Gaussians; offline: distance above the retrained one.",
            attrs={"class": "note"},
        ),
    ]
    if online_curves or offline_curves:
        parts.append(
            element(
                "div",
                [
                    image(
                        roc_curves(online_curves, dashed=offline_curves, log_scale=log),
                        alt=f"U-LiRA ROC curves per method, {'log-log' if log else 'linear'} axes",
                        caption=("Log-log: the low-FPR regime. " if log else "Linear axes. ")
                        + "Solid: online, dashed: offline; dotted: chance (the ideal).",
                    )
                    for log in (False, True)
                ],
                attrs={"class": "figures"},
            )
        )
    else:
        parts.append(_missing("U-LiRA ROC curves"))
    return parts


def _audit_epsilon(payload: dict, methods: list[str]) -> list:
    from unlearnkit.evaluation.figures import epsilon_histograms

    histograms = {
        m: (payload["epsilon"].get(m) or {}).get("histogram")
        for m in methods
        if (payload["epsilon"].get(m) or {}).get("histogram")
    }
    if not histograms:
        return [_missing("ε histograms")]
    return [
        image(
            epsilon_histograms(histograms),
            alt="forget samples per ε bucket, one panel per method",
            caption="Each forget sample's ε (how well an attack tells the method's models from "
            "golden ones on it), in buckets of width 0.5; the first bucket scores 1, each next "
            "half the last, the last (overflow) 0. Ideal: everything in the first bucket.",
        )
    ]


def _audit_lira(payload: dict) -> list:
    from unlearnkit.evaluation.figures import roc_curves

    lira = payload["lira"]
    ideal = {
        "original": "well above 50 (the attack works)",
        "golden": "50 (chance: golden never saw the pool)",
    }
    names = sorted(lira, key=lambda n: n != "original")
    parts: list = [
        table(
            header=["target", "ideal", *(name for name, _ in ATTACK_FIELDS)],
            rows=[[n, ideal.get(n, ""), *_attack_cells(lira.get(n))] for n in names],
            row_classes=["golden" if n == "golden" else None for n in names],
        ),
        element(
            "p",
            "LiRA with IN/OUT originals of the halves bank: members are the pool samples in the "
            "target slot's half. The original should be attackable; if golden is far from "
            "chance the bank is too small or its halves differ.",
            attrs={"class": "note"},
        ),
    ]
    curves = {n: c for n in names if (c := _roc(lira.get(n)))}
    if curves:
        parts.append(
            image(
                roc_curves(curves, log_scale=True, title="LiRA calibration ROC, log-log"),
                alt="LiRA ROC of the original and of golden, log-log axes",
                caption="Golden's curve should lie on the dotted chance line.",
            )
        )
    return parts


def render_audit_html(payload: dict) -> str:
    """The privacy audit's ``report.html`` from its JSON payload (:mod:`unlearnkit.audit`).

    Sections: the setting; a summary per method (ε-score with its interval,
    forget score, online U-LiRA, UA/RA/TA) with a row of ideals; the population
    measures; U-LiRA per method with ROC curves on linear and log-log axes; the
    ε histograms; the LiRA calibration (original vs golden); the warnings; the
    cost. Every section but the setting is optional: a missing one reads
    "not computed".
    """
    setting = payload.get("setting") or {}
    methods = list(payload.get("methods") or [])
    for key in ("metrics", "epsilon", "ulira"):
        methods += [m for m in payload.get(key) or {} if m not in methods]
    methods = sorted(methods, key=lambda m: m != "golden")
    title = (
        f"Privacy audit on {setting.get('dataset', '?')} ({setting.get('model', '?')}), "
        f"forget {setting.get('forget', '?')}"
    )
    body: list = [element("h2", "Setting")]
    if setting:
        body.append(
            table(
                header=["setting", "value"],
                rows=[[k, _jsonish(v)] for k, v in setting.items()],
                css_class="keys",
            )
        )
    else:
        body.append(_missing("setting"))
    body.append(element("p", "Methods: " + (", ".join(methods) or "none") + "."))

    body.append(element("h2", "Summary"))
    if methods:
        body += [
            _audit_summary(payload, methods),
            element(
                "p",
                "ε-score: F × (RA / RA golden) × (TA / TA golden) of the method's models "
                "against golden models of the same seeds, with a bootstrap 95% interval over "
                f"the models ({_models_per_side(payload)} per side). U-LiRA columns: the online "
                "attack. Attack "
                "numbers are percentages; – marks a missing value. The highest ε-score of the "
                "unlearning methods is bold.",
                attrs={"class": "legend"},
            ),
        ]
    else:
        body.append(_missing("methods"))

    body.append(element("h2", "Population measures"))
    body += (
        [_audit_population(payload, methods)]
        if _section(payload, "metrics")
        else [_missing("population measures")]
    )
    body.append(element("h2", "U-LiRA"))
    body += _audit_ulira(payload, methods) if _section(payload, "ulira") else [_missing("U-LiRA")]
    body.append(element("h2", "ε-score histograms"))
    body += (
        _audit_epsilon(payload, methods) if _section(payload, "epsilon") else [_missing("ε-score")]
    )
    body.append(element("h2", "LiRA calibration"))
    body += _audit_lira(payload) if _section(payload, "lira") else [_missing("LiRA calibration")]

    body.append(element("h2", "Warnings"))
    if "warnings" not in payload or payload["warnings"] is None:
        body.append(_missing("warnings"))
    elif payload["warnings"]:
        body.append(_warning(element("ul", [element("li", w) for w in payload["warnings"]])))
    else:
        body.append(element("p", "None."))

    body.append(element("h2", "Cost"))
    cost = dict(payload.get("cost") or {})
    if payload.get("seconds") is not None:
        cost = {"seconds": payload["seconds"], **cost}
    if cost:
        body.append(
            table(
                header=["measure", "value"],
                rows=[
                    [k, _number(v) or _jsonish(v)] if isinstance(v, float) else [k, _jsonish(v)]
                    for k, v in cost.items()
                ],
                css_class="keys",
            )
        )
    else:
        body.append(_missing("cost"))
    return document(title=title, body=body)


__all__ = [
    "Markup",
    "document",
    "element",
    "escape",
    "image",
    "render_audit_html",
    "render_run_html",
    "table",
]
