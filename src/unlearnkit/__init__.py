"""unlearnkit: machine unlearning, evaluated against the golden retrained model.

>>> import unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> split = uk.select_forget(data, "class:3")
>>> model = uk.train(uk.models.make("logreg", data), split.train, epochs=2)
>>> new = uk.methods.get("finetune")(epochs=1).unlearn(model, split)
>>> sorted(uk.evaluate(new, split))
['MIA', 'MIA_attack_acc', 'RA', 'TA', 'UA']
"""

__version__ = "0.1.0"

from unlearnkit import data as datasets  # noqa: E402
from unlearnkit import exact, methods, models  # noqa: E402
from unlearnkit.data import ForgetSplit, select_forget  # noqa: E402
from unlearnkit.evaluation import evaluate  # noqa: E402
from unlearnkit.training import TrainConfig, accuracy, train  # noqa: E402

__all__ = [
    "ForgetSplit",
    "TrainConfig",
    "__version__",
    "accuracy",
    "datasets",
    "evaluate",
    "exact",
    "methods",
    "models",
    "select_forget",
    "train",
]
