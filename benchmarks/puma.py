"""PUMA benchmark (issue 13): PUMA beside golden, fine-tuning, IU, the paper's best and SISA.

Settings (seed 0, the library's default recipe: 20 epochs SGD, lr 0.05, batch 64):

- ``mnist5k`` with the MLP 256-128;
- ``fashion_mnist`` (all 60 000 training samples) with the MLP 256-128;
- ``logreg``: multinomial logistic regression on MNIST-5k, where ``certified_logreg``
  joins.

Scenarios: random 1%, random 10% and class-wise (class 3) removal. Each runs through
:func:`unlearnkit.experiment.run_experiment` (UA/RA/TA/MIA, avg_gap vs golden, time
vs golden) with a validation split of 10% of the training part held out for every
model (PUMA's criterion). Beside it, for random 1%:

- time per request: PUMA's cache built once (timed), then each request's patch
  (timed), amortised over 1, 10 and 100 requests; golden's retraining and SISA
  (S = 10 shards, R = 5 slices) serving the same request;
- η sensitivity: UA, MIA and TA for η in 0.25..8 (cache reused);
- peak memory: the peak resident set of a fresh process that loads the data and
  the original, then runs PUMA's cache build and one patch, or golden's retraining.

Targets (printed beside the measured values, checked):

- Fashion-MNIST: PUMA's time per request (patch, cache excluded) <= 10% of golden;
- every setting: PUMA's TA within 1 point of the original model after random 1%.

Run: ``python benchmarks/puma.py`` (about 30 minutes on 2 cores), ``--quick`` for
MNIST-5k and logreg only, ``--serving-only`` to measure serving, the η sweep and
memory again on a quiet machine while keeping the last comparison (minutes). Results: ``benchmarks/results/puma.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, write  # noqa: E402

import unlearnkit as uk  # noqa: E402
from unlearnkit import checkpoint  # noqa: E402
from unlearnkit.errors import DatasetError  # noqa: E402
from unlearnkit.evaluation import evaluate  # noqa: E402
from unlearnkit.experiment import Experiment, run_experiment  # noqa: E402
from unlearnkit.training import TrainConfig  # noqa: E402

SEED = 0
SCENARIOS = ["random:0.01", "random:0.1", "class:3"]
ETAS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
AMORTISED_OVER = [1, 10, 100]
SISA_OPTIONS = {"shards": 10, "slices": 5}
TARGETS = {"time_fraction": 0.10, "ta_drop": 1.0}
METRICS = ("UA", "RA", "TA", "MIA", "avg_gap")


def log(message: str) -> None:
    print(message, flush=True)


def paper_best() -> tuple[str, dict]:
    """The paper benchmark's best method (lowest tuning score) and its tuned options."""
    path = RESULTS / "paper.json"
    if not path.exists():
        return "rbm", {"lr": 0.03, "epochs": 2, "keep": 0.1}
    tuning = json.loads(path.read_text())["tuning"]
    scores = {m: min(t["score"] for t in trials) for m, trials in tuning["trials"].items()}
    best = min(scores, key=scores.get)
    return best, tuning["chosen"][best]


def finetune_options() -> dict:
    path = RESULTS / "paper.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text())["tuning"]["chosen"].get("finetune", {})


def _high_water_mark() -> int:
    """Peak resident set (bytes) of this process's address space, from /proc (Linux).

    Not ``getrusage``: Linux carries ``ru_maxrss`` across ``exec``, so a spawned child
    would report its parent's peak; ``VmHWM`` belongs to the new address space.
    """
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _peak_rss_child(setting: dict, out: str, step: str) -> tuple[int, int]:
    """In a fresh process: load the inputs, then run one step; (loaded, peak) RSS bytes."""
    torch.set_num_threads(1)
    data = uk.datasets.load(setting["dataset"], seed=0)
    split = uk.select_forget(data, SCENARIOS[0], seed=SEED, validation=0.1)
    original, _ = checkpoint.load(Path(out) / "cache" / f"seed{SEED}" / "original")
    loaded = _high_water_mark()
    if step == "puma":  # the cache build and one patch
        uk.methods.get("puma")(seed=SEED).unlearn(original, split)
    else:
        template = uk.models.make(
            setting["model"], data, **({"hidden": setting["hidden"]} if "hidden" in setting else {})
        )
        uk.train(template, split.retain, seed=SEED, config=TrainConfig())
    return loaded, _high_water_mark()


def peak_memory(setting: dict, out: Path, step: str) -> dict:
    """Peak resident set of a fresh process that loads the data and model, then runs ``step``.

    A fresh process per step, because a high-water mark in a process whose heap has
    already grown (earlier steps) reads as no growth at all.
    """
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        loaded, peak = pool.apply(_peak_rss_child, (setting, str(out), step))
    return {"peak_mib": peak / 2**20, "loaded_mib": loaded / 2**20,
            "growth_mib": max(0, peak - loaded) / 2**20}  # fmt: skip


def settings(quick: bool) -> list[dict]:
    out = [
        {"key": "mnist5k", "dataset": "mnist5k", "model": "mlp", "hidden": [256, 128]},
        {"key": "logreg", "dataset": "mnist5k", "model": "logreg"},
    ]
    if not quick:
        out.insert(1, {"key": "fashion_mnist", "dataset": "fashion_mnist", "model": "mlp",
                       "hidden": [256, 128]})  # fmt: skip
    return out


def run_setting(setting: dict, work: Path) -> dict:
    best, best_options = paper_best()
    names = ["golden", "finetune", "influence", "puma", best, "sisa"]
    if setting["model"] == "logreg":
        names.insert(4, "certified_logreg")
    options = {"finetune": finetune_options(), best: best_options, "sisa": SISA_OPTIONS}
    exp = Experiment(
        dataset=setting["dataset"],
        model=setting["model"],
        model_options={"hidden": setting["hidden"]} if "hidden" in setting else {},
        forget=SCENARIOS,
        methods=names,
        seeds=[SEED],
        method_options=options,
        validation=0.1,
        mia_max_samples=2000,
    )
    out = work / setting["key"]
    started = time.perf_counter()
    records = run_experiment(exp, out=out, progress=False)
    log(f"{setting['key']}: comparison in {time.perf_counter() - started:.0f} s")
    original = {}
    for spec in SCENARIOS:
        split = uk.select_forget(
            uk.datasets.load(setting["dataset"], seed=0), spec, seed=SEED, validation=0.1
        )
        model, _ = checkpoint.load(out / "cache" / f"seed{SEED}" / "original")
        original[spec] = evaluate(model, split, mia_max_samples=2000, seed=SEED)
    extras = serving(setting, out)
    return {"records": records, "original": original, **extras, "methods": names}


def serving(setting: dict, out: Path) -> dict:
    """Random 1%: PUMA's cache and patch timed apart, η sweep, memory, golden's time."""
    spec = SCENARIOS[0]
    data = uk.datasets.load(setting["dataset"], seed=0)
    split = uk.select_forget(data, spec, seed=SEED, validation=0.1)
    original, _ = checkpoint.load(out / "cache" / f"seed{SEED}" / "original")
    golden, golden_meta = checkpoint.load(out / "cache" / f"seed{SEED}" / "golden-random_0.01")
    golden_metrics = evaluate(golden, split, mia_max_samples=2000, seed=SEED)
    method = uk.methods.get("puma")(seed=SEED)
    started = time.perf_counter()
    cache = method.build_cache(original, split)
    cache_seconds = time.perf_counter() - started
    patches = []
    for _ in range(3):  # the patch alone, three times (the median is reported)
        started = time.perf_counter()
        patched = method.unlearn(original, split, cache=cache)
        patches.append(time.perf_counter() - started)
    patch_seconds = sorted(patches)[1]
    template = uk.models.make(
        setting["model"], data, **({"hidden": setting["hidden"]} if "hidden" in setting else {})
    )
    retrained = uk.train(template, split.retain, seed=SEED, config=TrainConfig())
    golden_seconds = retrained.train_info["seconds"]
    sweep = []
    for eta in ETAS:
        model = uk.methods.get("puma")(seed=SEED, scale=eta).unlearn(original, split, cache=cache)
        metrics = evaluate(
            model, split, golden=golden, golden_metrics=golden_metrics,
            mia_max_samples=2000, seed=SEED,
        )  # fmt: skip
        sweep.append({"eta": eta, **{k: metrics[k] for k in METRICS}})
    return {
        "serving": {
            "cache_seconds": cache_seconds,
            "patch_seconds": patch_seconds,
            "patch_runs": patches,
            "golden_seconds": golden_seconds,
            "golden_cached_seconds": golden_meta["train_info"]["seconds"],
            "amortised": {str(r): patch_seconds + cache_seconds / r for r in AMORTISED_OVER},
            "patch_info": {k: v for k, v in patched.unlearn_info.items() if k != "cache_solve"},
            "cache_solve": cache.solve.report(),
        },
        "eta_sweep": sweep,
        "memory_mib": {
            "puma_cache_and_patch": peak_memory(setting, out, "puma"),
            "golden_training": peak_memory(setting, out, "golden"),
        },
    }


def record_of(part: dict, method: str, spec: str) -> dict:
    return next(r for r in part["records"] if r["method"] == method and r["forget"] == spec)


def checks(parts: dict) -> list[dict]:
    out = []
    for key, part in parts.items():
        puma = record_of(part, "puma", SCENARIOS[0])
        drop = part["original"][SCENARIOS[0]]["TA"] - puma["TA"]
        out.append({
            "target": f"{key}: PUMA's TA within {TARGETS['ta_drop']:g} point of the original after random 1%",
            "measured": f"original {part['original'][SCENARIOS[0]]['TA']:.2f}, PUMA {puma['TA']:.2f} (drop {drop:.2f})",
            "pass": drop <= TARGETS["ta_drop"],
        })  # fmt: skip
    if "fashion_mnist" in parts:
        serving = parts["fashion_mnist"]["serving"]
        fraction = serving["patch_seconds"] / serving["golden_seconds"]
        out.append({
            "target": f"fashion_mnist: PUMA's time per request <= {TARGETS['time_fraction']:.0%} of golden's retraining (cache apart)",
            "measured": f"{serving['patch_seconds']:.2f} s vs golden {serving['golden_seconds']:.1f} s = {fraction:.1%} "
                        f"(cache {serving['cache_seconds']:.2f} s once; amortised over 10 requests "
                        f"{serving['amortised']['10'] / serving['golden_seconds']:.1%})",
            "pass": fraction <= TARGETS["time_fraction"],
        })  # fmt: skip
    return out


def fmt(x) -> str:
    return "–" if x is None else f"{x:.2f}"


def render(payload: dict) -> str:
    lines = [
        "# PUMA beside golden, fine-tuning, IU, the paper's best method and SISA",
        "",
        "Measured by `benchmarks/puma.py` (seed 0; the default recipe, 20 epochs SGD; a 10% "
        "validation split held out of every training). UA/RA/TA/MIA in percent; avg_gap is the "
        "mean |metric − golden's| over UA, RA, TA, MIA; time in wall seconds on a shared "
        "2-core machine (noisy). Original = the model before any removal.",
        "",
        f"Machine: {payload['machine']['cpus']} CPUs, torch {payload['machine']['torch']}, "
        f"{payload['machine']['torch_threads']} torch threads.",
        "",
        *(
            [
                f"Serving, the η sweep and memory re-measured with `--serving-only` on "
                f"{payload['machine']['date']} (no other benchmark running); the comparison tables come "
                "from the full run before it.",
                "",
            ]
            if payload.get("serving_only")
            else []
        ),
        "## Targets",
        "",
        "| target | measured | result |",
        "|---|---|---|",
    ]
    for c in payload["checks"]:
        lines.append(f"| {c['target']} | {c['measured']} | {'pass' if c['pass'] else 'FAIL'} |")
    lines += ["", f"**Overall: {'PASS' if payload['pass'] else 'FAIL'}**", ""]
    for key, part in payload["parts"].items():
        lines += [f"## {key}", "", "| scenario | method | UA | RA | TA | MIA | avg_gap | time s | speed-up vs golden |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for spec in SCENARIOS:
            o = part["original"][spec]
            lines.append(
                f"| {spec} | original | {fmt(o['UA'])} | {fmt(o['RA'])} | {fmt(o['TA'])} | {fmt(o['MIA'])} | | | |"
            )
            for name in part["methods"]:
                r = record_of(part, name, spec)
                lines.append(
                    f"| {spec} | {name} | {fmt(r['UA'])} | {fmt(r['RA'])} | {fmt(r['TA'])} | "
                    f"{fmt(r['MIA'])} | {fmt(r['avg_gap'])} | {r['time_s']:.2f} | {r['speedup']:.1f}x |"
                )  # fmt: skip
        s = part["serving"]
        sisa = record_of(part, "sisa", SCENARIOS[0])
        mem = part["memory_mib"]
        lines += [
            "",
            f"Serving random 1% ({record_of(part, 'puma', SCENARIOS[0])['n_forget']} samples) — "
            f"PUMA cache {s['cache_seconds']:.2f} s once (CG {s['cache_solve']['iterations']} "
            f"iterations, residual {s['cache_solve']['residual']:.1e}); patch {s['patch_seconds']:.2f} s "
            f"per request; amortised per request over "
            + ", ".join(f"{r} requests {s['amortised'][str(r)]:.2f} s" for r in AMORTISED_OVER)
            + f"; golden retraining {s['golden_seconds']:.1f} s; SISA serving the same request "
            f"{sisa['time_s']:.2f} s (exact). Peak resident memory of a fresh process (data and "
            f"original loaded: {mem['golden_training']['loaded_mib']:.0f} MiB): PUMA cache + patch "
            f"{mem['puma_cache_and_patch']['peak_mib']:.0f} MiB, golden training "
            f"{mem['golden_training']['peak_mib']:.0f} MiB.",
            "",
            "η sensitivity (random 1%):",
            "",
            "| η | UA | MIA | TA | avg_gap |",
            "|---|---|---|---|---|",
        ]
        for row in part["eta_sweep"]:
            lines.append(
                f"| {row['eta']:g} | {fmt(row['UA'])} | {fmt(row['MIA'])} | {fmt(row['TA'])} | {fmt(row['avg_gap'])} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="MNIST-5k and logreg only")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-puma"))
    parser.add_argument(
        "--serving-only",
        action="store_true",
        help="keep the comparison of the last results (benchmarks/results/puma.json) and "
        "measure again only serving, the η sweep and memory (needs the cached models in --work)",
    )
    args = parser.parse_args()
    previous = json.loads((RESULTS / "puma.json").read_text())["parts"] if args.serving_only else {}
    torch.set_num_threads(1)  # timings on one core, like the other benchmarks
    started = time.perf_counter()
    parts = {}
    for setting in settings(args.quick):
        try:
            if args.serving_only:
                part = previous[setting["key"]]
                part.update(serving(setting, args.work / setting["key"]))
                part["serving_remeasured"] = machine()["date"]
                parts[setting["key"]] = part
            else:
                parts[setting["key"]] = run_setting(setting, args.work)
        except DatasetError as exc:
            log(f"skipping {setting['key']}: {exc}")
    results = checks(parts)
    payload = {
        "benchmark": "puma",
        "quick": args.quick,
        "serving_only": args.serving_only,
        "machine": machine(),
        "seconds": time.perf_counter() - started,
        "targets": TARGETS,
        "checks": results,
        "pass": all(c["pass"] for c in results),
        "parts": parts,
    }
    for c in results:
        log(f"{'PASS' if c['pass'] else 'FAIL'}  {c['target']}: {c['measured']}")
    json_path, md_path = write("puma", payload, render(payload))
    log(f"wrote {json_path} and {md_path} in {payload['seconds'] / 60:.1f} min")
    return 0 if payload["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
