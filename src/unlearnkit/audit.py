"""The privacy audit: ε-score, U-LiRA and LiRA of unlearning methods on a model bank.

:func:`run_audit` plans the models a setting needs (:mod:`unlearnkit.evaluation.bank`),
says what they will cost, builds the missing ones (resumably, through an
executor), and measures:

- per method, the forget-quality **ε-score** (:mod:`unlearnkit.evaluation.epsilon`)
  of its unlearned models against golden models of the same seeds, on the forget
  set (``"seeds"`` protocol), with a bootstrap interval over models;
- per method, **U-LiRA** (:mod:`unlearnkit.evaluation.lira`): leave one slot out of
  the ``"halves"`` protocol as the target; from the other slots fit, per pool
  sample, a Gaussian of its confidence under models that unlearned it and one
  under golden models (never trained on it); score the target's unlearned model
  (positives: the samples it unlearned) and its golden model on the same samples
  (negatives). Online = the likelihood ratio of both Gaussians, offline = the
  distance above the golden one. Ideal: what golden gets (50% balanced accuracy);
- **LiRA** of the original and of golden (calibration): members are the pool
  samples in the target slot's half. The original should be attackable; golden
  should be at chance, since it never saw any of them;
- the population measures of every model (UA, RA, TA, MIA, loss-threshold MIA,
  avg_gap against the golden model of the same seed).

Writes ``audit.json``, ``report.md`` and a self-contained ``report.html``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unlearnkit import checkpoint
from unlearnkit.errors import ConfigError
from unlearnkit.evaluation.bank import BankSetting, Entry, ModelBank
from unlearnkit.evaluation.epsilon import epsilon_score
from unlearnkit.evaluation.html import render_audit_html
from unlearnkit.evaluation.lira import attack_summary, fit_gaussians, offline_scores, online_scores
from unlearnkit.evaluation.metrics import compare_to_golden
from unlearnkit.evaluation.mia import UNINFORMATIVE_BELOW
from unlearnkit.evaluation.report import render_audit_report
from unlearnkit.paths import check_writable

POPULATION_METRICS = ("UA", "RA", "TA", "MIA", "LT_AUC", "avg_gap")


@dataclass(frozen=True)
class AuditPlan:
    """What an audit will train, and roughly how long it will take, before it starts."""

    entries: list[Entry]
    missing: list[Entry]
    trainings: int
    unlearning_runs: int
    seconds_per_training: float
    workers: int
    estimated_seconds: float

    def describe(self) -> str:
        done = len(self.entries) - len(self.missing)
        return (
            f"{len(self.entries)} models in the bank ({done} finished); to build: "
            f"{self.trainings} trainings and {self.unlearning_runs} unlearning runs, about "
            f"{self.estimated_seconds / 60:.1f} min on {self.workers} worker(s) "
            f"({self.seconds_per_training:.1f} s per full training, measured)"
        )


def _workers(executor: str, workers: int | None) -> int:
    if executor == "serial":
        return 1
    from unlearnkit.runtime.executors import get_executor

    return get_executor(executor, workers=workers).workers


def _measured_seconds(bank: ModelBank, *, progress) -> tuple[float, float]:
    """``(training, evaluation)`` seconds of one seeds-protocol job, measured.

    On the seed-0 golden of this bank (its original before it), trained now: both
    are the first models the audit needs anyway, so measuring costs nothing extra;
    the second job is timed because the first also pays the process's warm-up
    (imports, first calls). Evaluation is the rest of the job: statistics, UA, RA,
    TA and the MIAs, which every seeds-protocol model pays, unlearned ones included.
    """
    first = [Entry("seeds", "original", 0), Entry("seeds", "golden", 0)]
    if bank.missing(first):
        bank.build(first, executor="serial", progress=progress)
    meta = bank.scores(first[1])["meta"]
    training = float(meta["seconds"])
    return training, max(0.0, float(meta["job_seconds"]) - training)


def _unlearning_cost(method: str, options: dict, train_epochs: int) -> float:
    """An unlearning run in full trainings: its epochs over the recipe's, else 1 (choice)."""
    from unlearnkit import methods

    params = methods.get(method)(**options).get_params()
    epochs = params.get("epochs")
    if isinstance(epochs, (int, float)) and epochs > 0:
        return min(1.0, epochs / train_epochs)
    return 1.0


def plan_audit(
    bank: ModelBank,
    *,
    methods: list[str],
    models: int,
    method_options: dict[str, dict] | None = None,
    executor: str = "process",
    workers: int | None = None,
    progress: bool | None = None,
) -> AuditPlan:
    """The entries an audit needs, which are missing, and an estimate of their cost."""
    method_options = method_options or {}
    entries = bank.plan(methods=methods, models=models, method_options=method_options)
    per_training, evaluation = (
        _measured_seconds(bank, progress=progress) if bank.missing(entries) else (0.0, 0.0)
    )
    missing = bank.missing(entries)
    epochs = bank.setting.to_dict()["train"]["epochs"]
    seconds, trainings, runs = 0.0, 0, 0
    for entry in missing:
        share = 0.5 if entry.protocol == "halves" else 1.0  # half the data, half the steps
        if entry.role == "unlearned":
            runs += 1
            share *= _unlearning_cost(entry.method, dict(entry.options), epochs)
        else:
            trainings += 1
        seconds += share * per_training + (evaluation if entry.protocol == "seeds" else 0.0)
    n_workers = _workers(executor, workers)
    return AuditPlan(
        entries=entries,
        missing=missing,
        trainings=trainings,
        unlearning_runs=runs,
        seconds_per_training=per_training,
        workers=n_workers,
        estimated_seconds=seconds / max(1, min(n_workers, len(missing) or 1)),
    )


# ---------------------------------------------------------------- measures


def _summary(scores: list[np.ndarray], labels: list[np.ndarray]) -> dict:
    """:func:`attack_summary`, or an empty one saying why when too few shadows fit."""
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    usable = np.isfinite(scores)
    if len(set(labels[usable].tolist())) < 2:
        return {
            "balanced_accuracy": None,
            "auc": None,
            "tpr_at_1pct_fpr": None,
            "tpr_at_0.1pct_fpr": None,
            "n_positive": 0,
            "n_negative": 0,
            "note": "too few shadow models per sample to fit both Gaussians; use more "
            "models or --fixed-variance",
        }
    return attack_summary(scores, labels)


def _mean(values) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def population_metrics(bank: ModelBank, method: str, models: int, options: dict) -> dict:
    """UA, RA, TA, MIA, LT_AUC and avg_gap (vs golden of the same seed) per model."""
    goldens = [bank.scores(Entry("seeds", "golden", k))["meta"]["metrics"] for k in range(models)]
    ents = bank.method_entries(method, "seeds", models, options)
    out: dict[str, list] = {m: [] for m in POPULATION_METRICS}
    for k, entry in enumerate(ents):
        metrics = dict(bank.scores(entry)["meta"]["metrics"])
        metrics.update(compare_to_golden(metrics, goldens[k]))
        for m in POPULATION_METRICS:
            value = metrics.get(m)
            out[m].append(None if value is None else float(value))
    return out


def epsilon_of(bank: ModelBank, method: str, models: int, options: dict, **kwargs) -> dict:
    pool = bank.pool()
    golden = [Entry("seeds", "golden", k) for k in range(models)]
    ents = bank.method_entries(method, "seeds", models, options)

    def accuracies(entries):
        metrics = [bank.scores(e)["meta"]["metrics"] for e in entries]
        return _mean([m["RA"] for m in metrics]), _mean([m["TA"] for m in metrics])

    ra_u, ta_u = accuracies(ents)
    ra_g, ta_g = accuracies(golden)
    score = epsilon_score(
        bank.stack(ents, pool),
        bank.stack(golden, pool),
        ra_unlearned=ra_u,
        ra_golden=ra_g,
        ta_unlearned=ta_u,
        ta_golden=ta_g,
        **kwargs,
    )
    return score.report()


def _halves(bank: ModelBank, models: int):
    pool = bank.pool()
    member = np.stack([bank.members(Entry("halves", "original", k))[pool] for k in range(models)])
    return pool, member


def ulira_of(
    bank: ModelBank, method: str, models: int, options: dict, *, fixed_variance: bool = False
) -> dict:
    """U-LiRA, leave-one-slot-out over the halves protocol: online and offline summaries."""
    pool, member = _halves(bank, models)
    golden = bank.stack([Entry("halves", "golden", k) for k in range(models)], pool)
    unlearned = bank.stack(bank.method_entries(method, "halves", models, options), pool)
    everywhere = np.ones_like(member)
    online, offline, labels = [], [], []
    for t in range(models):
        others = np.arange(models) != t
        positive = fit_gaussians(unlearned[others], member[others], fixed_variance=fixed_variance)
        negative = fit_gaussians(golden[others], everywhere[others], fixed_variance=fixed_variance)
        asked = member[t]  # the samples slot t's request removed
        for values, label in ((unlearned[t], 1), (golden[t], 0)):
            pos = (positive[0][asked], positive[1][asked])
            neg = (negative[0][asked], negative[1][asked])
            online.append(online_scores(values[asked], pos, neg))
            offline.append(offline_scores(values[asked], neg))
            labels.append(np.full(int(asked.sum()), label))
    return {"online": _summary(online, labels), "offline": _summary(offline, labels)}


def lira_calibration(bank: ModelBank, models: int, *, fixed_variance: bool = False) -> dict:
    """Classic LiRA (IN/OUT originals) against the original and against golden."""
    pool, member = _halves(bank, models)
    original = bank.stack([Entry("halves", "original", k) for k in range(models)], pool)
    golden = bank.stack([Entry("halves", "golden", k) for k in range(models)], pool)
    out = {}
    for name, targets in (("original", original), ("golden", golden)):
        scores, labels = [], []
        for t in range(models):
            others = np.arange(models) != t
            inside = fit_gaussians(original[others], member[others], fixed_variance=fixed_variance)
            outside = fit_gaussians(
                original[others], ~member[others], fixed_variance=fixed_variance
            )
            scores.append(online_scores(targets[t], inside, outside))
            labels.append(member[t].astype(int))
        out[name] = _summary(scores, labels)
    return out


def analyse(
    bank: ModelBank,
    *,
    methods: list[str],
    models: int,
    method_options: dict[str, dict] | None = None,
    fixed_variance: bool = False,
    epsilon_rates: str = "clopper_pearson",
    seed: int = 0,
) -> dict:
    """Every measure of the audit, from a built bank (JSON-ready).

    ``epsilon_rates`` (choice): ``"clopper_pearson"`` (default) scores each ε-score
    rule with upper confidence bounds on its FPR and FNR; ``"point"`` is the
    challenge's rule with the rates as measured. With 16 models per side the point
    rule finds a chance separation for almost every sample (golden against golden
    scores a forget score of about 0.14, see :mod:`unlearnkit.evaluation.epsilon`),
    so the bounded rule is the default; the point rule's score is always reported
    beside it (``epsilon_point``).
    """
    method_options = method_options or {}
    warnings: list[str] = []
    payload = {
        "setting": {**bank.setting.to_dict(), "models": models, "seed": seed},
        "methods": list(methods),
        "metrics": {},
        "epsilon": {},
        "epsilon_point": {},
        "ulira": {},
        "lira": lira_calibration(bank, models, fixed_variance=fixed_variance),
        "warnings": warnings,
    }
    for method in methods:
        options = method_options.get(method, {})
        payload["metrics"][method] = population_metrics(bank, method, models, options)
        payload["epsilon"][method] = epsilon_of(
            bank, method, models, options, seed=seed, rates=epsilon_rates
        )
        payload["epsilon_point"][method] = (
            payload["epsilon"][method]
            if epsilon_rates == "point"
            else epsilon_of(bank, method, models, options, seed=seed, rates="point")
        )
        payload["ulira"][method] = ulira_of(
            bank, method, models, options, fixed_variance=fixed_variance
        )
    golden_lira = payload["lira"]["golden"]["auc"]
    if golden_lira is not None and abs(golden_lira - 50) > 10:
        warnings.append(
            f"LiRA tells golden's forget samples from non-members (AUC {golden_lira:.1f}, "
            "ideal 50): the bank is too small or the halves differ; use more models"
        )
    attack_accuracy = [
        bank.scores(Entry("seeds", "golden", k))["meta"]["metrics"].get("MIA_attack_acc")
        for k in range(models)
    ]
    mean_attack = _mean(attack_accuracy)
    if not math.isnan(mean_attack) and mean_attack < UNINFORMATIVE_BELOW:
        warnings.append(
            f"the population MIA is uninformative here: its attack tells retain from test "
            f"samples at {mean_attack:.1f}% balanced accuracy (chance 50); read the ε-score "
            "and U-LiRA instead"
        )
    return payload


# ---------------------------------------------------------------- the whole audit


def run_audit(
    setting: BankSetting,
    *,
    methods: list[str],
    out: str | Path,
    models: int = 16,
    method_options: dict[str, dict] | None = None,
    bank: str | Path | None = None,
    executor: str = "process",
    workers: int | None = None,
    fixed_variance: bool = False,
    epsilon_rates: str = "clopper_pearson",
    progress: bool | None = None,
    on_plan=None,
) -> dict:
    """Plan, build the bank (``out/bank`` unless given), measure, write the reports.

    ``on_plan(plan)`` is called with the :class:`AuditPlan` before any training.
    """
    if not methods:
        raise ConfigError("no methods given; name at least one (see 'unlearnkit methods')")
    out = Path(out)
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    model_bank = ModelBank(bank if bank is not None else out / "bank", setting)
    plan = plan_audit(
        model_bank,
        methods=methods,
        models=models,
        method_options=method_options,
        executor=executor,
        workers=workers,
        progress=progress,
    )
    if on_plan is not None:
        on_plan(plan)
    started = time.perf_counter()
    built = model_bank.build(plan.entries, executor=executor, workers=workers, progress=progress)
    payload = analyse(
        model_bank,
        methods=methods,
        models=models,
        method_options=method_options,
        fixed_variance=fixed_variance,
        epsilon_rates=epsilon_rates,
    )
    payload["cost"] = {
        "trained": len(built.trained),
        "reused": len(built.reused),
        "build_seconds": built.seconds,
        "estimated_seconds": plan.estimated_seconds,
    }
    payload["seconds"] = time.perf_counter() - started
    write_audit(payload, out)
    return payload


def write_audit(payload: dict, out: Path) -> None:
    checkpoint.atomic_write_text(out / "audit.json", json.dumps(_strict(payload), indent=2))
    checkpoint.atomic_write_text(out / "report.md", render_audit_report(payload))
    checkpoint.atomic_write_text(out / "report.html", render_audit_html(payload))


def _strict(value):
    """JSON without NaN or infinity (strict readers refuse them): those become null."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _strict(value.tolist())
    return value


__all__ = ["AuditPlan", "analyse", "plan_audit", "run_audit", "write_audit"]
