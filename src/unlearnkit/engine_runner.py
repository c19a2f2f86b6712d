"""Run any registered exact engine on a forget split, as ``unlearnkit run`` runs a method.

An engine trains its own model(s), so it does not fit the
:class:`~unlearnkit.methods.UnlearningMethod` mould (``unlearn(model, split)``);
this adapter maps it onto the same steps:

- **setup** (untimed): ``fit(split.train)``;
- **unlearn** (timed by the engine): ``forget(split.forget.ids)``;
- **reference**: a fresh engine ``fit(split.train, exclude_ids=split.forget.ids)``,
  the engine's own golden, which ``forget`` must equal: bit for bit for a
  ``bit_exact`` engine, within its ``tolerance`` (relative) otherwise.

The experiment pipeline then evaluates ``as_module()`` of the unlearned engine
against that reference, and sets it beside the monolithic golden.

>>> import unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> split = uk.select_forget(data, "random:5", seed=0)
>>> run = run_engine("sisa", split, model=uk.models.make("logreg", data),
...                  training=uk.TrainConfig(epochs=2), options={"shards": 2, "slices": 2})
>>> run.identical_to_reference, run.result.forgotten, run.max_relative_difference
(True, 5, 0.0)
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from unlearnkit import exact
from unlearnkit.exact.base import ForgetResult
from unlearnkit.params import declared, validate
from unlearnkit.training import TrainConfig


def relative_difference(a: nn.Module, b: nn.Module) -> float:
    """Largest relative difference between the parameters and buffers of ``a`` and ``b``.

    Per tensor, ``max |a - b| / max |b|``; 0.0 exactly when every tensor is
    bit-identical; ``inf`` when the two modules do not have the same tensors
    (names, shapes, dtypes), or a tensor differs where ``b`` is all zeros.

    >>> relative_difference(nn.Linear(2, 2), nn.Linear(2, 2)) > 0
    True
    """
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys():
        return math.inf
    worst = 0.0
    for key, x in sa.items():
        y = sb[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            return math.inf
        if torch.equal(x, y):
            continue
        if not x.is_floating_point():
            return math.inf
        x, y = x.double(), y.double()
        scale = y.abs().max().item()
        difference = (x - y).abs().max().item()
        if not math.isfinite(difference) or scale == 0:
            return math.inf
        worst = max(worst, difference / scale)
    return worst


@dataclass
class EngineRun:
    """One engine's pass over a forget split.

    ``original`` is ``as_module()`` after ``fit(train)``, ``unlearned`` after the
    forget, ``reference`` that of the fresh ``fit(train, exclude_ids=forget)``.
    ``identical_to_reference`` applies the engine's declared exactness to
    ``max_relative_difference``. ``options`` are the engine's run options, defaults
    filled in.
    """

    name: str
    original: nn.Module
    unlearned: nn.Module
    reference: nn.Module
    result: ForgetResult
    fit_seconds: float
    forget_seconds: float
    reference_seconds: float
    identical_to_reference: bool
    max_relative_difference: float
    options: dict = field(default_factory=dict)


def run_options(name: str, options: dict | None = None) -> dict:
    """Engine ``name``'s run options, checked against its declarations, defaults filled in."""
    cls = exact.get(name)
    given = validate(cls.run_options, options or {}, name=name)
    return {k: p.default for k, p in declared(cls.run_options).items()} | given


def run_engine(
    name: str,
    split,
    *,
    model: nn.Module,
    training: TrainConfig | None = None,
    seed: int = 0,
    options: dict | None = None,
    workdir: str | os.PathLike | None = None,
    progress: bool | None = None,
) -> EngineRun:
    """Fit engine ``name`` on ``split.train``, forget ``split.forget.ids``, fit its reference.

    ``model`` and ``training`` are the run's model (from :func:`unlearnkit.models.make`)
    and recipe, for engines that train models of that kind. A persistent engine
    stores under ``workdir/original`` and ``workdir/reference`` (temporary
    directories when ``workdir`` is ``None``).
    """
    cls = exact.get(name)
    options = run_options(name, options)
    training = training or TrainConfig()
    base = Path(workdir) if workdir is not None else None

    def build(role: str):
        return cls.for_run(
            model=model,
            training=training,
            seed=seed,
            num_classes=split.num_classes,
            store=base / role if base is not None else None,
            progress=progress,
            **options,
        )

    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(build("original"))
        started = time.perf_counter()
        engine.fit(split.train)
        fit_seconds = time.perf_counter() - started
        original = copy.deepcopy(engine.as_module())
        result = engine.forget(split.forget.ids)
        reference_engine = stack.enter_context(build("reference"))
        started = time.perf_counter()
        reference_engine.fit(split.train, exclude_ids=split.forget.ids)
        reference_seconds = time.perf_counter() - started
        unlearned, reference = engine.as_module(), reference_engine.as_module()
    difference = relative_difference(unlearned, reference)
    return EngineRun(
        name=name,
        original=original,
        unlearned=unlearned,
        reference=reference,
        result=result,
        fit_seconds=fit_seconds,
        forget_seconds=result.seconds,
        reference_seconds=reference_seconds,
        identical_to_reference=difference <= cls.tolerance,
        max_relative_difference=difference,
        options=options,
    )


__all__ = ["EngineRun", "relative_difference", "run_engine", "run_options"]
