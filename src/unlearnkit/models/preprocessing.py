"""Preprocessing that a model owns: fitted on the model's own training data.

A data set holds raw (or data-independently scaled) features. Anything fitted to
data — today per-feature standardisation — is a module *inside* the model, with
its statistics as buffers, fitted by :func:`unlearnkit.train` on the samples that
model trains on: the original on train, golden on retain, each SISA constituent
on its own shard. So a forgotten sample never moves the scaling of the model
that must behave as if it had never existed, and checkpoints carry the
statistics with the weights.

>>> import torch
>>> step = Standardize((2,))
>>> _ = step.fit(torch.tensor([[0.0, 10.0], [2.0, 10.0]]))
>>> step(torch.tensor([[1.0, 10.0]])).tolist()  # a constant feature maps to 0
[[0.0, 0.0]]
"""

from __future__ import annotations

import torch
from torch import nn

from unlearnkit.errors import ConfigError

PREPROCESSING = ("auto", "standardize", "none")


class FittedPreprocessing(nn.Module):
    """A step whose buffers are fitted to training features by ``fit(X)`` (returns self)."""

    def fit(self, X: torch.Tensor) -> FittedPreprocessing:
        raise NotImplementedError


class Standardize(FittedPreprocessing):
    """``(x - mean) / std`` per feature, statistics from the training features.

    Statistics are computed in float64 (a float32 sum over 60k rows loses digits);
    a feature whose standard deviation is below ``1e-8`` (constant, e.g. the border
    pixels of digits) gets std 1, so it maps to 0 instead of dividing by zero.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        self.register_buffer("mean", torch.zeros(self.shape))
        self.register_buffer("std", torch.ones(self.shape))

    @torch.no_grad()
    def fit(self, X: torch.Tensor) -> Standardize:
        if len(X) == 0:
            raise ConfigError("cannot fit a standardisation on zero samples")
        X = X.reshape(len(X), *self.shape).double()
        std = X.std(dim=0, unbiased=False)
        self.mean.copy_(X.mean(dim=0))
        self.std.copy_(torch.where(std < 1e-8, torch.ones_like(std), std))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Preprocessed(nn.Module):
    """A network behind its preprocessing: ``net(preprocess(x))``.

    ``preprocess`` is one step or a sequence of steps, fitted in order by
    :func:`fit_preprocessing` (each on the output of the steps before it).
    """

    def __init__(self, preprocess: nn.Module | list[nn.Module], net: nn.Module) -> None:
        super().__init__()
        steps = preprocess if isinstance(preprocess, list | tuple) else [preprocess]
        self.preprocess = nn.Sequential(*steps)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.preprocess(x))


def resolve(preprocessing: str, input_shape: tuple[int, ...]) -> str:
    """``auto`` standardises flat (tabular) inputs and leaves images as the data set scaled them.

    Image data sets are scaled data-independently when they load (pixels / 255 and
    the field's fixed constants), which is the norm there and costs nothing.
    """
    if preprocessing not in PREPROCESSING:
        raise ConfigError(
            f"unknown preprocessing {preprocessing!r}; valid: {', '.join(PREPROCESSING)}"
        )
    if preprocessing == "auto":
        return "standardize" if len(input_shape) == 1 else "none"
    return preprocessing


def build(preprocessing: str, input_shape: tuple[int, ...]) -> list[FittedPreprocessing]:
    """The steps for a resolved preprocessing name (``none``: no step)."""
    return (
        [Standardize(input_shape)] if resolve(preprocessing, input_shape) == "standardize" else []
    )


def _leading_steps(model: nn.Module) -> list[FittedPreprocessing]:
    if isinstance(model, Preprocessed):
        return list(model.preprocess)
    if isinstance(model, nn.Sequential):
        steps = []
        for child in model:
            if not isinstance(child, FittedPreprocessing):
                break
            steps.append(child)
        return steps
    return []


@torch.no_grad()
def fit_preprocessing(model: nn.Module, X: torch.Tensor) -> nn.Module:
    """Fit every preprocessing step of ``model`` (in place) to training features ``X``.

    Steps must sit at the input: inside a :class:`Preprocessed` wrapper or as the
    first layers of an ``nn.Sequential``; a step found anywhere else would have to
    be fitted on features the untrained network computes, which is refused.
    """
    steps = _leading_steps(model)
    stray = [
        name
        for name, m in model.named_modules()
        if isinstance(m, FittedPreprocessing) and not any(m is s for s in steps)
    ]
    if stray:
        raise ConfigError(
            f"preprocessing step(s) {stray} are not at the model's input; put them in "
            "unlearnkit.models.Preprocessed(steps, net) or first in an nn.Sequential"
        )
    for step in steps:
        step.fit(X)
        X = step(X)
    return model


__all__ = [
    "PREPROCESSING",
    "FittedPreprocessing",
    "Preprocessed",
    "Standardize",
    "build",
    "fit_preprocessing",
    "resolve",
]
