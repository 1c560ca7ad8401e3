"""How an image is viewed: small convolutional classifiers of the views of an image.

A ``"turn"`` classifier is trained to tell which quarter turn (0, 90, 180 or 270 degrees; 0 or 180
for an image that is not square) was applied to a training image, and so learns what upright looks
like in the collection (Gidaris et al. 2018); a ``"zoom"`` classifier tells an image from the
centre of it blown up by ``ZOOM``, and so learns how closely the collection's subjects are framed.
An image whose views a classifier cannot tell apart is unlike the training images in a way a
reconstruction error hardly sees: turned, cropped or blown up, from another collection (Golan &
El-Yaniv 2018 find anomalies with classifiers of such transformations). Which way up an image is,
and how it is framed, show at a low resolution: the classifiers see images at most ``SIDE`` pixels
on a side (shrunk by averaging), which keeps them cheap on large images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vaekit.models.conv import ConvEncoder

CHANNELS = (16, 32)
ZOOM = 1.5  # the zoomed view: the centre 1/ZOOM of each side, blown up to the whole image
SIDE = 32  # larger images are shrunk to at most this many pixels on their longer side
KINDS = ("turn", "zoom")


class ViewClassifier(nn.Module):
    """(batch, C*H*W) flat images -> (batch, n_views) logits of which view of an image it is shown."""

    def __init__(self, image_shape: Sequence[int], kind: str, channels: Sequence[int] = CHANNELS):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind={kind!r}: choose one of {KINDS}")
        c, h, w = (int(s) for s in image_shape)
        self.image_shape = (c, h, w)
        shrink = min(1.0, SIDE / max(h, w))
        self.seen_shape = (c, max(1, round(h * shrink)), max(1, round(w * shrink)))
        self.kind = kind
        # a quarter turn of a non-square image changes its shape: 0 or 180 degrees then
        self.n_views = (4 if h == w else 2) if kind == "turn" else 2
        self.net = ConvEncoder(self.seen_shape, self.n_views, channels=channels)

    def seen(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, *seen_shape): the flat images as the classifier sees them, shrunk if large."""
        images = x.view(-1, *self.image_shape)
        if self.seen_shape != self.image_shape:
            images = F.interpolate(images, size=self.seen_shape[1:], mode="area")
        return images

    def view(self, x: torch.Tensor, v: int) -> torch.Tensor:
        """The flat images (shrunk to ``seen_shape``) seen in view ``v``: turned by ``v`` steps (of
        90 degrees, or 180 when not square), or for a zoom, as they are (0) or their centre blown
        up by ``ZOOM`` (1)."""
        return self._view(self.seen(x), v)

    def _view(self, images: torch.Tensor, v: int) -> torch.Tensor:
        if self.kind == "turn":
            return torch.rot90(images, v if self.n_views == 4 else 2 * v, (2, 3)).flatten(1)
        if v == 0:
            return images.flatten(1)
        _, h, w = self.seen_shape
        ch, cw = max(1, round(h / ZOOM)), max(1, round(w / ZOOM))
        top, left = (h - ch) // 2, (w - cw) // 2
        centre = images[:, :, top : top + ch, left : left + cw]
        return F.interpolate(centre, size=(h, w), mode="bilinear", align_corners=False).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_batch(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each image in a random view, and which view (the label)."""
        views = torch.randint(self.n_views, (len(x),), generator=generator).to(x.device)
        images = self.seen(x)
        every = torch.stack([self._view(images, v) for v in range(self.n_views)])  # (views, batch, pixels)
        return every[views, torch.arange(len(x), device=x.device)], views

    def framing(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 2 * turns): for a ``"zoom"`` classifier, the log odds that it takes a view for the
        blown-up one, of the image and of its centre blown up, each turned by every quarter turn
        that keeps its shape (four for a square image, else 0 and 180 degrees). How closely the
        collection's images look framed in these views makes a profile of an image: an image
        blown up from a smaller one, or a crop, or one from another collection has a profile unlike
        the training images' even when it is not judged wrongly."""
        if self.kind != "zoom":
            raise ValueError("framing profiles come from a 'zoom' classifier")
        _, h, w = self.seen_shape
        images = self.seen(x)
        odds = []
        for turn in range(4) if h == w else (0, 2):
            turned = torch.rot90(images, turn, (2, 3))
            for v in range(self.n_views):
                logits = self(self._view(turned, v))
                odds.append(logits[:, 1] - logits[:, 0])
        return torch.stack(odds, dim=1)

    @staticmethod
    def zoom_loss(framing: torch.Tensor) -> torch.Tensor:
        """(batch,): a zoom classifier's :meth:`view_loss` read off the images' framing profiles,
        whose first two log odds are its judgement of the upright image and of its centre blown up
        (the cross-entropy of the right answer is softplus of minus its log odds), so that scoring
        does not run the classifier on those views twice."""
        return (F.softplus(framing[:, 0]) + F.softplus(-framing[:, 1])) / 2

    def view_loss(self, x: torch.Tensor) -> torch.Tensor:
        """(batch,): the cross-entropy of the right answer in nats, averaged over the views of each image."""
        loss, images = x.new_zeros(len(x)), self.seen(x)
        for v in range(self.n_views):
            target = torch.full((len(x),), v, dtype=torch.long, device=x.device)
            loss = loss + F.cross_entropy(self(self._view(images, v)), target, reduction="none")
        return loss / self.n_views
