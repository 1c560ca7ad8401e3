"""The variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014).

q(z|x) = N(mu(x), diag sigma^2(x)) from the encoder, p(z) = N(0, I) or a learned prior
(:mod:`vaekit.models.priors`), p(x|z) from the decoder and a likelihood. The loss is the negative
ELBO per example in nats:
    -ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || p(z)),
with the KL in closed form for N(0, I) and estimated with the same samples of z,
log q(z|x) - log p(z), for a learned prior.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vaekit.models.likelihoods import binarized

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0  # keeps exp(logvar) finite whatever the encoder outputs


@dataclass
class VAEOutput:
    """Batch means: ``loss`` is the training objective (with beta and free bits), the others are
    the true -ELBO and its two parts, in nats per example."""

    loss: torch.Tensor
    neg_elbo: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per latent dimension (Kingma & Welling, App. B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag exp(logvar)), summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


class VAEModule(nn.Module):
    """VAE over flat feature vectors.

    ``encoder`` maps (batch, features) to (batch, 2 * latent_dim): the mean and the log-variance
    of q(z|x). ``decoder`` maps (batch, latent_dim) to the likelihood's parameters.

    ``prior`` is a module with ``log_prob(z)`` and ``sample(n)`` (a learned p(z)); None is N(0, I).

    ``binarize=True`` is dynamic binarization (Salakhutdinov & Murray 2008): in training mode,
    every forward pass replaces grey values x in [0, 1] by a fresh draw x ~ Bernoulli(x), so each
    epoch sees other binary images; in eval mode the data are used as given.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        likelihood: nn.Module,
        latent_dim: int,
        binarize: bool = False,
        prior: nn.Module | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.latent_dim = latent_dim
        self.binarize = binarize
        self.prior = prior

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)  # (batch, latent) each

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z), summed over the last dimension."""
        if self.prior is None:
            return -0.5 * (math.log(2 * math.pi) + z.pow(2)).sum(-1)
        return self.prior.log_prob(z)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per example: in closed form for N(0, I), else the estimate from the
        samples z of shape (..., batch, latent), averaged over the leading dimensions."""
        if self.prior is None:
            return gaussian_kl(mu, logvar).sum(-1)
        return self._log_ratio(mu, logvar, z).reshape(-1, mu.shape[0]).mean(0)

    def _log_ratio(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) - log p(z) for samples z of shape (..., batch, latent), in float32 at least
        (sums of log-densities need its range under bfloat16 autocast)."""
        dtype = torch.promote_types(mu.dtype, torch.float32)
        z, mu, logvar = z.to(dtype), mu.to(dtype), logvar.to(dtype)
        return gaussian_log_prob(z, mu, logvar) - self.log_prior(z)

    def _log_px(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) for z of shape (k, batch, latent): returns (k, batch)."""
        k, batch, _ = z.shape
        params = self.decode(z.reshape(k * batch, -1))
        return self.likelihood.log_prob(params.reshape(k, batch, -1), x)

    def forward(
        self,
        x: torch.Tensor,
        beta: float = 1.0,
        free_bits: float = 0.0,
        eps: torch.Tensor | None = None,
        iwae_samples: int = 1,
    ) -> VAEOutput:
        """The training loss: the -ELBO (with ``beta`` and ``free_bits``), or with
        ``iwae_samples=k > 1`` the importance-weighted bound with k samples (Burda et al. 2015),
        -log (1/k) sum_i p(x, z_i) / q(z_i|x). The reported terms are the plain ELBO's either way."""
        if self.binarize and self.training:
            x = binarized(x)  # (batch, features), a new binary draw at every use
        if iwae_samples > 1:
            return self._iwae_loss(x, iwae_samples, eps)
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mu)
        z = self.reparameterize(mu, logvar, eps)
        reconstruction = -self.likelihood.log_prob(self.decode(z), x)  # (batch,)
        kl = self.kl(mu, logvar, z)
        if free_bits > 0:  # Kingma et al. 2016: no pressure on a unit below `free_bits` nats
            if self.prior is not None:
                raise ValueError("free bits need the standard normal prior (a KL per latent unit)")
            kl_objective = gaussian_kl(mu, logvar).mean(0).clamp(min=free_bits).sum()
        else:
            kl_objective = kl.mean()
        return VAEOutput(
            loss=reconstruction.mean() + beta * kl_objective,
            neg_elbo=(reconstruction + kl).mean(),
            reconstruction=reconstruction.mean(),
            kl=kl.mean(),
        )

    def _iwae_loss(self, x: torch.Tensor, k: int, eps: torch.Tensor | None) -> VAEOutput:
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn((k, *mu.shape), dtype=mu.dtype, device=mu.device)
        z = self.reparameterize(mu, logvar, eps)  # (k, batch, latent)
        log_px = self._log_px(x, z)  # (k, batch)
        if self.prior is None:
            log_w = log_px + self.log_prior(z) - gaussian_log_prob(z, mu, logvar)
            kl = self.kl(mu, logvar, z)  # closed form
        else:  # the sampled KL reported is the mean of the bound's own log ratios
            log_ratio = self._log_ratio(mu, logvar, z)  # (k, batch)
            log_w = log_px - log_ratio
            kl = log_ratio.mean(0)
        bound = torch.logsumexp(log_w, dim=0) - math.log(k)  # (batch,)
        reconstruction = -log_px.mean(0)
        return VAEOutput(
            loss=-bound.mean(),
            neg_elbo=(reconstruction + kl).mean(),
            reconstruction=reconstruction.mean(),
            kl=kl.mean(),
        )

    def elbo_terms(
        self, x: torch.Tensor, k: int = 1, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per example: E_q[log p(x|z)] estimated with k samples, and the KL (see :meth:`kl`)."""
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn((k, *mu.shape), dtype=mu.dtype, device=mu.device)
        z = self.reparameterize(mu, logvar, eps)  # (k, batch, latent)
        return self._log_px(x, z).mean(0), self.kl(mu, logvar, z)

    def elbo(self, x: torch.Tensor, k: int = 1, eps: torch.Tensor | None = None) -> torch.Tensor:
        """The evidence lower bound per example, in nats (higher is better)."""
        log_px, kl = self.elbo_terms(x, k, eps)
        return log_px - kl

    def iwae_log_likelihood(self, x: torch.Tensor, k: int = 100, chunk: int = 100) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with k samples (Burda et al. 2015), per example.

        A lower bound that tightens as k grows; computed ``chunk`` samples at a time so memory
        stays bounded for large k.
        """
        mu, logvar = self.encode(x)
        total = torch.full(mu.shape[:1], -math.inf, dtype=mu.dtype, device=mu.device)
        done = 0
        while done < k:
            m = min(chunk, k - done)
            eps = torch.randn((m, *mu.shape), dtype=mu.dtype, device=mu.device)
            z = self.reparameterize(mu, logvar, eps)
            log_w = self._log_px(x, z) + self.log_prior(z) - gaussian_log_prob(z, mu, logvar)  # (m, batch)
            total = torch.logaddexp(total, torch.logsumexp(log_w, dim=0))
            done += m
        return total - math.log(k)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of p(x|z) at z = E_q[z]: a deterministic reconstruction."""
        mu, _ = self.encode(x)
        return self.likelihood.mean(self.decode(mu))

    def sample(self, n: int, mean: bool = False) -> torch.Tensor:
        """z ~ p(z), then x ~ p(x|z) (or the mean of p(x|z) with ``mean=True``)."""
        if self.prior is None:
            z = torch.randn(n, self.latent_dim, device=next(self.parameters()).device)
        else:
            z = self.prior.sample(n)
        params = self.decode(z)
        return self.likelihood.mean(params) if mean else self.likelihood.sample(params)
