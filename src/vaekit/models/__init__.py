"""The models: ``nn.Module``s whose forward pass returns the output and its loss terms.

:class:`ModelConfig` describes a model in JSON-able terms and :func:`build_module` makes it:
MLP halves for tables, convolutional halves (:mod:`vaekit.models.conv`) for images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

from torch import nn

from vaekit.models.autoencoder import AEOutput, AutoencoderModule
from vaekit.models.conv import DEFAULT_CHANNELS, ConvDecoder, ConvEncoder
from vaekit.models.likelihoods import Bernoulli, Gaussian, make_likelihood
from vaekit.models.networks import mlp
from vaekit.models.priors import MixturePrior
from vaekit.models.vae import VAEModule, VAEOutput, gaussian_kl

__all__ = [
    "AEOutput",
    "AutoencoderModule",
    "Bernoulli",
    "ConvDecoder",
    "ConvEncoder",
    "Gaussian",
    "MixturePrior",
    "ModelConfig",
    "VAEModule",
    "VAEOutput",
    "build_module",
    "gaussian_kl",
    "mlp",
]


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model's architecture (not its weights).

    ``architecture="conv"`` needs ``image_shape`` (channels, height, width) with
    ``n_features == channels * height * width``; ``channels`` are then the widths of its
    convolutions and ``hidden`` is not used. ``image_shape`` may also be set for an MLP trained
    on images, so that its outputs are shaped as images. ``binarize`` draws binary pixels
    x ~ Bernoulli(x) afresh at every training pass (dynamic binarization). ``prior`` is p(z) of a
    VAE: ``"normal"`` (N(0, I)) or a learned ``"mixture"`` of ``prior_components`` Gaussians.
    ``made_neighbours`` gives a ``"made"`` likelihood on images its tables of neighbouring pixels
    (:class:`vaekit.models.likelihoods.AutoregressiveBernoulli`; files from before them: False),
    and ``made_neighbour_rank`` > 0 its neighbour weights that depend on z (files from before: 0).
    """

    kind: Literal["vae", "ae"]
    n_features: int
    latent_dim: int
    hidden: list[int] = field(default_factory=lambda: [256, 128])
    activation: str = "relu"
    dropout: float = 0.0
    norm: str = "none"
    likelihood: Literal["bernoulli", "made", "gaussian"] = "gaussian"
    variance: Literal["feature", "decoder", "fixed"] = "feature"
    custom_encoder: str | None = None
    custom_decoder: str | None = None
    architecture: Literal["mlp", "conv"] = "mlp"
    image_shape: list[int] | None = None
    channels: list[int] = field(default_factory=lambda: list(DEFAULT_CHANNELS))
    binarize: bool = False
    prior: Literal["normal", "mixture"] = "normal"
    prior_components: int = 100
    made_neighbours: bool = False
    made_neighbour_rank: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> ModelConfig:
        return cls(**state)


def build_module(
    config: ModelConfig, encoder: nn.Module | None = None, decoder: nn.Module | None = None
) -> nn.Module:
    """Make the module of ``config``, with MLP or convolutional halves unless custom encoder or
    decoder modules are given."""
    d, k = config.n_features, config.latent_dim
    if config.kind == "vae":
        if config.likelihood == "made" and config.architecture != "mlp":
            raise ValueError("likelihood='made' (autoregressive pixels) works with the MLP architecture")
        made_hidden = config.hidden[0] if config.hidden else 500  # as wide as the decoder's last layer
        shape = _image_shape(config) if config.made_neighbours else None
        likelihood = make_likelihood(
            config.likelihood, d, config.variance, made_hidden, shape, config.made_neighbour_rank
        )
        encoder = encoder if encoder is not None else _encoder(config, 2 * k)
        decoder = decoder if decoder is not None else _decoder(config, likelihood.n_params())
        return VAEModule(encoder, decoder, likelihood, k, binarize=config.binarize, prior=_prior(config))
    if config.kind == "ae":
        encoder = encoder if encoder is not None else _encoder(config, k)
        decoder = decoder if decoder is not None else _decoder(config, d)
        loss = "bce" if config.likelihood in ("bernoulli", "made") else "mse"
        return AutoencoderModule(encoder, decoder, loss, binarize=config.binarize)
    raise ValueError(f"unknown model kind {config.kind!r}; use vae or ae")


def _prior(config: ModelConfig) -> nn.Module | None:
    if config.prior == "normal":
        return None
    if config.prior == "mixture":
        return MixturePrior(config.prior_components, config.latent_dim)
    raise ValueError(f"unknown prior {config.prior!r}; use normal or mixture")


def _layers(config: ModelConfig) -> dict:
    return dict(activation=config.activation, dropout=config.dropout, norm=config.norm)


def _image_shape(config: ModelConfig) -> tuple[int, int, int]:
    """The checked image shape of a convolutional model or of a MADE's neighbours."""
    shape = config.image_shape
    if shape is None or len(shape) != 3 or math.prod(shape) != config.n_features:
        raise ValueError(
            f"architecture='conv' and made_neighbours need image_shape (channels, height, width) with "
            f"{config.n_features} pixel values in all, not {shape!r}"
        )
    return tuple(int(s) for s in shape)


def _encoder(config: ModelConfig, out_dim: int) -> nn.Module:
    if config.architecture == "conv":
        return ConvEncoder(_image_shape(config), out_dim, config.channels, **_layers(config))
    if config.architecture == "mlp":
        return mlp(config.n_features, list(config.hidden), out_dim, **_layers(config))
    raise ValueError(f"unknown architecture {config.architecture!r}; use mlp or conv")


def _decoder(config: ModelConfig, out_dim: int) -> nn.Module:
    """``out_dim`` is the number of the likelihood's parameters: a multiple of n_features."""
    k = config.latent_dim
    if config.architecture == "conv":
        per_pixel = out_dim // config.n_features
        return ConvDecoder(k, _image_shape(config), per_pixel, config.channels, **_layers(config))
    if config.architecture == "mlp":
        return mlp(k, list(config.hidden)[::-1], out_dim, **_layers(config))
    raise ValueError(f"unknown architecture {config.architecture!r}; use mlp or conv")
