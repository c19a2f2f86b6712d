"""Every registered exact engine through the same checks (the captum pattern).

Table: engines × {digits, a small synthetic set} × {the first sample of a part,
the last sample of a part, a whole block, ids across all parts, three requests in
sequence}. After the forgets, ``as_module()`` must equal a fresh
``fit(exclude_ids=everything forgotten)``: every parameter and buffer bit for bit
for a ``bit_exact`` engine, within its declared ``tolerance`` (relative)
otherwise. Bad requests raise the documented type and change nothing (for a
persistent engine: every file of the store, byte for byte). ``load`` round trips
predict the same, and the capabilities hold.

What a "part" and a "block" are differs by engine; ``LAYOUTS`` says it once per
engine (a new engine adds its row): SISA's parts are its shards and its blocks
their slices; ARCANE's parts are its classes and its blocks the trained ones (not
the reserve); the ridge engine is one part cut into blocks of 10 rows.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import unlearnkit as uk
from unlearnkit import exact
from unlearnkit.data import Split
from unlearnkit.engine_runner import relative_difference, run_options
from unlearnkit.errors import (
    AlreadyDeletedError,
    ConfigError,
    DuplicateIdsError,
    ForgetSelectionError,
    RequestIdConflictError,
    UnknownIdsError,
)
from unlearnkit.exact.base import TASKS
from unlearnkit.exact.partitioned.store import snapshot as store_snapshot
from unlearnkit.training import TrainConfig

# Small settings per engine, as `unlearnkit run -o` options: seconds per engine.
SMALL = {
    "sisa": {"shards": 3, "slices": 2},
    # rho < 1 with re-selection: a request also moves samples between blocks.
    "arcane": {"blocks": 2, "rho": 0.5},
    "exact_ridge": {},
}
# Options of `load` beyond the source (SISA and ARCANE would start a process pool).
LOAD_OPTIONS = {"sisa": {"executor": "serial"}, "arcane": {"executor": "serial"}}
RECIPE = TrainConfig(epochs=2, batch_size=64)


def _partitioned_layout(engine, train):
    """Parts and their trained blocks (SISA: shards and slices; ARCANE: classes and
    blocks, the reserve of unselected samples left out)."""
    parts = []
    for part in range(len(engine.part_sizes_)):
        ids = engine.retained(part).ids.numpy()  # store order: block by block
        _, block_of = engine.locate(ids)
        blocks = [ids[block_of == r] for r in range(len(engine.step_epochs_))]
        parts.append([b for b in blocks if len(b)])
    return [p for p in parts if p]


def _ridge_layout(engine, train):
    ids = train.ids.numpy()
    return [[ids[i : i + 10] for i in range(0, len(ids), 10)]]


# Engine -> (fitted engine, train) -> parts, each a list of blocks of ids in training order.
LAYOUTS = {
    "sisa": _partitioned_layout,
    "arcane": _partitioned_layout,
    "exact_ridge": _ridge_layout,
}


def test_every_engine_has_a_row_in_the_table():
    assert set(LAYOUTS) == set(SMALL) == set(exact.names())


@pytest.fixture(scope="module")
def datasets(digits):
    small = uk.datasets.load("synthetic", n_samples=300, n_features=8, n_classes=3, seed=0)
    return {"digits": digits, "synthetic": small}


def build(name, data, tmp_path, role="engine"):
    options = run_options(name, SMALL[name])
    return exact.get(name).for_run(
        model="logreg",
        training=RECIPE,
        seed=0,
        num_classes=data.num_classes,
        store=tmp_path / role,
        **options,
    )


def scenario(kind: str, parts) -> list[list[int]]:
    """The requests of one table row, as lists of ids."""
    first = [int(parts[-1][0][0])]
    last = [int(parts[0][-1][-1])]
    block = [int(i) for i in parts[0][min(1, len(parts[0]) - 1)]]
    across = [int(blocks[b][len(blocks[b]) // 2]) for blocks in parts for b in range(len(blocks))]
    return {
        "first-of-part": [first],
        "last-of-part": [last],
        "whole-block": [block],
        "across-parts": [across],
        "three-requests": [first, block, [i for i in across if i not in first + block]],
    }[kind]


def snapshot(engine) -> dict[str, str] | None:
    """SHA-256 of every file of a persistent engine's store, its database by content
    (None for the others)."""
    if not type(engine).persistent:
        return None
    return store_snapshot(engine.store_)


def assert_equals_fresh_fit(engine, fresh):
    cls = type(engine)
    difference = relative_difference(engine.as_module(), fresh.as_module())
    if cls.bit_exact:
        assert difference == 0.0
    else:
        assert difference <= cls.tolerance, difference


@pytest.mark.parametrize("data_name", ["digits", "synthetic"])
@pytest.mark.parametrize(
    "kind", ["first-of-part", "last-of-part", "whole-block", "across-parts", "three-requests"]
)
@pytest.mark.parametrize("name", exact.names())
def test_forget_equals_a_fresh_fit_without_the_ids(name, kind, data_name, datasets, tmp_path):
    data = datasets[data_name]
    engine = build(name, data, tmp_path).fit(data.train)
    requests = scenario(kind, LAYOUTS[name](engine, data.train))
    forgotten: list[int] = []
    for number, ids in enumerate(requests, start=1):
        result = engine.forget(ids)
        forgotten += ids
        assert result.request == number and result.ids == tuple(sorted(ids))
        assert result.forgotten == len(ids) and not result.already_served and not result.resumed
    fresh = build(name, data, tmp_path, "fresh").fit(data.train, exclude_ids=forgotten)

    assert_equals_fresh_fit(engine, fresh)
    assert engine.deleted_ids_.tolist() == sorted(forgotten)
    assert engine.verify() == [] and isinstance(engine.status(), dict)
    X = data.test.X
    proba = engine.predict_proba(X)
    assert torch.equal(engine.predict(X), proba.argmax(1))
    assert torch.allclose(torch.softmax(engine.as_module()(X), dim=1), proba, atol=1e-6)
    if type(engine).bit_exact:
        assert torch.equal(proba, fresh.predict_proba(X))


@pytest.fixture
def fitted(digits, tmp_path, request):
    engine = build(request.param, digits, tmp_path).fit(digits.train)
    engine.forget(digits.train.ids[:2])
    return engine


BAD_REQUESTS = [
    ("repeated", lambda ids: [ids[5], ids[6], ids[5]], DuplicateIdsError),
    ("unknown", lambda ids: [ids[5], 10**9], UnknownIdsError),
    ("already-forgotten", lambda ids: [ids[0], ids[5]], AlreadyDeletedError),
    ("empty", lambda ids: [], ForgetSelectionError),
    ("floats", lambda ids: [float(ids[5])], ForgetSelectionError),
    ("strings", lambda ids: [str(ids[5])], ForgetSelectionError),
    ("float-tensor", lambda ids: torch.tensor([1.0]), ForgetSelectionError),
    ("nested", lambda ids: [[ids[5]]], ForgetSelectionError),
]


@pytest.mark.parametrize("fitted", exact.names(), indirect=True)
@pytest.mark.parametrize(
    ("ids", "error"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS]
)
def test_a_bad_request_raises_its_type_and_changes_nothing(fitted, digits, ids, error):
    engine = fitted
    before = snapshot(engine), engine.deleted_ids_.copy(), engine.predict_proba(digits.test.X)
    request = ids(digits.train.ids.tolist())
    with pytest.raises(error):
        engine.forget(request)
    with pytest.raises(error):
        engine.forget(request, request_id="bad-1")
    after = snapshot(engine), engine.deleted_ids_, engine.predict_proba(digits.test.X)
    assert after[0] == before[0]
    assert np.array_equal(after[1], before[1]) and torch.equal(after[2], before[2])


@pytest.mark.parametrize("fitted", exact.names(), indirect=True)
def test_a_retried_request_id_is_served_once(fitted, digits):
    engine = fitted
    ids = digits.train.ids[[7, 3]].tolist()
    first = engine.forget(ids, request_id="req-7")
    before = snapshot(engine), engine.deleted_ids_.copy(), engine.predict_proba(digits.test.X)

    again = engine.forget(sorted(ids), request_id="req-7")

    assert again.already_served and again.request == first.request and again.ids == first.ids
    assert again.request_id == "req-7" and again.files_deleted == ()
    with pytest.raises(RequestIdConflictError, match="req-7"):
        engine.forget(digits.train.ids[[8]].tolist(), request_id="req-7")
    with pytest.raises(AlreadyDeletedError):
        engine.forget(ids)
    with pytest.raises(ForgetSelectionError, match="request_id"):
        engine.forget(digits.train.ids[[8]].tolist(), request_id="")
    after = snapshot(engine), engine.deleted_ids_, engine.predict_proba(digits.test.X)
    assert after[0] == before[0]
    assert np.array_equal(after[1], before[1]) and torch.equal(after[2], before[2])


@pytest.mark.parametrize("fitted", exact.names(), indirect=True)
def test_load_round_trips_and_keeps_forgetting_exactly(fitted, digits, tmp_path):
    engine = fitted
    cls = type(engine)
    X = digits.test.X
    sources = [engine.state_dict()]
    if cls.persistent:
        sources.append(engine.store_)  # the store alone
    else:
        sources.append(engine.save(tmp_path / "saved"))
    for source in sources:
        loaded = cls.load(source, **LOAD_OPTIONS.get(cls.name, {}))
        assert torch.equal(loaded.predict_proba(X), engine.predict_proba(X))
        assert np.array_equal(loaded.deleted_ids_, engine.deleted_ids_)
    # The reloaded engine carries on: its next request is exact too.
    later = [int(digits.train.ids[20])]
    forgotten = [*engine.deleted_ids_.tolist(), *later]
    assert loaded.forget(later).request == 2
    fresh = build(cls.name, digits, tmp_path, "fresh").fit(digits.train, exclude_ids=forgotten)
    assert_equals_fresh_fit(loaded, fresh)


@pytest.mark.parametrize("name", exact.names())
def test_targets_of_undeclared_tasks_are_refused(name, digits, tmp_path):
    cls = exact.get(name)
    assert cls.tasks and set(cls.tasks) <= set(TASKS)
    train = digits.train
    targets = {"regression": train.y.double() / 3, "classification": train.y}
    for task in set(TASKS) - set(cls.tasks):
        wrong = Split(ids=train.ids, X=train.X, y=targets[task])
        engine = build(name, digits, tmp_path)
        with pytest.raises(ConfigError, match=f"{name} is a .* engine"):
            engine.fit(wrong)
        assert not (tmp_path / "engine").exists()  # refused before any store is made


@pytest.mark.parametrize("name", exact.names())
def test_capabilities_are_declared(name):
    cls = exact.get(name)
    assert isinstance(cls.bit_exact, bool) and isinstance(cls.persistent, bool)
    assert cls.summary and cls.name == name
    assert (cls.tolerance == 0) == cls.bit_exact and 0 <= cls.tolerance <= 1e-6
    assert cls.capabilities()["tasks"] == list(cls.tasks)
