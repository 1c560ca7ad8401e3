"""How an image's detail is spread over scales: the shares of its power spectrum in frequency bands.

The images of one collection, taken and stored one way, share a spectrum: how much of their
variation lies in coarse shapes and how much in fine detail. An image blown up from a smaller one
(a thumbnail, a crop), blurred, noisy or from another source has its power in other bands, whatever
it shows. The profile is the log of the share of an image's power (its 2-D discrete Fourier
transform, the image's mean taken out, summed over channels) in each of ``BANDS`` rings of equal
width in radial frequency, from 0 to the corner of the spectrum; a flat image has no power and the
floor in every band. Image forensics tells resampled images by such spectra. An image less than
``MIN_SIDE`` pixels on a side has too few frequencies for a steady profile.
"""

from __future__ import annotations

import math

import torch

BANDS = 10
MIN_SIDE = 16
FLOOR = 1e-6  # the smallest share told apart: a band with no power reads log(FLOOR)


def band_of_frequency(height: int, width: int, bands: int = BANDS) -> torch.Tensor:
    """(height, width) long: the band of each frequency of a height x width transform."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.fftfreq(width, dtype=torch.float64)[None, :]
    radius = torch.sqrt(fy**2 + fx**2) / math.sqrt(0.5)  # 1 at the corner (Nyquist on both axes)
    return torch.clamp((radius * bands).long(), max=bands - 1)


def spectrum_profile(
    x: torch.Tensor, shape: tuple[int, int, int], bands: int = BANDS, chunk: int = 4096
) -> torch.Tensor:
    """(rows, ``bands``) float64 on the CPU: the spectrum profile of each image of ``x``, rows of
    pixels of images of ``shape`` (channels, height, width). Computed in float64 on the CPU, so an
    image's profile does not depend on the other images in its batch."""
    channels, height, width = shape
    band = band_of_frequency(height, width, bands).flatten()
    out = []
    for i in range(0, len(x), chunk):
        images = x[i : i + chunk].detach().to("cpu", torch.float64).view(-1, channels, height, width)
        images = images - images.mean(dim=(2, 3), keepdim=True)
        power = torch.fft.fft2(images).abs().square().sum(dim=1).flatten(1)  # (rows, height * width)
        per_band = power.new_zeros(len(power), bands).index_add_(1, band, power)
        share = per_band / per_band.sum(dim=1, keepdim=True).clamp_min(1e-300)
        out.append(torch.log(share + FLOOR))
    return torch.cat(out) if out else torch.zeros(0, bands, dtype=torch.float64)
