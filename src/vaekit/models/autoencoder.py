"""The deterministic autoencoder: x -> g(x) = z -> f(z) ~ x, trained on reconstruction error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.models.likelihoods import binarized

AELoss = Literal["mse", "bce"]


@dataclass
class AEOutput:
    """Batch means: ``loss`` is the training objective, ``reconstruction`` the error per example."""

    loss: torch.Tensor
    reconstruction: torch.Tensor


class AutoencoderModule(nn.Module):
    """``encoder``: (batch, features) -> (batch, latent); ``decoder``: back to (batch, features).

    ``loss="mse"`` (squared error summed over features) for real values, ``"bce"`` (the decoder
    outputs logits; binary cross-entropy) for binary or [0, 1] data. ``binarize=True`` trains
    on a fresh draw x ~ Bernoulli(x) at every forward pass in training mode (dynamic binarization).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, loss: AELoss = "mse", binarize: bool = False):
        super().__init__()
        if loss not in ("mse", "bce"):
            raise ValueError(f"unknown loss {loss!r}; use mse or bce")
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss
        self.binarize = binarize

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        """Per example, summed over features."""
        out = self.decode(self.encode(x))
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
        return (out - x).pow(2).sum(-1)

    def forward(self, x: torch.Tensor) -> AEOutput:
        if self.binarize and self.training:
            x = binarized(x)  # (batch, features), a new binary draw at every use
        error = self.reconstruction_error(x).mean()
        return AEOutput(loss=error, reconstruction=error)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        out = self.decode(self.encode(x))
        return torch.sigmoid(out) if self.loss == "bce" else out
