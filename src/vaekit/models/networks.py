"""Building blocks for encoders and decoders: a configurable multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

Activation = Literal["relu", "gelu", "silu", "tanh", "elu", "leaky_relu", "softplus"]
Norm = Literal["none", "batch", "layer"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
}
NORMS = ("none", "batch", "layer")


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    activation: Activation = "relu",
    dropout: float = 0.0,
    norm: Norm = "none",
) -> nn.Sequential:
    """``in_dim -> hidden[0] -> ... -> out_dim``: Linear, [norm], activation, [dropout] per hidden
    layer, and a plain Linear output. With no hidden layers it is one linear map."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers.append(nn.Linear(width, size))
        if norm == "batch":
            layers.append(nn.BatchNorm1d(size))
        elif norm == "layer":
            layers.append(nn.LayerNorm(size))
        layers.append(ACTIVATIONS[activation]())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)
