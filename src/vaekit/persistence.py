"""Model files: a folder with the weights as safetensors and everything else as JSON. No pickle.

    MODEL_DIR/
      config.json          format name and version, the estimator and its settings, the architecture
      model.safetensors    the weights (their SHA-256 is in config.json)
      preprocessing.json   the columns and their scaling
      training.json        the per-epoch history and a summary of the run

Loading checks the format, the version, the checksum and every tensor's name and shape, and says
in one line what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from vaekit.errors import ModelFileError
from vaekit.io import set_default_mode

FORMAT = "vaekit-model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
_NOT_SAVED = ("encoder", "decoder", "checkpoint_dir", "verbose")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _estimator_classes() -> dict[str, type]:
    from vaekit.estimators import VAE, Autoencoder

    return {"VAE": VAE, "Autoencoder": Autoencoder}


def _is_model_folder(path: Path) -> bool:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def check_model_output(path: str | os.PathLike, keep: tuple[str, ...] = ("checkpoint",)) -> None:
    """Refuse to write a model over anything but nothing, an empty folder, or a vaekit model folder.

    Saving replaces the folder at ``path``, so a folder of the user's (say the one holding the
    training data) must never be taken for an old model. The training checkpoint (``keep``) and
    its temporary siblings alone are fine: that is what an interrupted ``vaekit train`` leaves.
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise ModelFileError(f"{path}: exists and is not a folder; choose another output path")
    allowed = {name for k in keep for name in (k, f".{k}.tmp", f".{k}.old")}
    entries = sorted(p.name for p in path.iterdir())
    if set(entries) <= allowed or _is_model_folder(path):
        return
    shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
    raise ModelFileError(
        f"{path}: is a folder that is not a vaekit model (it holds {shown}), and saving would "
        "replace it; choose a new or empty folder"
    )


def write_folder(
    path: str | os.PathLike, write: Callable[[Path], None], keep: tuple[str, ...] = ("checkpoint",)
) -> Path:
    """Call ``write(tmp)`` to fill a new folder beside ``path``, then rename it onto ``path``.

    An existing folder at ``path`` must be a vaekit model folder or hold nothing but ``keep``
    (see :func:`check_model_output`); it is replaced only once the new one is complete, and its
    entries that the new one does not have (the training checkpoint, files of the user's) are
    carried over.
    """
    path = Path(path)
    check_model_output(path, keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    set_default_mode(tmp)
    try:
        write(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "model")
            os.replace(tmp, path)
            for entry in (old / "model").iterdir():
                if not (path / entry.name).exists():
                    os.replace(entry, path / entry.name)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def write_model_dir(
    path: str | os.PathLike,
    files: dict[str, object],
    tensors: dict[str, torch.Tensor],
    keep: tuple[str, ...] = ("checkpoint",),
) -> Path:
    """Write JSON ``files`` and ``tensors`` (as safetensors, checksummed) as the folder ``path``."""

    def write(tmp: Path) -> None:
        weights = tmp / WEIGHTS
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(weights))
        set_default_mode(weights)
        config = {**files["config.json"], "weights_sha256": _sha256(weights)}
        for name, content in {**files, "config.json": config}.items():
            (tmp / name).write_text(json.dumps(content, indent=1) + "\n")

    return write_folder(path, write, keep)


def save_model(estimator, path: str | os.PathLike) -> Path:
    """Save a fitted :class:`vaekit.VAE` or :class:`vaekit.Autoencoder` to the folder ``path``."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "module_")
    params = {k: v for k, v in estimator.get_params().items() if k not in _NOT_SAVED}
    params["hidden"] = list(params["hidden"])
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vaekit_version": _version(),
        "estimator": type(estimator).__name__,
        "params": params,
        "module": estimator.config_.to_dict(),
    }
    training = {
        "seed": estimator.seed_,
        "n_epochs": estimator.n_epochs_,
        "best_epoch": estimator.best_epoch_,
        "n_train": estimator.n_train_,
        "n_val": estimator.n_val_,
        "fit_seconds": estimator.fit_seconds_,
        "device": str(estimator.device_),
        "history": estimator.history_,
    }
    files = {
        "config.json": config,
        "preprocessing.json": estimator.scaler_.to_dict(),
        "training.json": training,
    }
    return write_model_dir(path, files, estimator.module_.state_dict())


def _version() -> str:
    from vaekit import __version__

    return __version__


def read_config(path: str | os.PathLike) -> dict:
    """Read and check ``config.json`` of a model folder."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model folder; train one with 'vaekit train'")
    if not path.is_dir():
        raise ModelFileError(
            f"{path}: is a file; a vaekit model is a folder made by 'vaekit train' or .save()"
        )
    config_file = path / "config.json"
    if not config_file.exists():
        raise ModelFileError(f"{path}: no config.json here, so this is not a vaekit model folder")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"{config_file}: corrupt JSON ({exc.__class__.__name__}); retrain or restore the model"
        ) from None
    except OSError as exc:
        raise ModelFileError(
            f"{config_file}: cannot be read ({exc.strerror or type(exc).__name__}); "
            "retrain or restore the model"
        ) from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: config.json is not that of a vaekit model (format {FORMAT!r} expected)"
        )
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model format version {version} but this vaekit reads version "
            f"{FORMAT_VERSION}; use the vaekit that wrote it, or retrain"
        )
    return config


def _read_json(path: Path) -> dict:
    """A JSON object from the model folder; anything else (a list, a number) is corrupt."""
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: missing from the model folder; retrain or restore the model") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFileError(f"{path}: corrupt JSON; retrain or restore the model") from None
    except OSError as exc:
        raise ModelFileError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__}); retrain or restore the model"
        ) from None
    if not isinstance(content, dict):
        raise ModelFileError(
            f"{path}: holds a JSON {type(content).__name__}, not an object; retrain or restore the model"
        )
    return content


def read_weights(path: Path, config: dict) -> dict[str, torch.Tensor]:
    """Read the weights, checking them against the checksum in ``config``."""
    weights = path / WEIGHTS
    if not weights.exists():
        raise ModelFileError(f"{weights}: missing from the model folder; retrain or restore the model")
    expected = config.get("weights_sha256")
    if expected is not None and _sha256(weights) != expected:
        raise ModelFileError(
            f"{weights}: the file is truncated or corrupt (its checksum does not match "
            "config.json); retrain or restore the model"
        )
    try:
        return load_file(str(weights))
    except Exception as exc:
        raise ModelFileError(
            f"{weights}: not a readable safetensors file ({type(exc).__name__}); retrain or restore the model"
        ) from None


def load_state_checked(module: nn.Module, tensors: dict[str, torch.Tensor], where: Path) -> None:
    """``module.load_state_dict`` with a one-line error naming the first mismatch."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelFileError(
            f"{where}: the weights do not fit the architecture in config.json (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}); the folder mixes files of two models"
        )
    for name, tensor in expected.items():
        if tuple(tensors[name].shape) != tuple(tensor.shape):
            raise ModelFileError(
                f"{where}: weight {name!r} has shape {tuple(tensors[name].shape)} but the "
                f"architecture needs {tuple(tensor.shape)}; the folder mixes files of two models"
            )
    module.load_state_dict(tensors)


def load(
    path: str | os.PathLike,
    *,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    device: str = "auto",
):
    """Load a model saved with ``.save(path)`` or ``vaekit train``.

    A model trained with custom encoder or decoder modules needs fresh instances of the same
    classes here (their weights come from the file).
    """
    from vaekit.models import ModelConfig, build_module
    from vaekit.preprocessing import Scaler
    from vaekit.training import resolve_device

    path = Path(path)
    config = read_config(path)
    classes = _estimator_classes()
    name = config.get("estimator")
    from vaekit.detectors import DETECTORS, load_detector

    if name in DETECTORS:
        return load_detector(path, config)
    if name not in classes:
        raise ModelFileError(f"{path}: unknown model kind {name!r} in config.json")
    try:
        module_config = ModelConfig.from_dict(config["module"])
        params = dict(config["params"])
        params["hidden"] = tuple(params["hidden"])
        if params.get("channels") is not None:
            params["channels"] = tuple(params["channels"])
        estimator = classes[name](**params, encoder=encoder, decoder=decoder)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: config.json lacks or mangles a field ({type(exc).__name__}: {exc}); "
            "retrain or restore the model"
        ) from None
    for half, custom, given in (
        ("encoder", module_config.custom_encoder, encoder),
        ("decoder", module_config.custom_decoder, decoder),
    ):
        if custom and given is None:
            raise ModelFileError(
                f"{path}: the model was trained with a custom {half} ({custom}); pass a fresh "
                f"one: vaekit.load(path, {half}={custom}(...))"
            )
    try:
        module = build_module(module_config, encoder, decoder)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the architecture in config.json cannot be built ({type(exc).__name__}: "
            f"{exc}); retrain or restore the model"
        ) from None
    load_state_checked(module, read_weights(path, config), path / WEIGHTS)
    training = _read_json(path / "training.json")
    scaler = Scaler.from_dict(_read_json(path / "preprocessing.json"), path / "preprocessing.json")
    if scaler.n_features != module_config.n_features:
        raise ModelFileError(
            f"{path / 'preprocessing.json'}: describes {scaler.n_features} column(s) but the model "
            f"in config.json takes {module_config.n_features}; the folder mixes files of two models"
        )
    device_ = resolve_device(device)
    estimator.module_ = module.to(device_).eval()
    estimator.scaler_ = scaler
    estimator.config_ = module_config
    estimator.device_ = device_
    estimator.seed_ = training.get("seed")
    estimator.history_ = training.get("history", [])
    estimator.n_epochs_ = training.get("n_epochs")
    estimator.best_epoch_ = training.get("best_epoch")
    estimator.n_train_, estimator.n_val_ = training.get("n_train"), training.get("n_val")
    estimator.fit_seconds_ = training.get("fit_seconds")
    estimator.n_features_in_ = module_config.n_features
    if estimator.scaler_.named:
        import numpy as np

        estimator.feature_names_in_ = np.asarray(estimator.scaler_.columns, dtype=object)
    return estimator
