"""Many small MLP autoencoders evaluated together: one batched matrix product per layer.

Member m maps x -> h_1 = relu(x W_1[m] + b_1[m]) -> ... -> z (linear) -> ... -> x_hat (linear).
Stacking the members' weights as (members, in, out) tensors makes an ensemble of M models cost
one ``torch.baddbmm`` per layer instead of M small matrix products, which is what makes training
an ensemble of tiny autoencoders fast: at these sizes the time goes to per-operation overhead.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn


class EnsembleAutoencoder(nn.Module):
    """``n_members`` autoencoders with the layer widths ``dims`` (input, hidden..., latent, ..., output).

    The middle entry of ``dims`` is the latent layer; it and the output are linear, every other
    layer is followed by a ReLU. ``forward(x)`` takes (batch, features) and gives the members'
    reconstructions, (n_members, batch, features).
    """

    def __init__(self, n_members: int, dims: list[int], generator: torch.Generator | None = None):
        super().__init__()
        if len(dims) % 2 == 0 or dims[0] != dims[-1]:
            raise ValueError(f"dims={dims}: need an odd number of widths, the first equal to the last")
        self.dims = list(dims)
        self.latent_layer = len(dims) // 2 - 1  # index of the layer that outputs the latent code
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in itertools.pairwise(dims):
            bound = 1 / math.sqrt(d_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(uniform((n_members, d_in, d_out), bound, generator)))
            self.biases.append(nn.Parameter(uniform((n_members, 1, d_out), bound, generator)))

    @property
    def n_members(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._layers(x.unsqueeze(0).expand(self.n_members, -1, -1), 0, len(self.weights))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(n_members, batch, latent): each member's code for the rows of ``x``."""
        return self._layers(x.unsqueeze(0).expand(self.n_members, -1, -1), 0, self.latent_layer + 1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(n_members, batch, features): each member's reconstruction from its own code ``z``."""
        return self._layers(z, self.latent_layer + 1, len(self.weights))

    def _layers(self, h: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        last = len(self.weights) - 1
        # iterating a ParameterList costs more than the arithmetic here: read its parameters once
        weights, biases = list(self.weights.parameters()), list(self.biases.parameters())
        for i in range(start, stop):
            h = torch.baddbmm(biases[i], h, weights[i])
            if i not in (self.latent_layer, last):
                h = torch.relu(h)
        return h

    @torch.no_grad()
    def squared_errors(self, x: torch.Tensor) -> torch.Tensor:
        """(n_members, rows, features): each member's squared reconstruction error."""
        return (self(x) - x) ** 2


class MemberMLPs(nn.Module):
    """``members`` small MLPs (inputs-hidden-hidden-outputs, ReLU between), evaluated together as
    the members of :class:`EnsembleAutoencoder` are, one batched matrix product per layer.
    ``forward`` takes (rows, inputs), every member judging every row, or (members, rows, inputs),
    each member its own rows, and gives (members, rows, outputs)."""

    def __init__(
        self,
        n_inputs: int,
        hidden: int = 64,
        members: int = 2,
        generator: torch.Generator | None = None,
        n_outputs: int = 1,
    ):
        super().__init__()
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for d_in, d_out in itertools.pairwise([n_inputs, hidden, hidden, n_outputs]):
            bound = 1 / math.sqrt(d_in)  # nn.Linear's default initialisation
            self.weights.append(nn.Parameter(uniform((members, d_in, d_out), bound, generator)))
            self.biases.append(nn.Parameter(uniform((members, 1, d_out), bound, generator)))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(inputs, hidden, members)."""
        members, inputs, hidden = self.weights[0].shape
        return inputs, hidden, members

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        weights, biases = list(self.weights.parameters()), list(self.biases.parameters())
        h = inputs if inputs.dim() == 3 else inputs.expand(len(weights[0]), -1, -1)
        for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
            h = torch.baddbmm(bias, h, weight)
            if i < len(weights) - 1:
                h = torch.relu(h)
        return h

    def member(self, m: int, inputs: torch.Tensor) -> torch.Tensor:
        """(rows, outputs): member ``m``'s outputs for (rows, inputs), the others not computed."""
        weights, biases = list(self.weights.parameters()), list(self.biases.parameters())
        h = inputs
        for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
            h = torch.addmm(bias[m], h, weight[m])
            if i < len(weights) - 1:
                h = torch.relu(h)
        return h


def uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> torch.Tensor:
    """Uniform on (-bound, bound), from ``generator``."""
    return (torch.rand(shape, generator=generator) * 2 - 1) * bound
