"""The partitioned core beyond SISA's own tests: migration from the JSON store, the
cross-process writer lock, and requests that move samples between blocks."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from unlearnkit.errors import StoreBusyError, StoreError, UnknownLearnerError
from unlearnkit.exact import SISA, sisa_migrate
from unlearnkit.exact.partitioned import PartitionedEngine, PartStore, learners
from unlearnkit.exact.partitioned.store import snapshot
from unlearnkit.training import TrainConfig

DATA = Path(__file__).parent / "data"
# The configuration the format-1 fixture was made with (see tests/exact/data).
FIXTURE = dict(
    model="logreg",
    shards=2,
    slices=2,
    epochs=2,
    training=TrainConfig(batch_size=32),
    seed=5,
    executor="serial",
)


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def old_store(tmp_path) -> Path:
    store = tmp_path / "v1"
    shutil.copytree(DATA / "sisa_store_v1", store)
    return store


# -- migration from format 1 ------------------------------------------------------------


def test_a_format_1_store_migrates_and_behaves_as_before(old_store, digits, tmp_path):
    sisa = SISA.load(old_store, executor="serial")

    names = {p.name for p in old_store.iterdir()}
    assert "store.db" in names and not names & set(sisa_migrate.V1_FILES)
    assert sisa.config_["format_version"] == 2 and sisa.config_["migrated_from"]
    # The same model: predictions equal those the old code saved.
    expected = np.load(DATA / "sisa_store_v1_proba.npy")
    assert np.array_equal(sisa.predict_proba(digits.test.X[:50]).numpy(), expected)
    assert sisa.deleted_ids_.tolist() == [3, 123] and sisa.verify() == []
    assert [r["request_id"] for r in sisa.requests()] == ["fixture-1"]
    assert sisa.forget([123, 3], request_id="fixture-1").already_served  # the key survived

    # New requests on the migrated store equal a fresh fit without all forgotten ids.
    sisa.forget([7, 200])
    train = digits.train.take(torch.arange(240))
    fresh = SISA(**FIXTURE, store=tmp_path / "fresh").fit(train, exclude_ids=[3, 123, 7, 200])
    for shard, model in fresh.constituents().items():
        # Close, not bit-equal: a shard the requests did not touch keeps the weights the
        # fixture's machine trained, and CPUs differ in the last bits of float kernels.
        migrated = sisa.constituents()[shard].state_dict()
        assert all(
            torch.allclose(migrated[k], v, rtol=0, atol=1e-6) for k, v in model.state_dict().items()
        ), shard
    assert SISA.load(old_store, executor="serial").requests_served_ == 2


def test_a_migration_cut_short_before_the_switch_leaves_the_old_store(old_store, monkeypatch):
    before = snapshot(old_store)
    with monkeypatch.context() as patch:
        patch.setattr(sisa_migrate.os, "replace", _raise_killed)
        with pytest.raises(KeyboardInterrupt):
            SISA.load(old_store, executor="serial")
    after = snapshot(old_store)
    after.pop(".store.db.migrating", None)  # the half-built database, never switched to
    assert after == before
    assert SISA.load(old_store, executor="serial").requests_served_ == 1  # migrates now


def test_leftovers_of_a_migration_cut_short_after_the_switch_are_deleted(old_store):
    config = (old_store / "config.json").read_bytes()
    SISA.load(old_store, executor="serial")
    (old_store / "config.json").write_bytes(config)  # as if the process died right after the rename
    sisa = SISA.load(old_store, executor="serial")
    assert not (old_store / "config.json").exists() and sisa.requests_served_ == 1


def test_an_unfinished_format_1_fit_says_how_to_refit(old_store):
    (old_store / "state.json").unlink()
    before = snapshot(old_store)
    with pytest.raises(StoreError, match="never finished.*fit again"):
        SISA.load(old_store, executor="serial")
    assert snapshot(old_store) == before


def _raise_killed(*args, **kwargs):
    raise KeyboardInterrupt("killed during the migration")


# -- one writer at a time ---------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from unlearnkit.exact.partitioned import PartStore
with PartStore(sys.argv[1]).lock():
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_second_writer_in_another_process_is_refused(digits, tmp_path):
    store = tmp_path / "store"
    sisa = SISA(**FIXTURE, store=store).fit(digits.train.take(torch.arange(240)))
    before = snapshot(store)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(store), "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreBusyError, match="being written by another process"):
            sisa.forget([5])
        assert snapshot(store) == before
    finally:
        holder.kill()
        holder.wait(timeout=10)
    deadline = time.monotonic() + 10  # the OS releases the lock with the process
    while True:
        try:
            assert sisa.forget([5]).request == 1
            break
        except StoreBusyError:
            assert time.monotonic() < deadline, "the lock outlived its process"
            time.sleep(0.05)


# -- a request that moves samples between blocks ----------------------------------------


class MovingSISA(SISA):
    """SISA whose requests also move samples: a toy engine for the core's moves.

    Forgetting an id moves the smallest remaining id of the last slice of its
    shard into the first slice (what ARCANE's re-selection does with its blocks).
    """

    def _moves(self, ids):
        part, _ = self.locate(ids)
        moves = {}
        m = self._membership
        alive = ~m["deleted"] & ~np.isin(m["ids"], ids)
        last = len(self.step_epochs_) - 1
        for p in sorted(set(part.tolist())):
            candidates = m["ids"][alive & (m["part"] == p) & (m["block"] == last)]
            moves[int(candidates.min())] = (p, 0)
        return moves


class LaidOutSISA(SISA):
    """SISA with a given assignment (positions, shard, slice), for a from-scratch reference."""

    layout: tuple = ()

    def _assign(self, train, exclude):
        return self.layout


def test_moved_samples_are_state_and_retrain_like_a_fit_of_the_new_layout(digits, tmp_path):
    train = digits.train.take(torch.arange(300))
    options = dict(FIXTURE, shards=2, slices=3, epochs=3)
    engine = MovingSISA(**options, store=tmp_path / "moving").fit(train)
    forgotten = [int(train.ids[0]), int(train.ids[1])]
    before = engine.locate(train.ids)

    result = engine.forget(forgotten)

    after = engine.locate(train.ids)
    moved = np.flatnonzero((before[1] != after[1]) | (before[0] != after[0]))
    assert len(moved) == len(result.parts) >= 1  # one move per touched shard
    assert all(after[1][moved] == 0) and all(before[1][moved] == 2)
    assert all(first == 1 for first in result.parts.values())  # slice 1 changed: from init
    # The membership is in the store: a reload sees the moves.
    reloaded = MovingSISA(**options, store=tmp_path / "moving")
    assert np.array_equal(reloaded.locate(train.ids)[1], after[1])
    retained = engine.retained()
    assert len(retained) == len(train) - 2 and len(set(retained.ids.tolist())) == len(retained)
    assert engine.verify() == []

    # A fresh fit of the final layout (rows in the order the store now holds them)
    # trains the same models bit for bit.
    position = {int(i): k for k, i in enumerate(train.ids.tolist())}
    rows, parts, blocks = [], [], []
    for p in range(2):
        for b in range(3):
            held = [int(i) for i in engine.retained(p).ids if after_of(engine, i) == (p, b)]
            gone = [i for i in forgotten if after_of(engine, i) == (p, b)]
            rows += [position[i] for i in held + gone]
            parts += [p] * (len(held) + len(gone))
            blocks += [b] * (len(held) + len(gone))
    LaidOutSISA.layout = (np.array(rows), np.array(parts), np.array(blocks))
    reference = LaidOutSISA(**options, store=tmp_path / "reference").fit(
        train, exclude_ids=forgotten
    )
    for shard, model in reference.constituents().items():
        assert same_weights(engine.constituents()[shard], model), shard


def after_of(engine, i) -> tuple[int, int]:
    part, block = engine.locate([i])
    return int(part[0]), int(block[0])


def test_the_learner_registry_lists_its_names():
    assert "classifier" in learners.names()
    assert issubclass(SISA, PartitionedEngine)
    with pytest.raises(
        UnknownLearnerError, match="valid names: autoencoder, classifier, deep_svdd"
    ):
        learners.get("nope")


def test_a_store_handle_survives_pickling(digits, tmp_path):
    import pickle

    sisa = SISA(**FIXTURE, store=tmp_path / "s").fit(digits.train.take(torch.arange(240)))
    copy = pickle.loads(pickle.dumps(sisa))
    assert torch.equal(copy.predict_proba(digits.test.X[:5]), sisa.predict_proba(digits.test.X[:5]))
    assert isinstance(copy._disk(), PartStore)
