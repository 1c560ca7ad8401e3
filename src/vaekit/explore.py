"""What a VAE has learned, in pictures: each function returns a matplotlib figure; :func:`explore`
writes every one that applies to a model as PNG files.

- :func:`reconstructions_figure`: inputs (top) and their reconstructions (bottom);
- :func:`samples_figure`: a grid of draws from the prior, decoded;
- :func:`interpolation_figure`: the decoded path between the posterior means of two inputs;
- :func:`manifold_figure`: for a 2-D latent space, decoded quantiles of the prior on a grid (Kingma
  & Welling 2014, Fig. 4: N(0, 1)'s);
- :func:`latent_figure`: the posterior means of a data set, coloured by label (the first two
  principal components when the latent space has more than two dimensions);
- :func:`traversals_figure`: one row per latent dimension, swept over the prior's quantiles while
  the others stay at an input's posterior mean: what each latent variable has come to mean;
- :func:`curves_figure`: -ELBO, reconstruction and KL per epoch, training and validation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm

from vaekit.errors import ParameterError
from vaekit.estimators import seeded
from vaekit.plots import _pyplot, save_figure, training_curves

MAX_TRAVERSED = 16


def _images(model, rows: np.ndarray) -> np.ndarray:
    """(n, h, w) grey or (n, h, w, 3) colour, clipped to [0, 1], for imshow."""
    images = np.clip(np.asarray(rows, dtype=np.float64), 0, 1)
    images = images.reshape(len(images), *model.image_shape_)
    return images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)


def _as_images(model, X) -> np.ndarray:
    """The images of ``X`` (arrays or an ImageData) as (n, c, h, w), checked against the model."""
    from vaekit.estimators import as_rows

    model._scaled(X[:1] if not hasattr(X, "images") else X.images[:1])  # the model's shape check
    rows, _ = as_rows(X, "X")
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), *model.image_shape_)


def _need_images(model, what: str) -> None:
    if getattr(model, "image_shape_", None) is None:
        raise ParameterError(f"{what} is a picture of images; this model was trained on a table")


def _need_vae(model, what: str) -> None:
    if not hasattr(model, "log_likelihood"):
        raise ParameterError(f"{what} needs a VAE (a latent prior to decode from); this is an autoencoder")


def _grid(images: np.ndarray, n_cols: int, title: str, row_labels: list[str] | None = None):
    plt = _pyplot()
    n = len(images)
    n_rows = int(np.ceil(n / n_cols))
    side = 0.9
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(n_cols * side + (1.2 if row_labels else 0), n_rows * side + 0.6),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax, image in zip(axes.ravel(), images, strict=False):
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    for label, ax in zip(row_labels or [], axes[:, 0], strict=False):
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def reconstructions_figure(model, X, n: int = 10):
    """The first ``n`` inputs of ``X`` (top row) and their reconstructions (bottom row)."""
    _need_images(model, "reconstructions_figure")
    originals = _as_images(model, X)[:n]
    rebuilt = np.asarray(model.reconstruct(originals))
    pictures = np.concatenate([_images(model, originals), _images(model, rebuilt)])
    return _grid(
        pictures, len(originals), "Inputs (top) and their reconstructions (bottom)", ["input", "rebuilt"]
    )


def samples_figure(model, n: int = 64, random_state: int = 0):
    """``n`` draws z ~ p(z), decoded (the mean of p(x|z))."""
    _need_images(model, "samples_figure")
    _need_vae(model, "samples_figure")
    samples = model.sample(n, mean=True, random_state=random_state)
    n_cols = int(np.ceil(np.sqrt(n)))
    prior = "z ~ N(0, I)" if model.module_.prior is None else "z ~ p(z), a learned mixture"
    return _grid(_images(model, samples), n_cols, f"{n} samples from the prior: {prior}, mean of p(x|z)")


def interpolation_figure(model, X, pairs: int = 4, steps: int = 10):
    """For ``pairs`` pairs of inputs of ``X``, the decoded straight line between their posterior means."""
    _need_images(model, "interpolation_figure")
    _need_vae(model, "interpolation_figure")
    mu = model.transform(X)
    if len(mu) < 2:
        raise ParameterError("interpolation_figure needs at least two inputs")
    pairs = min(pairs, len(mu) // 2)
    t = np.linspace(0, 1, steps)[:, None]
    paths = [(1 - t) * mu[2 * i] + t * mu[2 * i + 1] for i in range(pairs)]
    decoded = model.decode(np.concatenate(paths))
    labels = [f"inputs {2 * i + 1}→{2 * i + 2}" for i in range(pairs)]
    return _grid(_images(model, decoded), steps, "Interpolation between posterior means", labels)


def _prior_quantiles(model, probabilities: np.ndarray) -> np.ndarray:
    """Each latent dimension's quantiles under p(z), (len(probabilities), latent_dim): N(0, 1)'s,
    or for a learned prior those of 100,000 draws from it."""
    prior = model.module_.prior
    if prior is None:
        return np.repeat(norm.ppf(probabilities)[:, None], model.config_.latent_dim, axis=1)
    with seeded(0, model.device_), torch.no_grad():
        draws = prior.sample(100_000).float().cpu().numpy()
    return np.quantile(draws, probabilities, axis=0)


def manifold_figure(model, n: int = 20):
    """For a 2-D latent space: decode an n x n grid of the prior's quantiles from 5% to 95%, z1
    across, z2 down (N(0, 1)'s for the standard prior)."""
    _need_images(model, "manifold_figure")
    _need_vae(model, "manifold_figure")
    latent = model.config_.latent_dim
    if latent != 2:
        raise ParameterError(
            f"manifold_figure decodes a grid over a 2-D latent space, and this model has {latent} "
            "dimensions; train with latent_dim=2, or look at traversals_figure"
        )
    quantiles = _prior_quantiles(model, np.linspace(0.05, 0.95, n))
    z1, z2 = np.meshgrid(quantiles[:, 0], quantiles[::-1, 1])
    decoded = _images(model, model.decode(np.column_stack([z1.ravel(), z2.ravel()])))
    h, w = decoded.shape[1:3]
    canvas = np.zeros((n * h, n * w, *decoded.shape[3:]))
    for k, image in enumerate(decoded):
        r, c = divmod(k, n)
        canvas[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 8))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    # the grid is even in probability, not in z: each tick names the z of its tile's centre
    shown = np.unique(np.linspace(0, n - 1, min(n, 7)).round().astype(int))
    ax.set_xticks(shown * w + (w - 1) / 2, [f"{quantiles[i, 0]:.2g}" for i in shown])
    ax.set_yticks(shown * h + (h - 1) / 2, [f"{quantiles[n - 1 - i, 1]:.2g}" for i in shown])
    named = "N(0, 1)" if model.module_.prior is None else "prior"
    ax.set_xlabel(f"z1 ({named} quantiles from 5% to 95%)")
    ax.set_ylabel("z2")
    ax.set_title("The learned manifold: decoded latent grid")
    fig.tight_layout()
    return fig


def latent_figure(model, X, y=None, class_names: list[str] | None = None, max_points: int = 10_000):
    """The posterior means E_q[z] of the rows of ``X``, coloured by ``y`` when given."""
    from sklearn.decomposition import PCA

    mu = model.transform(X)
    if len(mu) > max_points:
        keep = np.random.RandomState(0).choice(len(mu), max_points, replace=False)
        mu, y = mu[keep], (None if y is None else np.asarray(y)[keep])
    if mu.shape[1] > 2:
        pca = PCA(n_components=2).fit(mu)
        points, share = pca.transform(mu), pca.explained_variance_ratio_
        labels = (
            f"principal component 1 of the latent means ({share[0]:.0%} of their variance)",
            f"principal component 2 ({share[1]:.0%})",
        )
        title = f"Latent space ({mu.shape[1]}-D, projected on 2 principal components)"
    elif mu.shape[1] == 2:
        points, labels, title = mu, ("z1", "z2"), "Latent space: posterior means"
    else:
        points = np.column_stack([mu[:, 0], np.zeros(len(mu))])
        labels, title = ("z1", ""), "Latent space (1-D)"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6))
    if y is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5)
    else:
        y = np.asarray(y)
        classes = np.unique(y)
        if len(classes) <= 20:
            cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
            for k, value in enumerate(classes):
                name = class_names[int(value)] if class_names is not None else str(value)
                at = y == value
                ax.scatter(points[at, 0], points[at, 1], s=4, alpha=0.6, color=cmap(k), label=name)
            ax.legend(title="label", markerscale=3, fontsize=8, loc="best")
        else:
            drawn = ax.scatter(points[:, 0], points[:, 1], s=4, c=y, cmap="viridis")
            fig.colorbar(drawn, ax=ax, label="label")
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    fig.tight_layout()
    return fig


def traversals_figure(model, x, steps: int = 11, X_reference=None):
    """One row per latent dimension (the most active ones first, at most 16), decoded while that
    dimension sweeps its prior quantiles from 5% to 95% and the others stay at the posterior
    mean of the first input of the batch ``x``. ``X_reference`` (default: ``x`` alone) ranks the
    dimensions by the variance of their posterior means."""
    _need_images(model, "traversals_figure")
    _need_vae(model, "traversals_figure")
    center = model.transform(x)[0]  # x: a batch of inputs (images or rows); the first is used
    latent = len(center)
    if X_reference is not None and len(X_reference) > 1:
        order = np.argsort(-model.transform(X_reference).var(axis=0), kind="stable")
    else:
        order = np.arange(latent)
    dims = order[:MAX_TRAVERSED]
    quantiles = _prior_quantiles(model, np.linspace(0.05, 0.95, steps))
    grid = np.repeat(center[None, None, :], len(dims), axis=0).repeat(steps, axis=1)
    for row, dim in enumerate(dims):
        grid[row, :, dim] = quantiles[:, dim]
    decoded = model.decode(grid.reshape(-1, latent))
    shown = f", the {len(dims)} with the most varied means" if latent > len(dims) else ""
    named = "N(0, 1)" if model.module_.prior is None else "its prior's"
    return _grid(
        _images(model, decoded),
        steps,
        f"Latent traversals: each row sweeps one z_j over {named} quantiles{shown}",
        [f"z{d + 1}" for d in dims],
    )


def curves_figure(model):
    """-ELBO (or the reconstruction error of an autoencoder), reconstruction and KL per epoch."""
    if not getattr(model, "history_", None):
        raise ParameterError("curves_figure: the model has no training history")
    return training_curves(model.history_, "Training curves (nats per example)")


def explore(model, X, y=None, out_dir: str | os.PathLike = "explore", class_names=None) -> list[Path]:
    """Write every picture that applies to ``model`` and the data ``X`` (labels ``y`` optional)
    into ``out_dir`` as PNG files, and return their paths."""
    out = Path(out_dir)
    images = getattr(model, "image_shape_", None) is not None
    vae = hasattr(model, "log_likelihood")
    rows = _as_images(model, X) if images else X
    figures = {"latent.png": lambda: latent_figure(model, X, y, class_names)}
    if getattr(model, "history_", None):
        figures["curves.png"] = lambda: curves_figure(model)
    if images:
        figures["reconstructions.png"] = lambda: reconstructions_figure(model, rows)
    if images and vae:
        figures["samples.png"] = lambda: samples_figure(model)
        figures["interpolation.png"] = lambda: interpolation_figure(model, rows)
        figures["traversals.png"] = lambda: traversals_figure(model, rows[:1], X_reference=rows[:2000])
        if model.config_.latent_dim == 2:
            figures["manifold.png"] = lambda: manifold_figure(model)
    return [save_figure(make(), out / name) for name, make in figures.items()]
