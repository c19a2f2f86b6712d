"""What a leaking preprocessing does to golden, measured against the model-owned one.

Golden is the reference every gap is measured against, so it must never see a
forgotten sample. Before models owned their preprocessing, every feature was
standardised with statistics of the whole train part (retain ∪ forget) when the
data set loaded. This script trains golden both ways, in the same run, on the
tabular data sets, forgetting one whole class:

- **model-owned** (today): ``uk.models.make`` puts a ``Standardize`` step in the
  model, fitted by ``uk.train`` on the retained samples only;
- **leaky** (the old behaviour, rebuilt here on purpose as the baseline): the
  features are standardised with train-part statistics, forget set included,
  and the model has no preprocessing of its own.

Golden has never seen the forgotten class, so it cannot classify it: its UA
must be 100 (target). The leaky golden can, because the forgotten samples moved
the scaling of the inputs it learned from. A second check retrains golden on a
twin data set whose forgotten rows hold noise and requires bit-identical weights
and buffers (the model-owned golden only).

    .venv/bin/python benchmarks/preprocessing_leak.py      # about a minute on 2 cores

Writes benchmarks/results/preprocessing_leak.{json,md}; exit status 1 if a target is missed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write  # noqa: E402

import unlearnkit as uk  # noqa: E402

CELLS = [("breast_cancer", "class:0"), ("breast_cancer", "class:1"), ("wine", "class:1"),
         ("wine", "class:0"), ("digits", "class:3")]  # fmt: skip
MODELS = ["logreg", "mlp"]
SEEDS = [0, 1, 2]
UA_TARGET = 100.0


def _leaky_copy(split: uk.ForgetSplit) -> uk.ForgetSplit:
    """The split standardised with statistics of all of train, forget set included."""
    X = split.train.X.double()
    mean, std = X.mean(0), X.std(0, unbiased=False)
    std = torch.where(std < 1e-8, torch.ones_like(std), std)
    scale = lambda s: uk.datasets.Split(ids=s.ids, X=((s.X - mean) / std).float(), y=s.y)
    return uk.ForgetSplit(
        train=scale(split.train), retain=scale(split.retain), forget=scale(split.forget),
        test=scale(split.test), spec=split.spec, seed=split.seed, num_classes=split.num_classes,
    )  # fmt: skip


def _same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _noised_twin(name: str, spec: str, split: uk.ForgetSplit, seed: int) -> uk.ForgetSplit:
    data = uk.datasets.load(name, seed=0)
    full = torch.cat([data.train.X, data.test.X])
    ids = torch.cat([data.train.ids, data.test.ids])
    y = torch.cat([data.train.y, data.test.y])
    order = torch.argsort(ids)
    X, y = full[order].numpy().copy(), y[order].numpy()
    rows = split.forget.ids.numpy()
    X[rows] = np.random.default_rng(seed).uniform(-100, 100, size=(len(rows), X.shape[1]))
    twin = uk.datasets.from_arrays(X, y, seed=0, name=name)
    return uk.select_forget(twin, spec, seed=0)


def main() -> int:
    rows, records = [], []
    for name, spec in CELLS:
        data = uk.datasets.load(name, seed=0)
        split = uk.select_forget(data, spec, seed=0)
        leaky = _leaky_copy(split)
        for model in MODELS:
            options = {"hidden": (64,)} if model == "mlp" else {}
            cell = {"dataset": name, "forget": spec, "model": model, "seeds": SEEDS}
            for variant, part, prep in (("model-owned", split, "auto"), ("leaky", leaky, "none")):
                template = uk.models.make(model, data, preprocessing=prep, **options)
                metrics = []
                for seed in SEEDS:
                    golden = uk.train(template, part.retain, seed=seed)
                    metrics.append(uk.evaluate(golden, part, seed=seed))
                cell[variant] = {
                    k: float(np.mean([m[k] for m in metrics])) for k in ("UA", "RA", "TA", "MIA")
                }
                cell[variant]["UA_per_seed"] = [m["UA"] for m in metrics]
            # A sample-free golden must not change when only the forgotten rows change.
            twin = _noised_twin(name, spec, split, seed=5)
            template = uk.models.make(model, data, **options)
            cell["bit_identical_on_noised_twin"] = _same_state(
                uk.train(template, split.retain, seed=0), uk.train(template, twin.retain, seed=0)
            )
            records.append(cell)
            ok = cell["model-owned"]["UA"] >= UA_TARGET and cell["bit_identical_on_noised_twin"]
            rows.append(
                f"| {name} | `{spec}` | {model} | {cell['model-owned']['UA']:.1f} | "
                f"{cell['leaky']['UA']:.1f} | {cell['model-owned']['TA']:.1f} | "
                f"{cell['leaky']['TA']:.1f} | {cell['model-owned']['MIA']:.1f} | "
                f"{cell['leaky']['MIA']:.1f} | {'yes' if cell['bit_identical_on_noised_twin'] else 'NO'}"
                f" | {'pass' if ok else 'FAIL'} |"
            )
            print(rows[-1], flush=True)
    passed = all(
        r["model-owned"]["UA"] >= UA_TARGET and r["bit_identical_on_noised_twin"] for r in records
    )
    markdown = "\n".join(
        [
            "# Golden with model-owned vs leaky preprocessing",
            "",
            f"Machine: {machine()['cpus']} CPU cores, torch {machine()['torch']}. Golden = the "
            "model trained from scratch on the retained samples (20 epochs SGD lr 0.05, the "
            f"`unlearnkit run` defaults), mean over seeds {SEEDS}. *Leaky* standardises the "
            "features with statistics of the whole train part, forget set included (what the "
            "data loaders did before models owned their preprocessing), and is the baseline "
            "rebuilt in this run. UA, TA, MIA in %.",
            "",
            f"Target: the model-owned golden's UA = {UA_TARGET:.0f} on every whole-class forget "
            "(it never saw the class), and it is bit-identical when only the forgotten rows' "
            "features change.",
            "",
            "| data set | forget | model | UA owned | UA leaky | TA owned | TA leaky | "
            "MIA owned | MIA leaky | bit-identical twin | result |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|",
            *rows,
            "",
            f"**Overall: {'PASS' if passed else 'FAIL'}**",
            "",
            "Regenerate: `.venv/bin/python benchmarks/preprocessing_leak.py`.",
            "",
        ]
    )
    write("preprocessing_leak", {"machine": machine(), "cells": records, "pass": passed}, markdown)
    print(f"overall: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
