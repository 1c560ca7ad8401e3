"""vaekit: autoencoders and variational autoencoders on PyTorch.

    import vaekit
    vae = vaekit.VAE(latent_dim=8).fit(X)       # X: a numpy array or a DataFrame
    new_rows = vae.sample(100)

Heavy modules (torch, pandas) are imported on first use, so the command line starts at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vaekit.errors import DataError, ModelFileError, ParameterError, TrainingError, VaekitError

__version__ = "0.1.0"

_LAZY = {
    "VAE": "vaekit.estimators",
    "Autoencoder": "vaekit.estimators",
    "load": "vaekit.persistence",
    "AnomalyDetector": "vaekit.detectors",
    "AutoencoderDetector": "vaekit.detectors",
    "VAEDetector": "vaekit.detectors",
    "RobustAutoencoderDetector": "vaekit.detectors",
    "ImageData": "vaekit.images",
    "load_images": "vaekit.images",
    "read_table": "vaekit.io",
    "write_table": "vaekit.io",
}

__all__ = [
    "VAE",
    "AnomalyDetector",
    "Autoencoder",
    "AutoencoderDetector",
    "DataError",
    "ImageData",
    "ModelFileError",
    "ParameterError",
    "RobustAutoencoderDetector",
    "TrainingError",
    "VAEDetector",
    "VaekitError",
    "__version__",
    "load",
    "load_images",
    "read_table",
    "write_table",
]

if TYPE_CHECKING:
    from vaekit.detectors import (
        AnomalyDetector,
        AutoencoderDetector,
        RobustAutoencoderDetector,
        VAEDetector,
    )
    from vaekit.estimators import VAE, Autoencoder
    from vaekit.images import ImageData, load_images
    from vaekit.io import read_table, write_table
    from vaekit.persistence import load


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
