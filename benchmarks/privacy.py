"""Privacy benchmark (issue 14): the strong evaluation of six methods on MNIST-5k.

Setting: MNIST-5k, the MLP 256-128, the default recipe (20 epochs SGD, lr 0.05,
batch 64); forget random 10% and class 3; methods golden, finetune, kl_ft, rbm,
salun and random_label with the options tuned by the paper benchmark
(``benchmarks/results/paper.json``); 16 models per side and protocol. Each
scenario is one ``unlearnkit.audit.run_audit`` from an empty bank (process
executor, 2 workers), timed whole.

Targets (printed beside the measured values, checked):

- golden against golden (two disjoint halves of a golden bank of 32): forget score
  (share of the ε top bucket) >= 0.9 of the maximum;
- U-LiRA (online) balanced accuracy of golden within 2 points of 50%;
- the random-10% audit of the six methods finishes in under 30 minutes on 2 cores.

Beside them: how the strong evaluation ranks the methods against avg_gap.

Run: ``python benchmarks/privacy.py`` (about 20 minutes on 2 cores); ``--reuse``
keeps finished banks (then the time is not from scratch and its check is skipped).
Results: ``benchmarks/results/privacy.{json,md,html}`` (the HTML report of the
random-10% audit; class 3's beside it as ``privacy-class_3.html``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write  # noqa: E402

from unlearnkit.audit import run_audit  # noqa: E402
from unlearnkit.evaluation.bank import BankSetting  # noqa: E402

SCENARIOS = ["random:0.1", "class:3"]
METHODS = ["golden", "finetune", "kl_ft", "rbm", "salun", "random_label"]
MODELS = 16
TARGETS = {"golden_forget_score": 0.9, "golden_ulira_points": 2.0, "audit_minutes": 30.0}


def log(message: str) -> None:
    print(message, flush=True)


def tuned_options() -> dict:
    path = RESULTS / "paper.json"
    chosen = json.loads(path.read_text())["tuning"]["chosen"] if path.exists() else {}
    return {m: chosen[m] for m in METHODS if m in chosen}


def rankings(payload: dict) -> dict:
    """Methods (golden apart) ordered best first by avg_gap, ε-score and U-LiRA."""
    methods = [m for m in payload["methods"] if m != "golden"]
    gap = {m: float(np.mean(payload["metrics"][m]["avg_gap"])) for m in methods}
    eps = {m: payload["epsilon"][m]["score"] for m in methods}
    ulira = {m: abs(payload["ulira"][m]["online"]["balanced_accuracy"] - 50) for m in methods}
    return {
        "avg_gap": sorted(methods, key=gap.get),
        "epsilon": sorted(methods, key=lambda m: -eps[m]),
        "ulira": sorted(methods, key=ulira.get),
        "values": {"avg_gap": gap, "epsilon": eps, "ulira_distance_from_50": ulira},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench-privacy"))
    parser.add_argument("--reuse", action="store_true", help="keep finished banks")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = tuned_options()
    parts, started = {}, time.perf_counter()
    for spec in SCENARIOS:
        out = args.work / spec.replace(":", "_")
        if out.exists() and not args.reuse:
            shutil.rmtree(out)
        setting = BankSetting(
            dataset="mnist5k", model="mlp", forget=spec, model_options={"hidden": [256, 128]}
        )
        began = time.perf_counter()
        payload = run_audit(
            setting,
            methods=METHODS,
            out=out,
            models=MODELS,
            method_options=options,
            executor="process",
            workers=args.workers,
            progress=False,
            on_plan=lambda plan, spec=spec: log(f"{spec}: {plan.describe()}"),
        )
        payload["wall_seconds"] = time.perf_counter() - began
        payload["rankings"] = rankings(payload)
        parts[spec] = payload
        log(f"{spec}: audit in {payload['wall_seconds'] / 60:.1f} min")
        html = RESULTS / ("privacy.html" if spec == SCENARIOS[0] else
                          f"privacy-{spec.replace(':', '_')}.html")  # fmt: skip
        shutil.copyfile(out / "report.html", html)
    checks = []
    for spec, payload in parts.items():
        golden_f = payload["epsilon"]["golden"]["forget_score"]
        checks.append({
            "target": f"{spec}: golden vs golden forget score >= {TARGETS['golden_forget_score']}",
            "measured": f"{golden_f:.3f}",
            "pass": golden_f >= TARGETS["golden_forget_score"],
        })  # fmt: skip
        bacc = payload["ulira"]["golden"]["online"]["balanced_accuracy"]
        checks.append({
            "target": f"{spec}: golden's U-LiRA balanced accuracy within "
                      f"{TARGETS['golden_ulira_points']:g} points of 50%",
            "measured": f"{bacc:.2f}%",
            "pass": abs(bacc - 50) <= TARGETS["golden_ulira_points"],
        })  # fmt: skip
    minutes = parts[SCENARIOS[0]]["wall_seconds"] / 60
    checks.append({
        "target": f"{SCENARIOS[0]}: audit of {len(METHODS)} methods from scratch under "
                  f"{TARGETS['audit_minutes']:g} min on 2 cores",
        "measured": f"{minutes:.1f} min" + (" (banks reused: not from scratch)" if args.reuse else ""),
        "pass": (minutes < TARGETS["audit_minutes"]) if not args.reuse else None,
    })  # fmt: skip
    payload = {
        "benchmark": "privacy",
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "targets": TARGETS,
        "methods": METHODS,
        "method_options": options,
        "models": MODELS,
        "checks": checks,
        "pass": all(c["pass"] is not False for c in checks),
        "parts": parts,
    }
    for c in checks:
        verdict = {True: "PASS", False: "FAIL", None: "SKIP"}[c["pass"]]
        log(f"{verdict}  {c['target']}: {c['measured']}")
    json_path, md_path = write("privacy", payload, render(payload))
    log(f"wrote {json_path} and {md_path} in {payload['seconds'] / 60:.1f} min")
    return 0 if payload["pass"] else 1


def render(payload: dict) -> str:
    from unlearnkit.evaluation.report import render_audit_report

    lines = [
        "# Strong privacy evaluation on MNIST-5k (MLP 256-128)",
        "",
        f"Measured by `benchmarks/privacy.py`: {payload['models']} models per side and "
        f"protocol, methods {', '.join(payload['methods'])} with the paper benchmark's tuned "
        f"options, process executor on 2 cores. Total {payload['seconds'] / 60:.1f} min.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    for c in payload["checks"]:
        verdict = {True: "pass", False: "FAIL", None: "skipped"}[c["pass"]]
        lines.append(f"| {c['target']} | {c['measured']} | {verdict} |")
    for spec, part in payload["parts"].items():
        r = part["rankings"]
        lines += [
            "",
            f"## forget `{spec}` ({part['wall_seconds'] / 60:.1f} min)",
            "",
            "Ranking, best first (golden apart): by avg_gap "
            + " < ".join(r["avg_gap"])
            + "; by ε-score "
            + " > ".join(r["epsilon"])
            + "; by U-LiRA (distance of the balanced accuracy from 50) "
            + " < ".join(r["ulira"])
            + ".",
            "",
        ]
        body = render_audit_report(part).split("\n", 2)[2]  # the table, without its title
        lines.append(body)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
