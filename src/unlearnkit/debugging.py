"""Finding mislabelled training data by influence: the workflow behind ``unlearnkit debug-labels``.

The labels of a seeded ``flip`` fraction of the training data are replaced by a
random wrong class; a model is trained on the result; every training sample is
ranked by how harmful it looks, and the samples are inspected in that order.
The curve "fraction of flipped labels found vs fraction of data inspected" and
its area compare the rankings: 0.5 for a random order, ``1 − f/2`` for a perfect
one (all of a fraction ``f`` flipped found first; reported as ``auc_perfect``):

- ``puma``: PUMA's harm score ``a_i`` with the validation-loss criterion
  (:mod:`unlearnkit.influence.scores`): the first-order rise of the validation
  loss per unit weight of sample ``i``; most harmful first;
- ``loss``: the sample's own training loss, highest first;
- ``self_influence``: ``||∇ℓ_i||²``, the gradient-norm self-influence
  (TracIn's at the final weights) — the inverse-curvature version
  ``g_iᵀ H⁻¹ g_i`` needs one solve per sample, too slow for every sample (choice);
- ``random``: a seeded random order (the diagonal, in expectation).

The validation split (``validation`` of the training part, seeded) is held out
before the flips and keeps its true labels: the trusted data a user checks
against (choice). The test set is not used.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from unlearnkit import checkpoint, data, models
from unlearnkit.data.dataset import Split
from unlearnkit.data.forget import validation_rows
from unlearnkit.errors import ConfigError
from unlearnkit.paths import check_writable
from unlearnkit.training import TrainConfig, train

RANKINGS = ("puma", "loss", "self_influence", "random")
CURVE_POINTS = 101


@dataclass
class LabelDebugging:
    """What to run. ``run_label_debugging(LabelDebugging(dataset="digits", model="mlp"), out=...)``."""

    dataset: str
    model: str
    flip: float = 0.1
    validation: float = 0.1
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)
    model_options: dict = field(default_factory=dict)
    preprocessing: str = "auto"
    dataset_options: dict = field(default_factory=dict)
    data_seed: int = 0
    weight_decay: float = 5e-4
    damping: float = 1e-2
    curvature_samples: int | None = 2048


def flip_labels(split: Split, fraction: float, num_classes: int, *, seed: int):
    """``split`` with a seeded ``fraction`` of labels moved to a random wrong class; the mask."""
    from unlearnkit.methods.base import random_wrong_labels

    if not 0 < fraction < 1:
        raise ConfigError(f"flip fraction must be in (0, 1); got {fraction} (e.g. --flip 0.1)")
    generator = torch.Generator().manual_seed(seed)
    count = int(round(fraction * len(split)))
    if count < 1:
        raise ConfigError(f"--flip {fraction} flips no label of {len(split)} samples; raise it")
    rows = torch.randperm(len(split), generator=generator)[:count]
    flipped = torch.zeros(len(split), dtype=torch.bool)
    flipped[rows] = True
    y = split.y.clone()
    y[rows] = random_wrong_labels(split.y[rows], num_classes, seed=seed)
    return Split(ids=split.ids, X=split.X, y=y), flipped


def detection_curve(order: np.ndarray, flipped: np.ndarray, points: int = CURVE_POINTS):
    """(fraction inspected, fraction of flipped found) at ``points`` even steps, and the area."""
    found = np.concatenate([[0], np.cumsum(flipped[order])]) / max(1, flipped.sum())
    inspected = np.linspace(0, 1, len(order) + 1)
    grid = np.linspace(0, 1, points)
    return grid, np.interp(grid, inspected, found), float(np.trapezoid(found, inspected))


def rank(model, train_split: Split, validation: Split, job: LabelDebugging) -> dict:
    """Each ranking's order of the training rows (most suspicious first) and its seconds."""
    from unlearnkit.influence.gradients import per_sample_gradient_chunks
    from unlearnkit.influence.scores import criterion_influence, sample_losses

    orders, seconds = {}, {}
    started = time.perf_counter()
    scores = criterion_influence(
        model,
        train_split,
        validation,
        weight_decay=job.weight_decay,
        damping=job.damping,
        curvature_samples=job.curvature_samples,
        seed=job.seed,
        tol=1e-4,
        max_iterations=100,
    )
    orders["puma"] = np.argsort(-scores.scores.numpy(), kind="stable")
    seconds["puma"] = time.perf_counter() - started
    started = time.perf_counter()
    orders["loss"] = np.argsort(-sample_losses(model, train_split).numpy(), kind="stable")
    seconds["loss"] = time.perf_counter() - started
    started = time.perf_counter()
    norms = torch.empty(len(train_split))
    for rows, G in per_sample_gradient_chunks(model, train_split):
        norms[rows] = G.pow(2).sum(1)
    orders["self_influence"] = np.argsort(-norms.numpy(), kind="stable")
    seconds["self_influence"] = time.perf_counter() - started
    orders["random"] = np.random.default_rng(job.seed).permutation(len(train_split))
    seconds["random"] = 0.0
    return {"orders": orders, "seconds": seconds, "puma_solve": scores.solve.report()}


def run_label_debugging(job: LabelDebugging, *, out: str | Path, progress: bool | None = None):
    """Flip, train, rank, write ``out/debug_labels.{json,png}``; return the JSON record."""
    out = Path(out)
    dataset = data.load(job.dataset, seed=job.data_seed, **job.dataset_options)
    if dataset.task != "classification":
        raise ConfigError("debug-labels needs a classification data set")
    template = models.make(job.model, dataset, preprocessing=job.preprocessing, **job.model_options)
    # Hold the trusted validation part out first (as select_forget draws it), then flip.
    is_validation = validation_rows(
        torch.ones(len(dataset.train), dtype=torch.bool), job.validation, seed=job.seed
    )
    validation = dataset.train.take(is_validation)
    clean = dataset.train.take(~is_validation)
    noisy, flipped = flip_labels(clean, job.flip, dataset.num_classes, seed=job.seed)
    check_writable(out)
    model = train(template, noisy, seed=job.seed, config=job.train, progress=progress)
    ranked = rank(model, noisy, validation, job)
    mask = flipped.numpy()
    curves, aucs = {}, {}
    for name in RANKINGS:
        grid, found, area = detection_curve(ranked["orders"][name], mask)
        curves[name], aucs[name] = found.tolist(), area
    record = {
        "dataset": job.dataset,
        "model": job.model,
        "flip": job.flip,
        "seed": job.seed,
        "n_train": len(noisy),
        "n_flipped": int(mask.sum()),
        "n_validation": len(validation),
        "train": job.train.to_dict(),
        "auc": aucs,
        "auc_perfect": 1 - float(mask.mean()) / 2,
        "puma_beats_random": aucs["puma"] > aucs["random"],
        "puma_beats_loss": aucs["puma"] > aucs["loss"],
        "seconds": ranked["seconds"],
        "puma_solve": ranked["puma_solve"],
        "fraction_inspected": grid.tolist(),
        "fraction_found": curves,
        "versions": checkpoint.environment()["versions"],
    }
    out.mkdir(parents=True, exist_ok=True)
    _plot(record, out / "debug_labels.png")
    checkpoint.atomic_write_text(out / "debug_labels.json", json.dumps(record, indent=2))
    return record


def _plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for name in RANKINGS:
        ax.plot(
            record["fraction_inspected"],
            record["fraction_found"][name],
            label=f"{name} (area {record['auc'][name]:.3f})",
            linestyle="--" if name == "random" else "-",
        )
    ax.set_xlabel("fraction of training data inspected")
    ax.set_ylabel("fraction of flipped labels found")
    ax.set_title(f"{record['dataset']} / {record['model']}: {record['n_flipped']} flipped labels")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


__all__ = ["LabelDebugging", "RANKINGS", "detection_curve", "flip_labels", "run_label_debugging"]
