"""The embedded demo: a VAE on scikit-learn's bundled handwritten digits, no file of the user's needed.

Trains on 80% of the 1,797 8x8 digits, reports the test -ELBO and the importance-weighted
log-likelihood, and writes samples, reconstructions and the training curves as PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def run_demo(
    out_dir: str | os.PathLike = "vaekit-demo", epochs: int = 300, seed: int = 0, verbose: int = 1
) -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from vaekit.estimators import VAE
    from vaekit.plots import image_grid, save_figure, training_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    X = load_digits().data / 16.0  # grey values in [0, 1]
    X_train, X_test = train_test_split(X, test_size=0.2, random_state=seed)
    vae = VAE(
        latent_dim=8,
        hidden=(256, 128),
        likelihood="bernoulli",
        epochs=epochs,
        patience=30,
        random_state=seed,
        verbose=verbose,
    ).fit(X_train)
    vae.save(out / "model")
    metrics = vae.evaluate(X_test)
    metrics["log_likelihood_iwae_k1000"] = float(vae.log_likelihood(X_test, k=1000).mean())
    metrics["epochs"] = vae.n_epochs_

    samples = np.asarray(vae.sample(100, mean=True, random_state=seed)).reshape(-1, 8, 8)
    save_figure(image_grid(samples, title="Samples: z ~ N(0, I), mean of p(x|z)"), out / "samples.png")
    originals = X_test[:10]
    recon = np.asarray(vae.reconstruct(originals))
    pairs = np.concatenate([originals, recon]).reshape(-1, 8, 8)
    save_figure(
        image_grid(pairs, title="Test digits (top) and their reconstructions (bottom)"),
        out / "reconstructions.png",
    )
    save_figure(training_curves(vae.history_, "VAE on the digits: loss per epoch"), out / "loss.png")
    metrics["out_dir"] = str(out)
    return metrics
