"""Every registered method declares each hyper-parameter, and the declarations are enforced.

For each declared parameter of each method (and of each exact engine ``run`` knows),
a value of the wrong type and a value outside the declared range are refused with a
``ConfigError`` naming ``method.param``, at construction, before any work.
"""

import pytest

from unlearnkit import exact, methods
from unlearnkit.errors import ConfigError
from unlearnkit.params import OneOf, Param, Range, declared, validate

# A value of the wrong type for each declared type.
WRONG_TYPE = {int: "3", float: "abc", bool: 1, str: 3}


def _out_of_range(param: Param):
    """A value of the right type just outside the declared bound; None when there is none."""
    bound = param.bound
    if isinstance(bound, OneOf):
        return "no-such-choice"
    if not isinstance(bound, Range):
        return None
    step = 1 if param.types == (int,) else 0.5
    if bound.ge is not None:
        return bound.ge - step
    if bound.gt is not None:
        return bound.gt
    if bound.le is not None:
        return bound.le + step
    return bound.lt


CASES = [
    (name, cls, param)
    # An engine's `-o` options are the parameters of its `run_options` declaration.
    for name, cls in [
        *methods.REGISTRY.items(),
        *((n, e.run_options) for n, e in exact.ENGINES.items()),
    ]
    for param in declared(cls).values()
]


@pytest.mark.parametrize(
    ("name", "cls", "param"), CASES, ids=[f"{n}.{p.name}" for n, _, p in CASES]
)
def test_each_declared_parameter_rejects_wrong_type_and_range(name, cls, param):
    assert param.types, f"{name}.{param.name} has no declared type"
    wrong = WRONG_TYPE.get(param.types[0], "not-a-" + param.types[0].__name__)
    with pytest.raises(ConfigError, match=rf"^{name}\.{param.name} must be .*; got {wrong!r}"):
        validate(cls, {param.name: wrong}, name=name)
    if isinstance(cls, type):  # a method refuses it when built from Python, too
        with pytest.raises(ConfigError, match=rf"^{name}\.{param.name} must be"):
            cls(**{param.name: wrong})
    outside = _out_of_range(param)
    if outside is not None:
        with pytest.raises(ConfigError, match=rf"^{name}\.{param.name} must be .*; got"):
            validate(cls, {param.name: outside}, name=name)
    if param.default is not None:  # the declared default passes its own declaration
        assert validate(cls, {param.name: param.default}, name=name) == {param.name: param.default}


@pytest.mark.parametrize("name", methods.names())
def test_unknown_parameter_names_list_the_valid_ones(name):
    with pytest.raises(ConfigError, match=r"no parameter 'nope'; valid parameters: .*seed"):
        methods.get(name)(nope=1)


@pytest.mark.parametrize("name", methods.names())
def test_get_params_returns_every_declared_parameter(name):
    method = methods.get(name)(seed=3)
    params = method.get_params()
    assert params.keys() == declared(type(method)).keys()
    assert params["seed"] == 3


def test_an_int_for_a_float_is_stored_as_a_float():
    method = methods.get("kl_ft")(alpha=1, lr=1)
    assert type(method.alpha) is float and type(method.lr) is float
