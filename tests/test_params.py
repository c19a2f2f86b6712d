"""``unlearnkit.params``: the declarations and the one validator behind every method option."""

import math
from typing import Annotated

import numpy as np
import pytest

from unlearnkit.errors import ConfigError
from unlearnkit.params import SEED_MAX, OneOf, Range, check_seed, check_seeds, validate


def options(
    *,
    epochs: Annotated[int, Range(ge=1)] = 3,
    lr: Annotated[float, Range(gt=0)] = 0.1,
    alpha: Annotated[float, Range(gt=0, le=1)] = 1.0,
    target: Annotated[str, OneOf(("a", "b"))] = "a",
    progress: bool | None = None,
) -> None:
    pass


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"epochs": 1.5}, r"x\.epochs must be an integer >= 1; got 1\.5 \(float\)"),
        ({"epochs": 2.0}, r"x\.epochs must be an integer >= 1; got 2\.0 \(float\)"),
        ({"epochs": True}, r"x\.epochs must be an integer >= 1; got True \(bool\)"),
        ({"epochs": "3"}, r"x\.epochs must be an integer >= 1; got '3' \(str\)"),
        ({"epochs": [1, 2]}, r"x\.epochs must be an integer >= 1; got \[1, 2\] \(list\)"),
        ({"epochs": 0}, r"x\.epochs must be an integer >= 1; got 0$"),
        ({"lr": "abc"}, r"x\.lr must be a finite number > 0; got 'abc' \(str\)"),
        ({"lr": math.nan}, r"x\.lr must be a finite number > 0; got nan$"),
        ({"lr": math.inf}, r"x\.lr must be a finite number > 0; got inf$"),
        ({"lr": 0}, r"x\.lr must be a finite number > 0; got 0\.0$"),
        ({"alpha": 1.5}, r"x\.alpha must be a finite number in \(0, 1\]; got 1\.5$"),
        ({"target": "c"}, r"x\.target must be one of a, b; got 'c'$"),
        ({"progress": 1}, r"x\.progress must be true or false or None; got 1 \(int\)"),
        ({"nope": 1}, r"no parameter 'nope'; valid parameters: alpha, epochs, lr, progress"),
    ],
)
def test_bad_values_name_the_parameter_the_expectation_and_the_value(given, message):
    with pytest.raises(ConfigError, match=message):
        validate(options, given, name="x")


def test_good_values_are_coerced():
    got = validate(options, {"epochs": np.int64(2), "lr": 1, "progress": None}, name="x")
    assert got == {"epochs": 2, "lr": 1.0, "progress": None}
    assert type(got["epochs"]) is int and type(got["lr"]) is float


def test_seeds():
    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX
    for bad in (-1, SEED_MAX + 1, 2**70, 1.5, "0", True):
        with pytest.raises(
            ConfigError, match=r"^--data-seed must be an integer in \[0, 4294967295\]"
        ):
            check_seed(bad, what="--data-seed")
    assert check_seeds([2, 0, 1]) == [2, 0, 1]
    with pytest.raises(ConfigError, match="seeds is empty"):
        check_seeds([])
    with pytest.raises(ConfigError, match="seeds repeats 0, 1; give each seed once"):
        check_seeds([0, 1, 0, 1, 2])
