"""The HTML reports are single self-contained files with the tables and figures they promise.

Structural checks only (stdlib ``html.parser``); rendering in a real browser is
``benchmarks/render_html_check.py``.
"""

import base64
import copy
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from matplotlib.figure import Figure

from unlearnkit.evaluation import figures
from unlearnkit.evaluation.html import element, render_audit_html, render_run_html
from unlearnkit.evaluation.metrics import IDEALS
from unlearnkit.evaluation.report import REPORT_METRICS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METHODS = ["finetune", "golden", "kl_ft"]  # golden not first: the report must reorder


class Page(HTMLParser):
    """Every start tag with its attributes, the text, and each table as rows of cell texts."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.row_classes: list[list[str | None]] = []
        self._cell: list[str] | None = None
        self._strong_cells: list[str] = []
        self._in_strong = False
        self.strong: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self.tables.append([])
            self.row_classes.append([])
        elif tag == "tr":
            self.tables[-1].append([])
            self.row_classes[-1].append(attrs.get("class"))
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "strong":
            self._in_strong = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "strong":
            self._in_strong = False

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_strong:
            self.strong.append(data)

    def all(self, tag: str) -> list[dict]:
        return [attrs for t, attrs in self.tags if t == tag]


def _records():
    """Two scenarios × three methods × three seeds, as run_experiment writes them."""
    rng = np.random.default_rng(0)
    records = []
    for spec in ("class:3", "random:0.1"):
        for seed in (0, 1, 2):
            for method in METHODS:
                ua = {"golden": 0.0, "finetune": 20.0, "kl_ft": 5.0}[method] + rng.uniform(0, 3)
                records.append(
                    {
                        "method": method,
                        "seed": seed,
                        "forget": spec,
                        "UA": ua,
                        "RA": 97.0 + rng.uniform(0, 2),
                        "TA": 95.0 + rng.uniform(0, 2),
                        "MIA": 10.0 + rng.uniform(0, 5),
                        # An uninformative attack on one cell only, to raise the warning.
                        "MIA_attack_acc": 51.0
                        if spec == "random:0.1" and method == "kl_ft"
                        else 70.0,
                        "avg_gap": 0.0 if method == "golden" else ua / 4,
                        "tow": 1.0 if method == "golden" else 0.9,
                        "kl_forget": 0.0 if method == "golden" else 0.1,
                        "diverged": False,
                        "time_s": 0.5,
                        "speedup": 2.0,
                    }
                )
    return records


def _attack(auc: float, *, n: int = 200):
    fpr = np.linspace(0, 1, 51)
    tpr = fpr ** (50.0 / auc)  # a concave curve whose area grows with auc
    return {
        "balanced_accuracy": auc - 2.0,
        "auc": auc,
        "tpr_at_1pct_fpr": 2.5,
        "tpr_at_0.1pct_fpr": None,  # too few negatives to reach 0.1% FPR
        "n_positive": n,
        "n_negative": n,
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
    }


def _payload():
    """A full audit payload of the shape unlearnkit.audit writes."""
    edges = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    methods = ["golden", "finetune", "kl_ft"]
    return {
        "setting": {
            "dataset": "digits",
            "model": "mlp",
            "forget": "random:50",
            "models": 16,
            "seed": 0,
            "train": {"epochs": 3},
        },  # fmt: skip
        "methods": methods,
        "metrics": {
            m: {
                k: [float(v) for v in np.linspace(1, 2, 16)]
                for k in ("UA", "RA", "TA", "MIA", "LT_AUC", "avg_gap")
            }
            for m in methods
        },
        "epsilon": {
            m: {
                "score": s,
                "forget_score": s,
                "interval": [s - 0.05, s + 0.05],
                "n_models": 16,
                "ra_ratio": 1.0,
                "ta_ratio": 0.99,
                "histogram": {
                    "edges": edges,
                    "counts": [30, 10, 5, 3, 1, 1, 0],
                    "points": [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.0],
                },
            }
            for m, s in zip(methods, (0.98, 0.41, 0.55), strict=True)
        },
        "ulira": {
            m: {"online": _attack(a), "offline": _attack(a - 1)}
            for m, a in zip(methods, (50, 70, 61), strict=True)
        },  # fmt: skip
        "lira": {"original": _attack(80.0), "golden": _attack(51.0)},
        "warnings": ["the population MIA is uninformative here <b>"],
        "seconds": 12.5,
        "cost": {"trained": 48, "reused": 0},
    }


@pytest.fixture(scope="module")
def run_page():
    return render_run_html(_records(), title="Run <report>", config={"dataset": "digits"})


@pytest.fixture(scope="module")
def audit_page():
    return render_audit_html(_payload())


def _assert_self_contained(text: str) -> Page:
    page = Page(text)
    assert text.startswith("<!DOCTYPE html>")
    assert len(page.all("html")) == 1 and len(page.all("head")) == 1 and len(page.all("body")) == 1
    assert page.all("link") == [] and page.all("script") == []
    assert page.all("img"), "no figures"
    for img in page.all("img"):
        src = img["src"]
        assert src.startswith("data:image/png;base64,") and img.get("alt")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    for _, attrs in page.tags:
        for name, value in attrs.items():
            # base64 may contain "//", so a URL is what an attribute *starts* with.
            assert not re.match(r"\s*(https?:|//|file:|ftp:)", value or ""), (name, value)
            if name == "href":
                assert value.startswith("#"), value  # in-page anchors only
    # The base64 alphabet has no ":", so no URL can hide inside an image either.
    assert "http://" not in text and "https://" not in text and "url(" not in text
    return page


def test_run_report_is_one_self_contained_file(run_page):
    page = _assert_self_contained(run_page)
    assert len(page.all("img")) == 4  # scatter and bars per scenario
    assert len(page.all("title")) == 1 and "Run <report>" in "".join(page.text)


def test_run_report_tables_put_golden_first_and_state_the_ideals(run_page):
    page = Page(run_page)
    scenario_tables = [t for t in page.tables if t[0][0] == "method"]
    assert len(scenario_tables) == 2
    for rows in scenario_tables:
        assert rows[0] == ["method", *REPORT_METRICS]
        assert rows[1] == ["ideal", *(IDEALS[m] for m in REPORT_METRICS)]
        assert [r[0] for r in rows[2:]] == ["golden", "finetune", "kl_ft"]
        given = [i + 1 for i, m in enumerate(REPORT_METRICS) if m in _records()[0]]
        assert all(" ± " in rows[2][i] for i in given), rows[2]  # three seeds: mean ± std
    # kl_ft has the lowest avg_gap of the unlearning methods in both scenarios.
    gap = REPORT_METRICS.index("avg_gap") + 1
    assert page.strong.count(scenario_tables[0][4][gap]) >= 1
    assert page.row_classes[-1][2] == "golden"
    text = "".join(page.text)
    assert "Ideal values: UA: = golden" in text
    assert "the membership attack is uninformative" in text and "kl_ft (51.0%)" in text


@pytest.fixture
def stub_images(monkeypatch):
    """A stub PNG instead of drawing, for tests about the page around the figures (drawing
    a figure takes a good part of a second on a busy machine)."""
    tiny = "data:image/png;base64," + base64.b64encode(PNG_MAGIC + b"stub").decode()
    monkeypatch.setattr(figures, "to_png_data_uri", lambda fig, **_: tiny)


def test_text_from_records_cannot_inject_markup(stub_images):
    records = [{**r, "method": "<script>x</script>"} for r in _records()[:3]]
    page = Page(render_run_html(records[:1]))
    assert page.all("script") == []
    assert "<script>x</script>" in "".join(page.text)
    assert str(element("p", "<b>")) == "<p>&lt;b&gt;</p>"


def test_a_run_with_class_scenarios_adds_the_class_wise_mean(stub_images):
    records = _records()
    records += [{**r, "forget": "class:5"} for r in records if r["forget"] == "class:3"]
    page = Page(render_run_html(records))
    headings = [t for t in page.text if t.startswith("class-wise mean over")]
    assert headings and "class:3, class:5" in headings[0]
    assert len(page.all("a")) == 4  # a contents list of the four sections


def test_audit_report_is_self_contained_with_every_section(audit_page):
    page = _assert_self_contained(audit_page)
    assert len(page.all("img")) == 4  # ROC linear + log, ε histograms, LiRA calibration
    text = "".join(page.text)
    assert ": not computed." not in text
    summary = next(t for t in page.tables if "ε-score" in t[0])
    assert summary[1][0] == "ideal" and "50% (golden's)" in summary[1] and "1 (top)" in summary[1]
    assert [r[0] for r in summary[2:]] == ["golden", "finetune", "kl_ft"]
    assert summary[2][1] == "0.980" and summary[2][2] == "[0.930, 1.030]"
    assert "0.550" in page.strong  # the best unlearning method's ε-score, not golden's
    lira = next(t for t in page.tables if t[0][0] == "target")
    assert [r[0] for r in lira[1:]] == ["original", "golden"]
    assert "50 (chance: golden never saw the pool)" in lira[2]
    assert "the population MIA is uninformative here <b>" in text  # escaped, shown as text
    assert page.all("b") == []


def test_audit_report_says_not_computed_for_missing_sections(stub_images):
    full = _payload()
    payload = {"setting": full["setting"], "methods": full["methods"], "metrics": full["metrics"]}
    page = _assert_self_contained_or_no_images(render_audit_html(payload))
    text = "".join(page.text)
    for section in ("U-LiRA", "ε-score", "LiRA calibration", "warnings", "cost"):
        assert f"{section}: not computed." in text, section
    summary = next(t for t in page.tables if "ε-score" in t[0])
    assert summary[2][:2] == ["golden", "not computed"]

    # A method left out of one section, an attack without a ROC: the rest still renders.
    partial = copy.deepcopy(full)
    del partial["epsilon"]["kl_ft"]
    partial["ulira"]["finetune"]["online"].pop("roc")
    page = _assert_self_contained(render_audit_html(partial))
    summary = next(t for t in page.tables if "ε-score" in t[0])
    assert summary[4][:2] == ["kl_ft", "not computed"]


def _assert_self_contained_or_no_images(text: str) -> Page:
    page = Page(text)
    assert len(page.all("html")) == 1 and page.all("script") == [] and page.all("link") == []
    assert "http://" not in text and "https://" not in text
    return page


def test_figures_take_plain_data_and_encode_to_png():
    made = [
        figures.ua_ra_scatter({"golden": [(0.0, 99.0)], "a": [(5.0, float("nan")), (4.0, 98.0)]}),
        figures.metric_bars(
            {"golden": {"UA": [1.0]}, "a": {"UA": [2.0, None, 3.0]}}, metrics=["UA"]
        ),
        figures.roc_curves({"a": ([0, 0.5, 1], [0, 0.9, 1])}, log_scale=True),
        figures.roc_curves({"a": ([0, 50, 100], [0, 90, 100])}, log_scale=False),  # percent
        figures.epsilon_histograms({"a": {"edges": [0, 0.5, 1], "counts": [3, 1, 2]}}),
    ]
    for fig in made:
        assert isinstance(fig, Figure)
        uri = figures.to_png_data_uri(fig)
        assert base64.b64decode(uri.split(",", 1)[1]).startswith(PNG_MAGIC)
        assert not fig.axes  # cleared after encoding
    log_axes = figures.roc_curves({"a": ([0, 1], [0, 1])}, log_scale=True).axes[0]
    assert log_axes.get_xscale() == "log" and log_axes.get_yscale() == "log"
