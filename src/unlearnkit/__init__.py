"""unlearnkit: machine unlearning, evaluated against the golden retrained model.

>>> import unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> split = uk.select_forget(data, "class:3")
>>> model = uk.train(uk.models.make("logreg", data), split.train, epochs=2)
>>> new = uk.methods.get("finetune")(epochs=1).unlearn(model, split)
>>> sorted(uk.evaluate(new, split))
['LT_AUC', 'LT_TPR01', 'LT_TPR1', 'MIA', 'MIA_attack_acc', 'RA', 'TA', 'UA']
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# The public names are imported on first use (PEP 562), not here: importing torch and
# scikit-learn takes seconds, and the command line must answer `--help` without them.
_LAZY = {
    "datasets": ("unlearnkit.data", None),
    "exact": ("unlearnkit.exact", None),
    "methods": ("unlearnkit.methods", None),
    "models": ("unlearnkit.models", None),
    "ForgetSplit": ("unlearnkit.data", "ForgetSplit"),
    "select_forget": ("unlearnkit.data", "select_forget"),
    "evaluate": ("unlearnkit.evaluation", "evaluate"),
    "TrainConfig": ("unlearnkit.training", "TrainConfig"),
    "accuracy": ("unlearnkit.training", "accuracy"),
    "train": ("unlearnkit.training", "train"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    try:
        module, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'unlearnkit' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
