"""Pictures of a VAE (vaekit.explore) and images on the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from vaekit import VAE, Autoencoder, ParameterError
from vaekit.cli import main
from vaekit.explore import (
    curves_figure,
    explore,
    interpolation_figure,
    latent_figure,
    manifold_figure,
    reconstructions_figure,
    samples_figure,
    traversals_figure,
)
from vaekit.images import write_idx
from vaekit.plots import save_figure

DIGITS = load_digits()
IMAGES = DIGITS.images[:300] / 16.0


@pytest.fixture(scope="module")
def vae2():
    return VAE(latent_dim=2, hidden=(32,), likelihood="bernoulli", epochs=5, random_state=0).fit(IMAGES)


@pytest.fixture(scope="module")
def vae5():
    return VAE(latent_dim=5, hidden=(32,), likelihood="bernoulli", epochs=5, random_state=0).fit(IMAGES)


def _png_size(path) -> tuple[int, int]:
    assert path.stat().st_size > 2000
    with Image.open(path) as image:
        return image.size


@pytest.mark.parametrize(
    "make, size",
    [
        (lambda m: reconstructions_figure(m, IMAGES, n=8), (8, 2)),
        (lambda m: samples_figure(m, n=16), (4, 4)),
        (lambda m: interpolation_figure(m, IMAGES, pairs=3, steps=7), (7, 3)),
        (lambda m: traversals_figure(m, IMAGES[:1], steps=9, X_reference=IMAGES), (9, 5)),
    ],
)
def test_image_grids_have_one_tile_per_picture(vae5, tmp_path, make, size):
    fig = make(vae5)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == size[0] * size[1]
    width, height = fig.get_size_inches() * 100
    path = save_figure(fig, tmp_path / "grid.png", dpi=100)
    assert _png_size(path) == (round(width), round(height))


def test_manifold_needs_a_two_dimensional_latent_space(vae2, vae5, tmp_path):
    fig = manifold_figure(vae2, n=12)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (12 * 8, 12 * 8)
    assert "z1" in fig.axes[0].get_xlabel() and fig.axes[0].get_ylabel() == "z2"
    assert _png_size(save_figure(fig, tmp_path / "m.png", dpi=100)) == (800, 800)
    with pytest.raises(ParameterError, match="2-D latent"):
        manifold_figure(vae5)


def test_the_manifold_of_a_learned_prior_spans_that_prior(tmp_path):
    """With a mixture prior the grid runs over the prior's own 5-95% quantiles, not N(0, 1)'s."""
    import torch

    vae = VAE(latent_dim=2, hidden=(32,), likelihood="bernoulli", prior="mixture", prior_components=2)
    vae.set_params(epochs=2, random_state=0).fit(IMAGES)
    with torch.no_grad():
        vae.module_.prior.means.copy_(torch.tensor([[10.0, -4.0], [14.0, -4.0]]))
        vae.module_.prior.logvars.fill_(-8.0)  # standard deviations of 0.02
    ax = manifold_figure(vae, n=6).axes[0]
    x = [float(t.get_text()) for t in ax.get_xticklabels()]
    y = [float(t.get_text()) for t in ax.get_yticklabels()]  # top to bottom: z2 falls
    assert len(x) == 6 and 9.9 < x[0] < 10.1 and 13.9 < x[-1] < 14.1 and x == sorted(x)
    assert -3.9 > y[0] >= y[-1] > -4.1
    assert "prior quantiles" in ax.get_xlabel()
    assert "N(0, 1)" in manifold_figure(VAE(latent_dim=2, epochs=1).fit(IMAGES), n=4).axes[0].get_xlabel()


def test_latent_scatter_labels_its_axes(vae2, vae5, tmp_path):
    fig = latent_figure(vae5, IMAGES, DIGITS.target[:300])
    ax = fig.axes[0]
    assert "principal component 1" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 10
    fig2 = latent_figure(vae2, IMAGES)
    assert fig2.axes[0].get_xlabel() == "z1"
    assert _png_size(save_figure(fig, tmp_path / "l.png", dpi=100)) == (750, 600)


def test_curves_and_the_errors_for_models_that_cannot_draw_a_picture(vae5):
    assert len(curves_figure(vae5).axes) == 3  # -ELBO, reconstruction, KL
    table_model = VAE(latent_dim=2, hidden=(8,), epochs=2, random_state=0).fit(DIGITS.data[:100])
    with pytest.raises(ParameterError, match="table"):
        samples_figure(table_model)
    ae = Autoencoder(latent_dim=2, hidden=(8,), epochs=2, random_state=0).fit(IMAGES[:100])
    with pytest.raises(ParameterError, match="VAE"):
        samples_figure(ae)


def test_explore_writes_every_picture_that_applies(vae2, tmp_path):
    paths = explore(vae2, IMAGES, DIGITS.target[:300], tmp_path / "pics")
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "latent.png",
            "curves.png",
            "reconstructions.png",
            "samples.png",
            "interpolation.png",
            "traversals.png",
            "manifold.png",
        ]
    )
    assert all(p.stat().st_size > 2000 for p in paths)


def test_images_on_the_command_line(tmp_path, capsys):
    """Train on an IDX file, evaluate, sample a PNG grid, explore; train a detector on a folder."""
    images = (IMAGES * 255).astype(np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte", DIGITS.target[:300].astype(np.uint8))
    data = str(tmp_path / "train-images-idx3-ubyte")
    model = str(tmp_path / "model")
    assert main(["train", data, "-o", model, "--latent", "2", "--epochs", "3", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", model, data, "--iwae", "20"]) == 0
    out = capsys.readouterr().out
    assert '"bits_per_dim"' in out and '"active_units"' in out and '"nll_iwae"' in out
    assert main(["sample", model, "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert _png_size(tmp_path / "s.png")[0] > 100
    assert main(["reconstruct", model, data, "-o", str(tmp_path / "r.npy")]) == 0
    assert np.load(tmp_path / "r.npy").shape == (300, 1, 8, 8)
    assert main(["encode", model, data, "-o", str(tmp_path / "z.csv")]) == 0
    assert pd.read_csv(tmp_path / "z.csv").shape == (300, 4)
    assert main(["explore", model, data, "-o", str(tmp_path / "pics")]) == 0
    assert (tmp_path / "pics" / "manifold.png").exists() and (tmp_path / "pics" / "latent.png").exists()

    folder = tmp_path / "folder"
    folder.mkdir()
    for i, image in enumerate(images[:120]):
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    detector = str(tmp_path / "det")
    assert main(["train", str(folder), "-o", detector, "--model", "auto", "--quiet"]) == 0
    assert main(["score", detector, str(folder), "-o", str(tmp_path / "scores.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "scores.csv")) == 120
    assert main(["sample", model, "-n", "4", "-o", str(tmp_path / "s.txt")]) == 2
