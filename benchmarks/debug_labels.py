"""Mislabelled-data discovery (issue 13, part 5): ``debug-labels`` on digits and MNIST-5k.

Flips a seeded 10% of the training labels, trains the MLP (the default recipe), and
ranks the training samples by PUMA's harm score (validation-loss criterion), by
loss, by gradient-norm self-influence and at random. Writes each run's curve (PNG)
and areas under it to ``benchmarks/results/debug_labels/<dataset>/`` and a summary
to ``benchmarks/results/debug_labels.{json,md}``.

Target (printed beside the measured values, checked): on MNIST-5k, PUMA's area beats
the random order's and the loss ranking's.

Run: ``python benchmarks/debug_labels.py`` (about 1 minute on 2 cores).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write  # noqa: E402

from unlearnkit.debugging import RANKINGS, LabelDebugging, run_label_debugging  # noqa: E402

DATASETS = ("digits", "mnist5k")


def main() -> int:
    torch.set_num_threads(1)
    started = time.perf_counter()
    runs = {}
    for name in DATASETS:
        job = LabelDebugging(dataset=name, model="mlp", flip=0.1, seed=0)
        record = run_label_debugging(job, out=RESULTS / "debug_labels" / name, progress=False)
        runs[name] = {
            k: record[k]
            for k in ("n_train", "n_flipped", "auc", "auc_perfect", "seconds", "puma_solve")
        }
        print(name, {k: round(v, 3) for k, v in record["auc"].items()}, flush=True)
    auc = runs["mnist5k"]["auc"]
    checks = [
        {"target": "mnist5k: PUMA's area beats random order", "measured": f"{auc['puma']:.3f} vs {auc['random']:.3f}",
         "pass": auc["puma"] > auc["random"]},
        {"target": "mnist5k: PUMA's area beats loss ranking", "measured": f"{auc['puma']:.3f} vs {auc['loss']:.3f}",
         "pass": auc["puma"] > auc["loss"]},
    ]  # fmt: skip
    payload = {"benchmark": "debug_labels", "machine": machine(), "runs": runs, "checks": checks,
               "pass": all(c["pass"] for c in checks), "seconds": time.perf_counter() - started}  # fmt: skip
    lines = [
        "# Finding flipped labels: PUMA's harm score vs loss, self-influence and random order",
        "",
        "Measured by `benchmarks/debug_labels.py` (`unlearnkit debug-labels`, MLP 256-128, "
        "default recipe, 10% of training labels flipped, a clean 10% validation split, seed 0). "
        "Area under 'fraction of flipped labels found vs fraction inspected': random 0.5, "
        "perfect 1 − 0.1/2 = 0.95.",
        "",
        "| target | measured | result |",
        "|---|---|---|",
        *[
            f"| {c['target']} | {c['measured']} | {'pass' if c['pass'] else 'FAIL'} |"
            for c in checks
        ],
        "",
        f"**Overall: {'PASS' if payload['pass'] else 'FAIL'}**",
        "",
        "| data set | flipped / train | " + " | ".join(RANKINGS) + " |",
        "|---|---|" + "---|" * len(RANKINGS),
    ]
    for name, run in runs.items():
        areas = " | ".join(f"{run['auc'][r]:.3f}" for r in RANKINGS)
        lines.append(f"| {name} | {run['n_flipped']} / {run['n_train']} | {areas} |")
    lines += [
        "",
        "Curves: " + ", ".join(f"[{n}](debug_labels/{n}/debug_labels.png)" for n in runs),
        "",
    ]
    for c in checks:
        print(f"{'PASS' if c['pass'] else 'FAIL'}  {c['target']}: {c['measured']}")
    write("debug_labels", payload, "\n".join(lines) + "\n")
    return 0 if payload["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
