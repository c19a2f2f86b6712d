"""SISA benchmark (issue 5): forgetting speed-up, measured against the cost model.

For every shards S x slices R it fits SISA (serially and with 2 worker
processes), then serves K uniform deletion requests, batched and one by one,
and compares the wall time with full monolithic retraining, measured in the
same run. The cost model of spec/sisa.md predicts the same speed-up from
sample-passes; measured / predicted close to 1 means the engine adds little
beyond training.

    python benchmarks/sisa.py            # full grid, writes benchmarks/results/sisa.{json,md}
    python benchmarks/sisa.py --quick    # small smoke run, writes runs/benchmarks/sisa.*

Exit status 1 when a target is missed (a FAIL line says which).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import unlearnkit as uk
from unlearnkit.errors import DatasetError
from unlearnkit.exact.partitioned.store import PartStore
from unlearnkit.exact.partitioned.worker import torch_threads
from unlearnkit.exact.sisa import SISA
from unlearnkit.exact.sisa_plan import expected_sample_passes, retrain_sample_passes, step_epochs
from unlearnkit.runtime import ProcessExecutor, SerialExecutor
from unlearnkit.training import TrainConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_counters, linked_copy, steal_fraction  # noqa: E402

FULL = {
    "dataset": "fashion_mnist",
    "limit": None,
    "hidden": [256, 128],
    "epochs": 6,
    "shards": [1, 5, 10, 20],
    "slices": [1, 5, 10],
    "requests": [1, 8, 32],
    "trial_budget": 1.0,  # batched: repeat a cell while its expected cost stays within 1 retraining
    "max_trials": 10,
    "one_by_one_budget": 1.5,  # one by one: measure when expected cost <= 1.5 retrainings
}
QUICK = {  # the corners of the grid on a third of the data: a preview in about 2 minutes
    **FULL,
    "limit": 20000,
    "shards": [1, 20],
    "slices": [1, 10],
    "requests": [1, 8],
}
TARGETS = {
    "ratio_min": 0.8,  # measured / predicted speed-up, every measured cell with K <= 8
    "ratio_max_requests": 8,
    "speedup_cell": [20, 10, 8],  # S, R, K batched
    "speedup_min": 4.0,
    "parallel_workers": 2,
    "parallel_min": 1.6,  # fit with 2 processes vs serial, where shards split evenly (S/ceil(S/2) = 2)
}
SEED = 0
FIT_REPEATS = 3  # serial and parallel fits per cell, alternating; the best of each counts


def log(message: str) -> None:
    print(message, flush=True)


def load_data(settings: dict):
    options = {"limit": settings["limit"]} if settings["limit"] else {}
    try:
        return uk.datasets.load(settings["dataset"], **options), settings["dataset"]
    except DatasetError as exc:
        log(f"{settings['dataset']} unavailable ({exc}); falling back to mnist5k")
        return uk.datasets.load("mnist5k", seed=SEED), "mnist5k"


def request_ids(train, k: int, trial: int) -> list[int]:
    """K distinct train ids, uniform; the same for every (S, R) so cells are comparable."""
    rng = np.random.default_rng([SEED, k, trial])
    return sorted(rng.choice(train.ids.numpy(), size=k, replace=False).tolist())


def predicted_passes(sisa: SISA, ids: list[int]) -> int:
    """The cost model on the actual requests: per hit shard, redo the steps from the
    earliest affected slice on what remains (spec/sisa.md, "Cost model")."""
    shard, slice_ = sisa.locate(ids)
    total = 0
    for s in np.unique(shard):
        sizes = list(sisa.slice_sizes_[s])
        for r in slice_[shard == s]:
            sizes[r] -= 1
        total += retrain_sample_passes(sizes, sisa.step_epochs_, int(slice_[shard == s].min()) + 1)
    return total


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def monolithic(data, settings, config):
    model = uk.models.make("mlp", data, hidden=settings["hidden"])
    train(model, data.train.take(torch.arange(256)), seed=SEED, config=config.replace(epochs=1))
    fitted, fit_s = timed(lambda: train(model, data.train, seed=SEED, config=config))
    mono = {"fit_s": fit_s, "retrain_runs_s": [], "TA": uk.accuracy(fitted, data.test)}
    return monolithic_retrain(data, settings, config, mono)


def monolithic_retrain(data, settings, config, mono: dict) -> dict:
    """Time one more monolithic retraining and update the rate that prices sample-passes.

    The rate is the mean over every monolithic run (the fit, and retrainings at the
    start and end of the grid), so a slow or fast spell of the machine at one moment
    does not move every measured speed-up of the run."""
    model = uk.models.make("mlp", data, hidden=settings["hidden"])
    without = data.train.without(request_ids(data.train, 8, 0))
    mono["retrain_runs_s"].append(timed(lambda: train(model, without, seed=SEED, config=config))[1])
    mono["retrain_s"] = float(np.mean(mono["retrain_runs_s"]))
    runs = [mono["fit_s"], *mono["retrain_runs_s"]]
    passes = config.epochs * (len(data.train) + len(mono["retrain_runs_s"]) * len(without))
    mono["seconds_per_sample_pass"] = sum(runs) / passes
    mono["spread"] = (max(runs) - min(runs)) / float(np.mean(runs))
    return mono


def run(settings: dict, work: Path) -> dict:
    default_threads = torch.get_num_threads()  # what monolithic training uses by default
    torch.set_num_threads(1)  # every grid timing below compares one core with one core
    data, dataset = load_data(settings)
    n, e0 = len(data.train), settings["epochs"]
    config = TrainConfig(epochs=e0)
    log(f"data {dataset}: {n} train, {len(data.test)} test; MLP {settings['hidden']}, e0 = {e0}")
    mono = monolithic(data, settings, config)
    rate = mono["seconds_per_sample_pass"]
    unit = rate * e0 * n  # one monolithic retraining, the budget unit below
    log(
        f"monolithic: fit {mono['fit_s']:.1f} s, retrain {mono['retrain_s']:.1f} s, "
        f"TA {mono['TA']:.2f}%"
    )

    workers = TARGETS["parallel_workers"]
    pool, pool_start_s = timed(lambda: ProcessExecutor(workers).start())
    log(f"process pool of {workers} started in {pool_start_s:.1f} s (paid once, not in fit times)")
    fits, cells, as_run = [], [], None
    S_t, R_t, K_t = TARGETS["speedup_cell"]
    try:
        for S in settings["shards"]:
            for R in settings["slices"]:
                fits.append(fit_cell(data, settings, config, S, R, work, pool))
                cells += forget_cells(data, settings, S, R, work, unit)
                if (S_t, R_t) == (S, R) and K_t in settings["requests"]:
                    as_run = default_executors(data, settings, config, work, default_threads)
                shutil.rmtree(work / f"S{S}-R{R}")
    finally:
        pool.close()
    aware = distribution_aware(data, settings, config, work)
    carried = carried_optimizer(data, settings, config, work, unit)
    monolithic_retrain(data, settings, config, mono)
    for cell in [*cells, *carried["cells"]]:
        if cell["measured"]:
            price(cell, mono["seconds_per_sample_pass"])
    log(
        f"monolithic retraining at the end: {mono['retrain_runs_s'][-1]:.1f} s; speed-ups "
        f"re-priced with the mean rate of all {len(mono['retrain_runs_s']) + 1} monolithic runs "
        f"(spread {100 * mono['spread']:.1f}%)"
    )
    return {
        "dataset": dataset,
        "train_megabytes": data.train.X.numel() * data.train.X.element_size() / 1e6,
        "n_train": n,
        "n_test": len(data.test),
        "monolithic": mono,
        "pool_start_s": pool_start_s,
        "fits": fits,
        "cells": cells,
        "default_executors": as_run,
        "distribution_aware": aware,
        "carry_optimizer": carried,
    }


def fit_cell(data, settings, config, S, R, work, pool) -> dict:
    options = dict(
        model="mlp",
        model_options={"hidden": settings["hidden"]},
        shards=S,
        slices=R,
        epochs=settings["epochs"],
        training=config,
        seed=SEED,
    )
    store = work / f"S{S}-R{R}"
    sisa, serial_s = timed(
        lambda: SISA(**options, executor=SerialExecutor(), store=store).fit(data.train)
    )
    record = {
        "S": S,
        "R": R,
        "step_epochs": sisa.step_epochs_[0],
        "fit_passes_vs_unsliced": sisa.step_epochs_[0] * (R + 1) / 2 / settings["epochs"],
        "fit_serial_runs_s": [serial_s],
        "TA_vote": sisa.accuracy(data.test),
        "disk_bytes": sisa.status()["disk_bytes"],
    }
    sisa.aggregation = "softmax"
    record["TA_softmax"] = sisa.accuracy(data.test)
    ideal = S / math.ceil(S / pool.workers)
    record["parallel_ideal"] = ideal
    if S > 1:
        # Serial and parallel fits alternate, FIT_REPEATS each; the best of each is
        # compared, so a slow spell of a shared machine does not decide the ratio.
        steps = lambda p: [
            [e["sha256"] for e in sh["steps"]] for sh in PartStore(p).read_state()["parts"]
        ]
        again = work / f"S{S}-R{R}-again"
        record["fit_parallel_runs_s"], record["parallel_identical_bits"] = [], True
        for repeat in range(FIT_REPEATS):
            if repeat:
                record["fit_serial_runs_s"].append(
                    timed(
                        lambda: SISA(**options, executor=SerialExecutor(), store=again).fit(
                            data.train
                        )
                    )[1]
                )
                shutil.rmtree(again)
            record["fit_parallel_runs_s"].append(
                timed(lambda: SISA(**options, executor=pool, store=again).fit(data.train))[1]
            )
            record["parallel_identical_bits"] &= steps(store) == steps(again)
            shutil.rmtree(again)
        record["fit_parallel_s"] = min(record["fit_parallel_runs_s"])
    serial_s = record["fit_serial_s"] = min(record["fit_serial_runs_s"])
    if S > 1:
        record["parallel_speedup"] = serial_s / record["fit_parallel_s"]
    log(
        f"S={S:2d} R={R:2d}: fit {serial_s:6.1f} s serial"
        + (
            f", {record['fit_parallel_s']:6.1f} s with {pool.workers} processes "
            f"({record['parallel_speedup']:.2f}x, ideal {ideal:.2f}x)"
            if S > 1
            else ""
        )
        + f"; TA vote {record['TA_vote']:.2f}%, softmax {record['TA_softmax']:.2f}%"
    )
    return record


def forget_cells(data, settings, S, R, work, unit, *, store=None) -> list[dict]:
    n, e0 = len(data.train), settings["epochs"]
    epochs = step_epochs(e0, R)
    store = store or work / f"S{S}-R{R}"
    seconds_per_pass = unit / (e0 * n)
    cells = []
    for K in settings["requests"]:
        expected = expected_sample_passes(n=n, shards=S, slices=R, epochs=epochs, requests=K)
        trials = batched_trials(settings, n, S, R, K)
        base = {"S": S, "R": R, "K": K, "expected_speedup": e0 * (n - K) / expected}
        seconds = passes = shards = 0
        matches = True
        for trial in range(trials):
            ids = request_ids(data.train, K, trial)
            copy = linked_copy(store, work / "forget")
            sisa = SISA.load(copy, executor=SerialExecutor())
            predicted = predicted_passes(sisa, ids)
            report, wall = timed(lambda: sisa.forget(ids))  # noqa: B023
            matches &= report.sample_passes == predicted
            seconds, passes, shards = (
                seconds + wall,
                passes + predicted,
                shards + len(report.parts),
            )
            shutil.rmtree(copy)
        cells.append(
            _cell(
                base,
                "batched",
                trials,
                seconds,
                passes,
                shards,
                matches,
                trials,
                K,
                e0,
                n,
                seconds_per_pass,
            )
        )
        one_cost = K * expected_sample_passes(n=n, shards=S, slices=R, epochs=epochs, requests=1)
        if K > 1 and one_cost / (e0 * n) <= settings["one_by_one_budget"]:
            ids = request_ids(data.train, K, 0)
            copy = linked_copy(store, work / "forget")
            sisa = SISA.load(copy, executor=SerialExecutor())
            seconds = passes = shards = 0
            matches = True
            for i in ids:
                predicted = predicted_passes(sisa, [i])
                report, wall = timed(lambda: sisa.forget([i]))  # noqa: B023
                matches &= report.sample_passes == predicted
                seconds, passes, shards = seconds + wall, passes + predicted, shards + 1
            shutil.rmtree(copy)
            one = {**base, "expected_speedup": e0 * (n - 1) * K / one_cost}
            cells.append(
                _cell(
                    one,
                    "one-by-one",
                    1,
                    seconds,
                    passes,
                    shards,
                    matches,
                    K,
                    K,
                    e0,
                    n,
                    seconds_per_pass,
                )
            )
        elif K > 1:
            cells.append(
                {
                    **base,
                    "mode": "one-by-one",
                    "measured": False,
                    "expected_cost_retrainings": one_cost / (e0 * n),
                }
            )
    return cells


def batched_trials(settings: dict, n: int, S: int, R: int, K: int) -> int:
    """Request sets for a batched cell: repeat while the expected cost stays within budget."""
    e0 = settings["epochs"]
    expected = expected_sample_passes(
        n=n, shards=S, slices=R, epochs=step_epochs(e0, R), requests=K
    )
    return max(1, min(settings["max_trials"], int(settings["trial_budget"] * e0 * n / expected)))


def default_executors(data, settings, config, work, threads: int) -> dict:
    """The speed-up target cell as users run it, on all cores on both sides.

    SISA serves the requests with its default executor (one worker process per
    core, one torch thread each); monolithic retraining uses torch's default
    intra-op threads. Retraining is timed before and after the forgets and
    averaged, so drift in machine speed affects both sides alike.
    """
    S, R, K = TARGETS["speedup_cell"]
    store = work / f"S{S}-R{R}"
    trials = batched_trials(settings, len(data.train), S, R, K)
    model = uk.models.make("mlp", data, hidden=settings["hidden"])
    without = data.train.without(request_ids(data.train, K, 0))
    retrain_s = []

    def retrain():
        with torch_threads(threads):
            retrain_s.append(timed(lambda: train(model, without, seed=SEED, config=config))[1])

    pool, pool_start_s = timed(lambda: ProcessExecutor().start())
    try:
        retrain()
        seconds = 0.0
        for trial in range(trials):
            copy = linked_copy(store, work / "forget")
            sisa = SISA.load(copy, executor=pool)
            seconds += timed(lambda: sisa.forget(request_ids(data.train, K, trial)))[1]  # noqa: B023
            shutil.rmtree(copy)
        retrain()
    finally:
        pool.close()
    out = {
        "S": S,
        "R": R,
        "K": K,
        "trials": trials,
        "workers": pool.workers,
        "retrain_threads": threads,
        "retrain_s": retrain_s,
        "forget_s": seconds,
        "pool_start_s": pool_start_s,
        "speedup": trials * float(np.mean(retrain_s)) / seconds,
    }
    log(
        f"  as run by default: {pool.workers} worker processes vs monolithic retraining with "
        f"{threads} torch threads ({np.mean(retrain_s):.1f} s): K={K} x{trials} forget "
        f"{seconds:.2f} s, {out['speedup']:.2f}x"
    )
    return out


def _cell(base, mode, trials, seconds, passes, shards, matches, retrains, K, e0, n, rate) -> dict:
    """Speed-ups over the same work done by monolithic retraining (one per batch, or one per
    request when served one by one), measured and predicted from sample-passes."""
    mono_passes = retrains * e0 * (n - K)
    cell = {
        **base,
        "mode": mode,
        "measured": True,
        "trials": trials,
        "forget_s": seconds,
        "sample_passes": passes,
        "monolithic_sample_passes": mono_passes,
        "shards_retrained": shards / trials,
        "predicted_speedup": mono_passes / passes,
        "cost_model_matches_engine": matches,
    }
    price(cell, rate)
    log(
        f"  K={K:2d} {mode:10s} x{trials:<2d} forget {seconds:7.2f} s: measured "
        f"{cell['measured_speedup']:6.2f}x, predicted {cell['predicted_speedup']:6.2f}x "
        f"(expected {base['expected_speedup']:.2f}x), ratio {cell['ratio']:.2f}"
    )
    return cell


def price(cell: dict, rate: float) -> None:
    """Measured speed-up: the monolithic work of the cell at ``rate`` (seconds per
    sample-pass) over SISA's forget wall time."""
    cell["measured_speedup"] = cell["monolithic_sample_passes"] * rate / cell["forget_s"]
    cell["ratio"] = cell["measured_speedup"] / cell["predicted_speedup"]


def carried_optimizer(data, settings, config, work, unit) -> dict:
    """The engine's default starts a fresh optimizer per step (model-only checkpoints);
    carry_optimizer=True keeps momentum across steps. Same largest cell, same requests."""
    S, R = max(settings["shards"]), max(settings["slices"])
    K = max(k for k in settings["requests"] if k <= TARGETS["ratio_max_requests"])
    store = work / "carry"
    sisa, fit_s = timed(
        lambda: SISA(
            model="mlp", model_options={"hidden": settings["hidden"]}, shards=S, slices=R,
            epochs=settings["epochs"], training=config, seed=SEED, carry_optimizer=True,
            executor=SerialExecutor(), store=store,
        ).fit(data.train)
    )  # fmt: skip
    out = {
        "S": S,
        "R": R,
        "fit_serial_s": fit_s,
        "TA_vote": sisa.accuracy(data.test),
        "disk_bytes": sisa.status()["disk_bytes"],
    }
    log(f"carry_optimizer=True, S={S} R={R}: TA vote {out['TA_vote']:.2f}%")
    only_batched = {**settings, "requests": [K], "one_by_one_budget": 0}
    out["cells"] = forget_cells(data, only_batched, S, R, work, unit, store=store)
    shutil.rmtree(store)
    return out


def distribution_aware(data, settings, config, work) -> dict:
    """spec/sisa.md: accuracy and expected cost per request, prior-aware vs uniform sharding.

    The prior (a choice for this benchmark): 1% of samples, drawn with the seed, are
    100x likelier to be deleted than the rest; probabilities sum to 10% of S·C.
    """
    S, R = max(settings["shards"]), max(settings["slices"])
    n = len(data.train)
    rng = np.random.default_rng(SEED)
    hot = rng.random(n) < 0.01
    p = np.where(hot, 100.0, 1.0)
    p *= 0.1 * S / p.sum()
    out = {"S": S, "R": R, "prior": "1% of samples 100x likelier; sum p = 0.1 S"}
    for sharding in ("uniform", "distribution-aware"):
        extra = {"deletion_probabilities": p.tolist()} if sharding != "uniform" else {}
        sisa = SISA(
            model="mlp", model_options={"hidden": settings["hidden"]}, shards=S, slices=R,
            epochs=settings["epochs"], training=config, seed=SEED, sharding=sharding,
            executor=SerialExecutor(), store=work / sharding, **extra,
        )  # fmt: skip
        sisa.fit(data.train)
        # Cost of one request for a sample in (shard, slice): the same for the whole slice.
        table = {}
        for s_, sizes in enumerate(sisa.slice_sizes_):
            for r in range(R):
                smaller = [size - (i == r) for i, size in enumerate(sizes)]
                table[s_, r] = retrain_sample_passes(smaller, sisa.step_epochs_, r + 1)
        shard, slice_ = sisa.locate(data.train.ids)
        cost = np.array([table[a, b] for a, b in zip(shard.tolist(), slice_.tolist(), strict=True)])
        out[sharding] = {
            "TA_vote": sisa.accuracy(data.test),
            "expected_passes_per_request": float((p * cost).sum() / p.sum()),  # train order
            "shard_sizes": sisa.shard_sizes_,
        }
        shutil.rmtree(work / sharding)
    log(
        "distribution-aware vs uniform: TA "
        f"{out['distribution-aware']['TA_vote']:.2f}% vs {out['uniform']['TA_vote']:.2f}%, expected "
        f"passes per request {out['distribution-aware']['expected_passes_per_request']:.0f} vs "
        f"{out['uniform']['expected_passes_per_request']:.0f}"
    )
    return out


def check_targets(results: dict) -> list[dict]:
    checks = []
    ratio_cells = [
        c for c in results["cells"] if c["measured"] and c["K"] <= TARGETS["ratio_max_requests"]
    ]
    worst = min(ratio_cells, key=lambda c: c["ratio"])
    checks.append(
        {
            "name": f"measured / predicted >= {TARGETS['ratio_min']} in every measured cell with K <= 8",
            "target": TARGETS["ratio_min"],
            "measured": worst["ratio"],
            "detail": f"worst cell S={worst['S']} R={worst['R']} K={worst['K']} {worst['mode']}; "
            f"{sum(c['ratio'] < TARGETS['ratio_min'] for c in ratio_cells)} of {len(ratio_cells)} cells below",
            "pass": worst["ratio"] >= TARGETS["ratio_min"],
        }
    )
    S, R, K = TARGETS["speedup_cell"]
    cell = next(
        (
            c
            for c in results["cells"]
            if (c["S"], c["R"], c["K"], c["mode"]) == (S, R, K, "batched")
        ),
        None,
    )
    as_run = results.get("default_executors")
    one_core = (
        f"one core each: {cell['measured_speedup']:.2f}x, the cost model predicts "
        f"{cell['predicted_speedup']:.2f}x for these requests"
        if cell
        else "cell not in this grid"
    )
    checks.append(
        {
            "name": f"S={S}, R={R}, K={K} batched: speed-up over monolithic retraining >= "
            f"{TARGETS['speedup_min']}x, both run on all cores as by default",
            "target": TARGETS["speedup_min"],
            "measured": as_run["speedup"] if as_run else None,
            "detail": (
                f"{as_run['workers']} worker processes vs {as_run['retrain_threads']} torch "
                f"threads, mean over {as_run['trials']} request sets; {one_core}"
                if as_run
                else one_core
            ),
            "pass": bool(as_run) and as_run["speedup"] >= TARGETS["speedup_min"],
        }
    )
    even = [f for f in results["fits"] if f["parallel_ideal"] >= TARGETS["parallel_workers"]]
    worst_fit = min(even, key=lambda f: f["parallel_speedup"]) if even else None
    checks.append(
        {
            "name": f"fit with {TARGETS['parallel_workers']} processes >= {TARGETS['parallel_min']}x "
            "faster than serial (cells where shards split evenly)",
            "target": TARGETS["parallel_min"],
            "measured": worst_fit["parallel_speedup"] if worst_fit else None,
            "detail": f"worst cell S={worst_fit['S']} R={worst_fit['R']}"
            if worst_fit
            else "no cell",
            "pass": bool(worst_fit) and worst_fit["parallel_speedup"] >= TARGETS["parallel_min"],
        }
    )
    exact = all(c.get("cost_model_matches_engine", True) for c in results["cells"])
    exact &= all(f.get("parallel_identical_bits", True) for f in results["fits"])
    checks.append(
        {
            "name": "engine's sample-passes equal the cost model's; parallel fits bit-identical to serial",
            "target": True,
            "measured": exact,
            "detail": "",
            "pass": exact,
        }
    )
    return checks


def markdown(results: dict, settings: dict, quick: bool) -> str:
    r, mono = results, results["monolithic"]
    env = r["environment"]
    lines = [
        "# SISA benchmark" + (" (quick mode: not the reference run)" if quick else ""),
        "",
        f"Command: `{r['command']}` — {r['seconds'] / 60:.1f} min on {env['cpus']} CPUs "
        f"({env['processor']}), torch {env['torch']}, load average {env['load_before'][0]:.2f} "
        f"before / {env['load_after'][0]:.2f} after (the benchmark itself keeps about one core "
        "busy)"
        + (
            f", CPU time stolen by the hypervisor {100 * env['cpu_steal']:.1f}%."
            if env.get("cpu_steal") is not None
            else "."
        )
        + (
            " **Other load was present at the start: timings are not reliable.**"
            if env["load_before"][0] > 0.5
            else ""
        ),
        "",
        f"Data: {r['dataset']} ({r['n_train']} train / {r['n_test']} test). Model: MLP "
        f"{settings['hidden']}, SGD (lr 0.05, momentum 0.9, batch 64), e0 = {settings['epochs']} "
        "epochs. Grid timings train with one torch thread on each side (forgets use the serial "
        "executor), so measured and predicted speed-ups compare the same training compute; the "
        "store's background I/O thread (hashing, writing, fsync) may use the second core, as it "
        "does for users.",
        "",
        "## Targets",
        "",
        "| target | measured | result | detail |",
        "|---|---|---|---|",
    ]
    for c in r["targets"]:
        value = c["measured"]
        value = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(
            f"| {c['name']} | {value} | {'PASS' if c['pass'] else '**FAIL**'} | {c['detail']} |"
        )
    lines += [
        "",
        "## Fit: accuracy, parallel training, disk",
        "",
        f"Monolithic MLP: TA {mono['TA']:.2f}%, fit {mono['fit_s']:.1f} s, retraining "
        + " / ".join(f"{x:.1f}" for x in mono["retrain_runs_s"])
        + f" s (start / end of the run). Worker pool start-up ({r['pool_start_s']:.1f} s, once per "
        "process) is excluded from the parallel fit times. Fit times are the best of "
        f"{FIT_REPEATS} runs each, serial and parallel alternating (all runs are in the JSON). "
        "*Ideal* is S / ceil(S / 2).",
        "",
        "| S | R | epochs/step | fit passes vs unsliced | TA vote | TA softmax | TA − monolithic | "
        "fit serial (s) | fit 2 proc (s) | speed-up (ideal) | disk MB (ckpt / data) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in r["fits"]:
        disk = f["disk_bytes"]
        parallel = (
            f"{f['fit_parallel_s']:.1f} | {f['parallel_speedup']:.2f}x ({f['parallel_ideal']:.2f}x)"
            if "fit_parallel_s" in f
            else "— | —"
        )
        lines.append(
            f"| {f['S']} | {f['R']} | {f['step_epochs']} | {f['fit_passes_vs_unsliced']:.2f} | "
            f"{f['TA_vote']:.2f} | {f['TA_softmax']:.2f} | {f['TA_vote'] - mono['TA']:+.2f} | "
            f"{f['fit_serial_s']:.1f} | {parallel} | {disk['total'] / 1e6:.0f} "
            f"({disk['checkpoints'] / 1e6:.0f} / {disk['data'] / 1e6:.0f}) |"
        )
    lines += [
        "",
        "## Forgetting: speed-up over monolithic retraining (one core each)",
        "",
        "*Measured*: monolithic retraining time (one retraining per batch; one per request "
        "when served one by one; priced with the mean seconds per sample-pass of all "
        f"{len(mono['retrain_runs_s']) + 1} monolithic runs, spread "
        f"{100 * mono['spread']:.1f}%) / SISA's forget wall time. *Predicted*: the same ratio in sample-passes, the "
        "cost model applied to the actual requests (the engine's own count must agree, see "
        "targets). *Expected*: the spec's closed form for uniform requests. Batched cells "
        f"repeat with fresh requests while the expected cost stays within "
        f"{settings['trial_budget']:g} retraining (up to {settings['max_trials']} request sets; "
        "speed-ups are ratios of totals). One-by-one cells are measured when their expected "
        f"cost is at most {settings['one_by_one_budget']:g} retrainings; the others would cost "
        "several full retrainings each and are left out (their speed-up is that of K = 1).",
        "",
        "| S | R | K | mode | sets | shards hit | measured | predicted | expected | measured / predicted |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in r["cells"]:
        if not c["measured"]:
            lines.append(
                f"| {c['S']} | {c['R']} | {c['K']} | {c['mode']} | not measured | | | | "
                f"{c['expected_speedup']:.2f}x | (expected cost {c['expected_cost_retrainings']:.1f} retrainings) |"
            )
            continue
        flag = " **low**" if c["K"] <= 8 and c["ratio"] < TARGETS["ratio_min"] else ""
        lines.append(
            f"| {c['S']} | {c['R']} | {c['K']} | {c['mode']} | {c['trials']} | "
            f"{c['shards_retrained']:.1f} | {c['measured_speedup']:.2f}x | "
            f"{c['predicted_speedup']:.2f}x | {c['expected_speedup']:.2f}x | {c['ratio']:.2f}{flag} |"
        )
    as_run = r.get("default_executors")
    if as_run:
        lines += [
            "",
            "## Forgetting as users run it (all cores on both sides)",
            "",
            "The grid above gives each side one core so that measured and predicted speed-ups "
            "compare the same compute. Run as by default, SISA serves a batch with one worker "
            "process per core (affected shards retrain in parallel) and monolithic retraining "
            "uses torch's intra-op threads; retraining is timed before and after the forgets.",
            "",
            "| S | R | K | sets | SISA workers | forget (s per set) | retraining threads | "
            "retraining (s) | speed-up |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {as_run['S']} | {as_run['R']} | {as_run['K']} | {as_run['trials']} | "
            f"{as_run['workers']} | {as_run['forget_s'] / as_run['trials']:.2f} | "
            f"{as_run['retrain_threads']} | "
            + " / ".join(f"{x:.1f}" for x in as_run["retrain_s"])
            + f" | {as_run['speedup']:.2f}x |",
        ]
    aware = r["distribution_aware"]
    lines += [
        "",
        "## Distribution-aware sharding (spec/sisa.md, informational)",
        "",
        f"S = {aware['S']}, R = {aware['R']}; prior: {aware['prior']}; capacity C = 1.",
        "",
        "| sharding | TA vote | expected sample-passes per request | shard sizes (min–max) |",
        "|---|---|---|---|",
    ]
    for name in ("uniform", "distribution-aware"):
        a = aware[name]
        lines.append(
            f"| {name} | {a['TA_vote']:.2f} | {a['expected_passes_per_request']:.0f} | "
            f"{min(a['shard_sizes'])}–{max(a['shard_sizes'])} |"
        )
    carry = r["carry_optimizer"]
    default_fit = next(f for f in r["fits"] if (f["S"], f["R"]) == (carry["S"], carry["R"]))
    default_cell = next(
        c
        for c in r["cells"]
        if (c["S"], c["R"], c["mode"]) == (carry["S"], carry["R"], "batched")
        and c["K"] == carry["cells"][0]["K"]
    )
    lines += [
        "",
        "## Optimizer state across steps (informational)",
        "",
        "The engine's default starts a fresh optimizer at every step, so checkpoints hold the "
        "model only (as in the reference implementation); `carry_optimizer=True` keeps the "
        "momentum across steps and checkpoints it. Same cell, same requests:",
        "",
        f"| S = {carry['S']}, R = {carry['R']} | TA vote | checkpoints MB | fit serial (s) | "
        f"K = {default_cell['K']} batched: measured | measured / predicted |",
        "|---|---|---|---|---|---|",
    ]
    for name, fit, cell in (
        ("fresh optimizer per step (default)", default_fit, default_cell),
        ("carry_optimizer=True", carry, carry["cells"][0]),
    ):
        lines.append(
            f"| {name} | {fit['TA_vote']:.2f} | {fit['disk_bytes']['checkpoints'] / 1e6:.0f} | "
            f"{fit['fit_serial_s']:.1f} | {cell['measured_speedup']:.2f}x | {cell['ratio']:.2f} |"
        )
    lines += [
        "",
        "## Choices and caveats",
        "",
        f"- e0 = {settings['epochs']}: per step `2·e0/(R+1)` rounded gives "
        + ", ".join(
            f"{step_epochs(settings['epochs'], R)[0]} (R = {R})" for R in settings["slices"]
        )
        + " epochs; *fit passes vs unsliced* above shows what the rounding does to the total "
        "(measured and predicted speed-ups both include it). The data set is used "
        f"{'whole' if not settings['limit'] else 'in part'} so that one retraining costs seconds, "
        "not milliseconds, and engine overheads are measured at a realistic size.",
        "- Where measured / predicted exceeds 1: a shard's data stays in cache while monolithic "
        f"training gathers batches from the whole {r['train_megabytes']:.0f} MB training set, so "
        "SISA's sample-passes can be cheaper than monolithic ones. Below 1: checkpoint writes "
        "(encoding on the training thread; hashing, writing and fsync on a background thread "
        "that overlaps training, except the last write of each shard), reading the slices a "
        "step starts with, and per-step set-up.",
        f"- The S = {TARGETS['speedup_cell'][0]}, R = {TARGETS['speedup_cell'][1]}, "
        f"K = {TARGETS['speedup_cell'][2]} target is checked as users run SISA and retraining "
        "(all cores on both sides). On one core each it cannot be met with margin: the cost "
        "model itself predicts only about 4.3x for those requests, and checkpointing every step "
        "(encode, hash, write, fsync — most of it overlapped with training on a background "
        "thread) plus partial batches at slice boundaries cost a few percent beyond training.",
        f"- Parallel fit: with {TARGETS['parallel_workers']} workers the best possible speed-up is "
        "S / ceil(S / workers) (S = 5: 1.67x; S = 1: nothing to split); the target applies where "
        "that bound is the worker count.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid on 6000 samples")
    parser.add_argument("--out", type=Path, help="results folder (default: see above)")
    parser.add_argument("--work", type=Path, help="scratch folder for stores (default: a temp dir)")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    out = args.out or Path("runs/benchmarks" if args.quick else "benchmarks/results")
    started = time.perf_counter()
    load_before, counters = os.getloadavg(), cpu_counters()
    work = Path(tempfile.mkdtemp(prefix="sisa-bench-", dir=args.work))
    try:
        results = run(settings, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = time.perf_counter() - started
    results["command"] = "python benchmarks/sisa.py" + (" --quick" if args.quick else "")
    results["environment"] = {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "cpu_steal": steal_fraction(counters, cpu_counters()),
    }
    results["settings"], results["targets_config"] = settings, TARGETS
    results["targets"] = check_targets(results)
    results["pass"] = all(c["pass"] for c in results["targets"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "sisa.json").write_text(json.dumps(results, indent=2))
    (out / "sisa.md").write_text(markdown(results, settings, args.quick))
    for c in results["targets"]:
        value = c["measured"]
        value = f"{value:.2f}" if isinstance(value, float) else value
        log(f"{'PASS' if c['pass'] else 'FAIL'}: {c['name']}: measured {value} ({c['detail']})")
    log(f"wrote {out / 'sisa.json'} and {out / 'sisa.md'} in {results['seconds'] / 60:.1f} min")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
