"""unlearnkit: machine unlearning, evaluated against the golden retrained model."""

__version__ = "0.1.0"

from unlearnkit import data as datasets  # noqa: E402
from unlearnkit import models  # noqa: E402
from unlearnkit.data import ForgetSplit, select_forget  # noqa: E402
from unlearnkit.training import TrainConfig, accuracy, train  # noqa: E402

__all__ = [
    "ForgetSplit",
    "TrainConfig",
    "__version__",
    "accuracy",
    "datasets",
    "models",
    "select_forget",
    "train",
]
