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

    With ``neighbour_rank`` r > 0 as well, how much each neighbour counts also depends on z: the
    decoder gives r more numbers c(z), and before the tables

        l_i += sum_t W_ti(z) b_ti,   W(z) = c(z) A,

    with b_ti the neighbour at tap t of pixel i (binary) and A a learned (r, taps, pixels) array
    (zero at the start: training starts from the model without it). Where an edge runs differs
    from one garment, stroke or pose to another; the tables alone cannot know which.
    """

    name = "made"

    def __init__(
        self,
        n_features: int,
        hidden: int = 500,
        image_shape: tuple[int, int, int] | None = None,
        context_radius: int = 2,
        neighbour_rank: int = 0,
    ):
        super().__init__()
        if n_features < 2:
            raise ValueError("an autoregressive likelihood needs at least 2 features")
        if neighbour_rank and image_shape is None:
            raise ValueError("neighbour_rank needs image_shape: weights of neighbouring pixels")
        self.n_features, self.hidden, self.rank = n_features, hidden, neighbour_rank
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
            self.register_buffer("powers", 2.0 ** torch.arange(taps)[:, None], persistent=False)
            self.radius, self.offsets = context_radius, causal_offsets(context_radius)
            self.context_gain = nn.Parameter(torch.zeros(image_shape[0] * 2**taps))
            self.context_bias = nn.Parameter(torch.zeros(image_shape[0] * 2**taps))
            if neighbour_rank:
                self.neighbour_weights = nn.Parameter(torch.zeros(neighbour_rank, taps, n_features))

    def n_params(self) -> int:
        return self.n_features + self.hidden + self.rank

    def neighbour_bits(self, x: torch.Tensor) -> torch.Tensor:
        """The binary neighbours of each pixel of x (..., n_features), as (..., taps, n_features):
        entry (t, i) is x at ``neighbours[i, t]`` above 1/2, or 0 off the image."""
        c, h, w = self.image_shape
        r = self.radius
        bits = (x > 0.5).float()
        # each window offset a shifted view of the image padded with zeros (no rows below: the
        # offsets never point down); several times faster than gathering by index or a convolution
        padded = F.pad(bits.reshape(-1, h, w), (r, r, r, 0))
        window = torch.stack([padded[:, r + dy : r + dy + h, r + dx : r + dx + w] for dy, dx in self.offsets])
        window = window.reshape(len(self.offsets), -1, c, h * w).permute(1, 0, 2, 3).flatten(2)
        if c > 1:  # the last tap: the same pixel of the channel before
            before = F.pad(bits.reshape(-1, self.n_features), (h * w, 0))[:, : self.n_features]
            window = torch.cat([window, before[:, None]], dim=1)
        return window.reshape(*x.shape[:-1], -1, self.n_features)

    def table_entries(self, bits: torch.Tensor) -> torch.Tensor:
        """The table entry of each pixel, from its :meth:`neighbour_bits`: its channel's table and
        its neighbours' pattern (the binary number whose bit t is the neighbour at tap t)."""
        return self.table_start + (bits * self.powers).sum(-2).long()

    def neighbour_logits(self, c: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
        """sum_t W_ti(z) b_ti with W(z) = c(z) A, for c of shape (batch, rank), one z an example,
        or (samples, batch, rank); bits (batch, taps, n_features)."""
        a, bits = self.neighbour_weights.to(c.dtype), bits.to(c.dtype)
        if c.dim() == 2:  # W for each example: one matrix product, then the sum over taps
            w = (c @ a.reshape(self.rank, -1)).unflatten(-1, bits.shape[-2:])
            return (w * bits).sum(-2)
        # several z an example: G_ri = sum_t A_rti b_ti once an example, then c G for each z,
        # not a W of taps x n_features numbers a sample (memory of k = 100 samples: 2 GB)
        g = torch.einsum("btn,rtn->bnr", bits, a)
        samples = c.reshape(-1, *c.shape[-2:]).permute(1, 2, 0)  # (batch, rank, samples)
        out = torch.bmm(g, samples).permute(2, 0, 1)
        return out.reshape(*c.shape[:-1], self.n_features)

    def _split(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The decoder's logits, the MADE's hidden context and the neighbour weights' c(z)."""
        return params.split([self.n_features, self.hidden, self.rank], dim=-1)

    def _table(self, table: torch.Tensor, entries: torch.Tensor) -> torch.Tensor:
        # index_select: its gradient adds into the table (index_add_), many times faster on CPUs
        # than the accumulating index_put_ of table[entries]
        return table.index_select(0, entries.reshape(-1)).reshape(entries.shape)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        logits, context, c = self._split(params)
        if self.context_gain is not None:
            bits = self.neighbour_bits(x)
            if self.rank:
                logits = logits + self.neighbour_logits(c, bits)
        # A x is the same for every z drawn for an example: computed once, broadcast over samples.
        h = torch.relu(F.linear(x, self.x_to_hidden.weight * self.mask_in, self.x_to_hidden.bias) + context)
        logits = logits + F.linear(h, self.hidden_to_x.weight * self.mask_out, self.hidden_to_x.bias)
        if self.context_gain is not None:
            s = self.table_entries(bits)
            logits = logits * (1 + self._table(self.context_gain, s)) + self._table(self.context_bias, s)
        return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)

    def _generate(self, params: torch.Tensor, draw: bool) -> torch.Tensor:
        logits, context, c = self._split(params)
        lead = logits.shape[:-1]
        logits, context = logits.reshape(-1, self.n_features), context.reshape(-1, self.hidden)
        c = c.reshape(len(logits), self.rank)
        a_in = (self.x_to_hidden.weight * self.mask_in).T  # (features, hidden)
        b_out = self.hidden_to_x.weight * self.mask_out  # (features, hidden)
        pre = context + self.x_to_hidden.bias  # hidden pre-activations, no pixel seen yet
        out = torch.zeros(len(logits), self.n_features + 1, dtype=logits.dtype, device=logits.device)
        for i in range(self.n_features):
            logit = logits[:, i] + torch.relu(pre) @ b_out[i] + self.hidden_to_x.bias[i]
            if self.context_gain is not None:
                bits = (out[:, self.neighbours[i]] > 0.5).to(self.powers.dtype)
                if self.rank:
                    logit = logit + ((c @ self.neighbour_weights[:, :, i]) * bits).sum(-1)
                s = self.table_start[i] + (bits * self.powers.T).sum(-1).long()  # no matmul: autocast
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
NEIGHBOUR_RANK = 128  # of a MADE on images (benchmarks/fashion_mnist.py has the trials)


def make_likelihood(
    name: str,
    n_features: int,
    variance: Variance = "feature",
    made_hidden: int = 500,
    image_shape: tuple[int, int, int] | None = None,
    neighbour_rank: int = 0,
) -> nn.Module:
    """``image_shape`` gives a MADE its tables of neighbouring pixels (None: the MADE alone), and
    ``neighbour_rank`` its z-dependent neighbour weights (0: none)."""
    if name == "bernoulli":
        return Bernoulli(n_features)
    if name == "made":
        return AutoregressiveBernoulli(n_features, made_hidden, image_shape, neighbour_rank=neighbour_rank)
    if name == "gaussian":
        return Gaussian(n_features, variance)
    raise ValueError(f"unknown likelihood {name!r}; use bernoulli, made or gaussian")
