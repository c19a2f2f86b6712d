"""Every registered method through the same checks (the captum pattern).

A method must: leave its input model unchanged; give bit-identical results for
the same seed; return the same architecture; and honour its declared
capabilities — a method that says it does not need the forget (retain,
validation) data must give the same result when that data is replaced. A method
that works on some models only (``model_kinds``) is checked on the first of them.
"""

import pytest
import torch

import unlearnkit as uk
from unlearnkit import methods
from unlearnkit.data import ForgetSplit, Split
from unlearnkit.training import TrainConfig

# Methods that need more than (model, split) get their extra arguments here.
# Exact engines that train their own constituents are exercised in their own suites.
EXTRA_OPTIONS: dict[str, dict] = {}
SMALL = TrainConfig(epochs=2, lr=0.05)


@pytest.fixture(scope="module")
def settings(digits):
    split = uk.select_forget(digits, "random:0.1", seed=0, validation=0.1)
    trained = {}

    def for_method(name):
        kinds = methods.get(name).model_kinds
        kind = kinds[0] if kinds else "mlp"
        if kind not in trained:
            options = {"hidden": (32,)} if kind == "mlp" else {}
            template = uk.models.make(kind, digits, **options)
            trained[kind] = uk.train(template, split.train, seed=0, config=SMALL)
        return trained[kind], split

    return for_method


@pytest.fixture
def setting(settings, request):
    return settings(request.node.callspec.params["name"])


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _make(name, seed=0):
    cls = methods.get(name)
    options = {"seed": seed, **EXTRA_OPTIONS.get(name, {})}
    if name == "golden":
        options["config"] = SMALL
    return cls(**options)


def _noised(split: ForgetSplit, part: str) -> ForgetSplit:
    """The split with ``part``'s features and labels replaced by noise (ids kept).

    ``train`` is ``retain`` ∪ ``forget``, so its rows of ``part`` change too: a method
    that says it never reads the forget samples must not read them through ``train``.
    """
    old = getattr(split, part)
    gen = torch.Generator().manual_seed(123)
    fake = Split(
        ids=old.ids,
        X=torch.randn(old.X.shape, generator=gen),
        y=torch.randint(0, split.num_classes, old.y.shape, generator=gen),
    )
    train_X, train_y = split.train.X.clone(), split.train.y.clone()
    if part != "validation":  # validation is held out of train
        rows = split.train.positions(old.ids)
        train_X[rows], train_y[rows] = fake.X, fake.y
    fields = {
        f: getattr(split, f)
        for f in ("train", "retain", "forget", "test", "spec", "seed", "num_classes", "validation")
    }
    fields[part] = fake
    fields["train"] = Split(ids=split.train.ids, X=train_X, y=train_y)
    return ForgetSplit(**fields)


REGISTERED = methods.names()


@pytest.mark.parametrize("name", REGISTERED)
def test_input_model_is_not_changed(name, setting):
    model, split = setting
    before = _state(model)
    method = _make(name)
    method.unlearn(method.setup(model, split), split)
    assert _same(before, _state(model))


@pytest.mark.parametrize("name", REGISTERED)
def test_same_seed_same_result_and_architecture(name, setting):
    model, split = setting
    a, b = _make(name), _make(name)
    out_a = a.unlearn(a.setup(model, split), split)
    out_b = b.unlearn(b.setup(model, split), split)
    assert _same(_state(out_a), _state(out_b))
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (k, v.shape) for k, v in out_a.state_dict().items()
    ]
    assert out_a(split.test.X[:4]).shape == (4, split.num_classes)


@pytest.mark.parametrize("name", REGISTERED)
def test_declared_capabilities_are_honoured(name, setting):
    model, split = setting
    cls = methods.get(name)
    reference = _make(name).unlearn(model, split)
    needs = (
        ("forget", cls.needs_forget),
        ("retain", cls.needs_retain),
        ("validation", cls.needs_validation),
    )
    for part, needed in needs:
        if needed:
            continue
        noised = _noised(split, part)
        method = _make(name)
        out = method.unlearn(method.setup(model, noised), noised)
        assert _same(_state(reference), _state(out)), (
            f"{name} reads {part} data it says it does not need"
        )


@pytest.mark.parametrize("name", REGISTERED)
def test_methods_are_documented_and_keyword_only(name):
    cls = methods.get(name)
    assert cls.summary and cls.__doc__
    import inspect

    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params), name


def test_approximate_methods_change_the_model(settings):
    for name in REGISTERED:
        if methods.get(name).exact:
            continue
        model, split = settings(name)
        out = _make(name).unlearn(model, split)
        assert not _same(_state(model), _state(out)), f"{name} returned the model unchanged"
