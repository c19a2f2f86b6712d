"""Parameter declarations, and the one function that checks options against them.

A method (or any callable whose options reach the command line) declares each
keyword-only parameter's type and range in its signature with
:class:`typing.Annotated`::

    def __init__(self, *, epochs: Annotated[int, Range(ge=1)] = 3,
                 target: Annotated[str, OneOf(("a", "b"))] = "a") -> None: ...

:func:`validate` reads those declarations and checks a dict of options
against them, wherever the options come from (``-o METHOD.PARAM=VALUE`` on the
command line, or keyword arguments in Python), so every method is checked the
same way and no method repeats the checks in its own code.

>>> def recipe(
...     *, epochs: Annotated[int, Range(ge=1)] = 3, lr: Annotated[float, Range(gt=0)] = 0.1
... ): ...
>>> validate(recipe, {"epochs": 2, "lr": 1}, name="recipe")
{'epochs': 2, 'lr': 1.0}
>>> validate(recipe, {"epochs": 0}, name="recipe")
Traceback (most recent call last):
...
unlearnkit.errors.ConfigError: recipe.epochs must be an integer >= 1; got 0
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any

from unlearnkit.errors import ConfigError

__all__ = [
    "SEED_MAX",
    "OneOf",
    "Param",
    "Range",
    "Seed",
    "check_seed",
    "check_seeds",
    "declared",
    "validate",
]


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``ge``/``gt`` below, ``le``/``lt`` above (any may be omitted)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value: float) -> bool:
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def __str__(self) -> str:
        low = (
            ("[", self.ge)
            if self.ge is not None
            else ("(", self.gt)
            if self.gt is not None
            else None
        )
        high = (
            ("]", self.le)
            if self.le is not None
            else (")", self.lt)
            if self.lt is not None
            else None
        )
        if low and high:
            return f"in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
        if low:
            return f"{'>=' if low[0] == '[' else '>'} {_number(low[1])}"
        if high:
            return f"{'<=' if high[0] == ']' else '<'} {_number(high[1])}"
        return "any value"


def _number(x: float) -> str:
    # Integral bounds print in full (a seed's 4294967295, not 4.29497e+09).
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class OneOf:
    """The value must be one of ``choices`` (strings)."""

    choices: tuple[str, ...]

    def __str__(self) -> str:
        return "one of " + ", ".join(self.choices)


# Seeds feed numpy's and torch's generators and are mixed arithmetically into derived
# seeds; 0 <= seed < 2**32 is what numpy's legacy seeding accepts, and leaves room for
# the derivations to stay within torch's 64-bit range.
SEED_MAX = 2**32 - 1
SEED_RANGE = Range(ge=0, le=SEED_MAX)
Seed = Annotated[int, SEED_RANGE]


@dataclass(frozen=True)
class Param:
    """One declared parameter: its name, accepted type(s), bound, and default."""

    name: str
    types: tuple[type, ...]  # accepted types, without NoneType
    optional: bool  # None is accepted
    bound: Range | OneOf | None
    default: Any

    def describe(self) -> str:
        """What is expected, in words: ``an integer >= 1``, ``one of a, b or None``."""
        words = (
            " or ".join(_TYPE_WORDS.get(t, f"a {t.__name__}") for t in self.types) or "any value"
        )
        if isinstance(self.bound, OneOf):
            words = str(self.bound)
        elif self.bound is not None:
            words = f"{words} {self.bound}"
        return f"{words} or None" if self.optional else words


_TYPE_WORDS = {
    int: "an integer",
    float: "a finite number",
    bool: "true or false",
    str: "a string",
}


def _param(name: str, hint: Any, default: Any) -> Param:
    bound = None
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        bound = next((e for e in extras if isinstance(e, (Range, OneOf))), None)
    if hint is inspect.Parameter.empty or hint is Any:
        return Param(name, (), True, bound, default)
    members = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    optional = type(None) in members
    kinds = tuple(m for m in members if m is not type(None))
    return Param(name, kinds, optional, bound, default)


def declared(target: type | Any) -> dict[str, Param]:
    """The declared keyword-only parameters of a class's ``__init__`` chain, or of a function.

    For a class, the ``__init__`` of each class in the MRO contributes its
    parameters while the one below it forwards ``**kwargs`` upwards; the most
    derived declaration (type, bound and default) of a name wins.
    """
    if isinstance(target, type):
        functions = [c.__dict__["__init__"] for c in target.__mro__ if "__init__" in c.__dict__]
        functions = [f for f in functions if f is not object.__init__]
    else:
        functions = [target]
    out: dict[str, Param] = {}
    for fn in functions:
        hints = typing.get_type_hints(fn, include_extras=True)
        forwards = False
        params = list(inspect.signature(fn).parameters.values())
        for p in params[1:] if isinstance(target, type) else params:  # skip `self`
            if p.kind is p.VAR_KEYWORD:
                forwards = True
            elif p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in out:
                # Positional-or-keyword too: a dataclass (a recipe such as TrainConfig) is
                # checked field by field the same way.
                out[p.name] = _param(p.name, hints.get(p.name, p.empty), p.default)
        if not forwards:
            break
    return out


def _coerce(param: Param, value: Any, where: str) -> Any:
    if value is None and param.optional:
        return None
    if not param.types:
        return value

    def wrong(*, show_type: bool = True) -> ConfigError:
        # The type is named when it is the problem: a '3' (str) reads like a 3 otherwise.
        given = f"{value!r} ({type(value).__name__})" if show_type else repr(value)
        return ConfigError(f"{where} must be {param.describe()}; got {given}")

    for kind in param.types:
        if kind is bool:
            if isinstance(value, bool):
                return value
        elif kind is int:
            # bool is an int in Python, but True for an epoch count is a mistake, not a 1.
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)
                break
        elif kind is float:
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                value = float(value)
                if not math.isfinite(value):
                    raise wrong(show_type=False)
                break
        elif kind is str:
            if isinstance(value, str):
                break
        elif isinstance(value, kind):
            return value
        elif dataclasses.is_dataclass(kind) and isinstance(value, dict):
            # A recipe such as TrainConfig may come from the command line as a JSON object.
            return kind(**validate(kind, value, name=where))
    else:
        raise wrong()
    if isinstance(param.bound, Range) and value not in param.bound:
        raise wrong(show_type=False)
    if isinstance(param.bound, OneOf) and value not in param.bound.choices:
        raise wrong(show_type=False)
    return value


def validate(target: type | Any, options: dict[str, Any], *, name: str) -> dict[str, Any]:
    """Check ``options`` against ``target``'s declarations; return them coerced.

    ``name`` prefixes every message (``finetune.epochs must be ...``). An int is
    accepted for a float (and becomes one); a bool is not an int; floats must be
    finite; unknown names are refused with the valid ones listed. Each problem
    raises :class:`~unlearnkit.errors.ConfigError` naming ``name.param``, what is
    expected and the value given.
    """
    params = declared(target)
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigError(
            f"bad options for method {name!r}: no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(sorted(params))}"
        )
    return {k: _coerce(params[k], v, f"{name}.{k}") for k, v in options.items()}


def check_seed(seed: Any, *, what: str = "seed") -> int:
    """``seed`` as an int in ``0..SEED_MAX``; anything else raises ``ConfigError`` naming ``what``."""
    return _coerce(Param(what, (int,), False, SEED_RANGE, None), seed, what)


def check_seeds(seeds: Any, *, what: str = "seeds") -> list[int]:
    """A non-empty list of distinct seeds, each checked by :func:`check_seed`.

    >>> check_seeds([0, 1, 1], what="--seeds")
    Traceback (most recent call last):
    ...
    unlearnkit.errors.ConfigError: --seeds repeats 1; give each seed once
    """
    seeds = [check_seed(s, what=f"{what} entry") for s in seeds]
    if not seeds:
        raise ConfigError(f"{what} is empty; give at least one seed, e.g. 0,1,2")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ConfigError(f"{what} repeats {', '.join(map(str, repeated))}; give each seed once")
    return seeds
