"""Real-data bridge of the linear lab: FT vs golden on random ReLU features of MNIST-5k.

One-hot targets regressed (min-norm, λ = 0) on 8000 random ReLU features of
the 4000 MNIST-5k training images (more features than samples), forgetting
class 3 and a random 10%; dense features (each fires on 50% of the train
images) and sparse ones (5%). Models: pretrained, FT, golden, Options A / B,
projection, and the exact engine's ``forget``. See unlearnkit.theory.bridge.

Checks (identities the theory predicts, measured here): FT leaves the
pretrained weights unchanged (relative change <= 1e-8); projection + FT and
the exact engine's forget equal golden / the refit (relative <= 1e-8).

    .venv/bin/python benchmarks/theory_bridge.py      # about 2 minutes on 2 cores

Writes benchmarks/results/theory_bridge.{json,md}; exit status 1 if a check fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write  # noqa: E402

from unlearnkit.theory.bridge import markdown, run_bridge  # noqa: E402

FRACTIONS = (0.5, 0.05)
N_FEATURES = 8000
TOL = 1e-8


def main() -> int:
    started = time.perf_counter()
    results, checks = [], []
    for fraction in FRACTIONS:
        res = run_bridge(n_features=N_FEATURES, active_fraction=fraction, seed=0)
        results.append(res)
        for sc in res["scenarios"]:
            rows = {r["model"]: r for r in sc["rows"]}
            golden_scale = max(rows["pretrained"]["dist_golden"], 1e-300)
            for name, value in (
                ("FT changes nothing (rel. change)", sc["ft_change_rel"]),
                ("projection+FT = golden (dist / ‖W_o − W_g‖)", rows["projection"]["dist_golden"] / golden_scale),
                ("exact forget = refit (rel.)", sc["exact_vs_golden_rel"]),
            ):  # fmt: skip
                ok = bool(value <= TOL)
                checks.append(
                    {"active_fraction": fraction, "forget": sc["forget"], "check": name,
                     "value": value, "target": TOL, "pass": ok}
                )  # fmt: skip
                print(
                    f"fraction {fraction:<4} {sc['forget']:<10} {name:<45} {value:9.1e} "
                    f"(target <= {TOL:.0e}) {'ok' if ok else 'FAIL'}"
                )
            print(
                f"fraction {fraction:<4} {sc['forget']:<10} UA: FT {rows['FT']['UA']:.1f} "
                f"vs golden {rows['golden']['UA']:.1f}; UL: FT {rows['FT']['UL']:.2g} vs golden "
                f"{rows['golden']['UL']:.3g}"
            )
    passed = all(c["pass"] for c in checks)
    payload = {
        "benchmark": "theory_bridge",
        "description": __doc__,
        "results": results,
        "checks": checks,
        "pass": passed,
        "machine": machine(),
        "wall_s": time.perf_counter() - started,
    }
    md = [
        "# Linear lab on real features: MNIST-5k, random ReLU features\n",
        f"Min-norm regression of one-hot labels on {N_FEATURES} random ReLU features of the "
        "4000 training images (n < D). RL / UL / test: mean squared error summed over the 10 "
        "outputs; UA = 100 − forget accuracy, RA, TA in percent (argmax of the outputs); "
        "‖W − W_g‖ Frobenius distance to golden. Golden's UA is the reference, not 100.\n",
    ]
    for res in results:
        md += [
            f"## features firing on {res['active_fraction']:.0%} of the train images\n",
            markdown(res),
        ]
    md += ["## checks\n", "| features | forget | check | value | target | pass |",
           "|---|---|---|---:|---:|---|"]  # fmt: skip
    for c in checks:
        md.append(
            f"| {c['active_fraction']:.0%} | {c['forget']} | {c['check']} | {c['value']:.1e} "
            f"| ≤ {c['target']:.0e} | {'yes' if c['pass'] else '**FAIL**'} |"
        )
    md += ["", f"Overall: {'PASS' if passed else '**FAIL**'}; {payload['wall_s']:.0f} s on "
           f"{payload['machine']['cpus']} CPUs, {payload['machine']['date']}.", ""]  # fmt: skip
    json_path, md_path = write("theory_bridge", payload, "\n".join(md))
    print(f"overall: {'PASS' if passed else 'FAIL'}; wrote {json_path} and {md_path}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
