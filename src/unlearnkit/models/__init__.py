"""A small model zoo. ``make(name, data)`` builds a model sized for a data set.

Every model built here remembers how it was built (``model.spec``), so a
checkpoint can rebuild the architecture before loading weights.

>>> from unlearnkit.data import load
>>> model = make("mlp", load("digits"), hidden=(32,))
>>> model.spec["name"], model.spec["kwargs"], model.spec["preprocessing"]
('mlp', {'hidden': [32]}, 'standardize')

Tabular inputs get a :class:`Standardize` step inside the model (``preprocessing``
``auto``), fitted by :func:`unlearnkit.train` on the model's own training data.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from unlearnkit.errors import ConfigError, UnknownModelError
from unlearnkit.models.preprocessing import (
    FittedPreprocessing,
    Preprocessed,
    Standardize,
    fit_preprocessing,
)
from unlearnkit.models.preprocessing import build as build_preprocessing
from unlearnkit.models.preprocessing import resolve as resolve_preprocessing
from unlearnkit.registry import Registry

_BUILDERS: Registry[Callable[..., nn.Module]] = Registry("model", error=UnknownModelError)


def names() -> list[str]:
    return _BUILDERS.names()


def make(
    name: str,
    data=None,
    *,
    input_shape: tuple[int, ...] | None = None,
    num_outputs: int | None = None,
    preprocessing: str = "auto",
    seed: int = 0,
    **kwargs,
) -> nn.Module:
    """Build model ``name`` for ``data`` (or explicit ``input_shape`` / ``num_outputs``).

    ``preprocessing``: ``auto`` (standardise flat inputs, none for images),
    ``standardize`` or ``none``; the steps are fitted when the model is trained.
    Weights are initialised from ``seed``; :func:`unlearnkit.train` re-initialises
    from its own seed, so the seed here matters only for untrained use.
    """
    builder = _BUILDERS.get(name)
    if data is not None:
        input_shape = input_shape or tuple(data.input_shape)
        num_outputs = num_outputs or (data.num_classes if data.num_classes else 1)
    if input_shape is None or num_outputs is None:
        raise ConfigError("make() needs a data set, or both input_shape and num_outputs")
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = builder(tuple(input_shape), int(num_outputs), **kwargs)
        except TypeError as exc:
            raise ConfigError(f"bad options for model {name!r}: {exc}") from None
    steps = build_preprocessing(preprocessing, tuple(input_shape))
    if steps:
        model = Preprocessed(steps, model)
    model.spec = {
        "name": name,
        "input_shape": list(input_shape),
        "num_outputs": int(num_outputs),
        "preprocessing": resolve_preprocessing(preprocessing, tuple(input_shape)),
        "kwargs": kwargs,
    }
    return model


def from_spec(spec: dict, *, seed: int = 0) -> nn.Module:
    """Rebuild an (untrained) model from ``model.spec``."""
    return make(
        spec["name"],
        input_shape=tuple(spec["input_shape"]),
        num_outputs=spec["num_outputs"],
        # Specs written before models owned their preprocessing had none.
        preprocessing=spec.get("preprocessing", "none"),
        seed=seed,
        **spec.get("kwargs", {}),
    )


def reset_parameters(model: nn.Module, *, seed: int) -> nn.Module:
    """Re-initialise every layer in place from ``seed`` (PyTorch's default schemes).

    A module that holds parameters of its own but has no ``reset_parameters`` cannot
    be re-initialised this way; that is an error naming it (pass a factory instead:
    ``uk.train(lambda: MyNet(), split, seed=0)`` builds a fresh module per seed).
    """
    stuck = [
        name or type(model).__name__
        for name, module in model.named_modules()
        if any(True for _ in module.parameters(recurse=False))
        and not hasattr(module, "reset_parameters")
    ]
    if stuck:
        raise ConfigError(
            f"cannot re-initialise module(s) {stuck}: they hold parameters but define no "
            "reset_parameters(); give a factory (a callable returning a fresh model) instead "
            "of a model, e.g. uk.train(lambda: MyNet(), split, seed=0)"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return model


def fresh_model(model_or_factory, *, seed: int) -> nn.Module:
    """An untrained model initialised from ``seed``.

    ``model_or_factory`` is a model (copied, then re-initialised; it is not changed)
    or a factory: a callable returning a new ``nn.Module``, called with torch's
    generator seeded from ``seed`` so its initialisation is reproducible.
    """
    import copy

    if isinstance(model_or_factory, nn.Module):
        return reset_parameters(copy.deepcopy(model_or_factory), seed=seed)
    if not callable(model_or_factory):
        raise ConfigError(
            f"expected an nn.Module or a factory returning one; got {type(model_or_factory).__name__}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_or_factory()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"the model factory returned {type(model).__name__}, not an nn.Module")
    return model


@_BUILDERS.register("linear")
def _linear(input_shape, num_outputs, *, bias: bool = False):
    """Flatten + one linear map without bias (the ``x . w`` of the regression lab)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_outputs, bias=bias))


@_BUILDERS.register("logreg")
def _logreg(input_shape, num_outputs):
    """Multinomial logistic regression: flatten + linear with bias, trained with cross-entropy."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_outputs))


@_BUILDERS.register("mlp")
def _mlp(input_shape, num_outputs, *, hidden=(256, 128), dropout: float = 0.0):
    """Fully connected ReLU network; ``hidden`` lists the widths."""
    if (
        not isinstance(hidden, list | tuple)
        or not hidden
        or any(isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden)
    ):
        raise ConfigError(
            f"mlp hidden widths must be positive integers, e.g. [256, 128]; got {hidden!r}"
        )
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    layers.append(nn.Linear(width, num_outputs))
    return nn.Sequential(*layers)


@_BUILDERS.register("cnn")
def _cnn(input_shape, num_outputs, *, channels=(16, 32), hidden: int = 64):
    """Two conv-ReLU-maxpool blocks and a small classifier head, for 28x28 images."""
    if len(input_shape) != 3:
        raise ConfigError(f"cnn needs image inputs (C, H, W); got input shape {input_shape}")
    c, h, w = input_shape
    c1, c2 = (int(x) for x in channels)
    body = nn.Sequential(
        nn.Conv2d(c, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
    )  # fmt: skip
    flat = c2 * (h // 4) * (w // 4)
    return nn.Sequential(body, nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, num_outputs))


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18: 3x3 stem without max-pool, four stages of two basic blocks."""

    def __init__(self, in_channels: int, num_outputs: int, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages, cin = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            cout = width * 2**i
            stages += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(cin, num_outputs)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@_BUILDERS.register("resnet18")
def _resnet18(input_shape, num_outputs, *, width: int = 64):
    if len(input_shape) != 3:
        raise ConfigError(f"resnet18 needs image inputs (C, H, W); got input shape {input_shape}")
    return ResNet18(input_shape[0], num_outputs, width=int(width))


__all__ = [
    "FittedPreprocessing",
    "Preprocessed",
    "ResNet18",
    "Standardize",
    "fit_preprocessing",
    "fresh_model",
    "from_spec",
    "make",
    "names",
    "reset_parameters",
    "resolve_preprocessing",
]
