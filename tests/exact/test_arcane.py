"""ARCANE: layout, one-class learners, exactness, the no-retrain path, class isolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unlearnkit.errors import ConfigError, DuplicateIdsError
from unlearnkit.exact import ARCANE, arcane_layout
from unlearnkit.exact.partitioned import one_class
from unlearnkit.exact.partitioned.store import snapshot
from unlearnkit.training import TrainConfig

OPTIONS = dict(
    hidden=[16],
    rep_dim=8,
    blocks=3,
    epochs=3,
    training=TrainConfig(optimizer="adam", lr=1e-3, batch_size=32),
    seed=4,
    executor="serial",
)


@pytest.fixture(scope="module")
def small(digits):
    return digits.train.take(torch.arange(600))


def same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def assert_same_models(engine, reference):
    got, want = engine.constituents(), reference.constituents()
    assert got.keys() == want.keys()
    for c in want:
        assert same_weights(got[c], want[c]), f"class {c}"


# -- the layout ---------------------------------------------------------------------------


def test_the_layout_depends_only_on_the_remaining_data(small):
    ids, X = small.ids.numpy(), small.X.numpy()
    order, block = arcane_layout.layout(ids, X, None, rho=0.5, blocks=3, seed=1)
    chosen = ids[order[block < 3]]
    assert len(chosen) == 300 and np.bincount(block).tolist() == [100, 100, 100, 300]
    # An unselected sample removed: the same selection, the same blocks.
    unselected = int(np.flatnonzero(np.isin(ids, ids[order[block == 3]]))[0])
    keep = np.arange(len(ids)) != unselected
    order2, block2 = arcane_layout.layout(ids[keep], X[keep], None, rho=0.5, blocks=3, seed=1)
    k = int(np.ceil(0.5 * keep.sum()))
    assert k == 300
    assert np.array_equal(ids[keep][order2[block2 < 3]], chosen)
    # Likely deletions last: ascending probability.
    p = np.random.default_rng(0).random(len(ids))
    order3, block3 = arcane_layout.layout(ids, X, p, rho=1.0, blocks=3, seed=1)
    assert np.all(np.diff(p[order3]) >= 0) and block3.max() == 2


def test_k_center_picks_are_a_prefix_and_spread_out():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((200, 4))
    keys = arcane_layout.id_keys(np.arange(200), seed=0)
    ten = arcane_layout.k_center_greedy(features, keys, 10)
    assert np.array_equal(arcane_layout.k_center_greedy(features, keys, 5), ten[:5])
    random_ten = rng.choice(200, 10, replace=False)

    def radius(chosen):
        d = ((features[:, None, :] - features[chosen][None]) ** 2).sum(-1)
        return d.min(1).max()

    assert radius(ten) < radius(random_ten)


def test_one_class_learners_score_their_class_highest(digits):
    for kind in one_class.KINDS:
        engine = ARCANE(**{**OPTIONS, "blocks": 1, "epochs": 10}, learner=kind).fit(digits.train)
        assert engine.accuracy(digits.test) > 70, kind  # ten classes: chance is 10
        model = engine.constituents()[0]
        if kind == "deep_svdd":
            assert bool(model.centre_ready) and all(
                m.bias is None for m in model.modules() if isinstance(m, torch.nn.Linear)
            )
        # Calibrated on its own class: mean 0, std 1 there.
        own = digits.train.X[digits.train.y == 0]
        scores = model(own).detach()
        assert abs(float(scores.mean())) < 0.5
    assert torch.allclose(engine.predict_proba(digits.test.X).sum(1), torch.ones(len(digits.test)))
    assert torch.allclose(
        torch.softmax(engine.as_module()(digits.test.X[:20]), 1),
        engine.predict_proba(digits.test.X[:20]),
    )


# -- exactness -------------------------------------------------------------------------


@pytest.mark.parametrize("reselect", [True, False])
@pytest.mark.parametrize("rho", [1.0, 0.5])
def test_forget_equals_a_fresh_fit_without_the_ids(small, tmp_path, reselect, rho):
    options = dict(OPTIONS, rho=rho, reselect=reselect)
    engine = ARCANE(**options, store=tmp_path / "a").fit(small)
    classes, blocks = engine.locate(small.ids)
    selected = small.ids.numpy()[(classes == 2) & (blocks < 3)]
    first = [int(selected[0]), int(small.ids[classes == 5][-1])]
    second = [int(small.ids[classes == 2][len(selected) // 2])]
    second = [i for i in second if i not in first] or [int(small.ids[classes == 7][0])]
    engine.forget(first)
    engine.forget(second)
    reference = ARCANE(**options, store=tmp_path / "b").fit(small, exclude_ids=first + second)
    assert_same_models(engine, reference)
    assert torch.equal(engine.predict_proba(small.X[:50]), reference.predict_proba(small.X[:50]))
    assert engine.verify() == []


def test_the_process_executor_gives_the_same_bits(small, tmp_path):
    drop = [int(i) for i in small.ids[[0, 300, 500]]]
    with ARCANE(**{**OPTIONS, "executor": "process"}, rho=0.5, store=tmp_path / "p") as parallel:
        parallel.fit(small)
        result = parallel.forget(drop)
        assert len(result.parts) >= 2  # classes retrained as parallel jobs
        serial = ARCANE(**OPTIONS, rho=0.5, store=tmp_path / "s").fit(small, exclude_ids=drop)
        assert_same_models(parallel, serial)


def test_a_forget_touches_only_its_class(small, tmp_path):
    engine = ARCANE(**OPTIONS, store=tmp_path / "s").fit(small)
    before = snapshot(engine.store_)
    classes, _ = engine.locate(small.ids)
    result = engine.forget([int(small.ids[classes == 3][0]), int(small.ids[classes == 3][4])])
    assert list(result.parts) == [3]
    after = snapshot(engine.store_)
    others = [n for n in before if n.startswith("class-") and not n.startswith("class-0003/")]
    assert others and all(after.get(n) == before[n] for n in others)  # byte-identical


@pytest.mark.parametrize("reselect", [True, False])
def test_deleting_an_unselected_sample_retrains_nothing(small, tmp_path, reselect):
    engine = ARCANE(**OPTIONS, rho=0.5, reselect=reselect, store=tmp_path / "s").fit(small)
    classes, blocks = engine.locate(small.ids)
    # The last-picked greedy samples change the selection when k shrinks; pick an
    # unselected sample in a class whose k stays the same (an even class size).
    sizes = np.bincount(classes)
    c = int(next(c for c in range(10) if sizes[c] % 2 == 0))
    unselected = int(small.ids[(classes == c) & (blocks == 3)][0])
    steps = {n: h for n, h in snapshot(engine.store_).items() if "/step-" in n}

    result = engine.forget([unselected])

    assert result.steps_retrained == 0 and result.sample_passes == 0
    assert result.parts == {c: 4}  # one past the last step: nothing to train
    assert {n: h for n, h in snapshot(engine.store_).items() if "/step-" in n} == steps
    assert unselected not in engine.retained().ids.tolist()


def test_sorting_puts_likely_deletions_in_the_last_block(small, tmp_path):
    rng = np.random.default_rng(0)
    p = np.where(rng.random(len(small)) < 0.1, 0.9, 0.01)
    engine = ARCANE(**OPTIONS, deletion_probabilities=p, store=tmp_path / "s").fit(small)
    _, blocks = engine.locate(small.ids)
    likely = p > 0.5
    assert (blocks[likely] == 2).mean() > 0.9  # 10% of samples, the last third of each class
    # A likely deletion in a class whose block size ceil(k / 3) stays the same: only
    # the last step is redone (where it drops, every boundary moves: block_of_rank).
    classes, _ = engine.locate(small.ids)
    sizes = np.bincount(classes)
    pick = next(i for i in np.flatnonzero(likely) if sizes[classes[i]] % 3 != 1)
    result = engine.forget([int(small.ids[pick])])
    assert result.parts == {int(classes[pick]): 3}  # only the last step redone
    loaded = ARCANE.load(engine.store_, executor="serial")  # probabilities live in the store
    assert loaded.forget([int(small.ids[np.flatnonzero(likely)[1]])]).request == 2


def test_bad_options_and_requests(small, tmp_path):
    with pytest.raises(ConfigError, match="rho"):
        ARCANE(**OPTIONS, rho=0).fit(small)
    with pytest.raises(ConfigError, match="learner"):
        ARCANE(**OPTIONS, learner="svm").fit(small)
    with pytest.raises(ConfigError, match="hidden"):
        ARCANE(**{**OPTIONS, "hidden": [0]}).fit(small)
    engine = ARCANE(**OPTIONS, store=tmp_path / "s").fit(small)
    before = snapshot(engine.store_)
    with pytest.raises(DuplicateIdsError, match="id 3 appears more than once"):
        engine.forget([3, 3])
    assert snapshot(engine.store_) == before


def test_cli_round_trip(tmp_path):
    from cli_in_process import cli

    from unlearnkit.cli.arcane import ARCANE_LEARNERS

    assert ARCANE_LEARNERS == one_class.KINDS

    def invoke(*args):
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    store = tmp_path / "store"
    out = invoke("arcane", "fit", "--dataset", "digits", "--model", "mlp", "--out", store,
                 "--hidden", "16", "--rep-dim", "8", "--blocks", "2", "--epochs", "2",
                 "--executor", "serial")  # fmt: skip
    assert "fitted 10 class models x 2 blocks" in out
    out = invoke("arcane", "forget", store, "--ids", "1,2,3", "--executor", "serial")
    assert "request #1: forgot 3 id(s)" in out
    out = invoke("arcane", "status", store)
    assert "10 classes" in out and "1 served" in out and "3 forgotten" in out and "% on test" in out
    out = invoke("arcane", "evaluate", store, "--json")
    assert '"integrity": "ok"' in out
    before = snapshot(store)
    bad = cli("arcane", "forget", store, "--ids", "4,4", "--executor", "serial")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "4" in bad.stderr
    assert bad.stderr.count("\n") == 1 and snapshot(store) == before
    other = cli("arcane", "fit", "--dataset", "digits", "--model", "cnn", "--out", tmp_path / "x")
    assert other.returncode == 2 and "mlp" in other.stderr
