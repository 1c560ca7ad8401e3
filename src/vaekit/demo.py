"""The embedded demos, on scikit-learn's bundled handwritten digits: no file of the user's needed.

:func:`run_clean_demo` (``vaekit demo``): the 1,797 8x8 digits as a folder of PNG files with
garbage injected (noise, blank, inverted and corrupted images: a known list), cleaned end to end
by :func:`vaekit.clean.clean`, with the recall and precision on the injected garbage.
:func:`run_vae_demo` (``vaekit demo --vae``): a VAE trained on 80% of the digits, its test -ELBO
and importance-weighted log-likelihood, and samples, reconstructions and curves as PNG.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def run_vae_demo(
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


GARBAGE_KINDS = ("noise", "blank", "inverted", "corrupted pixels")


def dirty_digits(seed: int = 0, share: float = 0.05) -> tuple[np.ndarray, list[str]]:
    """The digits (n, 8, 8) in [0, 1] with ``share`` garbage appended, and each image's kind
    ("" for a real digit): uniform noise, blank (all black or all white), inverted digits, and
    digits with a 3x3 block inverted and 15% of their pixels set to black or white."""
    from sklearn.datasets import load_digits

    digits = load_digits().images / 16.0
    rng = np.random.RandomState(seed)
    per_kind = max(1, round(share * len(digits) / len(GARBAGE_KINDS)))
    picks = lambda: digits[rng.choice(len(digits), per_kind, replace=False)].copy()  # noqa: E731
    noise = rng.uniform(size=(per_kind, 8, 8))
    blank = np.where(np.arange(per_kind)[:, None, None] % 2 == 0, 0.0, 1.0) * np.ones((per_kind, 8, 8))
    inverted = 1 - picks()
    corrupted = picks()
    for image in corrupted:
        i, j = rng.randint(0, 6, size=2)
        image[i : i + 3, j : j + 3] = 1 - image[i : i + 3, j : j + 3]
        salt = rng.rand(8, 8) < 0.15
        image[salt] = rng.randint(0, 2, size=salt.sum())
    images = np.concatenate([digits, noise, blank, inverted, corrupted])
    kinds = [""] * len(digits) + [kind for kind in GARBAGE_KINDS for _ in range(per_kind)]
    return images, kinds


def run_clean_demo(out_dir: str | os.PathLike = "vaekit-demo", seed: int = 0, verbose: int = 1) -> dict:
    """Write the dirty digits as PNG files under ``out_dir/input``, clean them into
    ``out_dir/cleaned`` and measure the result against the known list of injected garbage."""
    import pandas as pd
    from PIL import Image

    from vaekit.clean import clean

    out = Path(out_dir)
    images, kinds = dirty_digits(seed)
    order = np.random.RandomState(seed).permutation(len(images))  # garbage hidden among the digits
    folder = out / "input"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for position, i in enumerate(order):
        name = f"img_{position:04d}.png"
        Image.fromarray((images[i] * 255).round().astype(np.uint8), mode="L").save(folder / name)
        names.append(name)
    truth = pd.DataFrame({"file": names, "injected": [kinds[i] for i in order]})
    truth.to_csv(out / "injected.csv", index=False)
    result = clean(folder, out / "cleaned", random_state=seed, verbose=verbose)
    scores = pd.read_csv(out / "cleaned" / "scores.csv").merge(truth, on="file")
    injected = scores["injected"].fillna("") != ""
    removed = scores["garbage"] == 1
    hits = int((injected & removed).sum())
    per_kind = {kind: float(removed[scores["injected"] == kind].mean()) for kind in GARBAGE_KINDS}
    return {
        "images": len(scores),
        "injected": int(injected.sum()),
        "removed": int(removed.sum()),
        "recall": hits / max(int(injected.sum()), 1),
        "precision": hits / max(int(removed.sum()), 1),
        "good_removed": float(removed[~injected].mean()),
        "recall_per_kind": per_kind,
        "summary": result.summary(),
        "report": str(result.outputs["report"]),
        "out_dir": str(out),
    }
