"""Command-line options shared by several commands (one declaration, one help text)."""

from __future__ import annotations

from typing import Annotated

import typer

Epochs = Annotated[int, typer.Option(help="Training epochs of the original and golden models.")]
LearningRate = Annotated[float, typer.Option("--lr", help="Training learning rate.")]
BatchSize = Annotated[int, typer.Option(help="Training batch size.")]
Optimizer = Annotated[str, typer.Option(help="Training optimiser: sgd (momentum 0.9) or adam.")]
Hidden = Annotated[str | None, typer.Option(help="MLP hidden widths, e.g. 256,128.")]
MethodOptions = Annotated[
    list[str] | None,
    typer.Option("--method-option", "-o", help="METHOD.PARAM=VALUE, repeatable."),
]
Progress = Annotated[bool, typer.Option(help="Show progress bars.")]
