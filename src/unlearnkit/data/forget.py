"""Choosing the samples to forget: ``random:``, ``class:`` and ``ids:`` specifications."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unlearnkit.data.dataset import Dataset, Split, sha256_of_ids
from unlearnkit.errors import ForgetSelectionError, UnknownIdsError


@dataclass(frozen=True, eq=False)
class ForgetSplit:
    """``train`` = ``retain`` ∪ ``forget`` (disjoint, original order kept); ``test`` untouched.

    ``validation`` (None unless asked for) is a seeded part of the data set's training
    part held out of ``train``: no model is trained on it, it is never the test set, and
    methods that tune or measure on held-out data (``needs_validation``) read it.
    """

    train: Split
    retain: Split
    forget: Split
    test: Split
    spec: str
    seed: int
    num_classes: int
    validation: Split | None = None

    @property
    def forget_sha256(self) -> str:
        return sha256_of_ids(self.forget.ids)

    def describe(self) -> dict:
        return {
            "spec": self.spec,
            "seed": self.seed,
            "n_retain": len(self.retain),
            "n_forget": len(self.forget),
            "n_test": len(self.test),
            "n_validation": 0 if self.validation is None else len(self.validation),
            "forget_sha256": self.forget_sha256,
        }


_GRAMMAR = "expected 'random:<fraction or count>', 'class:<c>[,<c>...]' or 'ids:<file>'"


def select_forget(
    data: Dataset, spec: str | list[int], *, seed: int = 0, validation: float = 0.0
) -> ForgetSplit:
    """Split ``data.train`` into retain and forget by ``spec``.

    - ``random:0.1`` — a seeded uniform 10% of train; ``random:50`` — 50 samples;
    - ``class:3`` or ``class:3,5`` — every train sample of those classes (an index
      0..K-1, or, for a file with string labels, the label itself: ``class:dog``);
    - ``ids:path.txt`` — one sample id per line (``#`` comments allowed);
    - a list of ids, for use from Python.

    ``validation`` in [0, 1): that fraction of ``data.train`` is held out first as
    ``split.validation`` (drawn from ``seed`` alone), and the forget set is chosen
    among the rest: every spec of one seed then shares one training set, and so one
    original model. A listed id that falls in the validation split is an error (it
    is never trained on, so there is nothing to forget).

    >>> from unlearnkit.data import load
    >>> split = select_forget(load("digits"), "class:3")
    >>> bool((split.forget.y == 3).all()), len(split.retain) + len(split.forget)
    (True, 1437)
    """
    train, held_out = data.train, None
    if validation:
        is_held_out = validation_rows(
            torch.ones(len(train), dtype=torch.bool), validation, seed=seed
        )
        held_out, train = train.take(is_held_out), train.take(~is_held_out)
    if not isinstance(spec, str):
        forget_ids = _known_ids(
            train, np.asarray(list(spec), dtype=np.int64), "the id list", held_out=held_out
        )
        spec_text = f"ids:<{len(forget_ids)} ids>"
    else:
        spec_text = spec.strip()
        kind, sep, arg = spec_text.partition(":")
        if not sep or not arg:
            raise ForgetSelectionError(f"malformed forget spec {spec!r}; {_GRAMMAR}")
        if kind == "random":
            forget_ids = _random(train, arg, seed=seed, spec=spec)
        elif kind == "class":
            forget_ids = _classes(data, train, arg, spec=spec)
        elif kind == "ids":
            forget_ids = _ids_file(train, arg, held_out=held_out)
        else:
            raise ForgetSelectionError(f"unknown forget kind {kind!r} in {spec!r}; {_GRAMMAR}")
    if len(forget_ids) == 0:
        raise ForgetSelectionError(
            f"forget spec {spec_text!r} selects no sample; choose a non-empty set"
        )
    is_forget = torch.isin(train.ids, torch.as_tensor(forget_ids))
    if bool(is_forget.all()):
        raise ForgetSelectionError(
            f"forget spec {spec_text!r} selects all {len(train)} train samples; "
            "nothing would remain to train on"
        )
    return ForgetSplit(
        train=train,
        retain=train.take(~is_forget),
        forget=train.take(is_forget),
        test=data.test,
        spec=spec_text,
        seed=seed,
        num_classes=data.num_classes,
        validation=held_out,
    )


def validation_rows(candidates: torch.Tensor, fraction: float, *, seed: int) -> torch.Tensor:
    """A seeded ``fraction`` of the ``candidates`` rows (a boolean mask over train)."""
    if not (isinstance(fraction, (int, float)) and 0 <= fraction < 1):
        raise ForgetSelectionError(
            f"validation fraction must be in [0, 1); got {fraction!r} (e.g. validation=0.1)"
        )
    rows = torch.nonzero(candidates).flatten().numpy()
    count = int(round(fraction * len(rows)))
    if count < 1 or count >= len(rows):
        raise ForgetSelectionError(
            f"validation fraction {fraction} of the {len(rows)} retained samples holds out "
            f"{count}; choose a fraction that leaves at least one sample on each side"
        )
    # A stream of its own (seed, "validation"), so it does not shift the forget draw.
    rng = np.random.default_rng([seed, 0x76616C])
    chosen = np.zeros(len(candidates), dtype=bool)
    chosen[rng.choice(rows, size=count, replace=False)] = True
    return torch.from_numpy(chosen)


def _random(train: Split, arg: str, *, seed: int, spec: str) -> np.ndarray:
    n = len(train)
    try:
        value = float(arg)
    except ValueError:
        raise ForgetSelectionError(f"random amount {arg!r} in {spec!r} is not a number") from None
    if not math.isfinite(value):
        raise ForgetSelectionError(
            f"random amount {arg!r} in {spec!r} is not a finite number; give a fraction in "
            f"(0, 1) such as random:0.1, or a count in 1..{n - 1} such as random:50"
        )
    if "." in arg or "e" in arg.lower():
        if not 0 < value < 1:
            raise ForgetSelectionError(
                f"random fraction must be in (0, 1); got {arg} in {spec!r} (use a count for more)"
            )
        count = int(round(value * n))
    else:
        count = int(value)
        if not 0 < count < n:
            raise ForgetSelectionError(f"random count must be in 1..{n - 1}; got {arg} in {spec!r}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(train.ids.numpy(), size=count, replace=False))


def _classes(data: Dataset, train: Split, arg: str, *, spec: str) -> np.ndarray:
    """Class indices, or the original label names of a file whose labels were mapped."""
    if data.task != "classification":
        raise ForgetSelectionError("class: forgetting needs a classification data set")
    names = list(data.info.get("label_names") or [])
    listing = (
        ", ".join(f"{i} = {n}" for i, n in enumerate(names))
        if names
        else f"0..{data.num_classes - 1}"
    )
    classes = set()
    for token in (t.strip() for t in arg.split(",")):
        # Digits are always an index (the mapped class), so labels 1..3 are named 0..2 here.
        if re.fullmatch(r"\d+", token):
            classes.add(int(token))
        elif token in names:
            classes.add(names.index(token))
        else:
            what = "class indices or label names" if names else "comma-separated integers"
            raise ForgetSelectionError(
                f"class {token!r} in {spec!r} is not a class of this data set; give {what} "
                f"(classes: {listing})"
            )
    bad = sorted(c for c in classes if c >= data.num_classes)
    if bad:
        raise ForgetSelectionError(f"class(es) {bad} not in this data set (classes: {listing})")
    mask = torch.isin(train.y, torch.tensor(sorted(classes)))
    return train.ids[mask].numpy()


def _ids_file(train: Split, arg: str, *, held_out: Split | None = None) -> np.ndarray:
    path = Path(arg)
    if not path.is_file():
        raise ForgetSelectionError(f"ids file {path} does not exist")
    ids = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            ids.append(int(line))
        except ValueError:
            raise ForgetSelectionError(
                f"{path}:{lineno}: {line!r} is not an integer sample id"
            ) from None
    return _known_ids(train, np.asarray(ids, dtype=np.int64), str(path), held_out=held_out)


def _known_ids(
    train: Split, ids: np.ndarray, source: str, *, held_out: Split | None = None
) -> np.ndarray:
    ids = np.unique(ids)
    if held_out is not None:
        held = ids[np.isin(ids, held_out.ids.numpy())]
        if len(held):
            raise ForgetSelectionError(
                f"{source}: id(s) {held[:5].tolist()} are in the validation split (held out, "
                "never trained on): drop them from the request, or use no validation split"
            )
    try:
        train.positions(ids)
    except UnknownIdsError as exc:
        raise ForgetSelectionError(f"{source}: {exc}") from None
    return ids
