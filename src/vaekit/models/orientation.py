"""Which way up is an image: a small convolutional classifier of quarter turns.

Trained to tell which turn (0, 90, 180 or 270 degrees; 0 or 180 for an image that is not square)
was applied to a training image, the classifier learns what upright looks like in this data
(Gidaris et al. 2018). An image whose turns it cannot tell apart is unlike the training images in
a way a reconstruction error hardly sees: turned, heavily cropped, from another collection (Golan &
El-Yaniv 2018 find anomalies this way).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vaekit.models.conv import ConvEncoder

CHANNELS = (16, 32)


class TurnClassifier(nn.Module):
    """(batch, C*H*W) flat images -> (batch, n_turns) logits of the turn that was applied."""

    def __init__(self, image_shape: Sequence[int], channels: Sequence[int] = CHANNELS):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        self.image_shape = (c, h, w)
        self.n_turns = 4 if h == w else 2  # a quarter turn of a non-square image changes its shape
        self.net = ConvEncoder(self.image_shape, self.n_turns, channels=channels)

    def turned(self, x: torch.Tensor, turn: int) -> torch.Tensor:
        """The flat images turned by ``turn`` steps (a step: 90 degrees, or 180 when not square)."""
        quarters = turn if self.n_turns == 4 else 2 * turn
        return torch.rot90(x.view(-1, *self.image_shape), quarters, (2, 3)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_batch(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each image turned by a random number of steps, and that number (the label)."""
        turns = torch.randint(self.n_turns, (len(x),), generator=generator).to(x.device)
        every = torch.stack([self.turned(x, t) for t in range(self.n_turns)])  # (turns, batch, pixels)
        return every[turns, torch.arange(len(x), device=x.device)], turns

    def turn_loss(self, x: torch.Tensor) -> torch.Tensor:
        """(batch,): the cross-entropy of the right answer in nats, averaged over the turns of each image."""
        loss = x.new_zeros(len(x))
        for t in range(self.n_turns):
            target = torch.full((len(x),), t, dtype=torch.long, device=x.device)
            loss = loss + F.cross_entropy(self(self.turned(x, t)), target, reduction="none")
        return loss / self.n_turns
