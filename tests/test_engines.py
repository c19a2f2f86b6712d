"""The engine registry beside the method registry: names, declarations, the listing."""

import pytest

from unlearnkit import exact, methods
from unlearnkit.cli import sisa as sisa_cli
from unlearnkit.cli.catalogue import exact_engine_line
from unlearnkit.engine_runner import run_options
from unlearnkit.errors import UnknownEngineError
from unlearnkit.exact import sisa
from unlearnkit.params import declared
from unlearnkit.training import TrainConfig


def test_the_cli_copy_of_the_aggregations_matches_the_engine():
    assert sisa_cli.SISA_AGGREGATIONS == sisa.AGGREGATIONS


def test_engine_and_method_names_do_not_collide():
    assert exact.names() == ["arcane", "exact_ridge", "sisa"]
    assert not set(exact.names()) & set(methods.names())


def test_a_failed_lookup_lists_the_engines_like_the_method_registry():
    with pytest.raises(
        UnknownEngineError,
        match="^unknown engine 'nope'; valid names: arcane, exact_ridge, sisa$",
    ):
        exact.get("nope")


@pytest.mark.parametrize("name", exact.names())
def test_for_run_takes_every_declared_run_option(name):
    cls = exact.get(name)
    options = run_options(name)
    assert options.keys() == declared(cls.run_options).keys()
    engine = cls.for_run(
        model="logreg", training=TrainConfig(epochs=2), seed=3, num_classes=10, **options
    )
    assert isinstance(engine, cls)
    line = exact_engine_line(cls)
    assert line.startswith(f"{name} ") and cls.summary in line
    assert ("bit-exact" in line) == cls.bit_exact and ("persistent" in line) == cls.persistent
