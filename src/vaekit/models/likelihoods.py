"""Decoder likelihoods p(x|z): the decoder outputs their parameters, they score and sample x.

Each returns ``log_prob`` summed over features, one value per example, in nats.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

LOG_2PI = math.log(2 * math.pi)

Variance = Literal["feature", "decoder", "fixed"]


class Bernoulli(nn.Module):
    """Independent Bernoulli per feature; the decoder outputs logits. For binary or [0, 1] data
    (for grey values in [0, 1] it is the usual continuous cross-entropy)."""

    name = "bernoulli"

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def n_params(self) -> int:
        return self.n_features

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(params, x.expand_as(params), reduction="none").sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params))


class Gaussian(nn.Module):
    """Diagonal Gaussian. ``variance`` is learned per feature (one parameter per column), given
    per example by the decoder (which then outputs mean and log-variance), or fixed at 1."""

    name = "gaussian"

    def __init__(self, n_features: int, variance: Variance = "feature", min_variance: float = 1e-4):
        super().__init__()
        if variance not in ("feature", "decoder", "fixed"):
            raise ValueError(f"unknown variance {variance!r}; use feature, decoder or fixed")
        self.n_features = n_features
        self.variance = variance
        self.min_logvar = math.log(min_variance)
        if variance == "feature":
            self.logvar = nn.Parameter(torch.zeros(n_features))

    def n_params(self) -> int:
        return 2 * self.n_features if self.variance == "decoder" else self.n_features

    def mean_logvar(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.variance == "decoder":
            mean, raw = params.chunk(2, dim=-1)
            return mean, raw.clamp(self.min_logvar, 10.0)
        if self.variance == "feature":
            return params, self.logvar.clamp(self.min_logvar, 10.0).expand_as(params)
        return params, torch.zeros_like(params)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.mean_logvar(params)
        return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar)).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.mean_logvar(params)[0]

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.mean_logvar(params)
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


def make_likelihood(name: str, n_features: int, variance: Variance = "feature") -> nn.Module:
    if name == "bernoulli":
        return Bernoulli(n_features)
    if name == "gaussian":
        return Gaussian(n_features, variance)
    raise ValueError(f"unknown likelihood {name!r}; use bernoulli or gaussian")
