"""SISA: exactness against from-scratch training, batching, store hygiene, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import unlearnkit as uk
from unlearnkit.data.dataset import Split
from unlearnkit.errors import (
    AlreadyDeletedError,
    ConfigError,
    DuplicateIdsError,
    ForgetSelectionError,
    PendingRequestError,
    RequestIdConflictError,
    StoreError,
    StoreFormatError,
    StoreMismatchError,
    StoreNotFoundError,
    UnknownIdsError,
)
from unlearnkit.exact import SISA
from unlearnkit.exact.partitioned import store as part_store
from unlearnkit.exact.partitioned.store import SQLITE_FILES, PartStore
from unlearnkit.exact.sisa import (
    aggregate,
    assign_distribution_aware,
    assign_uniform,
    expected_sample_passes,
    retrain_sample_passes,
    step_epochs,
    torch_threads,
)
from unlearnkit.models import reset_parameters
from unlearnkit.training import TrainConfig, run_epochs

OPTIONS = dict(
    model="mlp",
    model_options={"hidden": [16]},
    shards=3,
    slices=3,
    epochs=3,
    training=TrainConfig(batch_size=32),
    seed=7,
    executor="serial",
)


def snapshot(root) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` with its SHA-256 and modification time (the database
    by its content: see ``part_store.snapshot``)."""
    mtimes = {
        p.relative_to(root).as_posix(): p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and p.name not in SQLITE_FILES
    }
    return {name: (sha, mtimes.get(name, 0)) for name, sha in part_store.snapshot(root).items()}


def state_of(store) -> dict:
    """The committed engine state in the store's database."""
    disk = PartStore(store)
    try:
        return disk.read_state()
    finally:
        disk.close()


def pending_of(store) -> dict | None:
    disk = PartStore(store)
    try:
        return disk.read_pending()
    finally:
        disk.close()


def set_pending(store, marker: dict | None) -> None:
    """Put a pending marker in the store, as a crash would leave it."""
    disk = PartStore(store)
    try:
        with disk.transaction("test") as db:
            disk.write_pending(db, marker)
    finally:
        disk.close()


def reference_constituent(train: Split, shard: int, drop, sisa: SISA, options=OPTIONS):
    """Train one shard from scratch without ``drop``, with library primitives only.

    The shard's slices come from the documented assignment (seeded shuffle, even
    cuts), not from the store; seeds and per-step epochs from the engine.
    """
    S, R = options["shards"], options["slices"]
    positions, shard_of, slice_of = assign_uniform(
        len(train), shards=S, slices=R, seed=options["seed"]
    )
    parts = [
        train.take(torch.as_tensor(positions[(shard_of == shard) & (slice_of == r)])).without(drop)
        for r in range(R)
    ]
    model = uk.models.make(
        options["model"], input_shape=(64,), num_outputs=10, **options["model_options"]
    )
    seed = sisa.shard_seeds_[shard]
    reset_parameters(model, seed=seed)
    config = options["training"].replace(epochs=options["epochs"])
    optimizer, done = None, 0
    with torch_threads(1):
        for step in range(1, R + 1):
            data = Split(
                ids=torch.cat([p.ids for p in parts[:step]]),
                X=torch.cat([p.X for p in parts[:step]]),
                y=torch.cat([p.y for p in parts[:step]]),
            )
            epochs = sisa.step_epochs_[step - 1]
            if not options.get("carry_optimizer", False):
                optimizer = None  # the default: a fresh optimizer per step
            # The documented choice: each step refits the constituent's preprocessing
            # on the data that step trains on.
            uk.models.fit_preprocessing(model, data.X)
            optimizer = run_epochs(
                model,
                data,
                config=config,
                seed=seed,
                epochs=range(done, done + epochs),
                optimizer=optimizer,
            )
            done += epochs
    return model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def ids_in(sisa: SISA, train: Split, *, shard: int, slice_: int, count: int) -> list[int]:
    shard_of, slice_of = sisa.locate(train.ids)
    chosen = train.ids.numpy()[(shard_of == shard) & (slice_of == slice_)]
    return chosen[:count].tolist()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, digits):
    store = tmp_path_factory.mktemp("sisa") / "store"
    sisa = SISA(**OPTIONS, store=store).fit(digits.train)
    return sisa, store


@pytest.fixture
def fresh(fitted, tmp_path):
    """A private copy of the fitted store, to change."""
    _, store = fitted
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    return SISA.load(copy, executor="serial"), copy


def test_fit_matches_from_scratch_training(fitted, digits):
    sisa, _ = fitted
    constituents = sisa.constituents()
    assert list(constituents) == [0, 1, 2]
    for shard, model in constituents.items():
        assert same_weights(model, reference_constituent(digits.train, shard, [], sisa))
    assert sisa.accuracy(digits.test) > 70


def test_forget_is_bit_identical_to_retraining_and_leaves_the_rest_untouched(fresh, digits):
    sisa, store = fresh
    train = digits.train
    # Shard 0: slices 2 and 3 (restart at step 2); shard 1: slice 1 (restart from init).
    drop = ids_in(sisa, train, shard=0, slice_=1, count=2) + ids_in(
        sisa, train, shard=0, slice_=2, count=3
    )
    drop += ids_in(sisa, train, shard=1, slice_=0, count=1)
    before = snapshot(store)
    state_before = state_of(store)

    report = sisa.forget(drop)

    assert report.parts == {0: 2, 1: 1}
    assert report.steps_retrained == 2 + 3  # each shard once, from its earliest affected step
    assert report.forgotten == len(drop)
    for shard in (0, 1):
        assert same_weights(
            sisa.constituents()[shard], reference_constituent(train, shard, drop, sisa)
        )
    # Unaffected: shard 2 entirely, and shard 0's step-1 checkpoint and slice-1 data.
    after = snapshot(store)
    untouched = [n for n in before if n.startswith("shard-0002/")]
    untouched += [
        "shard-0000/step-001.r00000.safetensors",
        "shard-0000/slice-001.r00000.safetensors",
    ]
    assert all(after[n] == before[n] for n in untouched)
    # Nothing trained on (or holding) a deleted sample remains on disk.
    superseded = [
        e["file"] for s, k in ((0, 2), (1, 1)) for e in state_before["parts"][s]["steps"][k - 1 :]
    ]
    assert superseded and not any((store / f).exists() for f in superseded)
    assert set(after) <= set(before) | {f for f in after if ".r00001." in f}
    assert pending_of(store) is None
    remaining = sisa.retained()
    assert not bool(torch.isin(remaining.ids, torch.tensor(drop)).any())
    assert len(remaining) == len(train) - len(drop)
    assert sisa.verify() == []
    # The cost model counts the same sample-passes the engine reports.
    state = state_of(store)
    sizes = {s: [e["size"] for e in state["parts"][s]["blocks"]] for s in (0, 1)}
    expected = sum(
        retrain_sample_passes(sizes[s], sisa.step_epochs_, k) for s, k in report.parts.items()
    )
    assert report.sample_passes == expected
    log = sisa.requests()
    assert len(log) == 1 and log[0]["request"] == 1 and sorted(log[0]["ids"]) == sorted(drop)


@pytest.mark.parametrize("slices", [1, 3])
def test_forget_equals_fit_without_the_ids_with_dropout_and_adam(digits, tmp_path, slices):
    """Exactness also holds when training draws random numbers (dropout) and the
    optimizer state (Adam moments) is carried across steps, over two requests."""
    options = dict(
        OPTIONS,
        model_options={"hidden": [16], "dropout": 0.2},
        training=TrainConfig(optimizer="adam", lr=1e-3, batch_size=32),
        shards=2,
        slices=slices,
        carry_optimizer=True,
    )
    first, second = digits.train.ids[10:13].tolist(), digits.train.ids[400:402].tolist()
    sisa = SISA(**options, store=tmp_path / "a").fit(digits.train)
    sisa.forget(first)
    sisa.forget(second)
    golden = SISA(**options, store=tmp_path / "b").fit(digits.train, exclude_ids=first + second)
    assert sisa.requests_served_ == 2 and len(sisa.requests()) == 2
    for shard, model in golden.constituents().items():
        assert same_weights(sisa.constituents()[shard], model)
    proba = sisa.predict_proba(digits.test.X)
    assert torch.equal(proba, golden.predict_proba(digits.test.X))
    assert torch.equal(proba, sisa.predict_proba(digits.test.X))  # dropout is off when predicting


def test_process_executor_gives_the_same_bits_as_serial(fitted, digits, tmp_path):
    serial, _ = fitted
    drop = digits.train.ids[[3, 500, 900]].tolist()
    with SISA(**{**OPTIONS, "executor": "process"}, store=tmp_path / "p") as parallel:
        parallel.fit(digits.train)
        for shard, model in serial.constituents().items():
            assert same_weights(parallel.constituents()[shard], model)
        # Byte-identical files, not only equal weights: stores are reproducible.
        hashes = lambda store: [
            e["sha256"] for sh in state_of(store)["parts"] for e in sh["blocks"] + sh["steps"]
        ]  # fmt: skip
        assert hashes(serial.store_) == hashes(parallel.store_)
        report = parallel.forget(drop)
    assert len(report.parts) >= 2  # the affected shards really went through the pool
    for shard in report.parts:
        assert same_weights(
            parallel.constituents()[shard], reference_constituent(digits.train, shard, drop, serial)
        )


def test_emptied_shard_leaves_the_vote(fresh, digits):
    sisa, _ = fresh
    shard_of, _ = sisa.locate(digits.train.ids)
    report = sisa.forget(digits.train.ids.numpy()[shard_of == 2])
    assert report.parts == {2: 1}
    assert sisa.shard_sizes_[2] == 0 and list(sisa.constituents()) == [0, 1]
    assert sisa.predict(digits.test.X).shape == (len(digits.test),)


def test_aggregation_vote_breaks_ties_to_the_lowest_class_and_softmax_averages():
    # Two constituents: one votes class 2, one votes class 1 -> tie -> class 1.
    p = torch.tensor([[[0.1, 0.2, 0.7]], [[0.2, 0.7, 0.1]]])
    vote = aggregate(p, aggregation="vote", num_classes=3)
    assert vote.tolist() == [[0.0, 0.5, 0.5]] and vote.argmax(1).item() == 1
    assert torch.allclose(aggregate(p, aggregation="softmax", num_classes=3), p.mean(0))


def test_module_matches_predict_proba_and_softmax_aggregation(fitted, digits):
    sisa, _ = fitted
    module = sisa.as_module().eval()
    proba = torch.softmax(module(digits.test.X), dim=1)
    assert torch.allclose(proba, sisa.predict_proba(digits.test.X), atol=1e-6)
    soft = SISA.load(sisa.store_, executor="serial")
    soft.aggregation = "softmax"
    assert torch.allclose(soft.predict_proba(digits.test.X).sum(1), torch.ones(len(digits.test)))


# -- schedule, sharding and cost model ---------------------------------------------------


@pytest.mark.parametrize(("e0", "r"), [(1, 1), (3, 10), (11, 10), (20, 5), (7, 50)])
def test_every_step_gets_at_least_one_epoch(e0, r):
    epochs = step_epochs(e0, r)
    assert len(epochs) == r and min(epochs) >= 1
    passes = sum(e * (i + 1) / r for i, e in enumerate(epochs))  # per sample of the shard
    if 2 * e0 / (r + 1) >= 0.5:  # rounding to the nearest epoch moves the total by <= (R+1)/4
        assert abs(passes - e0) <= (r + 1) / 4
    else:  # too few epochs to spread: one each, never zero (a defect of the reference code)
        assert epochs == [1] * r


def test_uniform_shards_differ_by_at_most_one_and_cover_everything():
    positions, shard_of, slice_of = assign_uniform(103, shards=7, slices=3, seed=1)
    assert sorted(positions.tolist()) == list(range(103))
    sizes = np.bincount(shard_of)
    assert sizes.max() - sizes.min() <= 1
    assert positions.tolist() != assign_uniform(103, shards=7, slices=3, seed=2)[0].tolist()


def test_distribution_aware_sharding_isolates_likely_deletions():
    rng = np.random.default_rng(0)
    p = np.where(rng.random(1000) < 0.02, 0.2, 0.001)  # expected requests: about 5
    positions, shard_of, _ = assign_distribution_aware(p, shards=10, slices=2, seed=0, capacity=1.0)
    mass = np.array([p[positions[shard_of == s]].sum() for s in range(10)])
    sizes = np.bincount(shard_of)
    assert mass.max() <= 1.0 + 1e-9
    likely = np.isin(positions, np.flatnonzero(p == 0.2))
    hot_shards = np.unique(shard_of[likely])
    assert sizes[hot_shards].mean() < sizes.mean()  # likely-deleted samples sit in smaller shards
    with pytest.raises(ConfigError, match="raise shards or capacity"):
        assign_distribution_aware(np.full(100, 0.5), shards=5, slices=1, seed=0, capacity=1.0)


def test_distribution_aware_fit_serves_deletions(digits, tmp_path):
    p = {int(i): (0.05 if i % 50 == 0 else 0.0) for i in digits.train.ids.tolist()}
    options = {**OPTIONS, "sharding": "distribution-aware", "deletion_probabilities": p}
    sisa = SISA(**options, store=tmp_path / "d").fit(digits.train)
    hot = [i for i, v in p.items() if v]  # mass 0.05 each: 20 fill shard 0, the rest go to shard 1
    shard_of, _ = sisa.locate(hot)
    assert np.bincount(shard_of).tolist() == [20, len(hot) - 20]
    assert sisa.shard_sizes_[0] == 20 < min(sisa.shard_sizes_[1:])
    report = sisa.forget(hot[:5])
    assert set(report.parts) <= {0, 1}


def test_expected_cost_matches_the_spec_formula_and_a_simulation():
    n, S, R, e0 = 6000, 20, 10, 11
    epochs = step_epochs(e0, R)
    one = expected_sample_passes(n=n, shards=S, slices=R, epochs=epochs, requests=1)
    assert one == pytest.approx(e0 * n / S * (2 / 3 + 1 / (3 * R)))
    rng = np.random.default_rng(0)
    positions, shard_of, slice_of = assign_uniform(n, shards=S, slices=R, seed=0)
    sizes = [n // S // R] * R
    costs = []
    for _ in range(400):
        hit = rng.choice(n, size=8, replace=False)
        plan = {}
        for s, r in zip(shard_of[hit], slice_of[hit], strict=True):
            plan[s] = min(plan.get(s, r + 1), r + 1)
        costs.append(sum(retrain_sample_passes(sizes, epochs, k) for k in plan.values()))
    predicted = expected_sample_passes(n=n, shards=S, slices=R, epochs=epochs, requests=8)
    assert np.mean(costs) == pytest.approx(predicted, rel=0.05)


# -- bad input: clear errors, nothing on disk changes ------------------------------------


@pytest.mark.parametrize(
    ("ids", "error", "hint"),
    [
        ([10**9], UnknownIdsError, "never part of"),
        ([], ForgetSelectionError, "empty"),
        ([0.5], ForgetSelectionError, "integers"),
        (["7"], ForgetSelectionError, "integers"),
        ([3, 3], DuplicateIdsError, "id 3 appears more than once"),
    ],
)
def test_bad_ids_are_refused_without_changes(fresh, ids, error, hint):
    sisa, store = fresh
    before = snapshot(store)
    with pytest.raises(error, match=hint):
        sisa.forget(ids)
    assert snapshot(store) == before


def test_already_deleted_ids_are_refused_without_changes(fresh, digits):
    sisa, store = fresh
    first = digits.train.ids[:2].tolist()
    sisa.forget(first)
    before = snapshot(store)
    with pytest.raises(AlreadyDeletedError, match="already forgotten"):
        sisa.forget([first[0], int(digits.train.ids[5])])
    assert snapshot(store) == before and sisa.requests_served_ == 1


def test_a_retried_request_id_returns_the_committed_result_and_changes_nothing(fresh, digits):
    sisa, store = fresh
    ids = digits.train.ids[[4, 2]].tolist()
    first = sisa.forget(ids, request_id="ticket-1")
    assert not first.already_served and first.request_id == "ticket-1" and first.files_deleted
    before = snapshot(store)

    again = SISA.load(store, executor="serial").forget(ids[::-1], request_id="ticket-1")

    assert again.already_served and not again.resumed and again.files_deleted == ()
    assert (again.request, again.ids, again.parts) == (first.request, first.ids, first.parts)
    assert snapshot(store) == before
    with pytest.raises(RequestIdConflictError, match="'ticket-1' was already used by request 1"):
        sisa.forget(digits.train.ids[[9]].tolist(), request_id="ticket-1")
    with pytest.raises(AlreadyDeletedError):  # the same ids without the key
        sisa.forget(ids)
    assert snapshot(store) == before
    # The key survives later requests: it is in the state and the log, not only the last one.
    sisa.forget(digits.train.ids[[11]].tolist(), request_id="ticket-2")
    assert sisa.forget(ids, request_id="ticket-1").request == 1
    assert [r.get("request_id") for r in sisa.requests()] == ["ticket-1", "ticket-2"]


def test_an_interrupted_request_resumes_under_its_request_id(fresh, digits):
    sisa, store = fresh
    ids = ids_in(sisa, digits.train, shard=1, slice_=2, count=1)
    pending = {"kind": "forget", "request": 1, "ids": ids, "plan": {"1": 3}, "request_id": "k"}
    set_pending(store, pending)
    with pytest.raises(RequestIdConflictError, match="retry with that key"):
        sisa.forget(ids, request_id="other")
    result = SISA.load(store, executor="serial").resume()
    assert result.resumed and result.request_id == "k"
    assert sisa.forget(ids, request_id="k").already_served


def test_store_from_another_config_is_refused(fitted, digits, tmp_path):
    _, store = fitted
    before = snapshot(store)
    other = SISA(**{**OPTIONS, "shards": 4}, store=store)
    with pytest.raises(StoreMismatchError, match="shards"):
        other.forget(digits.train.ids[:1].tolist())
    with pytest.raises(StoreMismatchError, match="another configuration"):
        other.fit(digits.train)
    with pytest.raises(StoreError, match="already holds a fitted SISA"):
        SISA(**OPTIONS, store=store).fit(digits.train)
    assert snapshot(store) == before


def test_store_of_a_newer_format_is_refused(fitted, tmp_path):
    _, store = fitted
    copy = tmp_path / "newer"
    shutil.copytree(store, copy)
    disk = PartStore(copy)
    config = disk.read_config()

    def set_config(value):
        with disk.transaction("test") as db:
            db.execute("DELETE FROM meta")
            disk.write_config(db, value)

    set_config({**config, "format_version": 99})
    before = snapshot(copy)
    with pytest.raises(StoreFormatError, match="upgrade unlearnkit"):
        SISA.load(copy, executor="serial")
    set_config({**config, "format": "something-else"})
    disk.close()
    with pytest.raises(StoreFormatError, match="not a SISA store"):
        SISA.load(copy, executor="serial")
    assert set(snapshot(copy)) == set(before)


def test_missing_store_and_occupied_directory(tmp_path, digits):
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        SISA.load(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(StoreNotFoundError, match="store.db is missing"):
        SISA(**OPTIONS, store=tmp_path).forget([1])
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="not an empty directory"):
        SISA(**OPTIONS, store=tmp_path).fit(digits.train)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_bad_configuration_is_refused(digits, tmp_path):
    with pytest.raises(ConfigError, match="aggregation"):
        SISA(**{**OPTIONS, "aggregation": "mean"}, store=tmp_path / "a").fit(digits.train)
    with pytest.raises(ConfigError, match="fewer shards or slices"):
        SISA(**{**OPTIONS, "shards": 500, "slices": 5}, store=tmp_path / "b").fit(digits.train)
    with pytest.raises(ConfigError, match="deletion_probabilities"):
        SISA(**{**OPTIONS, "sharding": "distribution-aware"}, store=tmp_path / "c").fit(
            digits.train
        )
    assert not any(tmp_path.iterdir())


def test_a_pending_request_blocks_other_ids(fresh, digits):
    sisa, store = fresh
    pending = {"kind": "forget", "request": 1, "ids": [int(digits.train.ids[0])], "plan": {"0": 1}}
    set_pending(store, pending)
    before = snapshot(store)
    with pytest.raises(PendingRequestError, match="interrupted request #1"):
        sisa.forget([int(digits.train.ids[1])])
    assert snapshot(store) == before


# -- crash: kill a forget mid-retraining, load, resume ----------------------------------

CRASH = dict(OPTIONS, shards=2, slices=4, epochs=60)  # 24 epochs per step: slow enough to catch

FORGET_SCRIPT = """
import sys
from unlearnkit.exact import SISA
SISA.load(sys.argv[1], executor="serial").forget([int(i) for i in sys.argv[2].split(",")])
"""


def test_a_corrupt_slice_fails_the_forget_without_a_commit(fresh, digits):
    """Slices are read and hashed on the worker's background thread; a mismatch must
    still stop the request before its commit."""
    sisa, store = fresh
    unread = state_of(store)["parts"][2]["blocks"][2]["file"]  # shard 2 reads, never rewrites it
    blob = bytearray((store / unread).read_bytes())
    blob[-1] ^= 0xFF
    (store / unread).write_bytes(bytes(blob))
    before = state_of(store)

    with pytest.raises(StoreFormatError, match="corrupt"):
        sisa.forget(ids_in(sisa, digits.train, shard=2, slice_=0, count=1))

    assert state_of(store) == before
    assert sisa.verify() == [f"{unread} does not match its SHA-256"]


def test_a_failed_background_write_surfaces_and_commits_nothing(fresh, digits, monkeypatch):
    sisa, store = fresh
    write = PartStore.write_bytes

    def failing(self, name, blob):
        if "/step-003." in name:
            raise OSError(28, "No space left on device")
        return write(self, name, blob)

    monkeypatch.setattr(PartStore, "write_bytes", failing)
    before = state_of(store)
    with pytest.raises(OSError, match="No space left"):
        sisa.forget(ids_in(sisa, digits.train, shard=0, slice_=1, count=1))
    assert state_of(store) == before
    monkeypatch.undo()
    assert SISA.load(store, executor="serial").resume().resumed  # the request completes


def test_killed_forget_resumes_to_the_exact_result(digits, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    store = tmp_path / "store"
    sisa = SISA(**CRASH, store=store).fit(digits.train)
    before_proba = sisa.predict_proba(digits.test.X)
    drop = ids_in(sisa, digits.train, shard=0, slice_=0, count=2)  # shard 0 redoes all 4 steps
    drop += ids_in(sisa, digits.train, shard=1, slice_=1, count=1)  # shard 1 redoes steps 2-4
    state_before = state_of(store)

    env = {**os.environ, "UNLEARNKIT_PROGRESS": "0"}
    child = subprocess.Popen(
        [sys.executable, "-c", FORGET_SCRIPT, str(store), ",".join(map(str, drop))], env=env
    )
    first_new = store / "shard-0000" / "step-001.r00001.safetensors"
    deadline = time.monotonic() + 120
    while not first_new.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert first_new.exists() and child.returncode == -signal.SIGKILL, (
        "the child was not killed mid-way"
    )

    # Old state intact: no commit, nothing logged, predictions unchanged.
    assert state_of(store) == state_before
    assert pending_of(store) is not None and not PartStore(store).read_log()
    loaded = SISA.load(store, executor="serial")
    assert loaded.pending_request_["ids"] == sorted(drop)
    assert torch.equal(loaded.predict_proba(digits.test.X), before_proba)
    other = next(i for i in digits.train.ids.tolist() if i not in drop)
    with pytest.raises(PendingRequestError):
        loaded.forget([other])

    reused = first_new.stat().st_mtime_ns
    report = loaded.forget(drop)

    assert report.resumed and report.parts == {0: 1, 1: 2}
    assert first_new.stat().st_mtime_ns == reused  # finished steps are reused, not redone
    for shard in (0, 1):
        assert same_weights(
            loaded.constituents()[shard],
            reference_constituent(digits.train, shard, drop, loaded, options=CRASH),
        )
    log = loaded.requests()
    assert [r["request"] for r in log] == [1] and sorted(log[0]["ids"]) == sorted(drop)
    assert pending_of(store) is None
    assert loaded.verify() == []
    state = state_of(store)
    referenced = {e["file"] for sh in state["parts"] for e in sh["steps"] + sh["blocks"]}
    on_disk = {p.relative_to(store).as_posix() for p in store.glob("shard-*/*")}
    assert on_disk == referenced  # no superseded checkpoint, no partial or temporary file
    with pytest.raises(AlreadyDeletedError):
        loaded.forget(drop)


def test_carried_optimizer_state_is_resumed_exactly(digits, tmp_path):
    """With carry_optimizer the momentum continues across steps: a forget that resumes
    at step 2 must restore it from the step-1 checkpoint to match from-scratch training."""
    options = dict(OPTIONS, carry_optimizer=True)
    sisa = SISA(**options, store=tmp_path / "s").fit(digits.train)
    drop = ids_in(sisa, digits.train, shard=1, slice_=2, count=2)  # restart at step 3
    report = sisa.forget(drop)
    assert report.parts == {1: 3}
    reference = reference_constituent(digits.train, 1, drop, sisa, options=options)
    assert same_weights(sisa.constituents()[1], reference)
    fresh = reference_constituent(digits.train, 1, drop, sisa)  # optimizer reset per step
    assert not same_weights(sisa.constituents()[1], fresh)  # the option really changes training


def test_crash_after_the_commit_only_finishes_the_bookkeeping(fresh, digits):
    """Killed between the commit and the cleanup: the new state is already in force;
    the next open deletes the leftovers and clears the marker, retraining nothing."""
    sisa, store = fresh
    drop = digits.train.ids[:2].tolist()
    old_files = {p.relative_to(store).as_posix(): p.read_bytes() for p in store.glob("shard-*/*")}
    sisa.forget(drop)
    # Recreate the crash: marker back, superseded files still there.
    set_pending(store, {"kind": "forget", "request": 1, "ids": sorted(drop), "plan": {}})
    for name, blob in old_files.items():
        (store / name).write_bytes(blob)
    state = state_of(store)

    reopened = SISA.load(store, executor="serial")

    assert state_of(store) == state  # nothing retrained or recommitted
    assert [r["request"] for r in reopened.requests()] == [1]
    assert pending_of(store) is None
    # The request is served: the same ids again are already forgotten.
    with pytest.raises(AlreadyDeletedError):
        reopened.forget(drop)
    referenced = {e["file"] for sh in state["parts"] for e in sh["steps"] + sh["blocks"]}
    assert {p.relative_to(store).as_posix() for p in store.glob("shard-*/*")} == referenced


def test_interrupted_fit_is_finished_by_fitting_again(fitted, digits, tmp_path):
    _, complete = fitted
    store = tmp_path / "store"
    shutil.copytree(complete, store)
    # Recreate a fit killed while shard 1 trained: no commit, steps 2-3 of shard 1 missing.
    disk = PartStore(store)
    with disk.transaction("test") as db:
        db.execute("DELETE FROM state")
        disk.write_pending(db, {"kind": "fit", "exclude_sha256": uk.datasets.sha256_of_ids([])})
    disk.close()
    for step in (2, 3):
        (store / f"shard-0001/step-00{step}.r00000.safetensors").unlink()
    kept = (store / "shard-0001/step-001.r00000.safetensors").stat().st_mtime_ns
    with pytest.raises(StoreError, match="unfinished fit"):
        SISA.load(store, executor="serial")

    SISA(**OPTIONS, store=store).fit(digits.train)

    assert (store / "shard-0001/step-001.r00000.safetensors").stat().st_mtime_ns == kept
    files = lambda root: {
        p.relative_to(root).as_posix(): p.read_bytes() for p in root.glob("shard-*/*")
    }
    assert files(store) == files(complete)  # byte-identical to the uninterrupted fit
    assert pending_of(store) is None


@pytest.mark.parametrize("opener", ["load", "status", "verify", "cli-status"])
def test_a_crash_after_the_commit_is_cleaned_up_by_the_next_open(
    fresh, digits, opener, monkeypatch
):
    """Commit, then die before the cleanup: the next open of any kind rolls it forward."""
    sisa, store = fresh
    ids = [int(i) for i in digits.train.ids[:3]]
    before = {p.relative_to(store).as_posix() for p in store.glob("shard-*/*.safetensors")}

    def crash(self, disk, **kwargs):
        raise KeyboardInterrupt("killed after the commit")

    with monkeypatch.context() as patch:
        patch.setattr(SISA, "_finish", crash)
        with pytest.raises(KeyboardInterrupt):
            sisa.forget(ids)
    # Committed: the new state names new files; the old slices holding the forgotten
    # samples' features (and the checkpoints trained on them) are still on disk.
    stale = before - set(_referenced_files(store))
    assert stale and all((store / name).exists() for name in stale)

    if opener == "load":
        opened = SISA.load(store, executor="serial")
    elif opener == "status":
        SISA(**OPTIONS, store=store).status()
    elif opener == "verify":
        assert SISA(**OPTIONS, store=store).verify() == []
    else:
        from unlearnkit.cli import main

        monkeypatch.setattr("sys.argv", ["unlearnkit", "sisa", "status", str(store)])
        main()  # returns normally on success
    assert not any((store / name).exists() for name in stale)
    assert pending_of(store) is None
    opened = SISA.load(store, executor="serial")
    assert opened.requests_served_ == 1 and len(opened.requests()) == 1
    assert set(ids) <= set(opened.deleted_ids_.tolist())


def _referenced_files(store) -> list[str]:
    return [
        entry["file"]
        for part in state_of(store)["parts"]
        for key in ("blocks", "steps")
        for entry in part[key]
    ]
