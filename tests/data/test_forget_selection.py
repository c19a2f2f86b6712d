import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import unlearnkit as uk
from unlearnkit.errors import ForgetSelectionError


def _check_partition(split):
    retain, forget = set(split.retain.ids.tolist()), set(split.forget.ids.tolist())
    assert not retain & forget
    assert retain | forget == set(split.train.ids.tolist())


@settings(max_examples=15, deadline=None)
@given(fraction=st.floats(0.01, 0.95), seed=st.integers(0, 10_000))
def test_random_fraction_partitions_train(digits, fraction, seed):
    split = uk.select_forget(digits, f"random:{fraction:.4f}", seed=seed)
    _check_partition(split)
    assert len(split.forget) == round(float(f"{fraction:.4f}") * len(digits.train))


def test_random_is_seeded(digits):
    a = uk.select_forget(digits, "random:50", seed=1)
    b = uk.select_forget(digits, "random:50", seed=1)
    c = uk.select_forget(digits, "random:50", seed=2)
    assert len(a.forget) == 50
    assert torch.equal(a.forget.ids, b.forget.ids) and not torch.equal(a.forget.ids, c.forget.ids)
    assert a.forget_sha256 == b.forget_sha256 != c.forget_sha256


def test_class_forgetting_takes_every_sample_of_the_classes(digits):
    split = uk.select_forget(digits, "class:3,5")
    _check_partition(split)
    assert set(split.forget.y.tolist()) == {3, 5}
    assert not torch.isin(split.retain.y, torch.tensor([3, 5])).any()


def test_ids_file(tmp_path, digits):
    ids = digits.train.ids[:7].tolist()
    path = tmp_path / "ids.txt"
    path.write_text("# forget these\n" + "\n".join(map(str, ids)) + "\n")
    split = uk.select_forget(digits, f"ids:{path}")
    assert sorted(split.forget.ids.tolist()) == sorted(ids)


@pytest.mark.parametrize(
    "spec,match",
    [
        ("random", "malformed"),
        ("random:", "malformed"),
        ("random:abc", "not a number"),
        ("random:1.5", "fraction must be in"),
        ("random:0", "count must be in"),
        ("random:100000", "count must be in"),
        ("class:x", "comma-separated integers"),
        ("class:42", r"not in this data set"),
        ("shuffle:3", "unknown forget kind"),
    ],
)
def test_bad_specs_name_the_problem(digits, spec, match):
    with pytest.raises(ForgetSelectionError, match=match):
        uk.select_forget(digits, spec)


def test_all_covering_and_empty_and_unknown_ids(tmp_path, digits):
    every = tmp_path / "all.txt"
    every.write_text("\n".join(map(str, digits.train.ids.tolist())))
    with pytest.raises(ForgetSelectionError, match="selects all"):
        uk.select_forget(digits, f"ids:{every}")
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ForgetSelectionError, match="selects no sample"):
        uk.select_forget(digits, f"ids:{empty}")
    test_id = int(digits.test.ids[0])
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{test_id}\n")
    with pytest.raises(ForgetSelectionError, match="not in this data set"):
        uk.select_forget(digits, f"ids:{bad}")
    with pytest.raises(ForgetSelectionError, match="does not exist"):
        uk.select_forget(digits, f"ids:{tmp_path / 'nope.txt'}")
    junk = tmp_path / "junk.txt"
    junk.write_text("12\nabc\n")
    with pytest.raises(ForgetSelectionError, match="junk.txt:2"):
        uk.select_forget(digits, f"ids:{junk}")


@pytest.fixture
def pets(tmp_path):
    rows = ["weight,kind"] + [f"{i},{('cat', 'dog', 'eel')[i % 3]}" for i in range(30)]
    (tmp_path / "pets.csv").write_text("\n".join(rows))
    return uk.datasets.load(str(tmp_path / "pets.csv"), target="kind")


def test_class_by_label_name_or_index(pets):
    by_name = uk.select_forget(pets, "class:dog")
    by_index = uk.select_forget(pets, "class:1")
    assert torch.equal(by_name.forget.ids, by_index.forget.ids)
    assert set(by_name.forget.y.tolist()) == {1}
    assert set(uk.select_forget(pets, "class:cat,eel").forget.y.tolist()) == {0, 2}


@pytest.mark.parametrize("spec", ["class:cow", "class:7"])
def test_unknown_class_lists_the_names(pets, spec):
    with pytest.raises(ForgetSelectionError, match="0 = cat, 1 = dog, 2 = eel"):
        uk.select_forget(pets, spec)


@settings(max_examples=10, deadline=None)
@given(fraction=st.floats(0.05, 0.5), seed=st.integers(0, 1000))
def test_validation_is_held_out_of_training_and_never_the_test_set(digits, fraction, seed):
    split = uk.select_forget(digits, "random:0.1", seed=seed, validation=fraction)
    _check_partition(split)
    held, train = set(split.validation.ids.tolist()), set(split.train.ids.tolist())
    assert not held & train and not held & set(split.test.ids.tolist())
    assert held | train == set(digits.train.ids.tolist())
    assert len(held) == round(fraction * len(digits.train))
    assert len(split.forget) == round(0.1 * len(train))
    # Drawn from the seed alone: every spec shares the training set (one original model).
    other = uk.select_forget(digits, "class:3", seed=seed, validation=fraction)
    assert torch.equal(other.validation.ids, split.validation.ids)
    assert torch.equal(other.train.ids, split.train.ids)
    assert bool((other.forget.y == 3).all()) and not set(other.forget.ids.tolist()) & held
    assert uk.select_forget(digits, "class:3", seed=seed).validation is None
    assert split.describe()["n_validation"] == len(held)


def test_forgetting_a_validation_sample_is_refused(digits):
    split = uk.select_forget(digits, "class:3", seed=0, validation=0.1)
    with pytest.raises(ForgetSelectionError, match="validation split"):
        uk.select_forget(digits, split.validation.ids[:2].tolist(), seed=0, validation=0.1)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 1e-6, float("nan")])
def test_bad_validation_fractions_are_refused(digits, fraction):
    with pytest.raises(ForgetSelectionError, match="validation fraction"):
        uk.select_forget(digits, "class:3", validation=fraction)
