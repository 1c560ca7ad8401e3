"""Pictures a person can read at a glance: image grids and training curves (matplotlib, PNG)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(images: np.ndarray, n_cols: int = 10, title: str = "", cmap: str = "gray_r"):
    """A figure showing ``images`` (n, height, width) as a grid, values in [0, 1]."""
    plt = _pyplot()
    n = images.shape[0]
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 0.8, n_rows * 0.8 + (0.5 if title else 0)))
    for ax in np.ravel(axes):
        ax.axis("off")
    for ax, image in zip(np.ravel(axes), images, strict=False):
        ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(history: list[dict], title: str = "Training"):
    """-ELBO (or reconstruction error), reconstruction and KL per epoch, training and validation."""
    plt = _pyplot()
    names = [n for n in ("neg_elbo", "reconstruction", "kl") if f"train_{n}" in history[0]]
    labels = {"neg_elbo": "-ELBO (nats)", "reconstruction": "reconstruction (nats)", "kl": "KL (nats)"}
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    epochs = [r["epoch"] for r in history]
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot(epochs, [r[f"train_{name}"] for r in history], label="training")
        if f"val_{name}" in history[0]:
            ax.plot(epochs, [r[f"val_{name}"] for r in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels[name])
        ax.set_title(labels[name].split(" (")[0])
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as a PNG atomically and close it."""
    from vaekit.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    _pyplot().close(fig)
    return path
