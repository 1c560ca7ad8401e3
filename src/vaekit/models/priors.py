"""Learned priors p(z) for the VAE, beside the standard normal.

A mixture of diagonal Gaussians with learned weights, means and variances (as the mixture prior
compared in Tomczak & Welling 2018, "VAE with a VampPrior"): the aggregate posterior of a trained
VAE is far from N(0, I), and a prior that can follow it costs less KL for the same codes. Its KL
term has no closed form; the VAE estimates it with its samples of z, log q(z|x) - log p(z).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class MixturePrior(nn.Module):
    """p(z) = sum_c pi_c N(z; m_c, diag exp(s_c)), with pi = softmax(logits).

    The means start as draws from N(0, I/4) and the variances at 1, so that the mixture starts
    near the standard normal (a little wider) and moves where the codes are.
    """

    def __init__(self, n_components: int, latent_dim: int):
        super().__init__()
        if n_components < 1:
            raise ValueError(f"a mixture prior needs at least one component, not {n_components}")
        self.means = nn.Parameter(0.5 * torch.randn(n_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(n_components))

    @property
    def n_components(self) -> int:
        return self.logits.shape[0]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) for z of shape (..., latent_dim): returns (...). The squared distances to the
        means come from products, sum_j z_j^2 / s_j - 2 z_j m_j / s_j + m_j^2 / s_j (as scikit-learn's
        diagonal mixtures), so no (..., components, latent) tensor is made; in float32 (or the
        parameters' type) also under autocast, whose bfloat16 would lose the differences."""
        with torch.autocast(z.device.type, enabled=False):
            z = z.to(self.means.dtype)
            precisions = torch.exp(-self.logvars)  # (components, latent)
            squared = (
                (z * z) @ precisions.T
                - 2 * z @ (self.means * precisions).T
                + (self.means.pow(2) * precisions).sum(-1)
            )  # (..., components)
            log_components = -0.5 * (z.shape[-1] * math.log(2 * math.pi) + self.logvars.sum(-1) + squared)
            return torch.logsumexp(log_components + torch.log_softmax(self.logits, dim=0), dim=-1)

    def sample(self, n: int) -> torch.Tensor:
        """n draws z ~ p(z): a component by its weight, then its Gaussian."""
        component = torch.multinomial(torch.softmax(self.logits, dim=0), n, replacement=True)
        eps = torch.randn(n, self.means.shape[1], device=self.means.device, dtype=self.means.dtype)
        return self.means[component] + torch.exp(0.5 * self.logvars[component]) * eps
