"""scikit-learn style estimators: ``VAE`` and ``Autoencoder`` on numpy arrays, DataFrames and images.

``__init__`` stores the settings untouched; ``fit`` validates them, learns the preprocessing,
builds the module and trains it, setting trailing-underscore attributes. Every other method
takes data in the training data's own units and columns and gives results in them.

Images, (n, height, width) or (n, channels, height, width) arrays or a
:class:`vaekit.images.ImageData`, are flattened into rows of pixels for the model, which is
convolutional or an MLP (``architecture``); results that are images come back as
(n, channels, height, width) arrays.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from vaekit import distributed
from vaekit.distributed import Shard
from vaekit.errors import DataError, ParameterError
from vaekit.images import ImageData
from vaekit.io import as_matrix
from vaekit.models import ModelConfig, build_module
from vaekit.models.conv import DEFAULT_CHANNELS
from vaekit.models.likelihoods import NEIGHBOUR_RANK
from vaekit.models.networks import ACTIVATIONS, NORMS
from vaekit.preprocessing import SCALINGS, Scaler
from vaekit.streaming import validation_rows
from vaekit.training import TrainConfig, Trainer, resolve_device

logger = logging.getLogger(__name__)

ArrayLike = np.ndarray | pd.DataFrame
ImageShape = tuple[int, int, int]
CONV_MIN_SIDE = 16  # architecture="auto" picks convolutions for images at least this high and wide


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run a block with torch's global generators seeded, restoring them afterwards."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def as_rows(X: ArrayLike | ImageData, source: str = "X") -> tuple[ArrayLike, ImageShape | None]:
    """Images become rows of pixels and their (channels, height, width); tables pass through.

    Images are an :class:`ImageData`, or arrays of shape (n, height, width) (grey) or
    (n, channels, height, width) with 1 to 4 channels.
    """
    if isinstance(X, ImageData):
        X = X.images
    if isinstance(X, pd.DataFrame):
        return X, None
    array = np.asarray(X)
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        return array, None  # a table, or a shape that as_matrix explains
    if not 1 <= array.shape[1] <= 4:
        raise DataError(
            f"{source}: images of shape {array.shape} have {array.shape[1]} channels; give "
            "(n, channels, height, width) arrays with 1 to 4 channels (for channels-last "
            "arrays use X.transpose(0, 3, 1, 2))"
        )
    return array.reshape(array.shape[0], -1), tuple(int(s) for s in array.shape[1:])


class _AutoencoderBase(BaseEstimator):
    """What the VAE and the Autoencoder share: settings, fitting, scaling, batching, saving."""

    _kind: str

    # -- settings -------------------------------------------------------------------------
    def _check_params(self) -> None:
        def positive_int(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"{name}={value!r}: must be a whole number >= 1")

        for name in ("latent_dim", "epochs", "batch_size", "checkpoint_every"):
            positive_int(name)
        if not all(isinstance(h, int | np.integer) and h >= 1 for h in self.hidden):
            raise ParameterError(f"hidden={self.hidden!r}: must be layer widths, e.g. (256, 128)")
        if self.activation not in ACTIVATIONS:
            raise ParameterError(f"activation={self.activation!r}: use one of {sorted(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ParameterError(f"norm={self.norm!r}: use one of {list(NORMS)}")
        if self.architecture not in ("auto", "mlp", "conv"):
            raise ParameterError(f"architecture={self.architecture!r}: use auto, mlp or conv")
        widths = self.channels if self.channels is not None else DEFAULT_CHANNELS
        if not _is_sequence(widths) or len(widths) == 0 or not all(_is_width(c) for c in widths):
            raise ParameterError(
                f"channels={self.channels!r}: must be the widths of the convolutions, e.g. (32, 64), or None"
            )
        if not isinstance(self.binarize, bool | np.bool_):
            raise ParameterError(f"binarize={self.binarize!r}: must be True or False")
        allowed = (
            ("auto", "bernoulli", "made", "gaussian")
            if self._kind == "vae"
            else ("auto", "bernoulli", "gaussian")
        )
        if self.likelihood not in allowed:
            raise ParameterError(f"likelihood={self.likelihood!r}: use one of {', '.join(allowed)}")
        if self.scaling not in ("auto", *SCALINGS):
            raise ParameterError(f"scaling={self.scaling!r}: use one of {['auto', *SCALINGS]}")
        if not 0 <= self.dropout < 1:
            raise ParameterError(f"dropout={self.dropout!r}: must be in [0, 1)")
        if not 0 <= self.validation_fraction < 1:
            raise ParameterError(f"validation_fraction={self.validation_fraction!r}: must be in [0, 1)")
        if not self.lr > 0:
            raise ParameterError(f"lr={self.lr!r}: must be > 0")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ParameterError(f"lr_schedule={self.lr_schedule!r}: use constant or cosine")
        if self.precision not in ("float32", "bfloat16"):
            raise ParameterError(f"precision={self.precision!r}: use float32 or bfloat16")
        device = resolve_device(self.device)
        if self.precision == "bfloat16" and not torch.amp.is_autocast_available(device.type):
            raise ParameterError(
                f"precision='bfloat16': torch has no mixed precision on {device}; use float32"
            )

    def _train_config(self, seed: int) -> TrainConfig:
        extra = {}
        if self._kind == "vae":
            extra = dict(
                beta=self.beta,
                warmup_epochs=self.warmup_epochs,
                free_bits=self.free_bits,
                iwae_samples=self.iwae_samples,
            )
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_schedule=self.lr_schedule,
            precision=self.precision,
            weight_decay=self.weight_decay,
            patience=self.patience,
            clip_grad_norm=self.clip_grad_norm,
            seed=seed,
            checkpoint_every=self.checkpoint_every,
            time_limit=self.time_limit,
            **extra,
        )

    # -- fitting --------------------------------------------------------------------------
    def fit(
        self,
        X: ArrayLike,
        y: object = None,
        *,
        resume: bool = False,
        callbacks: Sequence[Callable[[int, dict], None]] = (),
        shard: Shard | None = None,
    ):
        """Learn the preprocessing and train the model on ``X`` (rows are examples).

        With ``checkpoint_dir`` set, the training state is saved there every
        ``checkpoint_every`` epochs, and ``resume=True`` continues from it. ``shard``: in a
        distributed run (:mod:`vaekit.distributed`), ``X`` is this process's share of the rows.
        """
        self._check_params()
        X, image_shape = as_rows(X, "X")
        matrix = as_matrix(X, "X")
        n = matrix.shape[0] if shard is None else shard.total
        _check_enough_rows(n, "X")
        low, high = float(matrix.min()), float(matrix.max())
        if shard is not None:
            low, high = (
                float(distributed.all_extreme([low], "min")[0]),
                float(distributed.all_extreme([high], "max")[0]),
            )
        scaling = self._choose_likelihood(low, high, images=image_shape is not None)[1]
        scaler = Scaler(scaling).fit(X, "X")
        if shard is not None:
            distributed.fit_scaler_globally(scaler, matrix)
        if image_shape is not None and self.scaling == "auto" and scaling == "minmax":
            # One range for every pixel (0..255 -> [0, 1]): per-pixel ranges would distort the pictures.
            scaler.center = [low] * matrix.shape[1]
            scaler.scale = [high - low if high - low > 1e-12 else 1.0] * matrix.shape[1]
        x = torch.from_numpy(scaler.transform(X, "X"))

        seed = self._seed(shard)
        held_out = np.zeros(n, dtype=bool)
        held_out[validation_rows(n, self.validation_fraction, seed)] = True
        val_idx, train_idx = np.flatnonzero(held_out), np.flatnonzero(~held_out)
        n_train, n_val = len(train_idx), len(val_idx)
        positions = None
        if shard is not None:  # this process's rows of the split, counted from its first row
            lo, hi = shard.start, shard.start + shard.rows
            mine = (train_idx >= lo) & (train_idx < hi)
            positions = torch.from_numpy(np.flatnonzero(mine))
            val_idx = val_idx[(val_idx >= lo) & (val_idx < hi)] - lo
            train_idx = train_idx[mine] - lo
        data_sum = float(matrix.astype(np.float64).sum())
        if shard is not None:
            data_sum = float(distributed.all_sum(data_sum))
        return self._train(
            x[train_idx],
            x[val_idx] if len(val_idx) else None,
            scaler=scaler,
            seed=seed,
            low=low,
            high=high,
            image_shape=image_shape,
            data=[n, matrix.shape[1], round(data_sum, 6)],
            n_train=n_train,
            n_val=n_val,
            positions=positions,
            resume=resume,
            callbacks=callbacks,
            feature_names=isinstance(X, pd.DataFrame),
        )

    def fit_file(
        self,
        path: str | os.PathLike,
        memory_budget: int | str = "1G",
        *,
        resume: bool = False,
        callbacks: Sequence[Callable[[int, dict], None]] = (),
    ):
        """Fit on the table in ``path`` (CSV, Parquet, NPY or NPZ). A file that fits in
        ``memory_budget`` is read whole and given to :meth:`fit`; a larger CSV, Parquet or NPY
        file is streamed (:mod:`vaekit.streaming`): statistics in one pass, then every epoch
        reads the file again and shuffles windows of rows as large as the budget allows."""
        from vaekit.io import errors_naming, read_table
        from vaekit.scoring import batch_rows, parse_size
        from vaekit.streaming import window_rows

        budget = parse_size(memory_budget)
        with errors_naming(path):
            rows = batch_rows(path, budget)
            if rows is None:
                return self.fit(read_table(path), resume=resume, callbacks=callbacks)
            window = window_rows(path, budget)
            logger.warning(
                "%s: larger than the memory budget of %s bytes; streamed, %d rows a read and %d "
                "training rows shuffled together",
                path,
                f"{budget:,}",
                rows,
                window,
            )
            return self._fit_streamed(path, rows, window, resume=resume, callbacks=callbacks)

    def _fit_streamed(
        self,
        path: str | os.PathLike,
        rows: int,
        window: int,
        *,
        resume: bool = False,
        callbacks: Sequence[Callable[[int, dict], None]] = (),
    ):
        """:meth:`fit_file`'s streamed path: reads of ``rows`` rows, ``window`` training rows
        shuffled together."""
        from vaekit.streaming import SAMPLE_ROWS, FileRows, summarize_file

        self._check_params()
        seed = self._seed(None)
        summary = summarize_file(
            path,
            rows,
            self.validation_fraction,
            seed,
            sample_rows=min(window, SAMPLE_ROWS),
            verbose=self.verbose,
        )
        _check_enough_rows(summary.n_rows, str(path))
        scaling = self._choose_likelihood(summary.low, summary.high)[1]
        scaler = summary.scaler(scaling)
        n_val = len(summary.validation)
        x_val = torch.from_numpy(scaler.transform(summary.validation, str(path))) if n_val else None
        n_train = summary.n_rows - n_val
        return self._train(
            FileRows(path, rows, window, scaler, summary.validation_places, n_train),
            x_val,
            scaler=scaler,
            seed=seed,
            low=summary.low,
            high=summary.high,
            image_shape=None,
            data=[summary.n_rows, len(summary.columns), round(summary.total, 6)],
            n_train=n_train,
            n_val=n_val,
            positions=None,
            resume=resume,
            callbacks=callbacks,
            feature_names=summary.named,
        )

    def _seed(self, shard: Shard | None) -> int:
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        return int(seed) if shard is None else distributed.broadcast_int(seed)

    def _train(
        self,
        x_train,
        x_val: torch.Tensor | None,
        *,
        scaler: Scaler,
        seed: int,
        low: float,
        high: float,
        image_shape: ImageShape | None,
        data: list,
        n_train: int,
        n_val: int,
        positions: torch.Tensor | None,
        resume: bool,
        callbacks: Sequence[Callable[[int, dict], None]],
        feature_names: bool,
    ):
        """Build the module and train it on the scaled rows (a tensor, or a streamed
        :class:`vaekit.streaming.FileRows`); set the fitted attributes."""
        architecture = self._choose_architecture(image_shape)
        likelihood, _ = self._choose_likelihood(low, high, images=image_shape is not None)
        if self.binarize and likelihood not in ("bernoulli", "made"):
            raise ParameterError(
                "binarize=True draws binary pixels for a Bernoulli likelihood; use likelihood='bernoulli' "
                "(or 'auto' on [0, 1] data), or binarize=False"
            )
        n_features = scaler.n_features
        config_hidden = [int(h) for h in self.hidden]
        made_neighbours = likelihood == "made" and image_shape is not None
        # the neighbour weights' c(z) is an affine map of the decoder's last hidden layer (as wide
        # as hidden[0]): a higher rank than its width adds nothing
        rank = min([NEIGHBOUR_RANK, *config_hidden[:1]]) if made_neighbours else 0
        config = ModelConfig(
            kind=self._kind,
            n_features=n_features,
            latent_dim=int(self.latent_dim),
            hidden=config_hidden,
            activation=self.activation,
            dropout=float(self.dropout),
            norm=self.norm,
            likelihood=likelihood,
            variance=getattr(self, "variance", "fixed"),
            custom_encoder=type(self.encoder).__name__ if self.encoder is not None else None,
            custom_decoder=type(self.decoder).__name__ if self.decoder is not None else None,
            architecture=architecture,
            image_shape=list(image_shape) if image_shape is not None else None,
            channels=[int(c) for c in (self.channels if self.channels is not None else DEFAULT_CHANNELS)],
            binarize=bool(self.binarize),
            prior=getattr(self, "prior", "normal"),
            prior_components=int(getattr(self, "prior_components", 100)),
            made_neighbours=made_neighbours,
            made_neighbour_rank=rank,
        )
        device = resolve_device(self.device)
        train_config = self._train_config(seed)
        fingerprint = {
            "model": config.to_dict(),
            "train": {k: v for k, v in train_config.__dict__.items() if k not in ("epochs", "time_limit")},
            "data": data,
            "validation_fraction": self.validation_fraction,
        }
        started = time.perf_counter()
        with seeded(seed, device):
            module = build_module(config, _fresh(self.encoder), _fresh(self.decoder))
            trainer = Trainer(
                module,
                train_config,
                device,
                checkpoint_dir=self.checkpoint_dir,
                verbose=self.verbose,
                callbacks=callbacks,
                fingerprint=fingerprint,
                train_positions=positions,
                n_train_total=n_train if positions is not None else None,
            )
            if resume:
                if self.checkpoint_dir is None:
                    raise ParameterError("resume=True needs checkpoint_dir, where the run saved its state")
                if Trainer.checkpoint_exists(self.checkpoint_dir):
                    trainer.load_checkpoint()
                else:
                    logger.warning("no checkpoint in %s: starting afresh", self.checkpoint_dir)
            if self.binarize and x_val is not None:  # one fixed binary draw to select the best epoch on
                x_val = torch.bernoulli(x_val, generator=torch.Generator().manual_seed(seed))
            history = trainer.fit(x_train, x_val)

        self.module_ = module.eval()
        self.scaler_ = scaler
        self.config_ = config
        self.device_ = device
        self.seed_ = seed
        self.history_ = history
        self.n_epochs_ = trainer.epoch
        self.best_epoch_ = trainer.best_epoch
        self.n_train_, self.n_val_ = n_train, n_val
        self.fit_seconds_ = time.perf_counter() - started
        self.n_features_in_ = n_features
        if feature_names:
            self.feature_names_in_ = np.asarray(scaler.columns, dtype=object)
        return self

    def _choose_architecture(self, image_shape: ImageShape | None) -> str:
        if self.architecture == "conv" and image_shape is None:
            raise ParameterError(
                "architecture='conv' needs images: give X as (n, height, width) or (n, channels, "
                "height, width) arrays or an ImageData (vaekit.images.load_images)"
            )
        if self.architecture == "auto":
            is_large_image = image_shape is not None and min(image_shape[1:]) >= CONV_MIN_SIDE
            return "conv" if is_large_image else "mlp"
        return self.architecture

    def _choose_likelihood(self, low: float, high: float, images: bool = False) -> tuple[str, str]:
        """The likelihood and scaling for data whose values run from ``low`` to ``high``."""
        in_unit = bool(low >= 0 and high <= 1)
        likelihood = self.likelihood
        if likelihood == "auto":
            likelihood = "bernoulli" if in_unit else "gaussian"
        scaling = self.scaling
        if scaling == "auto" and images:
            scaling = "none" if in_unit else "minmax"
        elif scaling == "auto":
            if likelihood in ("bernoulli", "made"):
                scaling = "none" if in_unit else "minmax"
            else:
                scaling = "standard"
        if likelihood in ("bernoulli", "made") and scaling in ("standard", "robust"):
            raise ParameterError(
                f"likelihood={likelihood!r} needs values in [0, 1]; use scaling='minmax' (or 'auto')"
            )
        if likelihood in ("bernoulli", "made") and scaling == "none" and not in_unit:
            raise DataError(
                f"X: values run from {low:g} to {high:g}, but "
                f"likelihood={likelihood!r} needs [0, 1]; use scaling='minmax' or 'auto'"
            )
        return likelihood, scaling

    # -- using a fitted model -------------------------------------------------------------
    @property
    def image_shape_(self) -> ImageShape | None:
        """(channels, height, width) of the images the model was trained on; None for a table."""
        shape = self.config_.image_shape
        return tuple(shape) if shape is not None else None

    def _scaled(self, X: ArrayLike | ImageData) -> torch.Tensor:
        check_is_fitted(self, "module_")
        X, image_shape = as_rows(X, "X")
        if image_shape is not None and self.image_shape_ is not None and image_shape != self.image_shape_:
            c, h, w = self.image_shape_
            raise DataError(
                f"X: images of shape {image_shape} (channels, height, width), but the model was "
                f"trained on {self.image_shape_}; give {c}-channel images of {h}x{w} pixels "
                f"(load_images(path, size=({h}, {w}), grayscale={c == 1}) makes them)"
            )
        return torch.from_numpy(self.scaler_.transform(X, "X")).to(self.device_)

    @torch.no_grad()
    def _map(self, fn: Callable[[torch.Tensor], object], x: torch.Tensor, batch_size: int = 4096):
        """Apply ``fn`` to ``x`` in batches, in eval mode; concatenate the (tuples of) results."""
        self.module_.eval()
        parts = [fn(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)]
        if isinstance(parts[0], tuple):
            return tuple(torch.cat(p).cpu().numpy() for p in zip(*parts, strict=True))
        return torch.cat(parts).cpu().numpy()

    def _to_data(self, scaled: np.ndarray) -> ArrayLike:
        """Rows of the model back in the data's units: a DataFrame, a matrix, or (n, c, h, w) images."""
        data = self.scaler_.inverse_transform(scaled)
        if self.image_shape_ is not None:
            return data.reshape(data.shape[0], *self.image_shape_)
        return self.scaler_.as_frame(data)

    def reconstruct(self, X: ArrayLike | ImageData) -> ArrayLike:
        """The model's reconstruction of each row (or image), in the data's units (deterministic)."""
        x = self._scaled(X)
        return self._to_data(self._map(self.module_.reconstruct, x))

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to the folder ``path`` (safetensors weights and JSON), atomically."""
        from vaekit.persistence import save_model

        save_model(self, path)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")


def _check_enough_rows(n: int, source: str) -> None:
    if n < 2:
        raise DataError(f"{source} has {n} row; training needs at least 2 rows (in practice hundreds)")


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str)


def _is_width(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


def _check_samples(k: object) -> None:
    if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
        raise ParameterError(f"k={k!r}: the number of samples of z per row must be a whole number >= 1")


def _fresh(module: nn.Module | None) -> nn.Module | None:
    """A custom module as given by the user is a setting: train a copy, never the original."""
    import copy

    return copy.deepcopy(module) if module is not None else None


class VAE(_AutoencoderBase):
    """Variational autoencoder on tabular data (numpy arrays or DataFrames) and images.

    >>> vae = VAE(latent_dim=2, epochs=20).fit(X)   # doctest: +SKIP
    >>> samples = vae.sample(100)                    # doctest: +SKIP

    Images are (n, height, width) or (n, channels, height, width) arrays, or the
    :class:`vaekit.images.ImageData` of :func:`vaekit.images.load_images`; ``reconstruct``,
    ``decode`` and ``sample`` then give (n, channels, height, width) arrays.

    Parameters
    ----------
    latent_dim : size K of z.
    hidden : widths of the MLP encoder's hidden layers; the decoder mirrors them.
    architecture : ``"mlp"``, ``"conv"`` (convolutions, for images), or ``"auto"``: conv for
        images at least 16 pixels high and wide, the MLP otherwise.
    channels : widths of the convolutions of a conv model, one per halving of the image (the
        last repeats if there are more halvings); None is (32, 64, 128, 256).
    likelihood : ``"bernoulli"`` for binary or [0, 1] data, ``"gaussian"`` for real values,
        ``"auto"`` picks Bernoulli when every value is in [0, 1]. For grey images, Bernoulli is
        the usual continuous cross-entropy; Gaussian models the intensities as real values.
        ``"made"`` (MLP only) is an autoregressive Bernoulli decoder: each value also depends on
        the values before it, given z (a MADE as wide as ``hidden[0]``); on images, also through
        tables of what the nearest earlier pixels show, and weights of those pixels that depend
        on z. It models binarized images much better than independent pixels, and samples one
        value at a time.
    binarize : dynamic binarization for a Bernoulli likelihood: every training pass draws binary
        pixels x ~ Bernoulli(x) afresh from the [0, 1] data (the validation data are binarized
        once). Scoring methods use the data as given.
    variance : Gaussian variance learned per ``"feature"`` or per example by the ``"decoder"``.
    prior, prior_components : p(z): ``"normal"`` is N(0, I); ``"mixture"`` learns a mixture of
        ``prior_components`` diagonal Gaussians with the rest of the model, so that the prior can
        follow where the codes lie (the KL is then estimated with the sampled z). ``sample`` draws
        from it. On Fashion-MNIST it gains about a nat of test log-likelihood at the same budget.
    scaling : ``"standard"``, ``"minmax"``, ``"none"``; ``"auto"`` is standard for Gaussian data,
        and minmax (or none) for Bernoulli. For images ``"auto"`` keeps [0, 1] pixels as they are
        and maps any other range onto [0, 1] with one range for all pixels.
    beta, warmup_epochs, free_bits : the KL weight, its linear warm-up, and the free bits
        (nats per latent unit) of the training objective. Reported losses are always the true ELBO.
    iwae_samples : 1 trains on the ELBO; k > 1 on the importance-weighted bound with k samples
        (Burda et al. 2015), tighter than the ELBO, at k times the decoder's cost.
    validation_fraction, patience : the held-out share for early stopping (the best epoch's
        weights are kept; at most 50,000 rows, none below 20) and how many epochs without
        improvement end training.
    encoder, decoder : optional custom ``nn.Module``s; the encoder outputs 2 * latent_dim values
        (mean, log-variance), the decoder the likelihood's parameters.
    lr, lr_schedule : Adam's learning rate, kept ``"constant"`` or annealed to 0 on a
        ``"cosine"`` over the epochs, or over ``time_limit`` when that ends training first.
    precision : ``"bfloat16"`` trains with mixed precision: the forward pass's matrix products
        in bfloat16 (on CPUs with AVX-512 BF16 or AMX, and recent GPUs, 1.5-2x the images per
        second of a whole training step), the weights, their updates and every reported loss in
        float32; scoring and evaluation stay in float32. ``"float32"`` (default) throughout. A
        device without bfloat16 units (a CPU with AVX2 alone) trains in float32, with a warning:
        emulated bfloat16 products are dozens of times slower.
    time_limit : seconds of training after which ``fit`` stops (within an epoch), keeping the
        best weights so far.
    random_state : an integer makes training reproducible on the CPU.
    checkpoint_dir, checkpoint_every : where and how often the training state is saved, so that
        ``fit(X, resume=True)`` continues a killed run.

    Attributes
    ----------
    module_ : the trained :class:`vaekit.models.VAEModule`.
    scaler_ : the preprocessing learned from the data.
    image_shape_ : (channels, height, width) of the training images, or None for a table.
    history_ : one record per epoch with the training and validation losses (nats per example).
    """

    _kind = "vae"

    def __init__(
        self,
        *,
        latent_dim: int = 8,
        hidden: Sequence[int] = (256, 128),
        architecture: str = "auto",
        channels: Sequence[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str = "none",
        likelihood: str = "auto",
        binarize: bool = False,
        variance: str = "feature",
        prior: str = "normal",
        prior_components: int = 100,
        scaling: str = "auto",
        beta: float = 1.0,
        warmup_epochs: int = 0,
        free_bits: float = 0.0,
        iwae_samples: int = 1,
        epochs: int = 100,
        batch_size: int = 128,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        precision: str = "float32",
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        clip_grad_norm: float | None = 10.0,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        time_limit: float | None = None,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.architecture = architecture
        self.channels = channels
        self.activation = activation
        self.dropout = dropout
        self.norm = norm
        self.likelihood = likelihood
        self.binarize = binarize
        self.variance = variance
        self.prior = prior
        self.prior_components = prior_components
        self.scaling = scaling
        self.beta = beta
        self.warmup_epochs = warmup_epochs
        self.free_bits = free_bits
        self.iwae_samples = iwae_samples
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.precision = precision
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.time_limit = time_limit
        self.encoder = encoder
        self.decoder = decoder

    def _check_params(self) -> None:
        super()._check_params()
        if self.variance not in ("feature", "decoder"):
            raise ParameterError(f"variance={self.variance!r}: use feature or decoder")
        if self.beta < 0 or self.free_bits < 0 or self.warmup_epochs < 0:
            raise ParameterError("beta, free_bits and warmup_epochs must be >= 0")
        if self.prior not in ("normal", "mixture"):
            raise ParameterError(f"prior={self.prior!r}: use normal or mixture")
        c = self.prior_components
        if not isinstance(c, int | np.integer) or isinstance(c, bool) or c < 1:
            raise ParameterError(f"prior_components={c!r}: must be a whole number >= 1")
        if self.prior == "mixture" and self.free_bits > 0:
            raise ParameterError(
                "free_bits limits the KL of each latent unit, which a mixture prior does not split into: "
                "use prior='normal' with free_bits, or free_bits=0"
            )
        k = self.iwae_samples
        if not isinstance(k, int | np.integer) or isinstance(k, bool) or k < 1:
            raise ParameterError(f"iwae_samples={k!r}: must be a whole number >= 1 (1 = the ELBO)")
        if k > 1 and (self.beta != 1 or self.free_bits > 0 or self.warmup_epochs > 0):
            raise ParameterError(
                f"iwae_samples={k} trains on the importance-weighted bound, which has no KL weight: "
                "leave beta=1, free_bits=0 and warmup_epochs=0"
            )

    def _log_det(self) -> float:
        """Change of units from the scaled data back to the user's, for a Gaussian density."""
        return self.scaler_.log_det_jacobian() if self.config_.likelihood == "gaussian" else 0.0

    def encode(self, X: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """The mean and the log-variance of q(z|x), each (n_rows, latent_dim)."""
        x = self._scaled(X)
        return self._map(self.module_.encode, x)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """The latent representation: the posterior mean E_q[z], (n_rows, latent_dim)."""
        return self.encode(X)[0]

    def decode(self, Z: np.ndarray) -> ArrayLike:
        """The mean of p(x|z) for each latent row of ``Z``, in the data's units."""
        check_is_fitted(self, "module_")
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self.device_)
        if z.ndim != 2 or z.shape[1] != self.config_.latent_dim:
            raise DataError(f"Z: expected shape (n, {self.config_.latent_dim}), got {tuple(z.shape)}")
        mean = self._map(lambda zb: self.module_.likelihood.mean(self.module_.decode(zb)), z)
        return self._to_data(mean)

    def sample(self, n: int = 1, *, mean: bool = False, random_state: int | None = None) -> ArrayLike:
        """Generate ``n`` rows: z ~ p(z), then x ~ p(x|z) (its mean with ``mean=True``)."""
        check_is_fitted(self, "module_")
        if not isinstance(n, int | np.integer) or n < 1:
            raise ParameterError(f"n={n!r}: the number of samples must be a whole number >= 1")
        with seeded(random_state, self.device_), torch.no_grad():
            self.module_.eval()
            x = self.module_.sample(int(n), mean=mean).cpu().numpy()
        return self._to_data(x)

    def elbo_terms(self, X: ArrayLike, k: int = 1, random_state: int | None = 0) -> dict[str, np.ndarray]:
        """Per row, in nats: ``elbo``, ``reconstruction`` (-E_q[log p(x|z)], k samples) and ``kl``."""
        _check_samples(k)
        x = self._scaled(X)
        with seeded(random_state, self.device_):
            log_px, kl = self._map(lambda xb: self.module_.elbo_terms(xb, k), x)
        reconstruction = -(log_px + self._log_det())
        return {"elbo": -(reconstruction + kl), "reconstruction": reconstruction, "kl": kl}

    def elbo(self, X: ArrayLike, k: int = 1, random_state: int | None = 0) -> np.ndarray:
        """The evidence lower bound of each row in nats, with k samples of z (higher is better).

        For Gaussian data it is a bound on the log-density of the rows in their own units.
        """
        return self.elbo_terms(X, k, random_state)["elbo"]

    def log_likelihood(
        self, X: ArrayLike, k: int = 100, random_state: int | None = 0, chunk: int = 100
    ) -> np.ndarray:
        """Importance-weighted estimate of log p(x) per row with k samples (Burda et al. 2015)."""
        _check_samples(k)
        x = self._scaled(X)
        batch = max(1, 2**16 // max(min(k, chunk), 1))
        with seeded(random_state, self.device_):
            ll = self._map(lambda xb: self.module_.iwae_log_likelihood(xb, k, chunk), x, batch)
        return ll + self._log_det()

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """The ELBO of each row (scikit-learn's density-estimator name for it)."""
        return self.elbo(X)

    def score(self, X: ArrayLike, y: object = None) -> float:
        """The mean ELBO per row, in nats."""
        return float(np.mean(self.elbo(X)))

    def active_units(self, X: ArrayLike, threshold: float = 0.01) -> int:
        """How many latent dimensions the model uses: those whose posterior mean E_q[z_j] varies
        across the rows of ``X`` with variance above ``threshold`` (Burda et al. 2015)."""
        mu = self.transform(X)
        return int((mu.var(axis=0) > threshold).sum()) if len(mu) > 1 else 0

    def evaluate(
        self, X: ArrayLike, k: int = 1, random_state: int | None = 0, iwae_k: int = 0
    ) -> dict[str, float]:
        """Mean ``neg_elbo``, ``reconstruction`` and ``kl`` in nats per example, the -ELBO in
        bits per dimension, the number of ``active_units`` and the row count; with ``iwae_k``,
        also ``nll_iwae``, the importance-weighted estimate of -log p(x) with that many samples,
        in nats and bits per dimension."""
        terms = self.elbo_terms(X, k, random_state)
        per_dim = math.log(2) * self.n_features_in_
        out = {
            "neg_elbo": float(-terms["elbo"].mean()),
            "reconstruction": float(terms["reconstruction"].mean()),
            "kl": float(terms["kl"].mean()),
            "bits_per_dim": float(-terms["elbo"].mean() / per_dim),
            "active_units": self.active_units(X),
            "n_rows": int(terms["kl"].shape[0]),
        }
        if iwae_k:
            nll = float(-self.log_likelihood(X, k=iwae_k, random_state=random_state).mean())
            out.update(nll_iwae=nll, nll_iwae_bits_per_dim=nll / per_dim, iwae_k=int(iwae_k))
        return out


class Autoencoder(_AutoencoderBase):
    """Deterministic autoencoder on tabular data and images: the same settings as :class:`VAE`
    less the probabilistic ones (``binarize`` stays: it binarizes the training batches for the
    cross-entropy). Its loss is the squared error (``likelihood="gaussian"``) or the binary
    cross-entropy (``"bernoulli"``), summed over features, per example. ``precision`` as for
    :class:`VAE`."""

    _kind = "ae"

    def __init__(
        self,
        *,
        latent_dim: int = 8,
        hidden: Sequence[int] = (256, 128),
        architecture: str = "auto",
        channels: Sequence[int] | None = None,
        activation: str = "relu",
        dropout: float = 0.0,
        norm: str = "none",
        likelihood: str = "auto",
        binarize: bool = False,
        scaling: str = "auto",
        epochs: int = 100,
        batch_size: int = 128,
        lr: float = 1e-3,
        lr_schedule: str = "constant",
        precision: str = "float32",
        weight_decay: float = 0.0,
        validation_fraction: float = 0.1,
        patience: int | None = 10,
        clip_grad_norm: float | None = 10.0,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 1,
        time_limit: float | None = None,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
    ):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.architecture = architecture
        self.channels = channels
        self.activation = activation
        self.dropout = dropout
        self.norm = norm
        self.likelihood = likelihood
        self.binarize = binarize
        self.scaling = scaling
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.precision = precision
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.time_limit = time_limit
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, X: ArrayLike) -> np.ndarray:
        """The code z = g(x) of each row, (n_rows, latent_dim)."""
        x = self._scaled(X)
        return self._map(self.module_.encode, x)

    transform = encode

    def decode(self, Z: np.ndarray) -> ArrayLike:
        """f(z) for each latent row of ``Z``, in the data's units."""
        check_is_fitted(self, "module_")
        z = torch.as_tensor(np.asarray(Z, dtype=np.float32), device=self.device_)
        if z.ndim != 2 or z.shape[1] != self.config_.latent_dim:
            raise DataError(f"Z: expected shape (n, {self.config_.latent_dim}), got {tuple(z.shape)}")
        out = self._map(self.module_.decode, z)
        if self.module_.loss == "bce":
            out = 1.0 / (1.0 + np.exp(-out))
        return self._to_data(out)

    def reconstruction_error(self, X: ArrayLike) -> np.ndarray:
        """Per row: the training loss (on the scaled data) of its reconstruction."""
        x = self._scaled(X)
        return self._map(self.module_.reconstruction_error, x)

    def evaluate(self, X: ArrayLike) -> dict[str, float]:
        """Mean ``reconstruction`` error per example (the AE has no ELBO: those keys are None)."""
        error = self.reconstruction_error(X)
        return {
            "neg_elbo": None,
            "reconstruction": float(error.mean()),
            "kl": None,
            "n_rows": int(error.shape[0]),
        }
