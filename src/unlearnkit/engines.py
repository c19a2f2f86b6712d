"""The exact engines ``unlearnkit run`` runs by name beside the registered methods.

Each engine trains its own models, so it is not an :class:`UnlearningMethod`;
its ``-o ENGINE.PARAM=VALUE`` options are declared here, the same way a
method declares its own (:mod:`unlearnkit.params`), and checked by the same
function. This module imports nothing heavy, so listing engines stays fast.
"""

from __future__ import annotations

from typing import Annotated

from unlearnkit.params import OneOf, Range, declared

# Copies of ``unlearnkit.exact.sisa.AGGREGATIONS`` and of the runtime's executor names:
# importing those modules would import torch. tests/test_engines.py keeps them equal.
SISA_AGGREGATIONS = ("vote", "softmax")
EXECUTORS = ("serial", "process", "ray")


def sisa_options(
    *,
    shards: Annotated[int, Range(ge=1)] = 5,
    slices: Annotated[int, Range(ge=1)] = 5,
    aggregation: Annotated[str, OneOf(SISA_AGGREGATIONS)] = "vote",
    executor: Annotated[str, OneOf(EXECUTORS)] = "serial",
) -> None:
    """Options of ``-o sisa.PARAM=VALUE``, passed on to :func:`unlearnkit.exact.run_sisa`."""


# Engine name -> the callable whose keyword-only parameters declare its options.
ENGINES = {"sisa": sisa_options}

# Engine name -> its option names (the form the listing and older callers use).
EXACT_ENGINES = {name: tuple(declared(fn)) for name, fn in ENGINES.items()}
