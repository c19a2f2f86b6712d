"""A persistent, resumable bank of trained models for the strong privacy measures.

The ε-score, U-LiRA and LiRA need many models of one setting (data set, model
recipe, forget spec). A :class:`ModelBank` keeps them on disk under one folder,
each keyed by its protocol, role, method (with options) and seed, its training
ids recorded beside it, together with its per-sample statistics over the
data set's whole training part: the logit-scaled confidence
``log p_y − log(1 − p_y)`` (:mod:`unlearnkit.evaluation.confidence`) and whether
it is classified correctly, plus test correctness.

Two protocols share the bank:

- ``"seeds"`` (the ε-score, NeurIPS 2023 unlearning challenge): slot ``k`` trains
  the original on the whole training part with seed ``k`` and golden on its
  retain part with seed ``k``; each method unlearns original ``k`` (method seed
  ``k``). Every model is also evaluated (UA, RA, TA, MIA, ...).
- ``"halves"`` (U-LiRA and LiRA, Hayes et al. 2024): slot ``k`` draws a random half
  ``H_k`` of the training part from seed ``k`` alone; the forget pool ``P`` is the
  spec's forget set, and slot ``k`` forgets ``F_k = P ∩ H_k``. The original trains on
  ``H_k``, golden on ``H_k \\ P`` (= ``H_k \\ F_k``), and each method unlearns ``F_k``
  from the original. So every pool sample is unlearned in about half of the slots
  and never trained on in the others, and every golden model is a "never trained"
  reference for it.

"golden" as a method is golden retrained with other seeds (``models + k``): the
reference answer, which every measure should rate as indistinguishable from golden
(golden against golden = two disjoint halves of a golden bank of ``2 × models``).

Building is resumable: an entry is finished when its statistics file exists (it
is written last, atomically), a build skips finished entries, and jobs run
through the executors (serial, processes, Ray). Methods added later train only
their own entries: the originals and goldens are shared.

>>> import tempfile
>>> bank = ModelBank(tempfile.mkdtemp(), BankSetting(dataset="digits", model="logreg",
...                  forget="random:0.1", train={"epochs": 1}))
>>> entries = bank.plan(methods=["finetune"], models=2)
>>> len(entries), entries[0].key
(12, 'seeds/original/seed0')
>>> report = bank.build(entries, executor="serial", progress=False)
>>> len(report.trained), len(bank.build(entries, executor="serial", progress=False).trained)
(12, 0)
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from unlearnkit import checkpoint
from unlearnkit.errors import BankMismatchError, ConfigError
from unlearnkit.evaluation.confidence import model_confidences

FORMAT_VERSION = 1
PROTOCOLS = ("seeds", "halves")
ROLES = ("original", "golden", "unlearned")


@dataclass(frozen=True)
class BankSetting:
    """What every model of a bank shares: data, model recipe, forget spec, training recipe.

    ``train`` holds :class:`~unlearnkit.training.TrainConfig` fields (defaults for the
    rest); ``split_seed`` draws the forget set of a ``random:`` spec.
    """

    dataset: str
    model: str
    forget: str
    model_options: dict = field(default_factory=dict)
    dataset_options: dict = field(default_factory=dict)
    preprocessing: str = "auto"
    train: dict = field(default_factory=dict)
    data_seed: int = 0
    split_seed: int = 0
    mia_max_samples: int | None = 2000

    def to_dict(self) -> dict:
        from unlearnkit.training import TrainConfig

        return {
            "dataset": self.dataset,
            "model": self.model,
            "forget": self.forget,
            "model_options": dict(self.model_options),
            "dataset_options": dict(self.dataset_options),
            "preprocessing": self.preprocessing,
            "train": TrainConfig(**self.train).to_dict(),
            "data_seed": self.data_seed,
            "split_seed": self.split_seed,
            "mia_max_samples": self.mia_max_samples,
        }

    @classmethod
    def from_dict(cls, d: dict) -> BankSetting:
        return cls(**d)


def _options_hash(options: dict) -> str:
    text = json.dumps(options, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Entry:
    """One model of a bank: ``protocol`` / ``role`` [``method`` + options] / ``seed``."""

    protocol: str
    role: str
    seed: int
    method: str | None = None
    options: tuple = ()  # sorted (name, value) pairs: hashable

    @property
    def key(self) -> str:
        name = self.role
        if self.role == "unlearned":
            name = f"unlearned-{self.method}-{_options_hash(dict(self.options))}"
        return f"{self.protocol}/{name}/seed{self.seed}"

    def to_dict(self) -> dict:
        return {
            "protocol": self.protocol,
            "role": self.role,
            "seed": self.seed,
            "method": self.method,
            "options": dict(self.options),
        }


@dataclass
class BuildReport:
    """What :meth:`ModelBank.build` did: keys trained now and keys found finished."""

    trained: list[str]
    reused: list[str]
    seconds: float


# ---------------------------------------------------------------- data, per process


def _loaded(setting: BankSetting):
    """The data set and forget split of ``setting``, loaded once per process."""
    return _loaded_from_json(json.dumps(setting.to_dict(), sort_keys=True))


@functools.lru_cache(maxsize=4)
def _loaded_from_json(setting_json: str):
    # Keyed by the setting's JSON: a BankSetting holds dicts, so it is not hashable.
    from unlearnkit import data

    setting = BankSetting.from_dict(json.loads(setting_json))
    dataset = data.load(setting.dataset, seed=setting.data_seed, **setting.dataset_options)
    split = data.select_forget(dataset, setting.forget, seed=setting.split_seed)
    return dataset, split


def half_positions(n: int, seed: int) -> torch.Tensor:
    """Sorted positions (in the training part) of slot ``seed``'s random half."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[: n // 2].sort().values


def members(setting: BankSetting, entry: Entry) -> np.ndarray:
    """Boolean mask over the training part: the rows ``entry``'s model was trained on
    (for an unlearned model: those of the original it started from)."""
    dataset, split = _loaded(setting)
    n = len(dataset.train)
    mask = np.zeros(n, dtype=bool)
    if entry.protocol == "seeds":
        mask[:] = True
    else:
        mask[half_positions(n, entry.seed).numpy()] = True
    if entry.role == "golden":
        mask &= ~pool_mask(setting)
    return mask


def pool_mask(setting: BankSetting) -> np.ndarray:
    """Boolean mask over the training part: the forget spec's samples (the pool ``P``)."""
    dataset, split = _loaded(setting)
    positions = dataset.train.positions(split.forget.ids).numpy()
    mask = np.zeros(len(dataset.train), dtype=bool)
    mask[positions] = True
    return mask


def slot_split(setting: BankSetting, protocol: str, seed: int):
    """The :class:`~unlearnkit.data.ForgetSplit` a slot's models are trained and unlearned on."""
    from unlearnkit.data.forget import ForgetSplit

    dataset, split = _loaded(setting)
    if protocol == "seeds":
        return split
    half = dataset.train.take(half_positions(len(dataset.train), seed))
    pool = set(split.forget.ids.tolist())
    in_pool = torch.tensor([int(i) in pool for i in half.ids.tolist()], dtype=torch.bool)
    return ForgetSplit(
        train=half,
        retain=half.take(torch.nonzero(~in_pool).squeeze(1)),
        forget=half.take(torch.nonzero(in_pool).squeeze(1)),
        test=split.test,
        spec=f"{setting.forget} within half {seed}",
        seed=seed,
        num_classes=split.num_classes,
    )


# ---------------------------------------------------------------- one job


def _template(setting: BankSetting):
    from unlearnkit import models

    dataset, _ = _loaded(setting)
    return models.make(
        setting.model, dataset, preprocessing=setting.preprocessing, **setting.model_options
    )


def build_entry(job: dict) -> dict:
    """Train (or unlearn) one entry and save it; a module-level function for the executors."""
    from unlearnkit import methods
    from unlearnkit.evaluation.metrics import evaluate
    from unlearnkit.training import TrainConfig, train

    torch.set_num_threads(job.get("threads", torch.get_num_threads()))
    root = Path(job["root"])
    setting = BankSetting.from_dict(job["setting"])
    entry = Entry(**{**job["entry"], "options": tuple(sorted(job["entry"]["options"].items()))})
    dataset, _ = _loaded(setting)
    split = slot_split(setting, entry.protocol, entry.seed)
    config = TrainConfig(**setting.train)
    started = time.perf_counter()
    if entry.role == "original":
        part = split.train
        model = train(_template(setting), part, seed=entry.seed, config=config, progress=False)
    elif entry.role == "golden":
        part = split.retain
        model = train(_template(setting), part, seed=entry.seed, config=config, progress=False)
    else:
        part = split.retain
        original_key = Entry(entry.protocol, "original", entry.seed).key
        original, _ = checkpoint.load(root / "models" / original_key)
        method = methods.get(entry.method)(seed=entry.seed, **dict(entry.options))
        model = method.unlearn(method.setup(original, split), split)
    seconds = time.perf_counter() - started
    meta = {
        "setting": setting.to_dict(),
        "entry": entry.to_dict(),
        "train_ids_sha256": part.ids_sha256(),
        "seconds": seconds,
    }
    checkpoint.save(model, root / "models" / entry.key, metadata=meta)
    confidence, correct = model_confidences(model, dataset.train.X, dataset.train.y)
    _, test_correct = model_confidences(model, split.test.X, split.test.y)
    metrics = {}
    if entry.protocol == "seeds":  # the ε-score's ratios and the population measures
        metrics = evaluate(model, split, mia_max_samples=setting.mia_max_samples, seed=entry.seed)
    checkpoint.save_npz_state(
        root / "scores" / entry.key,
        # job_seconds: the whole job (training or unlearning, statistics, evaluation).
        meta={**meta, "metrics": metrics, "job_seconds": time.perf_counter() - started},
        arrays={
            "confidence": confidence.numpy(),
            "correct": correct.numpy(),
            "test_correct": test_correct.numpy(),
        },
    )
    return {"key": entry.key, "seconds": seconds}


# ---------------------------------------------------------------- the bank


class ModelBank:
    """The models of one :class:`BankSetting`, in folder ``root``.

    Opening an existing bank with a different setting raises
    :class:`~unlearnkit.errors.BankMismatchError` (a bank mixes no settings).
    """

    def __init__(self, root: str | Path, setting: BankSetting) -> None:
        self.root = Path(root)
        self.setting = setting
        # A finished entry's statistics are written once and never change, so one read
        # serves every measure of an audit.
        self._scores: dict[str, dict] = {}
        manifest = self.root / "bank.json"
        wanted = {"format_version": FORMAT_VERSION, "setting": setting.to_dict()}
        if manifest.is_file():
            found = json.loads(manifest.read_text())
            if found.get("setting") != wanted["setting"]:
                changed = sorted(
                    k
                    for k in wanted["setting"]
                    if found.get("setting", {}).get(k) != wanted["setting"][k]
                )
                raise BankMismatchError(
                    f"the model bank at {self.root} was built for another setting (differs in "
                    f"{', '.join(changed)}); use another folder, or delete it to rebuild"
                )
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            checkpoint.atomic_write_text(manifest, json.dumps(wanted, indent=2, sort_keys=True))

    # -------------------------------------------------------------- planning

    def plan(
        self,
        *,
        methods: list[str],
        models: int,
        method_options: dict[str, dict] | None = None,
        protocols: tuple[str, ...] = PROTOCOLS,
    ) -> list[Entry]:
        """Every entry an audit of ``methods`` with ``models`` per side needs, in build order.

        Originals and goldens first (the unlearned entries start from the originals).
        """
        from unlearnkit import exact
        from unlearnkit import methods as registry

        if models < 2:
            raise ConfigError(f"models must be >= 2 per side; got {models}")
        method_options = method_options or {}
        for name in methods:
            if name in exact.ENGINES:
                raise ConfigError(
                    f"{name!r} is an exact engine: its models are golden by construction; "
                    "audit approximate methods (and 'golden' for the reference)"
                )
            cls = registry.get(name)
            if getattr(cls, "needs_validation", False):
                raise ConfigError(
                    f"method {name!r} needs a validation split, which a model bank does not "
                    "hold out yet; audit it with 'unlearnkit run' instead"
                )
        unknown = set(method_options) - set(methods)
        if unknown:
            raise ConfigError(f"options given for methods not being audited: {sorted(unknown)}")
        first, then = [], []
        for protocol in protocols:
            if protocol not in PROTOCOLS:
                raise ConfigError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
            for k in range(models):
                first += [Entry(protocol, "original", k), Entry(protocol, "golden", k)]
            for name in methods:
                for k in range(models):
                    if name == "golden":
                        first.append(Entry(protocol, "golden", models + k))
                    else:
                        options = tuple(sorted(method_options.get(name, {}).items()))
                        then.append(Entry(protocol, "unlearned", k, name, options))
        return list(dict.fromkeys(first + then))

    def method_entries(self, method: str, protocol: str, models: int, options: dict | None = None):
        """The entries standing for ``method`` under ``protocol`` (golden: the offset seeds)."""
        if method == "golden":
            return [Entry(protocol, "golden", models + k) for k in range(models)]
        opts = tuple(sorted((options or {}).items()))
        return [Entry(protocol, "unlearned", k, method, opts) for k in range(models)]

    def finished(self, entry: Entry) -> bool:
        return (self.root / "scores" / f"{entry.key}.npz").is_file()

    def missing(self, entries: list[Entry]) -> list[Entry]:
        return [e for e in entries if not self.finished(e)]

    # -------------------------------------------------------------- building

    def build(
        self,
        entries: list[Entry],
        *,
        executor="serial",
        workers: int | None = None,
        progress: bool | None = None,
    ) -> BuildReport:
        """Train every entry not finished yet; finished ones are never trained again."""
        from filelock import FileLock, Timeout

        from unlearnkit.errors import StoreBusyError
        from unlearnkit.runtime.executors import get_executor

        started = time.perf_counter()
        lock = FileLock(str(self.root / ".build.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise StoreBusyError(
                f"another process is building the model bank at {self.root}; wait for it"
            ) from None
        try:
            todo = self.missing(entries)
            reused = [e.key for e in entries if e not in todo]
            trained: list[str] = []
            # Two waves: an unlearned entry loads its slot's original from disk.
            waves = [
                [e for e in todo if e.role != "unlearned"],
                [e for e in todo if e.role == "unlearned"],
            ]
            with get_executor(executor, workers=workers) as pool:
                threads = 1 if pool.workers > 1 else torch.get_num_threads()
                for wave, label in zip(waves, ("train", "unlearn"), strict=True):
                    if not wave:
                        continue
                    jobs = [
                        {
                            "root": str(self.root),
                            "setting": self.setting.to_dict(),
                            "entry": e.to_dict(),
                            "threads": threads,
                        }
                        for e in wave
                    ]
                    done = pool.map(
                        build_entry,
                        jobs,
                        labels=[e.key for e in wave],
                        description=f"bank: {label}",
                        progress=progress,
                    )
                    trained += [d["key"] for d in done]
        finally:
            lock.release()
        return BuildReport(trained=trained, reused=reused, seconds=time.perf_counter() - started)

    # -------------------------------------------------------------- reading

    def scores(self, entry: Entry) -> dict:
        """``{"confidence", "correct", "test_correct", "meta"}`` of a finished entry."""
        if entry.key not in self._scores:
            meta, arrays = checkpoint.load_npz_state(
                self.root / "scores" / entry.key,
                what=f"bank entry {entry.key}",
                fix="build the bank again (finished entries are kept)",
            )
            self._scores[entry.key] = {**arrays, "meta": meta}
        return self._scores[entry.key]

    def stack(self, entries: list[Entry], positions: np.ndarray) -> np.ndarray:
        """Confidences ``(len(entries), len(positions))`` on training-part ``positions``."""
        return np.stack([self.scores(e)["confidence"][positions] for e in entries])

    def members(self, entry: Entry) -> np.ndarray:
        return members(self.setting, entry)

    def pool(self) -> np.ndarray:
        """Positions in the training part of the forget spec's samples."""
        return np.flatnonzero(pool_mask(self.setting))

    def slot_split(self, protocol: str, seed: int):
        return slot_split(self.setting, protocol, seed)

    def model(self, entry: Entry):
        model, _ = checkpoint.load(self.root / "models" / entry.key)
        return model


__all__ = [
    "PROTOCOLS",
    "BankSetting",
    "BuildReport",
    "Entry",
    "ModelBank",
    "build_entry",
    "half_positions",
]
