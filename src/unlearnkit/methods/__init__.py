"""Approximate (and reference) unlearning methods, each registered by name.

>>> "finetune" in names()
True
>>> get("no_such_method")
Traceback (most recent call last):
...
unlearnkit.errors.UnknownMethodError: unknown method 'no_such_method'; valid names: ...
"""

from unlearnkit.methods import (  # noqa: F401  (registers the methods)
    baselines,
    certified,
    influence,
    masking,
    paper,
    puma,
)
from unlearnkit.methods.base import (
    REGISTRY,
    FineTuneMethod,
    UnlearningMethod,
    get,
    names,
    random_wrong_labels,
    register,
)

__all__ = [
    "REGISTRY",
    "FineTuneMethod",
    "UnlearningMethod",
    "get",
    "names",
    "random_wrong_labels",
    "register",
]
