"""Deterministic fault injection: a forget that dies after its k-th durable write, for every k.

Every durable change of a store goes through ``partitioned.store.durably``: a
checkpoint or slice file landing, a database transaction committing (the pending
marker, the commit, clearing the marker), a superseded file deleted. Here the
k-th of them raises instead of happening, as if the process had been killed
right after its (k-1)-th change landed; the k just after the commit is the crash
"after commit, before cleanup". Opening the store again and sending the same ids must then give the
uninterrupted result bit for bit, and leave exactly the files the uninterrupted
run leaves: no orphan checkpoint, no stale slice with a forgotten sample in it,
no temporary file. Unlike a SIGKILL timing race, every crash point is reached.
"""

from __future__ import annotations

import contextlib
import shutil

import pytest
import torch

from unlearnkit.errors import AlreadyDeletedError
from unlearnkit.exact import ARCANE, SISA
from unlearnkit.exact.partitioned import store as part_store
from unlearnkit.training import TrainConfig

# Every persistent engine on the partitioned core, in a small setting. ARCANE keeps
# half of each class and re-selects on deletion, so its requests also move samples.
ENGINES = {
    "sisa": (SISA, dict(model="logreg", shards=2, slices=3, epochs=3)),
    "arcane": (ARCANE, dict(hidden=[8], rep_dim=4, blocks=3, epochs=3, rho=0.5)),
}
COMMON = dict(training=TrainConfig(batch_size=32), seed=3, executor="serial")

MAX_WRITES = 36  # SISA's scenario makes 19 durable changes, ARCANE's 32


class Killed(BaseException):
    """Stands for the process dying: nothing in the engine may catch it."""


_files = part_store.snapshot


@contextlib.contextmanager
def _writes_through(writer):
    """Route every durable change of the store through ``writer(action, what)``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(part_store, "durably", writer)
        yield


def _weights(engine) -> dict:
    return {s: m.state_dict() for s, m in engine.constituents().items()}


@pytest.fixture(scope="module", params=list(ENGINES))
def scenario(request, tmp_path_factory, digits):
    """An engine class, a fitted store, the ids to forget, and the uninterrupted outcome."""
    cls, options = ENGINES[request.param]
    base = tmp_path_factory.mktemp(f"faults-{request.param}")
    fitted = base / "fitted"
    cls(**options, **COMMON, store=fitted).fit(digits.train)
    # Ids in the first block of two parts: every step of both parts is redone.
    engine = cls.load(fitted, executor="serial")
    shard, slice_ = engine.locate(digits.train.ids)
    ids = [
        int(
            next(
                i
                for i, s, r in zip(digits.train.ids, shard, slice_, strict=True)
                if s == k and r == 0
            )
        )
        for k in (0, 1)
    ]
    reference = base / "reference"
    shutil.copytree(fitted, reference)
    writes = []

    def counting(action, what):
        writes.append(what)
        return action()

    with _writes_through(counting):
        done = cls.load(reference, executor="serial")
        done.forget(ids)
    return (
        cls,
        fitted,
        ids,
        writes,
        _weights(cls.load(reference, executor="serial")),
        _files(reference),
    )


@pytest.mark.parametrize("k", [3, 5])
def test_a_single_failed_background_write_is_redone_on_resume(scenario, tmp_path, k):
    """One write fails (a full disk, say) while later ones land: the gap is not trusted."""
    cls, fitted, ids, _, weights, files = scenario
    store = tmp_path / "store"
    shutil.copytree(fitted, store)
    count = 0

    def fails_once(action, what):
        nonlocal count
        count += 1
        if count == k:
            raise OSError(28, "No space left on device")
        return action()

    with _writes_through(fails_once), pytest.raises(OSError):
        cls.load(store, executor="serial").forget(ids)
    cls.load(store, executor="serial").forget(ids)
    final = cls.load(store, executor="serial")
    got = _weights(final)
    for shard, state in weights.items():
        assert all(torch.equal(state[name], got[shard][name]) for name in state), shard
    assert _files(store).keys() == files.keys()


def test_the_scenario_writes_enough_to_be_a_test(scenario):
    _, _, _, writes, _, _ = scenario
    # slices and steps of two shards, the marker, the commit, the cleanup, clearing the marker
    assert len(writes) >= 12, writes
    assert writes[-1] == "clear the pending marker"
    # "after the commit, before the cleanup" is one of the crash points below
    assert writes[writes.index("commit request 1") + 1].startswith("delete ")
    assert len(writes) <= MAX_WRITES, "raise MAX_WRITES so that every crash point is tested"


@pytest.mark.parametrize("k", range(1, MAX_WRITES + 1))
def test_a_forget_killed_after_any_write_resumes_to_the_uninterrupted_result(scenario, tmp_path, k):
    cls, fitted, ids, writes, weights, files = scenario
    if k > len(writes):
        pytest.skip(f"the forget makes {len(writes)} durable changes")
    store = tmp_path / "store"
    shutil.copytree(fitted, store)
    count = 0

    def dies_at_k(action, what):
        nonlocal count
        count += 1
        if count >= k:  # dead from the k-th change on: nothing later lands either
            raise Killed(f"killed at durable change {k} ({what})")
        return action()

    with _writes_through(dies_at_k), pytest.raises(Killed):
        cls.load(store, executor="serial").forget(ids)

    reopened = cls.load(store, executor="serial")  # rolls a committed request forward
    # The retry resumes an uncommitted request; a committed one the open finished.
    with contextlib.suppress(AlreadyDeletedError):
        reopened.forget(ids)
    final = cls.load(store, executor="serial")
    assert final.requests_served_ == 1 and len(final.requests()) == 1
    got = _weights(final)
    assert got.keys() == weights.keys()
    for shard, state in weights.items():
        assert all(torch.equal(state[name], got[shard][name]) for name in state), shard
    left = _files(store)
    assert left.keys() == files.keys(), sorted(set(left) ^ set(files))
    shard_files = {n: h for n, h in files.items() if n.startswith(("shard-", "class-"))}
    assert {n: left[n] for n in shard_files} == shard_files
