"""The models: ``nn.Module``s whose forward pass returns the output and its loss terms.

:class:`ModelConfig` describes a model in JSON-able terms and :func:`build_module` makes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from torch import nn

from vaekit.models.autoencoder import AEOutput, AutoencoderModule
from vaekit.models.likelihoods import Bernoulli, Gaussian, make_likelihood
from vaekit.models.networks import mlp
from vaekit.models.vae import VAEModule, VAEOutput, gaussian_kl

__all__ = [
    "AEOutput",
    "AutoencoderModule",
    "Bernoulli",
    "Gaussian",
    "ModelConfig",
    "VAEModule",
    "VAEOutput",
    "build_module",
    "gaussian_kl",
    "mlp",
]


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model's architecture (not its weights)."""

    kind: Literal["vae", "ae"]
    n_features: int
    latent_dim: int
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "none"
    likelihood: Literal["bernoulli", "gaussian"] = "gaussian"
    variance: Literal["feature", "decoder", "fixed"] = "feature"
    custom_encoder: str | None = None
    custom_decoder: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> ModelConfig:
        return cls(**state)


def build_module(
    config: ModelConfig, encoder: nn.Module | None = None, decoder: nn.Module | None = None
) -> nn.Module:
    """Make the module of ``config``, with MLPs unless custom encoder/decoder modules are given."""
    d, k, hidden = config.n_features, config.latent_dim, list(config.hidden)
    layers = dict(activation=config.activation, dropout=config.dropout, norm=config.norm)
    if config.kind == "vae":
        likelihood = make_likelihood(config.likelihood, d, config.variance)
        encoder = encoder if encoder is not None else mlp(d, hidden, 2 * k, **layers)
        decoder = decoder if decoder is not None else mlp(k, hidden[::-1], likelihood.n_params(), **layers)
        return VAEModule(encoder, decoder, likelihood, k)
    if config.kind == "ae":
        encoder = encoder if encoder is not None else mlp(d, hidden, k, **layers)
        decoder = decoder if decoder is not None else mlp(k, hidden[::-1], d, **layers)
        loss = "bce" if config.likelihood == "bernoulli" else "mse"
        return AutoencoderModule(encoder, decoder, loss)
    raise ValueError(f"unknown model kind {config.kind!r}; use vae or ae")
