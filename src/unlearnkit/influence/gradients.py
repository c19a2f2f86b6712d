"""Flat parameter vectors, objective gradients and per-sample gradients.

>>> import unlearnkit as uk
>>> data = uk.datasets.load("digits")
>>> model = uk.models.make("logreg", data, preprocessing="none")
>>> params = ParameterVector(model)
>>> G = per_sample_gradients(model, data.train.take(torch.arange(5)))
>>> G.shape == (5, params.size)
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from unlearnkit.data.dataset import Split

# Per-sample gradients are computed in chunks holding at most this many floats.
MAX_FLOATS = 2**25  # 128 MiB of float32


class ParameterVector:
    """The trainable parameters of a model as one flat vector, and back.

    ``functional(model, flat)`` evaluates the model at other parameter values
    without touching it (``torch.func.functional_call``), buffers and frozen
    parameters as they are.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        trainable = dict(model.named_parameters())
        self.shapes = [trainable[n].shape for n in self.names]
        self.numels = [trainable[n].numel() for n in self.names]
        self.size = sum(self.numels)
        self.fixed = {
            **{n: b.detach() for n, b in model.named_buffers()},
            **{n: p.detach() for n, p in model.named_parameters() if not p.requires_grad},
        }

    def flat(self) -> torch.Tensor:
        params = dict(self.model.named_parameters())
        return torch.cat([params[n].detach().reshape(-1) for n in self.names])

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            n: piece.view(shape)
            for n, piece, shape in zip(
                self.names, torch.split(flat, self.numels), self.shapes, strict=True
            )
        }

    def functional(self, flat: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        return functional_call(self.model, {**self.fixed, **self.unflatten(flat)}, (X,))

    def assign(self, flat: torch.Tensor) -> nn.Module:
        """Write ``flat`` into the model's parameters (in place); returns the model."""
        with torch.no_grad():
            params = dict(self.model.named_parameters())
            for n, value in self.unflatten(flat).items():
                params[n].copy_(value)
        return self.model


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode (no dropout, stored batch-norm statistics) for the block, then as before."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def per_row_losses(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of each row: cross-entropy for class labels (int64), squared
    error summed over outputs for real-valued targets (regression)."""
    if y.dtype == torch.int64:
        return F.cross_entropy(outputs, y, reduction="none")
    return ((outputs - y.reshape(outputs.shape)) ** 2).flatten(1).sum(1)


def summed_loss(outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss summed over rows (:func:`per_row_losses`)."""
    return per_row_losses(outputs, y).sum()


def _chunks(n: int, size: int, *, floats_per_row: int, max_floats: int) -> Iterator[slice]:
    rows = max(1, min(size, max_floats // max(1, floats_per_row)))
    for start in range(0, n, rows):
        yield slice(start, min(n, start + rows))


def objective_gradient(
    model: nn.Module, data: Split, *, weight_decay: float = 0.0, batch_size: int = 1024
) -> torch.Tensor:
    """``∇θ [mean loss over data + weight_decay/2 ||θ||²]`` as a flat vector (float32)."""
    params = ParameterVector(model)
    theta = params.flat()
    total = torch.zeros_like(theta)
    with evaluating(model):
        for start in range(0, len(data), batch_size):
            X, y = data.X[start : start + batch_size], data.y[start : start + batch_size]
            flat = theta.clone().requires_grad_(True)
            loss = summed_loss(params.functional(flat, X), y)
            (g,) = torch.autograd.grad(loss, flat)
            total += g
    return total / max(1, len(data)) + weight_decay * theta


def per_sample_gradient_chunks(
    model: nn.Module, data: Split, *, max_floats: int = MAX_FLOATS
) -> Iterator[tuple[slice, torch.Tensor]]:
    """``(rows, G)`` pieces of the per-sample gradients, each at most ``max_floats`` floats.

    ``G[i]`` is the gradient of sample ``rows.start + i``'s loss w.r.t. the
    flat parameters: ``vmap`` over ``grad`` of one sample's loss. The model is
    evaluated in eval mode (no dropout; batch-norm statistics as stored).
    """
    from torch.func import grad, vmap

    params = ParameterVector(model)
    theta = params.flat()

    def sample_loss(flat, x, y):
        return summed_loss(params.functional(flat, x.unsqueeze(0)), y.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    with torch.no_grad(), evaluating(model):
        for rows in _chunks(
            len(data), len(data), floats_per_row=params.size, max_floats=max_floats
        ):
            yield rows, per_sample(theta, data.X[rows], data.y[rows])


def per_sample_gradients(
    model: nn.Module, data: Split, *, max_floats: int = MAX_FLOATS
) -> torch.Tensor:
    """``(n, P)``: every sample's gradient (see :func:`per_sample_gradient_chunks`).

    Holds all ``n × P`` floats: for large data, reduce the chunks instead.
    """
    out = torch.empty((len(data), ParameterVector(model).size))
    for rows, G in per_sample_gradient_chunks(model, data, max_floats=max_floats):
        out[rows] = G
    return out


__all__ = [
    "MAX_FLOATS",
    "evaluating",
    "per_row_losses",
    "summed_loss",
    "ParameterVector",
    "objective_gradient",
    "per_sample_gradient_chunks",
    "per_sample_gradients",
]
