"""Convolutional encoder and decoder for images, on flat tensors.

Both halves take and give flat (batch, C*H*W) tensors, like the MLPs, so the likelihoods,
:class:`VAEModule`, :class:`AutoencoderModule`, the trainer and the scaler work unchanged; the
encoder unflattens its input and the decoder flattens its output, channel by channel.

The encoder halves the image with stride-2 convolutions (kernel 4, padding 1: a side n becomes
n // 2) until its shorter side is at most 7 (28 -> 14 -> 7, 64 -> 32 -> 16 -> 8 -> 4, 8 -> 4),
then a linear layer gives the output. The decoder mirrors it with transposed convolutions whose
output padding restores each odd side exactly, so any H x W comes back as H x W.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vaekit.models.networks import ACTIVATIONS, NORMS

DEFAULT_CHANNELS = (32, 64, 128, 256)
SMALLEST_SIDE = 7  # stop halving once the shorter side is at most this


def feature_map_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """The (height, width) of the image and after each stride-2 convolution: [(H, W), ..., (h, w)]."""
    sizes = [(height, width)]
    while min(sizes[-1]) > SMALLEST_SIDE:
        h, w = sizes[-1]
        sizes.append((h // 2, w // 2))
    return sizes


def _widths(channels: Sequence[int], n_layers: int) -> list[int]:
    """One width per layer: ``channels`` in order, its last value repeated if it is too short."""
    channels = list(channels) or list(DEFAULT_CHANNELS)
    return [channels[min(i, len(channels) - 1)] for i in range(n_layers)]


def _block(conv: nn.Module, width: int, activation: str, norm: str, dropout: float) -> list[nn.Module]:
    layers = [conv]
    if norm == "batch":
        layers.append(nn.BatchNorm2d(width))
    elif norm == "layer":
        layers.append(nn.GroupNorm(1, width))  # normalises over (channels, height, width)
    layers.append(ACTIVATIONS[activation]())
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return layers


def _check(image_shape: Sequence[int], activation: str, norm: str) -> tuple[int, int, int]:
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape={tuple(image_shape)!r}: give (channels, height, width)")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {list(NORMS)}")
    c, h, w = (int(s) for s in image_shape)
    return c, h, w


class ConvEncoder(nn.Module):
    """(batch, C*H*W) -> (batch, ``latent_out``): stride-2 convolutions, then a linear layer.

    For a VAE ``latent_out`` is 2 * latent_dim (mean and log-variance of q(z|x)).
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        latent_out: int,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.image_shape = _check(image_shape, activation, norm)
        c, h, w = self.image_shape
        sizes = feature_map_sizes(h, w)
        widths = _widths(channels, len(sizes) - 1)
        layers: list[nn.Module] = []
        for c_in, c_out in zip([c, *widths], widths, strict=False):
            conv = nn.Conv2d(c_in, c_out, kernel_size=4, stride=2, padding=1)
            layers += _block(conv, c_out, activation, norm, dropout)
        self.convs = nn.Sequential(*layers)
        h_last, w_last = sizes[-1]
        c_last = widths[-1] if widths else c
        self.out = nn.Linear(c_last * h_last * w_last, latent_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.convs(x.view(-1, *self.image_shape))  # (batch, C, H, W) -> (batch, c, h, w)
        return self.out(h.flatten(1))  # (batch, latent_out)


class ConvDecoder(nn.Module):
    """(batch, latent_dim) -> (batch, n_params_per_pixel * C*H*W): the encoder in reverse.

    The output holds the likelihood's parameters one image-sized block after the other (for a
    Gaussian with the decoder's variance: all the means, then all the log-variances), in the
    order of the flattened image, as :class:`vaekit.models.Gaussian` reads them.
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        n_params_per_pixel: int = 1,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        activation: str = "relu",
        norm: str = "none",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.image_shape = _check(image_shape, activation, norm)
        c, h, w = self.image_shape
        sizes = feature_map_sizes(h, w)
        widths = _widths(channels, len(sizes) - 1)
        c_out = n_params_per_pixel * c
        h_first, w_first = sizes[-1]
        self.first_shape = (widths[-1] if widths else c_out, h_first, w_first)
        self.linear = nn.Linear(latent_dim, self.first_shape[0] * h_first * w_first)
        self.activation = ACTIVATIONS[activation]()
        layers: list[nn.Module] = []
        # Walk back up: layer i restores sizes[i] from sizes[i + 1]; output padding adds the odd pixel.
        ins = widths[::-1]
        outs = [*ins[1:], c_out] if ins else []
        targets = sizes[-2::-1]
        for i, (c_in, c_next, (th, tw)) in enumerate(zip(ins, outs, targets, strict=True)):
            conv = nn.ConvTranspose2d(
                c_in, c_next, kernel_size=4, stride=2, padding=1, output_padding=(th % 2, tw % 2)
            )
            last = i == len(ins) - 1
            layers += [conv] if last else _block(conv, c_next, activation, norm, dropout)
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.linear(z).view(-1, *self.first_shape)  # (batch, c, h, w)
        if len(self.deconvs) == 0:  # an image too small to halve: the linear layer is the decoder
            return h.flatten(1)
        return self.deconvs(self.activation(h)).flatten(1)  # (batch, params * C, H, W) -> flat
