"""Exact unlearning engines: the result equals retraining without the forgotten samples.

Every engine implements :class:`ExactEngine` (``fit`` / ``forget`` / ``load``, with
declared capabilities) and is registered by name: ``names()``, ``get(name)``,
``ENGINES``. Registered today: ``sisa`` (:class:`SISA`), ``arcane`` (:class:`ARCANE`) and
``exact_ridge`` (:class:`RidgeClassifierEngine`). :class:`LinearRegressionUnlearner` is the
closed-form regression solver the ridge engine is built on.
"""

import importlib

from unlearnkit.exact.arcane import ARCANE, ARCANEEnsemble  # noqa: F401,E402
from unlearnkit.exact.base import (  # noqa: F401
    ENGINES,
    ExactEngine,
    ForgetResult,
    get,
    names,
    register,
)
from unlearnkit.exact.ridge_classifier import RidgeClassifierEngine, RidgeScores  # noqa: F401
from unlearnkit.exact.sisa import SISA, ForgetReport, SISAEnsemble  # noqa: F401

# The linear solver imports scipy; loaded on first use, so listing the engines
# (`unlearnkit methods`) does not pay for it.
_LAZY = {
    "LinearForgetResult": "unlearnkit.exact.linear",
    "LinearRegressionUnlearner": "unlearnkit.exact.linear",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'unlearnkit.exact' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "ARCANE",
    "ARCANEEnsemble",
    "ENGINES",
    "SISA",
    "ExactEngine",
    "ForgetReport",
    "ForgetResult",
    "LinearForgetResult",
    "LinearRegressionUnlearner",
    "RidgeClassifierEngine",
    "RidgeScores",
    "SISAEnsemble",
    "get",
    "names",
    "register",
]
