"""Baseline unlearning methods against golden on MNIST-5k and Fashion-MNIST (MLP).

Scenarios: random 10% and class:3 forgetting, 3 seeds, every baseline at its
defaults. Target: every approximate method has mean speed-up >= 5 over golden
retraining, both timed in the same run. The tables show avg_gap so the
defaults can be judged.

    .venv/bin/python benchmarks/baselines.py            # full: both data sets, 3 seeds
    .venv/bin/python benchmarks/baselines.py --quick    # MNIST-5k, 1 seed

Fashion-MNIST needs the Debian package dataset-fashion-mnist; without it that
part is skipped with a notice.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write  # noqa: E402

from unlearnkit.errors import DatasetError  # noqa: E402
from unlearnkit.evaluation.report import legend, markdown_table, summarise  # noqa: E402
from unlearnkit.experiment import Experiment, run_experiment  # noqa: E402
from unlearnkit.training import TrainConfig  # noqa: E402

METHODS = ["golden", "finetune", "gradient_ascent", "neggrad_plus", "random_label"]
FORGET = ["random:0.1", "class:3"]
SPEEDUP_TARGET = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MNIST-5k only, one seed")
    parser.add_argument(
        "--work", default="runs/benchmarks/baselines", help="cache folder for trained models"
    )
    args = parser.parse_args()
    # One thread: small MLPs gain little from two, and a single thread keeps the
    # golden-vs-method timing ratio stable when anything else shares the machine.
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    datasets = ["mnist5k"] if args.quick else ["mnist5k", "fashion_mnist"]

    # Start from an empty cache: golden's training time must be measured in this run,
    # on this machine, beside the methods it is compared with.
    shutil.rmtree(args.work, ignore_errors=True)
    sections, all_records, checks, notices = [], [], [], []
    started = time.perf_counter()
    for dataset in datasets:
        exp = Experiment(
            dataset=dataset,
            model="mlp",
            forget=FORGET,
            methods=METHODS,
            seeds=seeds,
            train=TrainConfig(),
        )
        try:
            records = run_experiment(exp, out=Path(args.work) / dataset)
        except DatasetError as exc:
            notice = f"skipped {dataset}: {exc}"
            print(notice)
            notices.append(notice)
            continue
        for rec in records:
            rec["dataset"] = dataset
        all_records += records
        sections.append(
            f"## {dataset} (MLP 256-128, 20 epochs SGD lr 0.05 for original and golden)\n"
        )
        for scenario, per_method in summarise(records).items():
            sections += [f"### forget `{scenario}`\n", markdown_table(per_method), ""]
            sections += [
                f"- {r['method']}, seed {r['seed']}: diverged (non-finite outputs), "
                "left out of the means above"
                for r in records
                if r["forget"] == scenario and r.get("diverged")
            ] + [""]
            for method, values in per_method.items():
                if method == "golden":
                    continue
                speedup = float(np.mean(values["speedup"]))
                ok = speedup >= SPEEDUP_TARGET
                checks.append(
                    {"dataset": dataset, "forget": scenario, "method": method, "speedup": speedup,
                     "target": SPEEDUP_TARGET, "pass": ok}
                )  # fmt: skip
                gaps = [g for g in values["avg_gap"] if g is not None]
                diverged = len(values["avg_gap"]) - len(gaps)
                print(
                    f"{dataset:14} {scenario:11} {method:16} speedup {speedup:7.1f}x "
                    f"(target >= {SPEEDUP_TARGET}x) avg_gap "
                    f"{np.mean(gaps) if gaps else float('nan'):6.2f}  {'ok' if ok else 'FAIL'}"
                    + (f"  ({diverged} run(s) diverged)" if diverged else "")
                )

    passed = all(c["pass"] for c in checks) and bool(checks)
    check_lines = [
        "| data set | forget | method | speed-up (mean) | target | result |",
        "|---|---|---|---|---|---|",
    ] + [
        f"| {c['dataset']} | {c['forget']} | {c['method']} | {c['speedup']:.1f}x | >= {c['target']:.0f}x | "
        f"{'pass' if c['pass'] else 'FAIL'} |"
        for c in checks
    ]
    markdown = "\n".join(
        [
            "# Baseline unlearning methods vs golden",
            "",
            f"Seeds {seeds}; every method at its documented defaults; times on "
            f"{machine()['cpus']} CPU cores, measured in the same run as golden.",
            "",
            "## Target: speed-up >= 5x over golden retraining",
            "",
            *check_lines,
            "",
            f"**Overall: {'PASS' if passed else 'FAIL'}**",
            "",
            *notices,
            *sections,
            legend(),
            "",
            "Regenerate with `.venv/bin/python benchmarks/baselines.py`.",
            "",
        ]
    )
    payload = {
        "benchmark": "baselines",
        "seeds": seeds,
        "methods": METHODS,
        "forget": FORGET,
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "checks": checks,
        "pass": passed,
        "notices": notices,
        "records": all_records,
    }
    json_path, md_path = write(
        "baselines" if not args.quick else "baselines-quick", payload, markdown
    )
    print(f"wrote {json_path} and {md_path}; overall {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
