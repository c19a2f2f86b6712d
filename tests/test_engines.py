"""``unlearnkit.engines`` copies two name lists to stay light; they must match their sources."""

from unlearnkit import engines, runtime
from unlearnkit.exact import sisa


def test_copied_names_match_their_sources():
    assert engines.SISA_AGGREGATIONS == sisa.AGGREGATIONS
    assert sorted(engines.EXECUTORS) == sorted(runtime.names())


def test_engine_options_are_those_run_sisa_takes():
    import inspect

    taken = inspect.signature(sisa.run_sisa).parameters
    for name in engines.EXACT_ENGINES["sisa"]:
        assert name in taken
        assert taken[name].default == engines.declared(engines.sisa_options)[name].default
