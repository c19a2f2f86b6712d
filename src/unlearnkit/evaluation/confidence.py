"""Logit-scaled confidence: the per-sample statistic of LiRA, U-LiRA and the ε-score."""

from __future__ import annotations

import torch
from torch import nn


def logit_confidence(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``log p_y − log(1 − p_y)`` per row, computed from logits without forming ``p``.

    With ``p = softmax(z)``, ``p_y / (1 − p_y) = exp(z_y) / Σ_{j≠y} exp(z_j)``, so the
    statistic is ``z_y − logsumexp_{j≠y} z_j``: finite even where ``p_y`` rounds to
    1 in floating point (a memorised sample), which is exactly where the attacks
    look. Returned in float64.

    >>> z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 40.0, 0.0]])
    >>> logit_confidence(z, torch.tensor([0, 1])).round(decimals=3).tolist()
    [1.307, 39.307]
    """
    z = logits.double()
    index = labels.long().view(-1, 1)
    true = z.gather(1, index).squeeze(1)
    others = z.scatter(1, index, float("-inf"))
    return true - torch.logsumexp(others, dim=1)


@torch.no_grad()
def model_confidences(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, batch_size: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logit confidence, correct)`` of ``model`` on every row, in evaluation mode."""
    was_training = model.training
    model.eval()
    confidence, correct = [], []
    for start in range(0, len(X), batch_size):
        logits = model(X[start : start + batch_size])
        labels = y[start : start + batch_size]
        confidence.append(logit_confidence(logits, labels))
        correct.append(logits.argmax(1) == labels)
    model.train(was_training)
    if not confidence:
        return torch.zeros(0, dtype=torch.float64), torch.zeros(0, dtype=torch.bool)
    return torch.cat(confidence), torch.cat(correct)


__all__ = ["logit_confidence", "model_confidences"]
