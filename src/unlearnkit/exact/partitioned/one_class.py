"""One-class learners for ARCANE: a model per class scoring "how much x looks like c".

Each model is a :class:`OneClassNet`: the preprocessing it owns (fitted on its
class's data), a network, and buffers that travel with its checkpoints: the
Deep SVDD centre and the calibration statistics. ``forward(x)`` returns the
calibrated score ``(s(x) - mean) / std``, where ``s`` is the raw score and
``mean``/``std`` are those of ``s`` on the data the model was trained on (its
class's own selected samples; never another class's), so scores of different
classes compare on one scale.

- ``deep_svdd`` (Ruff et al., ICML 2018): an encoder without bias terms maps the
  class close to a centre fixed from the initial encoder (the mean of its codes
  on the first training step's data, coordinates near zero pushed to ±0.1), as
  its authors prescribe to rule out the trivial all-constant solution;
  ``s(x) = -||f(x) - c||²``.
- ``autoencoder``: encoder and decoder (with bias);
  ``s(x) = -mean squared reconstruction error``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from unlearnkit.errors import ConfigError
from unlearnkit.exact.partitioned.learners import Learner, register, seeded_step
from unlearnkit.models.preprocessing import build as build_preprocessing
from unlearnkit.models.preprocessing import resolve as resolve_preprocessing
from unlearnkit.training import run_epochs

KINDS = ("deep_svdd", "autoencoder")
CENTRE_EPS = 0.1


def one_class_spec(kind: str, input_shape, *, hidden, rep_dim: int, preprocessing: str) -> dict:
    """The stored description of a one-class model (what :func:`OneClassNet.from_spec` builds)."""
    if kind not in KINDS:
        raise ConfigError(f"one-class learner must be one of {KINDS}; got {kind!r}")
    if not isinstance(hidden, list | tuple) or any(
        isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden
    ):
        raise ConfigError(f"hidden widths must be positive integers, e.g. [128]; got {hidden!r}")
    if isinstance(rep_dim, bool) or not isinstance(rep_dim, int) or rep_dim <= 0:
        raise ConfigError(f"rep_dim must be a positive integer; got {rep_dim!r}")
    shape = tuple(int(s) for s in input_shape)
    return {
        "name": kind,
        "input_shape": list(shape),
        "hidden": [int(h) for h in hidden],
        "rep_dim": int(rep_dim),
        "preprocessing": resolve_preprocessing(preprocessing, shape),
    }


def _stack(widths: list[int], *, bias: bool, last_relu: bool) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(widths) - 2 or last_relu:
            layers.append(nn.ReLU())
    return layers


class OneClassNet(nn.Module):
    """Preprocessing, a one-class network, and its centre and calibration buffers."""

    def __init__(self, spec: dict) -> None:
        super().__init__()
        self.kind = spec["name"]
        shape = tuple(spec["input_shape"])
        width = math.prod(shape)
        self.preprocess = nn.Sequential(*build_preprocessing(spec["preprocessing"], shape))
        codes = [width, *spec["hidden"], spec["rep_dim"]]
        # Deep SVDD needs an encoder without bias terms (a bias could map everything
        # onto the centre); the autoencoder's reconstruction rules that out itself.
        bias = self.kind == "autoencoder"
        self.encoder = nn.Sequential(nn.Flatten(), *_stack(codes, bias=bias, last_relu=False))
        self.decoder = (
            nn.Sequential(*_stack(codes[::-1], bias=True, last_relu=False))
            if self.kind == "autoencoder"
            else None
        )
        self.register_buffer("centre", torch.zeros(spec["rep_dim"]))
        self.register_buffer("centre_ready", torch.zeros((), dtype=torch.bool))
        self.register_buffer("score_mean", torch.zeros(()))
        self.register_buffer("score_std", torch.ones(()))

    def fit_preprocessing(self, X: torch.Tensor) -> None:
        with torch.no_grad():
            for step in self.preprocess:
                step.fit(X)
                X = step(X)

    def losses(self, X: torch.Tensor) -> torch.Tensor:
        """Per-sample training loss (the negated raw score)."""
        z = self.preprocess(X)
        code = self.encoder(z)
        if self.decoder is None:
            return ((code - self.centre) ** 2).sum(1)
        return ((self.decoder(code) - z.flatten(1)) ** 2).mean(1)

    def objective(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.losses(X).mean()

    @torch.no_grad()
    def set_centre(self, X: torch.Tensor) -> None:
        centre = self.encoder(self.preprocess(X)).mean(0)
        small = centre.abs() < CENTRE_EPS
        centre[small & (centre < 0)] = -CENTRE_EPS
        centre[small & (centre >= 0)] = CENTRE_EPS
        self.centre.copy_(centre)
        self.centre_ready.fill_(True)

    @torch.no_grad()
    def calibrate(self, X: torch.Tensor) -> None:
        scores = -self.losses(X)
        self.score_mean.copy_(scores.mean())
        self.score_std.copy_(scores.std(unbiased=False).clamp_min(1e-12))

    def raw_scores(self, X: torch.Tensor) -> torch.Tensor:
        """Raw scores ``(n,)`` (the negated loss): higher means more like this class."""
        return -self.losses(X)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Calibrated scores ``(n,)``: the raw score z-scored on the training data."""
        return (self.raw_scores(X) - self.score_mean) / self.score_std


class OneClassLearner(Learner):
    """Trains a :class:`OneClassNet` on one class's blocks, step by step.

    Each step refits the preprocessing on that step's data, fixes the Deep SVDD
    centre at the first step with data (from the still untrained encoder),
    trains, and recalibrates on that step's data. Torch's CPU generator is
    reseeded from ``(seed, step)`` as for the classifier.
    """

    kind: ClassVar[str]

    def build(self, spec: dict) -> nn.Module:
        return OneClassNet(spec)

    def train_step(self, model, data, *, config, seed, step, epochs, optimizer):
        model.fit_preprocessing(data.X)
        with seeded_step(seed, step):
            if model.decoder is None and not bool(model.centre_ready):
                model.set_centre(data.X)
            optimizer = run_epochs(
                model,
                data,
                config=config,
                seed=seed,
                epochs=epochs,
                optimizer=optimizer,
                progress=False,
                objective=model.objective,
            )
        model.calibrate(data.X)
        return optimizer


@register
class DeepSVDDLearner(OneClassLearner):
    name = kind = "deep_svdd"


@register
class AutoencoderLearner(OneClassLearner):
    name = kind = "autoencoder"


__all__ = ["KINDS", "AutoencoderLearner", "DeepSVDDLearner", "OneClassNet", "one_class_spec"]
