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


def binarized(x: torch.Tensor) -> torch.Tensor:
    """A binary draw of ``x`` (values in [0, 1]), each entry 1 with its value as the probability:
    torch.bernoulli's distribution from one uniform draw and a comparison, four times faster on
    CPUs (a training step of the Fashion-MNIST benchmark's model spent 15% of its time drawing)."""
    return torch.rand_like(x).lt_(x)


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


def causal_offsets(radius: int) -> list[tuple[int, int]]:
    """(row, column) offsets of the pixels before a pixel, in raster order, in the
    (2 radius + 1)-wide window around it: the rows above it and the pixels to its left."""
    return [(dy, dx) for dy in range(-radius, 1) for dx in range(-radius, radius + 1) if dy < 0 or dx < 0]


def causal_neighbours(image_shape: tuple[int, int, int], radius: int) -> torch.Tensor:
    """For each pixel value of a (channels, height, width) image flattened in that order, the
    indices of the values before it that lie nearest: its own channel's pixels at
    :func:`causal_offsets`, and, for a channel after the first, the same pixel of the channel
    before. (n_features, taps); ``n_features`` marks a neighbour off the image, read as 0."""
    c, h, w = image_shape
    n = c * h * w
    channel, row, col = (
        t.reshape(-1)
        for t in torch.meshgrid(torch.arange(c), torch.arange(h), torch.arange(w), indexing="ij")
    )
    taps = []
    for dy, dx in causal_offsets(radius):
        r, q = row + dy, col + dx
        inside = (r >= 0) & (q >= 0) & (q < w)
        taps.append(torch.where(inside, channel * h * w + r * w + q, n))
    if c > 1:
        taps.append(torch.where(channel > 0, torch.arange(n) - h * w, n))
    return torch.stack(taps, dim=1)


class AutoregressiveBernoulli(nn.Module):
    """Bernoulli pixels that also depend on the pixels before them (in raster order), given z:
    p(x|z) = prod_i p(x_i | x_<i, z), a MADE (Germain et al. 2015) whose hidden layer also
    receives the decoder's output, as in the autoregressive decoders of PixelVAE (Gulrajani et
    al. 2017). The decoder gives per-pixel logits and a context for the hidden layer:

        h = relu(A x + context(z)),   l_i = decoder_logits_i(z) + (B h)_i,

    with A and B masked so that logit i sees only x_<i. Scoring needs one pass; sampling is
    sequential, one pixel after another, with the hidden pre-activations updated incrementally.

    With ``image_shape``, each logit is also adjusted by what its nearest earlier pixels show
    (:func:`causal_neighbours`, binary: a value above 1/2 counts as 1): with s_i the pattern of
    those pixels, a number below 2^taps,

        logit_i = (1 + gain[s_i]) l_i + bias[s_i],

    two learned tables per channel. A MADE with one hidden layer reaches the pixel just before
    pixel i through the few hidden units whose degree falls between them; the tables give these
    strongest dependencies directly, at the cost of a lookup.
    """

    name = "made"

    def __init__(
        self,
        n_features: int,
        hidden: int = 500,
        image_shape: tuple[int, int, int] | None = None,
        context_radius: int = 2,
    ):
        super().__init__()
        if n_features < 2:
            raise ValueError("an autoregressive likelihood needs at least 2 features")
        self.n_features, self.hidden = n_features, hidden
        self.x_to_hidden = nn.Linear(n_features, hidden)
        self.hidden_to_x = nn.Linear(hidden, n_features)
        # Input i has degree i + 1; hidden degrees spread evenly over 1 .. n_features - 1. A hidden
        # unit sees inputs of degree <= its own; output i sees hidden units of degree < i + 1.
        degree_in = torch.arange(1, n_features + 1)
        degree_hidden = 1 + (torch.arange(hidden) * (n_features - 1)) // hidden
        self.register_buffer(
            "mask_in", (degree_hidden[:, None] >= degree_in[None, :]).float(), persistent=False
        )
        self.register_buffer(
            "mask_out", (degree_in[:, None] > degree_hidden[None, :]).float(), persistent=False
        )
        self.context_gain = self.context_bias = None
        if image_shape is not None:
            if math.prod(image_shape) != n_features:
                raise ValueError(f"image_shape {tuple(image_shape)} does not hold {n_features} values")
            self.image_shape = tuple(image_shape)
            neighbours = causal_neighbours(self.image_shape, context_radius)
            taps = neighbours.shape[1]
            channel = torch.arange(n_features) // (n_features // image_shape[0])
            self.register_buffer("neighbours", neighbours, persistent=False)
            self.register_buffer("table_start", channel * 2**taps, persistent=False)
            self.register_buffer("powers", 2.0 ** torch.arange(taps), persistent=False)
            # the same patterns by a convolution (several times faster than gathering neighbours):
            # each window offset weighted by its power of two
            window = torch.zeros(2 * context_radius + 1, 2 * context_radius + 1)
            for t, (dy, dx) in enumerate(causal_offsets(context_radius)):
                window[context_radius + dy, context_radius + dx] = 2.0**t
            self.register_buffer("window", window.expand(image_shape[0], 1, -1, -1).clone(), persistent=False)
            self.context_gain = nn.Parameter(torch.zeros(image_shape[0] * 2**taps))
            self.context_bias = nn.Parameter(torch.zeros(image_shape[0] * 2**taps))

    def n_params(self) -> int:
        return self.n_features + self.hidden

    def table_entries(self, x: torch.Tensor) -> torch.Tensor:
        """The table entry of each pixel of x (..., n_features): its channel's table and its
        neighbours' pattern (the binary number whose bit t is the neighbour at ``neighbours[:, t]``)."""
        c, h, w = self.image_shape
        bits = (x > 0.5).to(self.window.dtype).reshape(-1, c, h, w)
        with torch.autocast(x.device.type, enabled=False):  # bfloat16 holds integers to 256 only
            pattern = F.conv2d(bits, self.window, padding=self.window.shape[-1] // 2, groups=c)
        if c > 1:  # the last tap: the same pixel of the channel before
            pattern[:, 1:] += bits[:, :-1] * self.powers[-1]
        return self.table_start + pattern.reshape(*x.shape).long()

    def _table(self, table: torch.Tensor, entries: torch.Tensor) -> torch.Tensor:
        # index_select: its gradient adds into the table (index_add_), many times faster on CPUs
        # than the accumulating index_put_ of table[entries]
        return table.index_select(0, entries.reshape(-1)).reshape(entries.shape)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits, context = params.split([self.n_features, self.hidden], dim=-1)
        # A x is the same for every z drawn for an example: computed once, broadcast over samples.
        h = torch.relu(F.linear(x, self.x_to_hidden.weight * self.mask_in, self.x_to_hidden.bias) + context)
        logits = logits + F.linear(h, self.hidden_to_x.weight * self.mask_out, self.hidden_to_x.bias)
        if self.context_gain is not None:
            s = self.table_entries(x)
            logits = logits * (1 + self._table(self.context_gain, s)) + self._table(self.context_bias, s)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def _generate(self, params: torch.Tensor, draw: bool) -> torch.Tensor:
        logits, context = params.split([self.n_features, self.hidden], dim=-1)
        lead = logits.shape[:-1]
        logits, context = logits.reshape(-1, self.n_features), context.reshape(-1, self.hidden)
        a_in = (self.x_to_hidden.weight * self.mask_in).T  # (features, hidden)
        b_out = self.hidden_to_x.weight * self.mask_out  # (features, hidden)
        pre = context + self.x_to_hidden.bias  # hidden pre-activations, no pixel seen yet
        out = torch.zeros(len(logits), self.n_features + 1, dtype=logits.dtype, device=logits.device)
        for i in range(self.n_features):
            logit = logits[:, i] + torch.relu(pre) @ b_out[i] + self.hidden_to_x.bias[i]
            if self.context_gain is not None:
                bits = (out[:, self.neighbours[i]] > 0.5).to(self.powers.dtype)
                s = self.table_start[i] + (bits * self.powers).sum(-1).long()  # no matmul: autocast
                logit = logit * (1 + self.context_gain[s]) + self.context_bias[s]
            p = torch.sigmoid(logit)
            out[:, i] = torch.bernoulli(p) if draw else p
            pre = pre + out[:, i, None] * a_in[i]
        return out[:, :-1].reshape(*lead, self.n_features)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """A deterministic picture: the sequential pass with each pixel's probability fed forward
        in place of a draw (the exact mean of an autoregressive model has no closed form)."""
        return self._generate(params, draw=False)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return self._generate(params, draw=True)


LIKELIHOODS = ("bernoulli", "made", "gaussian")


def make_likelihood(
    name: str,
    n_features: int,
    variance: Variance = "feature",
    made_hidden: int = 500,
    image_shape: tuple[int, int, int] | None = None,
) -> nn.Module:
    """``image_shape`` gives a MADE its tables of neighbouring pixels (None: the MADE alone)."""
    if name == "bernoulli":
        return Bernoulli(n_features)
    if name == "made":
        return AutoregressiveBernoulli(n_features, made_hidden, image_shape)
    if name == "gaussian":
        return Gaussian(n_features, variance)
    raise ValueError(f"unknown likelihood {name!r}; use bernoulli, made or gaussian")
