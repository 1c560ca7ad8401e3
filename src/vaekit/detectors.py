"""Anomaly detectors built from autoencoders, in PyOD's vocabulary.

``fit(X)`` learns from data that may hold garbage, ``decision_function(X)`` scores rows (higher =
more anomalous), ``predict(X)`` flags them (1 = anomaly) at ``threshold_``; ``decision_scores_``,
``threshold_`` and ``labels_`` describe the training data. ``feature_scores(X)`` gives each
column's share of a row's score, so a user can see which fields made a row anomalous.

- :class:`AutoencoderDetector`: the reconstruction error (Sakurada & Yairi 2014).
- :class:`VAEDetector`: the negative ELBO, or the reconstruction probability (An & Cho 2015).
- :class:`RobustAutoencoderDetector`: X = L_D + S (Zhou & Paffenroth 2017), l1 or l2,1 penalty.
- :class:`AnomalyDetector`: the recommended default; an ensemble of autoencoders trained to
  ignore the worst-reconstructed rows, with no setting that must be chosen.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from statistics import NormalDist
from typing import ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted
from torch import nn

from vaekit.cells import (
    COMMON,
    LEVELS,
    PILE,
    PILE_OFF,
    category_rarity,
    cell_deviations,
    copy_rarities,
    copy_rarity,
    edge_rarity,
    fit_categories,
    fit_cells,
    fit_copies,
    fit_edges,
    fit_grids,
    fit_levels,
    fit_warp,
    fits,
    grid_rarity,
    largest_deviation,
    level_rarity,
    off_category_rarities,
    off_grid_rarities,
    off_level_rarities,
    pile_z,
    piled_at,
    piles,
    predicted_values,
    unwarp,
    warp,
)
from vaekit.context import (
    GRID,
    ContextClassifier,
    column_log_probs,
    context_rarity,
    fit_tail,
    held_levels,
    hidden_inputs,
    information,
    informed_columns,
    level_log_probs,
    log_shares,
    observed_level,
    observed_log_probs,
    row_folds,
    slot_offset,
    tail_mass,
)
from vaekit.corruption import GarbageClassifier, corrupt, garbage_inputs
from vaekit.errors import DataError, ModelFileError, ParameterError, TrainingError
from vaekit.estimators import VAE, ArrayLike, Autoencoder, as_rows
from vaekit.io import as_matrix
from vaekit.preprocessing import Scaler
from vaekit.spectrum import MIN_SIDE, spectrum_profile
from vaekit.thresholds import (
    Z,
    auto_fence,
    auto_threshold,
    check_contamination,
    fence_z,
    threshold_for,
    threshold_for_false_positive_rate,
)

EPS = 1e-12
# the edge, grid, level, copy and category signs are rarities already
# (:func:`vaekit.cells.edge_rarity`, :func:`vaekit.cells.grid_rarity`,
# :func:`vaekit.cells.level_rarity`, :func:`vaekit.cells.copy_rarity`,
# :func:`vaekit.cells.category_rarity`); their fence is that of a normal sample's "auto" fence,
# -log of the share of rows beyond Z standard deviations
CELL_RARITIES = ("edge", "grid", "level", "copy")  # those of the cell model
RARITIES = (*CELL_RARITIES, "category", "context")
RARITY_FENCE = -math.log(NormalDist().cdf(-Z))
EDGE_ROWS = 1000  # rows without gaps a detector needs for the edge sign (GARBAGE_ROWS: hunting garbage)
TABLE_SIGNS = ("cells", "garbage")  # the signs of the cell model that are not rarities
GARBAGE_ROWS = 50  # rows a detector needs for the garbage sign
GROUP_ROWS = 20  # at least, the rows of a group whose errors are judged among themselves
TRIM_AFTER = 0.3  # the share of a model's training steps before the trim (see AnomalyDetector._optimise)
# where float64 work is done: Apple's MPS has no float64, and the k-nearest searches are small
CPU64 = ("cpu", torch.float64)


def auto_architecture(n_features: int) -> tuple[tuple[int, ...], int]:
    """Hidden widths and latent size for ``n_features`` columns when the user sets none."""
    width = int(min(256, max(16, 2 ** math.ceil(math.log2(max(n_features, 2))))))
    latent = int(min(32, max(2, round(math.sqrt(n_features)))))
    return (width, max(width // 2, latent)), latent


def auto_epochs(n_rows: int, batch_size: int, steps: int = 3000, lo: int = 20, hi: int = 300) -> int:
    """Enough epochs for about ``steps`` optimizer steps: small data needs more passes."""
    batches = max(1, math.ceil(0.9 * n_rows / batch_size))
    return int(min(hi, max(lo, math.ceil(steps / batches))))


@torch.no_grad()
def _batched(fn, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])


class BaseDetector(BaseEstimator):
    """Thresholds, labels, probabilities and saving, shared by every detector.

    A subclass sets ``models_`` (its fitted :class:`VAE` or :class:`Autoencoder` models) in
    ``_fit`` and implements ``_scores`` and ``_feature_errors``; one that keeps its models
    otherwise names them in ``_fitted`` and overrides ``_write_members`` and ``_read_members``.
    """

    _fitted = "models_"

    def fit(self, X: ArrayLike, y: object = None):
        """Fit on ``X`` (labels are never used) and set the threshold from ``contamination``.

        ``X`` is a table (rows are examples) or images, (n, height, width) or (n, channels,
        height, width) arrays or an :class:`vaekit.images.ImageData`, scored as rows of pixels.
        """
        check_contamination(self.contamination)
        X, self.image_shape_ = as_rows(X, "X")
        n_rows, n_columns = self._validate(X)
        if n_rows < 2:
            raise DataError(f"X has {n_rows} row; a detector needs at least 2 rows")
        self.n_features_in_ = n_columns
        self.n_rows_ = n_rows
        scores = self._fit(X)  # a detector that scored its training rows on the way returns them
        if scores is None:
            return self.set_threshold(X, self.contamination)
        return self._threshold_from(scores, self.contamination)

    def _validate(self, X: ArrayLike) -> tuple[int, int]:
        """(rows, columns) of a training table of numbers, or a clear error."""
        return as_matrix(X, "X").shape

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The anomaly score of each row: higher is more anomalous."""
        check_is_fitted(self, "threshold_")
        return self._scores(self._rows(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """1 for rows scored above ``threshold_`` (anomalies), 0 for the others."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def predict_proba(self, X: ArrayLike, method: str = "linear") -> np.ndarray:
        """(n, 2): the probability of being normal and anomalous, as in PyOD.

        ``linear`` rescales the scores by the range of the training scores; ``unify`` maps the
        standardised score through the Gaussian error function (Kriegel et al. 2011).
        """
        scores = self.decision_function(X)
        train = self.decision_scores_
        if method == "linear":
            span = max(train.max() - train.min(), EPS)
            p = np.clip((scores - train.min()) / span, 0, 1)
        elif method == "unify":
            from scipy.special import erf

            p = np.clip(erf((scores - train.mean()) / (max(train.std(), EPS) * np.sqrt(2))), 0, 1)
        else:
            raise ParameterError(f"method={method!r}: use linear or unify")
        return np.column_stack([1 - p, p])

    def feature_scores(self, X: ArrayLike) -> np.ndarray:
        """(n, n_features): each column's share of the row's error; every row sums to 1."""
        check_is_fitted(self, "threshold_")
        errors = self._feature_errors(self._rows(X))
        return errors / np.maximum(errors.sum(axis=1, keepdims=True), EPS)

    def error_map(self, X: ArrayLike) -> np.ndarray:
        """(n, channels, height, width): each pixel's reconstruction error, for a detector fitted
        on images; bright where the image differs from what the model expects."""
        check_is_fitted(self, "threshold_")
        if self.image_shape_ is None:
            raise ParameterError(
                "error_map is for detectors fitted on images; for tables use feature_scores(X)"
            )
        rows = self._rows(X)
        return self._pixel_errors(rows).reshape(len(rows), *self.image_shape_)

    def _pixel_errors(self, rows: np.ndarray) -> np.ndarray:
        return self._feature_errors(rows)

    def _rows(self, X: ArrayLike) -> ArrayLike:
        """Images become rows of pixels, checked against the training images' shape."""
        rows, shape = as_rows(X, "X")
        expected = getattr(self, "image_shape_", None)
        if shape is not None and shape != expected:
            trained_on = f"images of shape {expected}" if expected else "a table"
            raise DataError(f"X: images of shape {shape}, but the detector was fitted on {trained_on}")
        return rows

    def set_threshold(self, X: ArrayLike, contamination: float | str = "auto"):
        """Set ``threshold_`` from the scores of ``X`` (which become ``decision_scores_``) and a
        contamination (a fraction, or ``"auto"``)."""
        check_is_fitted(self, self._fitted)
        return self._threshold_from(self._scores(self._rows(X)), contamination)

    @property
    def scores_are_logs(self) -> bool:
        """Whether the scores are on a log scale already (for ``contamination="auto"``)."""
        return False

    def auto_threshold(self, scores: np.ndarray) -> float:
        """The threshold of ``contamination="auto"`` for these scores (see :mod:`vaekit.thresholds`)."""
        return auto_threshold(scores, self.scores_are_logs)

    @property
    def auto_rule(self) -> str:
        """How ``contamination="auto"`` sets the threshold, in words (for reports)."""
        return "median + 3 robust standard deviations of the log-scaled scores, estimated without labels"

    def threshold_of(self, scores: np.ndarray, contamination: float | str) -> float:
        """The threshold for these scores: the ``contamination`` share of the highest, or with
        ``"auto"`` this detector's rule (:meth:`auto_threshold`)."""
        check_contamination(contamination)
        return (
            self.auto_threshold(scores) if contamination == "auto" else threshold_for(scores, contamination)
        )

    def _threshold_from(self, scores: np.ndarray, contamination: float | str):
        self.decision_scores_ = scores
        self.threshold_ = self.threshold_of(scores, contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    def calibrate(self, X_clean: ArrayLike, false_positive_rate: float = 0.01):
        """Set ``threshold_`` so that ``false_positive_rate`` of rows known to be clean are flagged."""
        check_is_fitted(self, "threshold_")
        scores = self._scores(self._rows(X_clean))
        self.threshold_ = threshold_for_false_positive_rate(scores, false_positive_rate)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        return self

    @property
    def scaler(self) -> Scaler:
        """The schema (columns, in order) and scaling of the data the detector takes."""
        check_is_fitted(self, "models_")
        return self.models_[0].scaler_

    @property
    def feature_names(self) -> list[str]:
        return list(self.scaler.columns)

    def top_features(self, X: ArrayLike, n: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` columns that contribute most to each row's score: (names, shares), (rows, n) each."""
        return self._top_of(self.feature_scores(X), n)

    def why(self, X: ArrayLike) -> list[str]:
        """For each row, in words, what set its score ("" when there is nothing more to say than
        the score: a detector with one sign of trouble)."""
        return [""] * len(self._rows(X))

    def _top_of(self, shares: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`top_features` from the rows' :meth:`feature_scores`."""
        order = np.argsort(-shares, axis=1, kind="stable")[:, :n]
        names = np.asarray(self.feature_names, dtype=object)[order]
        return names, np.take_along_axis(shares, order, axis=1)

    # -- saving ---------------------------------------------------------------------------
    def _state(self) -> dict:
        return {}

    def _set_state(self, state: dict) -> None:
        pass

    def _write_members(self, folder: Path) -> dict:
        from vaekit.persistence import save_model

        for i, model in enumerate(self.models_):
            save_model(model, folder / f"member_{i}")
        return {"n_members": len(self.models_)}

    def _read_members(self, path: Path, config: dict) -> None:
        from vaekit.persistence import load

        self.models_ = [load(path / f"member_{i}") for i in range(int(config["n_members"]))]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the detector to the folder ``path``: its members as model folders, plus JSON."""
        from vaekit.persistence import FORMAT, FORMAT_VERSION, _version, write_folder

        check_is_fitted(self, "threshold_")

        def write(tmp: Path) -> None:
            members = self._write_members(tmp)
            config = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "vaekit_version": _version(),
                "estimator": type(self).__name__,
                "params": _jsonable(self.get_params()),
                **members,
                "detector": {
                    "threshold": self.threshold_,
                    "decision_scores": self.decision_scores_.tolist(),
                    "n_features_in": self.n_features_in_,
                    "image_shape": None if self.image_shape_ is None else list(self.image_shape_),
                    **self._state(),
                },
            }
            (tmp / "config.json").write_text(json.dumps(config, indent=1) + "\n")

        return write_folder(path, write)


def _jsonable(params: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items() if k != "verbose"}


def load_detector(path: Path, config: dict) -> BaseDetector:
    """Rebuild a detector saved by :meth:`BaseDetector.save` (called by :func:`vaekit.load`)."""
    cls = DETECTORS[config["estimator"]]
    try:
        params = {k: tuple(v) if k == "hidden" and v is not None else v for k, v in config["params"].items()}
        detector = cls(**params)
        state = config["detector"]
        detector.threshold_ = float(state["threshold"])
        detector.decision_scores_ = np.asarray(state["decision_scores"], dtype=np.float64)
        detector.n_features_in_ = int(state["n_features_in"])
        shape = state.get("image_shape")
        detector.image_shape_ = None if shape is None else tuple(int(s) for s in shape)
        detector._read_members(path, config)
        detector._set_state(state)
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: config.json lacks or mangles a field ({type(exc).__name__}: {exc}); "
            "retrain or restore the detector"
        ) from None
    detector.labels_ = (detector.decision_scores_ > detector.threshold_).astype(int)
    return detector


# -- the single-model detectors -----------------------------------------------------------------


class _SingleModelDetector(BaseDetector):
    """One model; ``epochs=None`` trains for about ``_steps`` optimizer steps (20 to 300 epochs),
    with early stopping on a 10% validation split."""

    _steps = 3000

    def _model_settings(self, n_rows: int, n_features: int, seed: int | None) -> dict:
        hidden, latent = auto_architecture(n_features)
        return dict(
            latent_dim=self.latent_dim or latent,
            hidden=tuple(self.hidden) if self.hidden is not None else hidden,
            epochs=self.epochs or auto_epochs(n_rows, self.batch_size, self._steps),
            batch_size=self.batch_size,
            lr=self.lr,
            dropout=self.dropout,
            patience=self.patience,
            likelihood="gaussian",
            scaling="robust",
            device=self.device,
            random_state=seed,
            verbose=self.verbose,
        )

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        return int(self.random_state)


def _squared_errors(model: Autoencoder | VAE, X: ArrayLike) -> np.ndarray:
    """(n, features): squared error of the model's reconstruction, on the model's scaled data."""
    x = torch.from_numpy(model.scaler_.transform(X, "X")).to(model.device_)
    model.module_.eval()
    recon = _batched(model.module_.reconstruct, x)
    return ((x - recon) ** 2).cpu().numpy().astype(np.float64)


class AutoencoderDetector(_SingleModelDetector):
    """Scores a row by the squared error of its autoencoder reconstruction (robustly scaled columns).

    ``latent_dim`` and ``hidden`` default to sizes chosen from the number of columns.
    """

    def __init__(
        self,
        *,
        contamination: float | str = 0.1,
        latent_dim: int | None = None,
        hidden: tuple[int, ...] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 3e-3,
        dropout: float = 0.0,
        patience: int | None = 10,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
    ):
        self.contamination = contamination
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.dropout = dropout
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X: ArrayLike) -> None:
        settings = self._model_settings(self.n_rows_, self.n_features_in_, self._seed())
        self.models_ = [Autoencoder(**settings).fit(X)]

    def _feature_errors(self, X: ArrayLike) -> np.ndarray:
        return _squared_errors(self.models_[0], X)

    def _scores(self, X: ArrayLike) -> np.ndarray:
        return self._feature_errors(X).sum(axis=1)


class VAEDetector(_SingleModelDetector):
    """Scores a row by a VAE: ``score="elbo"`` is the negative ELBO; ``"reconstruction_probability"``
    is An & Cho's (2015) -log (1/L) sum_l p(x | z_l), z_l ~ q(z|x), computed as a log-mean-exp.

    Both use the same ``n_samples`` draws of the noise for every row, from a generator seeded by
    ``random_state``: the same row always gets the same score, in any batch. ``prior`` and
    ``prior_components``: the VAE's p(z), as for :class:`vaekit.VAE` (``"mixture"``: a learned
    mixture of Gaussians, for rows that fall into clusters).
    """

    def __init__(
        self,
        *,
        contamination: float | str = 0.1,
        score: str = "elbo",
        n_samples: int = 10,
        latent_dim: int | None = None,
        hidden: tuple[int, ...] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 3e-3,
        dropout: float = 0.0,
        patience: int | None = 10,
        prior: str = "normal",
        prior_components: int = 100,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
    ):
        self.contamination = contamination
        self.score = score
        self.n_samples = n_samples
        self.prior = prior
        self.prior_components = prior_components
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.dropout = dropout
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X: ArrayLike) -> None:
        if self.score not in ("elbo", "reconstruction_probability"):
            raise ParameterError(f"score={self.score!r}: use elbo or reconstruction_probability")
        if not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ParameterError(f"n_samples={self.n_samples!r}: must be a whole number >= 1")
        self.seed_ = self._seed()
        settings = self._model_settings(self.n_rows_, self.n_features_in_, self.seed_)
        settings.update(prior=self.prior, prior_components=self.prior_components)
        self.models_ = [VAE(**settings).fit(X)]

    def _state(self) -> dict:
        return {"seed": self.seed_}

    def _set_state(self, state: dict) -> None:
        self.seed_ = state["seed"]

    def _scores(self, X: ArrayLike) -> np.ndarray:
        vae = self.models_[0]
        x = torch.from_numpy(vae.scaler_.transform(X, "X")).to(vae.device_)
        module, n = vae.module_.eval(), self.n_samples
        # The same draws eps_1..eps_n for every row: a row's score depends on that row alone,
        # not on the batch or the place it is scored in.
        generator = torch.Generator().manual_seed(int(self.seed_))
        eps = torch.randn((n, 1, module.latent_dim), generator=generator).to(vae.device_)

        def neg_elbo(xb: torch.Tensor) -> torch.Tensor:
            log_px, kl = module.elbo_terms(xb, n, eps=eps)
            return kl - log_px

        def neg_log_mean_prob(xb: torch.Tensor) -> torch.Tensor:
            mu, logvar = module.encode(xb)
            log_px = module._log_px(xb, module.reparameterize(mu, logvar, eps))  # (n, batch)
            return -(torch.logsumexp(log_px, dim=0) - math.log(n))

        scores = _batched(neg_elbo if self.score == "elbo" else neg_log_mean_prob, x)
        return scores.cpu().numpy().astype(np.float64) - vae._log_det()

    def _feature_errors(self, X: ArrayLike) -> np.ndarray:
        """Squared residuals at z = E_q[z], in units of the decoder's standard deviation."""
        vae = self.models_[0]
        x = torch.from_numpy(vae.scaler_.transform(X, "X")).to(vae.device_)
        module = vae.module_.eval()

        def standardized(xb: torch.Tensor) -> torch.Tensor:
            mean, logvar = module.likelihood.mean_logvar(module.decode(module.encode(xb)[0]))
            return (xb - mean) ** 2 * torch.exp(-logvar)

        return _batched(standardized, x).cpu().numpy().astype(np.float64)


def _robust_std(values: np.ndarray) -> float:
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _shrink(residual: np.ndarray, lam: float, penalty: str) -> np.ndarray:
    """The proximal step of ``lam * ||S||``: element-wise soft thresholding for l1, row-wise
    group shrinkage for l2,1."""
    if penalty == "l1":
        return np.sign(residual) * np.maximum(np.abs(residual) - lam, 0.0)
    norms = np.linalg.norm(residual, axis=1, keepdims=True)
    return residual * np.maximum(1.0 - lam / np.maximum(norms, EPS), 0.0)


class RobustAutoencoderDetector(_SingleModelDetector):
    """Robust deep autoencoder (Zhou & Paffenroth, KDD 2017): X = L_D + S.

    Alternates: train the autoencoder on L = X - S, then set S to the proximal shrinkage of the
    residual X - f(g(L)). ``penalty="l21"`` shrinks whole rows (outlying rows), ``"l1"`` single
    entries (noisy cells). ``lam`` is the shrinkage in robustly scaled units; ``"auto"`` sets it
    at each step from the residuals themselves: 4 robust standard deviations of the entries, and
    no less than one robust standard deviation of the column (l1), or the median row norm plus
    4 robust standard deviations of the norms (l2,1), so only residuals well outside the bulk
    go to S. After fitting, ``S_`` holds S in the data's
    units. New rows are scored by the reconstruction error of the autoencoder trained on L.
    """

    _steps = 1000  # per alternation

    def __init__(
        self,
        *,
        contamination: float | str = 0.1,
        penalty: str = "l21",
        lam: float | str = "auto",
        n_iter: int = 5,
        latent_dim: int | None = None,
        hidden: tuple[int, ...] | None = None,
        epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 3e-3,
        dropout: float = 0.0,
        patience: int | None = 10,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
    ):
        self.contamination = contamination
        self.penalty = penalty
        self.lam = lam
        self.n_iter = n_iter
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.dropout = dropout
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit(self, X: ArrayLike) -> None:
        if self.penalty not in ("l1", "l21"):
            raise ParameterError(f"penalty={self.penalty!r}: use l1 (entries) or l21 (rows)")
        if self.lam != "auto" and not (isinstance(self.lam, int | float) and self.lam >= 0):
            raise ParameterError(f"lam={self.lam!r}: give 'auto' or a number >= 0")
        if not isinstance(self.n_iter, int) or self.n_iter < 1:
            raise ParameterError(f"n_iter={self.n_iter!r}: must be a whole number >= 1")
        scaler = Scaler("robust").fit(X, "X")
        x = scaler.transform(X, "X").astype(np.float64)
        settings = {
            **self._model_settings(self.n_rows_, self.n_features_in_, self._seed()),
            "scaling": "none",
        }
        sparse = np.zeros_like(x)
        for _ in range(self.n_iter):
            model = Autoencoder(**settings).fit((x - sparse).astype(np.float32))
            residual = x - np.asarray(model.reconstruct((x - sparse).astype(np.float32)), dtype=np.float64)
            lam = self._auto_lam(residual) if self.lam == "auto" else float(self.lam)
            sparse = _shrink(residual, lam, self.penalty)
        self.lam_ = lam
        self.models_ = [model]
        self.robust_scaler_ = scaler
        self.S_ = sparse * np.asarray(scaler.scale)

    def _auto_lam(self, residual: np.ndarray) -> float:
        """l1: 4 robust standard deviations (1.4826 * MAD) of the residual entries, and at least 1,
        a robust standard deviation of a column; l2,1: the median row norm plus 4 robust
        standard deviations of the row norms."""
        if self.penalty == "l1":
            return max(4 * _robust_std(residual), 1.0)
        norms = np.linalg.norm(residual, axis=1)
        return float(np.median(norms)) + 4 * _robust_std(norms)

    @property
    def scaler(self) -> Scaler:
        check_is_fitted(self, "models_")
        return self.robust_scaler_

    def _scaled(self, X: ArrayLike) -> np.ndarray:
        return self.robust_scaler_.transform(X, "X")

    def _feature_errors(self, X: ArrayLike) -> np.ndarray:
        return _squared_errors(self.models_[0], self._scaled(X))

    def _scores(self, X: ArrayLike) -> np.ndarray:
        return self._feature_errors(X).sum(axis=1)

    def _state(self) -> dict:
        return {"lam": self.lam_, "robust_scaler": self.robust_scaler_.to_dict()}

    def _set_state(self, state: dict) -> None:
        self.lam_ = state["lam"]
        self.robust_scaler_ = Scaler.from_dict(state["robust_scaler"])


# -- the recommended default ---------------------------------------------------------------------


class AnomalyDetector(BaseDetector):
    """vaekit's recommended detector: nothing to choose but, optionally, the contamination.

    An ensemble of ``n_models`` small autoencoders (different random starts) trained together
    (:class:`vaekit.models.ensemble.EnsembleAutoencoder`) for ``steps`` optimizer steps on
    robustly scaled columns. After the first 30% of the steps, each member leaves out of its loss
    the ``trim`` share of each batch it reconstructs worst, so garbage in the training data does not
    teach it to reconstruct garbage. A member's per-column squared errors (cross-entropies for
    categories) are divided by that column's median training error, so that a column that is
    always hard to reconstruct does not drown the others. Images are scaled as a whole (one mean
    and standard deviation for every pixel), and ``normalize_columns="auto"`` divides a pixel's
    error by its median training error plus the image-wide mean of these medians (see
    ``_pixel_scale``); ``True``: by the median alone, ``False``: errors as they are.

    Two signs of trouble come from the autoencoders, each the mean over members of a value
    standardised by the median and interquartile range of the member's training rows: the mean
    normalised error over the row's observed columns, and how far the row's code lies from the
    training codes: the distance to its ``NEIGHBOURS``-th nearest among at most
    ``REFERENCE_CODES`` codes of distinct training rows that the member reconstructs best, in
    the code space whitened by their Ledoit-Wolf covariance; for images, the logs of these. A row
    simple enough to reconstruct (a blank image, a small cluster of odd rows that the members have
    learnt to reconstruct too, rows between two clusters) can still have a code unlike those of
    the other rows. The reference holds each distinct row once, so that a heap of identical
    garbage rows (all zeros, a default record) does not make its own neighbourhood dense. For
    images the error counts both ways: an image reconstructed far better than the training images
    is far simpler than them (beyond ``SIMPLER_MARGIN`` interquartile ranges below the median).
    A row's score is the largest of its signs.

    Tables have a third sign, how far a row lies from the training rows nearest to it: the mean
    distance to its ``NEIGHBOURS`` nearest among ``INPUT_REFERENCE`` distinct training rows, in the
    scaled columns (a field in the wrong unit or with its decimal point shifted, a sentinel, a row
    of noise moves a row away from every good row, whether or not the autoencoders see its fields
    disagree). The reference rows are kept, scaled, in the detector's file. And a fourth, how far
    a row's number fields lie from what the rest of the row predicts (:mod:`vaekit.cells`: a
    robust Gaussian model of the encoded columns, the skewed or long-tailed ones bent about
    logarithmically first, its mean, precision and bend kept in the file; a
    shifted decimal point or two fields swapped often stay within their columns' ranges, and a
    row's distance spreads one bad field over all of them). And a fifth, with ``EDGE_ROWS`` rows or
    more (``GARBAGE_ROWS`` with the garbage classifier), how rare it is for a row to have a number
    field as far beyond its column's edges as its farthest one, on the same bent scale
    (:func:`vaekit.cells.edge_rarity`: a column's tail is taken as exponential beyond the edge, and a
    column whose values pile up at a floor or come in steps, a count or a flag, has no room beyond it:
    a sentinel of -999 or 0 where values start at 1 lies many spacings out, while the largest amounts
    of a long tail do not; it is a rarity already, -log of a share of rows). And a sixth, when a
    number column's values lie on a grid (:func:`vaekit.cells.fit_grids`: counts, readings to two
    decimals, levels of a scale, at least 98% of them on steps of one size, however scaled), how rare
    a row's field off its grid is (:func:`vaekit.cells.grid_rarity`: a rarity too, from the column's
    share of values off its grid, ten times rarer for each tenfold finer grid the value needs, a
    number on none of them, noise or a value from another column, far rarer still). And a seventh,
    when a number column without a grid has its values from a few (:func:`vaekit.cells.fit_levels`: at
    most 30 values, each held by 0.2% of the rows, that hold 98% of them), how rare a row's field that
    is none of them is (:func:`vaekit.cells.level_rarity`: from the column's share of values off its
    levels, a value it has not held taken as from elsewhere unless it lies on the levels' even steps).
    And an eighth, when two number fields of a row hold the same value, one that neither column holds
    often (:func:`vaekit.cells.fit_copies`: a value held by under 1% of a column's rows), how rare it
    is for a row to have two fields agreeing so (:func:`vaekit.cells.copy_rarity`: -log of the share
    of the training rows with an agreement at least as rare, a pair of columns that never agree so
    taken as agreeing in one row): a value copied into the next field, which may lie well within its
    range. And a ninth, when the table has category columns, how rare a row's rarest category is
    (:func:`vaekit.cells.category_rarity`:
    -log of the share of the rows whose level in that column is held by at most as many rows): a
    misspelt or foreign value that the other fields say nothing of. And a tenth, when the rest of a
    row tells something of a category column's level (tables of ``CONTEXT_ROWS`` rows or more),
    how rare a row's category field is given the rest of the row (:mod:`vaekit.context`: a small
    classifier predicts each such column's level from the row with that column hidden; -log of the
    share of rows expected to hold a level as unlikely, by the classifier's own probabilities on
    the rows it did not learn from): a valid level that is wrong for its row, a reading marked
    LOW_BATTERY at full charge, a plan billed another plan's fee. The other signs' tails differ
    from table to table (a column whose good values have a long tail makes the errors' tail long),
    so on tables each sign is put on the scale of its rarity among the training rows under every
    sign's "auto" fence, -log of the share of them with a sign at least as large (beyond the top
    ``TAIL`` of them, an exponential tail on the log scale the sign's fence is found on, where a
    long tail of good values is about exponential, its scale from the median excess fitted as one
    cut at that fence: these rows end there), and the score is the largest. "auto" cuts at the
    highest of the signs' fences on that scale, but no higher than the rarity of a normal sample's
    fence (median + 3 standard deviations: 0.13% of rows) raised for the number of signs a row can
    fail (:func:`vaekit.thresholds.fence_z`).

    Images have a third sign, how they are viewed. Two small convolutional classifiers
    (:class:`vaekit.models.views.ViewClassifier`) learn from the training images which way up they
    are (which quarter turn was applied to one) and how closely they are framed (an image, or its
    centre blown up); an image whose views they misjudge is turned, cropped or blown up, or from
    another collection, which the autoencoders hardly see (a turned image is reconstructed about as
    well as an upright one). The sign is the log odds that the turn classifier misjudges the
    image's views (of its mean cross-entropy), mapped so that its own "auto" fence falls on the
    other signs' fence. And a fourth, how an image's framing profile lies among the training
    images' (the zoom classifier's judgement of an image's views is part of it): the zoom
    classifier's log odds that each view is the blown-up one, for the image and its centre blown
    up, each turned every quarter turn that keeps its shape; the sign is the log of the mean
    distance to the ``NEIGHBOURS`` nearest of the profiles of ``PROFILE_REFERENCE`` distinct
    training images judged good (kept in the detector's file), mapped so that its median and its
    ``FRAMING_QUANTILE`` among them fall on the other signs'. An image blown up from a smaller one
    (a thumbnail, a crop, a picture from another collection) has a profile unlike the training
    images' even when the classifier does not misjudge it. And a fifth, made the same way from
    an image's spectrum profile (:mod:`vaekit.spectrum`: the shares of its power in bands of
    spatial frequency), which needs no classifier: an image blown up, blurred, noisy or taken
    and stored otherwise spreads its detail over the scales unlike the collection's images,
    whatever it shows; mapped as the view sign is.
    ``orientation`` (the turns) and ``framing`` (the zoom): ``"auto"`` keeps a classifier when it
    learnt to tell the views of most training images apart (a collection with no upright, such as
    textures or views from above, has nothing to learn), ``False`` leaves it out (images that may
    be turned, or framed any way, as they are), ``True`` always keeps it. ``sharpness``: the
    spectrum sign; ``"auto"`` for images at least ``vaekit.spectrum.MIN_SIDE`` pixels on a side,
    ``False`` leaves it out (images blown up, blurred or sharpened are fine), ``True`` always.
    ``garbage_classifier=True`` adds one more sign on tables of ``GARBAGE_ROWS`` rows or more and at
    most ``GARBAGE_FEATURES`` number columns: a classifier's log odds that a row is one of the copies
    of the training rows spoilt the ways pipelines spoil data, a field in another unit or with its
    decimal point shifted, two fields swapped, a sentinel, a field copied into another, noise
    (:mod:`vaekit.corruption`); put on its rarity scale as the others, its fence not among those
    that set the cut. Each training row's sign is that of the member that did not learn from it
    (``decision_scores_``); a new row's the members' mean. ``vaekit clean`` turns it on, for such
    garbage is its job; it is off by default, for on the real anomalies of ADBench it lowered the
    mean AUROC by 0.011 (0.784 -> 0.773) and made a fit about seven times longer (0.6 s -> 4.5 s).
    A detector so hunting garbage also judges the edges of tables from ``GARBAGE_ROWS`` rows, not
    ``EDGE_ROWS``: a field times 1,000 in a table of a few hundred rows is found by its edge sign;
    and it takes a value off a column's pile (a count that 3% of the rows hold, a rare yes:
    :func:`vaekit.cells.piled_at`) as rare as it is, where a normal model of the spike put every
    row holding a count far out, with the garbage; the rows that share such a value, when the
    autoencoders reconstruct them worse than the rest as a group (a rare yes they leave out), are
    judged among themselves too (``error_groups_``, :meth:`_fit_error_groups`). An anomaly hunter
    keeps such rows far out: the rare values of ADBench's small sets are often its anomalies
    (taking them as rare as they are, the mean AUPRC of the 11 sets under 1,000 rows fell from
    0.457 to 0.408). And it leaves out the
    codes' distance sign: on the garbage benchmark's 30 tables it found alone 1 of their 3,908
    garbage rows, and set the score of a fifth of the good rows removed at 2% (unusual good rows,
    such as a few benign tumours of breastw that look malignant).
    ``bend_long_tails=True`` (tables): the autoencoders and the nearest-rows sign see each
    long-tailed or skewed number column bent as the cell model sees it, about logarithmically.
    Robustly scaled, the largest tenth of an amount spread over several powers of ten (a price, an
    income, a count of visits) lies tens of interquartile ranges out, where the autoencoders do not
    learn it and few rows lie near it: on a table with one lognormal column (sigma 2 or 3) beside
    five others, 4-9% of the good rows were flagged for it, 0.1-0.4% with the bend. ``vaekit
    clean`` turns it on, for a large amount is not garbage; it is off by default, for the real
    anomalies of ADBench often are such values (mean AUROC 0.784 -> 0.768 with it: donors and
    annthyroid lose most). The price on the garbage benchmark's tables: a field times 1000 in such
    a column may lie within its range, and recall at 2% of good rows removed is 0.734 against 0.739.
    ``contamination="auto"``: see :meth:`auto_threshold`.
    ``feature_scores`` gives how much the score drops when a column is set to a typical value (and,
    for what no single column explains, how much a typical row's rises with the row's value).

    ``steps="auto"``: 120 for tables (at most about ``WORK`` row-columns for very wide ones); for
    images, 30 epochs, at least 120 and at most 600 steps.
    """

    _fitted = "module_"

    def __init__(
        self,
        *,
        contamination: float | str = "auto",
        n_models: int = 5,
        trim: float = 0.1,
        normalize_columns: bool | str = "auto",
        orientation: bool | str = "auto",
        framing: bool | str = "auto",
        sharpness: bool | str = "auto",
        garbage_classifier: bool = False,
        bend_long_tails: bool = False,
        steps: int | str = "auto",
        batch_size: int = 256,
        lr: float = 2e-2,
        device: str = "auto",
        random_state: int | None = None,
        verbose: int = 0,
    ):
        self.contamination = contamination
        self.n_models = n_models
        self.trim = trim
        self.normalize_columns = normalize_columns
        self.orientation = orientation
        self.framing = framing
        self.sharpness = sharpness
        self.garbage_classifier = garbage_classifier
        self.bend_long_tails = bend_long_tails
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _check_params(self) -> None:
        for name in ("n_models", "steps", "batch_size"):
            value = getattr(self, name)
            if name == "steps" and value == "auto":
                continue
            if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
                also = " or 'auto'" if name == "steps" else ""
                raise ParameterError(f"{name}={value!r}: must be a whole number >= 1{also}")
        if not 0 <= self.trim < 0.5:
            raise ParameterError(f"trim={self.trim!r}: must be in [0, 0.5)")
        if not self.lr > 0:
            raise ParameterError(f"lr={self.lr!r}: must be > 0")
        for name in ("normalize_columns", "orientation", "framing", "sharpness"):
            if getattr(self, name) not in (True, False, "auto"):
                raise ParameterError(f"{name}={getattr(self, name)!r}: use True, False or 'auto'")
        for name in ("garbage_classifier", "bend_long_tails"):
            if getattr(self, name) not in (True, False):
                raise ParameterError(f"{name}={getattr(self, name)!r}: use True or False")

    @staticmethod
    def ensemble_dims(n_features: int) -> list[int]:
        """Layer widths for ``n_features`` encoded columns: two hidden layers of at most 64 and 32 units."""
        width = int(min(64, max(16, 2 ** math.ceil(math.log2(max(n_features, 2))))))
        latent = int(min(32, max(2, round(math.sqrt(n_features)))))
        hidden = max(width // 2, latent)
        return [n_features, width, hidden, latent, hidden, width, n_features]

    def _n_steps(self, n_features: int, batch: int, n_rows: int) -> int:
        if self.image_shape_ is not None:
            if self.steps != "auto":
                return int(self.steps)
            # pixels are many correlated columns: they take longer to learn, but a few hundred
            # images seen a thousand times each are learnt by heart, garbage included
            epochs = self.EPOCHS_IMAGES * n_rows // batch
            return int(min(self.STEPS_IMAGES, max(self.STEPS_TABLES, epochs)))
        steps = self.STEPS_TABLES if self.steps == "auto" else int(self.steps)
        # Very wide tables get fewer steps, so that a fit costs at most about WORK row-columns.
        return int(max(20, min(steps, self.WORK // (batch * n_features))))

    STEPS_TABLES = 120
    STEPS_IMAGES = 600
    EPOCHS_IMAGES = 30
    WORK = 10_000_000
    INPUT_DROPOUT = 0.1

    def _validate(self, X: ArrayLike) -> tuple[int, int]:
        from vaekit.tabular import _as_frame

        return _as_frame(X, "X").shape  # types are checked column by column by the encoder

    def _fit(self, X: ArrayLike) -> np.ndarray:
        from vaekit.models.ensemble import EnsembleAutoencoder
        from vaekit.tabular import TableEncoder
        from vaekit.training import resolve_device

        self._check_params()
        seed = 0 if self.random_state is None else int(self.random_state)
        device = resolve_device(self.device)
        # tables: typed, encoded and robustly scaled columns; images: every pixel, robustly scaled
        # (a pixel that is rarely inked then stands out when it is)
        self.encoder_ = TableEncoder("robust", images=self.image_shape_ is not None).fit(X, "X")
        self.dropped_columns_ = dict(self.encoder_.dropped)
        self._layout(device)
        x, mask = self._encoded(X, warn=False, device=device)
        n, width = x.shape
        self.input_bend_ = self._fit_input_bend(x, mask)
        generator = torch.Generator().manual_seed(seed)
        module = EnsembleAutoencoder(self.n_models, self.ensemble_dims(width), generator).to(device)
        batch = min(self.batch_size, n)
        steps = self._n_steps(width, batch, n)
        self.module_ = module

        # the rows and the missing-value fill as the autoencoders see them, bent once, not each step
        x_seen, missing_seen = self._bent(x), self._bent(self._missing[None])[0]

        def batch_errors(step: int) -> torch.Tensor:
            rows = torch.randint(n, (batch,), generator=generator).to(device)
            xb, mb = x_seen[rows], None if mask is None else mask[rows]
            xin = xb
            if self.image_shape_ is None and self.INPUT_DROPOUT > 0:
                # Hide a few cells behind the missing-value fill, so that a gap at scoring
                # time does not throw off the reconstruction of the other columns.
                hidden = torch.rand(batch, self._column_of.shape[0], generator=generator) < self.INPUT_DROPOUT
                hidden = hidden.to(device)[:, self._owner_of_feature]  # each cell of a hidden column
                xin = torch.where(hidden, missing_seen, xb)
            return self._observed_mean(self._column_errors(module(xin), xb), mb)  # (members, batch)

        with _small_model_threads(device, module):
            losses = self._optimise(module, self.lr, steps, batch_errors, "training")
        module.eval()
        self.steps_ = steps
        self.history_ = {"loss (trimmed mean of the column errors)": losses}
        n_columns = len(self.encoder_.columns)
        self.column_scale_ = torch.ones(self.n_models, n_columns, device=device)
        normalize = self.normalize_columns
        if self.image_shape_ is not None:
            if normalize == "auto":
                self.column_scale_ = self._pixel_scale(x, generator)
            elif normalize:
                self.column_scale_ = (_masked_median(self._all_column_errors(x, None), None) + 1e-6).float()
        elif normalize:
            errors = self._all_column_errors(x, mask)
            scale = (
                self._piled_scales(x, mask, errors)
                if self.garbage_classifier
                else _masked_median(errors, mask)
            )
            self.column_scale_ = (scale.to(*CPU64) + 1e-6).float().to(device)
        self.views_ = {}
        if self.image_shape_ is not None:
            for kind, wanted in (("turn", self.orientation), ("zoom", self.framing)):
                if wanted is not False:
                    self.views_[kind] = self._fit_view(kind, x, generator, self.VIEW_STEPS * steps, seed)
        return self._fit_scores(x, mask)

    VIEW_LR = 3e-3
    VIEW_STEPS = 2  # times the autoencoders' steps: the classifiers are cheap, and surer with them

    def _fit_view(self, kind: str, x: torch.Tensor, generator: torch.Generator, steps: int, seed: int):
        """A :class:`~vaekit.models.views.ViewClassifier` of ``kind`` trained for ``steps`` steps
        to tell the views of the training images apart; after the first 30% of the steps, the
        ``trim`` share of each batch it judges worst is left out, as for the autoencoders."""
        from vaekit.models.views import ViewClassifier

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            classifier = ViewClassifier(self.image_shape_, kind).to(x.device)
        batch = min(self.batch_size, len(x))

        def batch_losses(step: int) -> torch.Tensor:
            rows = torch.randint(len(x), (batch,), generator=generator).to(x.device)
            seen, views = classifier.training_batch(x[rows], generator)
            return nn.functional.cross_entropy(classifier(seen), views, reduction="none")

        losses = self._optimise(classifier, self.VIEW_LR, steps, batch_losses, f"{kind} classifier")
        self.history_[f"{kind} classifier loss (trimmed mean cross-entropy, nats)"] = losses
        return classifier.eval()

    def _optimise(
        self,
        module: nn.Module,
        lr: float,
        steps: int,
        batch_losses,
        desc: str,
        trim: float | None = None,
        untrimmed: int = 0,
    ) -> list[float]:
        """``steps`` steps of Adam with a one-cycle schedule on ``batch_losses(step)``, (..., batch)
        losses of a batch: after the first ``TRIM_AFTER`` of the steps, the ``trim`` share (the
        detector's, unless given) of the batch with the largest losses is left out, so that garbage
        in the training data is not learnt, all of it from past the first ``untrimmed`` losses of
        the batch. Returns the losses of the steps."""
        trim = self.trim if trim is None else trim
        device = next(module.parameters()).device
        optimizer = torch.optim.Adam(module.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))
        # OneCycleLR divides by zero when its warm-up ends at the first step (0.1 * steps == 1)
        warm_up = 0.1 if steps != 10 else 0.15
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, lr, total_steps=steps, pct_start=warm_up)
        losses = []
        with _progress(steps, self.verbose, desc) as bar:
            for step in range(steps):
                values = batch_losses(step)
                drop = int(trim * values.shape[-1])
                if drop and step >= TRIM_AFTER * steps:
                    kept, judged = values[..., :untrimmed], values[..., untrimmed:]
                    judged = judged.topk(judged.shape[-1] - drop, dim=-1, largest=False).values
                    values = torch.cat([kept, judged], dim=-1)
                loss = values.mean()
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"{desc}: the loss became {loss.item()} at step {step + 1}; the data may hold "
                        "huge values: check it, or lower lr"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.detach())
                bar.update(1)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.4g}")
        return torch.stack(losses).tolist()

    def _view_losses(
        self,
        x: torch.Tensor,
        profiles: torch.Tensor | None = None,
        kinds: list[str] | None = None,
        chunk: int = 4096,
    ) -> dict[str, np.ndarray]:
        """Per view classifier (of ``kinds``, default all), (rows,) the mean cross-entropy of each
        row's views; the zoom classifier's read off the rows' framing ``profiles`` when given."""
        losses = {}
        views = getattr(self, "views_", {})
        with torch.no_grad():
            for kind, c in views.items():
                if kinds is not None and kind not in kinds:
                    continue
                if kind == "zoom" and profiles is not None:
                    loss = c.zoom_loss(profiles)
                else:
                    loss = torch.cat([c.view_loss(x[i : i + chunk]) for i in range(0, len(x), chunk)])
                losses[kind] = loss.double().cpu().numpy()
        return losses

    def _view_odds(self, x: torch.Tensor, profiles: torch.Tensor | None = None) -> np.ndarray | None:
        """(rows,): the log odds that the view classifiers of the view sign (``view_sign_``: the
        turn classifier; both classifiers in files of older versions) misjudge a row's views,
        log(exp(loss) - 1) of their mean cross-entropy; None without them."""
        kinds = getattr(self, "view_sign_", list(getattr(self, "views_", {})))
        losses = self._view_losses(x, profiles, kinds) if kinds else {}
        return _log_odds(np.mean(list(losses.values()), axis=0)) if losses else None

    def _pixel_scale(self, x: torch.Tensor, generator: torch.Generator, most: int = 10_000) -> torch.Tensor:
        """(members, pixels): each pixel's median training error plus the image-wide mean of
        these. Divided by it, a pixel that is always hard to reconstruct (an edge that moves)
        weighs less, and one that is always dark still counts when it lights up, without being
        blown up by its near-zero typical error (dividing by the median alone, faint ink in a
        rarely inked pixel of a good digit became a huge error). From at most ``most`` images."""
        if len(x) > most:
            x = x[torch.randperm(len(x), generator=generator)[:most].to(x.device)]
        medians = _masked_median(self._all_column_errors(x, None), None).to(*CPU64)
        return (medians + medians.mean(dim=1, keepdim=True) + 1e-6).float().to(x.device)

    # -- the columns' errors ---------------------------------------------------------------
    def _layout(self, device: torch.device) -> None:
        """Index tensors mapping the encoded matrix onto the kept columns (see :mod:`vaekit.tabular`)."""
        numeric, owner, groups = [], [], []
        for j, (column, where) in enumerate(zip(self.encoder_.columns, self.encoder_.slices(), strict=True)):
            if column.kind == "categorical":
                groups.append((j, where.start, where.stop))
            else:
                numeric += list(range(where.start, where.stop))
                owner += [j] * (where.stop - where.start)
        self._numeric = torch.tensor(numeric, dtype=torch.long, device=device)
        self._owner = torch.tensor(owner, dtype=torch.long, device=device)
        self._groups = groups
        self._category_slots = [(start, stop) for _, start, stop in groups]
        self._typical = torch.from_numpy(self.encoder_.typical_row()).to(device)
        self._missing = torch.from_numpy(self.encoder_.missing_row()).to(device)
        column_of = torch.zeros(len(self.encoder_.columns), self.encoder_.width, dtype=torch.bool)
        for j, where in enumerate(self.encoder_.slices()):
            column_of[j, where] = True
        self._column_of = column_of.to(device)
        self._owner_of_feature = column_of.float().argmax(dim=0).to(device)  # encoded -> kept column
        # the fields the cells sign judges: those of number and date columns, not one-hot levels
        self._cell_targets = torch.zeros(self.encoder_.width, dtype=torch.float64)
        self._cell_targets[numeric] = 1.0
        # each number column's (scale, center) at its feature, NaN elsewhere: the cell model bends them
        self._number_units = torch.full((2, self.encoder_.width), float("nan"), dtype=torch.float64)
        for column, where in zip(self.encoder_.columns, self.encoder_.slices(), strict=True):
            if column.kind == "numeric":
                self._number_units[:, where.start] = torch.tensor([column.scale, column.center])
        self._number_targets = (~self._number_units[0].isnan()).double()  # the grid sign's fields
        self._number_features = torch.nonzero(self._number_targets > 0)[:, 0]

    def _column_errors(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(members, rows, kept columns): squared errors of numbers (summed over a date's
        features), cross-entropy in nats of categories (the outputs of a category are logits)."""
        if self.encoder_.simple:
            return (out - x) ** 2
        errors = out.new_zeros(*out.shape[:-1], len(self.encoder_.columns))
        if len(self._numeric):
            squared = (out[..., self._numeric] - x[..., self._numeric]) ** 2
            errors = errors.index_add(-1, self._owner, squared)
        for j, start, stop in self._groups:
            log_p = torch.log_softmax(out[..., start:stop], dim=-1)
            errors[..., j] = -(log_p * x[..., start:stop]).sum(dim=-1)
        return errors

    @staticmethod
    def _observed_mean(errors: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The mean over the observed columns of each row: a row with gaps is judged on what it has."""
        if mask is None:
            return errors.mean(dim=-1)
        return (errors * mask).sum(dim=-1) / mask.sum(dim=-1).clamp_min(1)

    def _fit_input_bend(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
        """With ``bend_long_tails``, the bend of the long-tailed or skewed number columns of a
        table that the autoencoders and the nearest-rows sign see (the cell model's,
        :func:`vaekit.cells.fit_warp`, fitted on the rows without gaps unless gaps are common);
        None for images, without it, or when no column needs it."""
        if (
            not self.bend_long_tails
            or self.image_shape_ is not None
            or not bool((~self._number_units[0].isnan()).any())
        ):
            return None
        bend = fit_warp(_reference_pool(x, mask).to(*CPU64), *self._number_units, self.garbage_classifier)
        return bend if bool(bend[4].any()) else None

    def _bent(self, x: torch.Tensor) -> torch.Tensor:
        """Encoded rows as the autoencoders and the nearest-rows sign see them (``input_bend_``)."""
        bend = getattr(self, "input_bend_", None)
        return x if bend is None else warp(x.to(*CPU64), bend).to(x.device, x.dtype)

    def _unbent(self, x: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`_bent`: the autoencoders' outputs back to encoded rows."""
        bend = getattr(self, "input_bend_", None)
        return x if bend is None else unwarp(x.to(*CPU64), bend).to(x.device, x.dtype)

    def _encoded(
        self, X: ArrayLike, warn: bool = True, device=None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        matrix, mask = self.encoder_.transform(X, "X", warn=warn)
        device = device or self.column_scale_.device
        return (
            torch.from_numpy(matrix).to(device),
            None if mask is None else torch.from_numpy(mask).to(device),
        )

    def _in_chunks(self, x: torch.Tensor, mask: torch.Tensor | None, reduce, chunk: int = 4096) -> np.ndarray:
        """``reduce(errors, mask)`` of the members' column errors, (members, rows, columns), a
        chunk of rows at a time; the results are joined on their second axis."""
        parts = []
        with torch.no_grad(), _small_model_threads(x.device, self.module_):
            for i in range(0, len(x), chunk):
                xb, mb = self._bent(x[i : i + chunk]), None if mask is None else mask[i : i + chunk]
                errors = self._column_errors(self.module_(xb), xb)
                if mb is not None:
                    errors = errors * mb
                parts.append(reduce(errors, mb))
        return np.concatenate([part.cpu().numpy().astype(np.float64) for part in parts], axis=1)

    def _all_column_errors(
        self, x: torch.Tensor, mask: torch.Tensor | None, chunk: int = 4096
    ) -> torch.Tensor:
        """(members, rows, kept columns), float32: every row's column errors (masked), filled in
        place a chunk of rows at a time."""
        out = torch.empty(self.n_models, len(x), len(self.encoder_.columns), device=x.device)
        with torch.no_grad(), _small_model_threads(x.device, self.module_):
            for i in range(0, len(x), chunk):
                xb = self._bent(x[i : i + chunk])
                errors = self._column_errors(self.module_(xb), xb)
                out[:, i : i + chunk] = errors if mask is None else errors * mask[i : i + chunk]
        return out

    def _piled_scales(self, x: torch.Tensor, mask: torch.Tensor | None, errors: torch.Tensor) -> torch.Tensor:
        """(members, columns) float64: each table column's typical training error (of the
        column ``errors``, (members, rows, columns)), by which its errors are divided when hunting
        garbage: its median, or for a column piled at one value (half of its rows or more: a count
        mostly 0, a rare yes; :func:`vaekit.cells.piles`), the error at which the median error of
        its rows off the pile is as large, beside a normal column's median error, as a normal
        column's error as rare as they are (:func:`vaekit.cells.pile_z`), if that is larger. The
        median of such a column is about 0: divided by it, the few rows holding a count stood out
        from every other, and the autoencoders' least wobble on a column nearly always 0 swamped
        the other columns' errors (a pile of 99% of the rows too, unlike in the cell model)."""
        scale = _masked_median(errors, mask).to(*CPU64)
        x = x.to(*CPU64)
        # (rows, columns): whether any feature of a row's column is off its pile
        off_features = (x != piles(x)[0]).double()
        off = torch.zeros(len(x), len(self.encoder_.columns), dtype=torch.float64)
        off = off.index_add_(1, self._owner_of_feature.cpu(), off_features) > 0
        observed = torch.ones_like(off) if mask is None else mask.cpu() > 0
        share = 1 - (off & observed).sum(dim=0) / observed.sum(dim=0).clamp_min(1)
        normal_median = NormalDist().inv_cdf(0.75)
        for j in torch.nonzero((share >= PILE) & (share < 1))[:, 0].tolist():
            rows = torch.nonzero(off[:, j] & observed[:, j])[:, 0].to(errors.device)
            typical = errors[:, rows, j].median(dim=1).values.to(*CPU64)
            matched = typical * (normal_median / pile_z(float(share[j]))) ** 2
            scale[:, j] = torch.maximum(scale[:, j], matched)
        return scale

    def _member_rows(self, errors: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(members, rows): each member's mean of the column-normalised errors over observed columns."""
        return self._observed_mean(errors / self.column_scale_[:, None, :], mask)

    # -- what users call ---------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        check_is_fitted(self, "encoder_")
        return self.encoder_.names

    @property
    def scaler(self):
        """The schema of the data the detector takes (``select`` checks a table against it)."""
        check_is_fitted(self, "encoder_")
        return self.encoder_

    def encode(self, X: ArrayLike) -> np.ndarray:
        """(n, latent): the rows' codes in the first member's latent space (for pictures)."""
        check_is_fitted(self, "threshold_")
        x, _ = self._encoded(self._rows(X))
        with torch.no_grad(), _small_model_threads(x.device, self.module_):
            codes = [self.module_.encode(self._bent(x[i : i + 4096]))[0] for i in range(0, len(x), 4096)]
        return torch.cat(codes).cpu().numpy()

    def reconstruct(self, X: ArrayLike) -> np.ndarray | pd.DataFrame:
        """The members' mean reconstruction in the data's units: images come back as images,
        tables as a DataFrame of the kept columns (categories as their most likely level)."""
        check_is_fitted(self, "threshold_")
        rows = self._rows(X)
        x, _ = self._encoded(rows)
        with torch.no_grad(), _small_model_threads(x.device, self.module_):
            parts = []
            for i in range(0, len(x), 4096):
                out = self.module_(self._bent(x[i : i + 4096]))
                for _, start, stop in self._groups:
                    out[..., start:stop] = torch.softmax(out[..., start:stop], dim=-1)
                parts.append(self._unbent(out.mean(dim=0)))
        decoded = self.encoder_.inverse(torch.cat(parts).cpu().numpy())
        if self.image_shape_ is not None:
            return decoded.to_numpy(dtype=np.float32).reshape(len(rows), *self.image_shape_)
        return decoded

    def _row_scores(self, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray:
        return np.concatenate(
            [np.maximum.reduce(list(signs.values())) for signs in self._chunk_signs(x, mask)]
        )

    def _chunk_signs(
        self, x: torch.Tensor, mask: torch.Tensor | None, chunk: int = 65_536
    ) -> Iterator[dict[str, np.ndarray]]:
        """:meth:`_signs` of a chunk of rows at a time: the parts of millions of rows need not be
        held at once."""
        for i in range(0, len(x), chunk):
            xb, mb = x[i : i + chunk], None if mask is None else mask[i : i + chunk]
            parts, near = self._parts(xb, mb), self._neighbour_distances(xb, mb)
            profiles = self._profiles(xb)
            # the zoom classifier's judgement of the upright views is part of the framing profiles
            view_odds = self._view_odds(xb, profiles.get("framing"))
            table, rarities = self._cells(xb, mb)
            rarities |= self._categories(xb) | self._context(xb, mb)
            groups = self._error_groups_of(xb, mb)
            yield self._signs(
                *parts, view_odds, near, self._profile_distances(profiles), table, rarities, groups
            )

    @property
    def scores_are_logs(self) -> bool:
        return getattr(self, "image_shape_", None) is not None

    # -- the score: how badly a row is reconstructed, and where its code lies ---------------
    # A row can be easy to reconstruct and still be unlike the training rows: a blank image, a
    # small cluster of odd rows that the members have learnt to reconstruct too, a row between
    # two clusters. Its code, though, lies far from the codes of the other rows. Two standardised
    # signs of trouble come from the autoencoders, each the mean over members of the member's
    # reconstruction error or of the distance from the row's code to its nearest training codes
    # (the k-th nearest, in the whitened code space: a density that need not be one Gaussian);
    # tables add the distance to the nearest training rows, images how they are viewed.

    def _parts(
        self, x: torch.Tensor, mask: torch.Tensor | None, chunk: int = 4096
    ) -> tuple[np.ndarray, np.ndarray]:
        """(members, rows) each: the mean normalised error over the row's observed columns, and
        the distance of its code to its nearest reference codes; for images, their logs."""
        errors, distances = [], []
        for error, codes in self._errors_and_codes(x, mask, chunk):
            errors.append(error)
            distances.append(self._distances(codes))
        return self._on_score_scale(errors), self._on_score_scale(distances)

    def _errors_and_codes(
        self, x: torch.Tensor, mask: torch.Tensor | None, chunk: int = 4096
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """A chunk of rows at a time, each row encoded and decoded once: (members, rows) mean
        normalised errors over the observed columns, and (members, rows, latent) codes."""
        with torch.no_grad(), _small_model_threads(x.device, self.module_):
            for i in range(0, len(x), chunk):
                xb, mb = self._bent(x[i : i + chunk]), None if mask is None else mask[i : i + chunk]
                codes = self.module_.encode(xb)
                column_errors = self._column_errors(self.module_.decode(codes), xb)
                if mb is not None:
                    column_errors = column_errors * mb
                yield self._member_rows(column_errors, mb), codes

    def _whitened(self, codes: torch.Tensor) -> torch.Tensor:
        """(members, rows, latent): codes in which the kept training codes have mean 0 and unit covariance."""
        return torch.bmm(codes - self.latent_mean_[:, None, :], self.latent_whitening_)

    def _distances(self, codes: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """(members, rows): distance from each code to its ``NEIGHBOURS``-th nearest
        reference code, in the member's whitened code space (the distance, not its square: the
        square of it grows so fast in the thin tail of a normal column that the last good rows
        there outranked rows off the data's line); a chunk of rows at a time, so that the
        (members, rows, references) distances stay small."""
        reference = self.latent_reference_
        k = min(self.NEIGHBOURS, reference.shape[1])
        reference_norms = (reference**2).sum(dim=-1)[:, None, :]
        nearest = []
        for i in range(0, codes.shape[1], chunk):
            w = self._whitened(codes[:, i : i + chunk])
            squared = torch.baddbmm(  # |w|^2 + |r|^2 - 2 w.r
                (w**2).sum(dim=-1, keepdim=True) + reference_norms, w, reference.transpose(1, 2), alpha=-2
            )
            kth = _smallest(squared, k)[..., -1]
            nearest.append(kth.clamp_min(0).sqrt())
        return torch.cat(nearest, dim=1)

    def _neighbour_distances(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, chunk: int = 4096
    ) -> np.ndarray | None:
        """(rows,): for tables, the mean distance from each row to its ``NEIGHBOURS`` nearest
        reference rows (``INPUT_REFERENCE`` distinct training rows) in the scaled columns, a row
        identical to one of them not counting it; None for images. A corrupted field moves a row
        away from every good row, whether or not the autoencoders see its fields disagree. A row
        with gaps is measured on its observed columns, scaled up to the width of a whole row."""
        reference = getattr(self, "input_reference_", None)
        if reference is None:
            return None
        # in float64: float32 rounds differently with the number of rows at a time, and a sign's
        # rarity scale can be steep enough to show it
        reference = reference.to(*CPU64)
        out = []
        with torch.no_grad():
            for i in range(0, len(x), chunk):
                seen = self._observed_features(None if mask is None else mask[i : i + chunk])
                rows = self._bent(x[i : i + chunk].to(*CPU64))
                out.append(_mean_nearest(rows, reference, self.NEIGHBOURS, seen))
        return np.concatenate(out) if out else np.zeros(0)

    def _observed_features(self, mask: torch.Tensor | None) -> torch.Tensor | None:
        """(rows, features) 0/1 on the CPU: which encoded features of the rows are observed."""
        return None if mask is None else mask[:, self._owner_of_feature].to(*CPU64)

    @property
    def _cell_judged(self) -> torch.Tensor:
        """(features,): the cells sign's weight of each field's deviation: 0 for one-hot levels,
        less than 1 for a number column piled at one value (:func:`vaekit.cells.pile_weights`; 1
        in the files of older versions)."""
        weights = getattr(self, "cell_weights_", None)
        return self._cell_targets if weights is None else self._cell_targets * weights

    def _cells(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, chunk: int = 65_536
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """For tables with a cell model (:mod:`vaekit.cells`), its signs that are not rarities,
        (rows,) each: the largest deviation of a row's number fields from what its other fields
        predict, and the garbage classifier's log odds that the row is spoilt (the mean of its
        members', :mod:`vaekit.corruption`); and the signs that are rarities already, (rows,) each:
        how far its farthest number field lies beyond its column's edges, how rare its number field
        off its column's grid is, ... (each absent from a detector without it: saved before it, or
        fitted on too few rows); ({}, {}) otherwise."""
        if getattr(self, "cell_precision_", None) is None:
            return {}, {}
        edges, grids = getattr(self, "cell_edges_", None), getattr(self, "cell_grids_", None)
        levels, copies = getattr(self, "cell_levels_", None), getattr(self, "cell_copies_", None)
        garbage = getattr(self, "garbage_", None)
        table = {name: [] for name in TABLE_SIGNS if name == "cells" or garbage is not None}
        parts = {
            name: []
            for name, t in zip(CELL_RARITIES, (edges, grids, levels, copies), strict=True)
            if t is not None
        }
        for i in range(0, len(x), chunk):
            seen = self._observed_features(None if mask is None else mask[i : i + chunk])
            encoded = x[i : i + chunk].to(*CPU64)
            u = warp(encoded, self.cell_bend_)
            table["cells"].append(
                largest_deviation(
                    cell_deviations(u, self.cell_mean_, self.cell_precision_, seen), self._cell_judged
                )
            )
            if garbage is not None:
                table["garbage"].append(self._garbage_odds(encoded, seen))
            if edges is not None:
                parts["edge"].append(edge_rarity(u, edges, self._cell_targets, seen))
            if grids is not None:
                parts["grid"].append(grid_rarity(encoded, grids, self._number_targets, seen))
            if levels is not None:
                parts["level"].append(level_rarity(encoded, levels, self._number_targets, seen))
            if copies is not None:
                parts["copy"].append(copy_rarity(encoded, *self._copy_model(), seen))
        joined = lambda p: torch.cat(p).numpy() if p else np.zeros(0)  # noqa: E731
        return {name: joined(p) for name, p in table.items()}, {name: joined(p) for name, p in parts.items()}

    def _categories(self, x: torch.Tensor, chunk: int = 65_536) -> dict[str, np.ndarray]:
        """For tables with category columns, the category sign (a rarity already): how rare each
        row's rarest category is (:func:`vaekit.cells.category_rarity`); {} otherwise (a detector
        saved before it, or a table without categories)."""
        shares = getattr(self, "category_shares_", None)
        if shares is None:
            return {}
        parts = [
            category_rarity(x[i : i + chunk].to(*CPU64), shares, self._category_slots)
            for i in range(0, len(x), chunk)
        ]
        return {"category": torch.cat(parts).numpy() if parts else np.zeros(0)}

    def _context(
        self, x: torch.Tensor, mask: torch.Tensor | None, chunk: int = 65_536
    ) -> dict[str, np.ndarray]:
        """For tables with a context classifier (:mod:`vaekit.context`), the context sign (a rarity
        already): how rare a row's least likely category field, given the rest of the row, is;
        {} otherwise (a detector saved before it, a table without category columns that the rest
        of a row tells something of, or of too few rows)."""
        if getattr(self, "context_", None) is None:
            return {}
        parts = []
        for i in range(0, len(x), chunk):
            fields = self._field_log_probs(x[i : i + chunk], None if mask is None else mask[i : i + chunk])
            parts.append(context_rarity(fields.amin(dim=1), self.context_tail_))
        return {"context": torch.cat(parts).numpy() if parts else np.zeros(0)}

    def _field_log_probs(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(rows, judged category columns) float64: log p(level | rest of the row) of each field
        (0 for a gap), by the context classifier's member of the row's fold."""
        seen, observed = self._context_view(x, mask)
        with _small_model_threads(torch.device("cpu"), self.context_):
            return observed_log_probs(
                self.context_,
                seen,
                self._category_slots,
                self.context_columns_,
                observed,
                row_folds(x, self.context_.shape[2]),
            )

    def _context_view(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows as the context classifier reads them, on the CPU: as the autoencoders see them
        (float32, gaps filled), and which of their columns are observed ((rows, columns) float32)."""
        seen = self._bent(x).float().cpu()
        observed = torch.ones(len(x), len(self.encoder_.columns)) if mask is None else mask.float().cpu()
        return seen, observed

    CONTEXT_ROWS = 100  # rows a detector needs for the context sign
    CONTEXT_STEPS = (200, 1000)  # at least and at most; between, CONTEXT_EPOCHS passes over a member's rows
    CONTEXT_EPOCHS = 200
    CONTEXT_BATCH = 256  # rows per step and member
    CONTEXT_LR = 1e-2  # high: a level its row rules out should come out far less likely than 1 in 1,000
    CONTEXT_HIDDEN = 64
    CONTEXT_MEMBERS = 2  # each judges the rows of the fold the other learnt from
    CONTEXT_LEARN = 40_000  # at most, rows the members learn from (a uniform sample)
    CONTEXT_TRIM = 0.0  # every row kept: trimmed, it grew sure of soft relations and flagged good rows
    CONTEXT_DROPOUT = 0.05  # the share of columns hidden behind the gap fill, as for the autoencoders
    CONTEXT_COLUMNS = 32  # at most, the category columns judged: each costs a pass of the classifier

    def _fit_context(self, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray | None:
        """The context classifier of the training rows ``x`` (:mod:`vaekit.context`): member m
        learns from the rows (of a uniform sample of at most ``CONTEXT_LEARN``) outside fold m, a
        category field of each row hidden at random and, as for the autoencoders, a few of its
        other columns hidden behind the gap fill, for ``CONTEXT_EPOCHS`` passes over its rows
        within ``CONTEXT_STEPS`` steps (every row kept: leaving out the rows it finds hardest would
        make it sure where it should not be). Then,
        from the distributions of the rows of that sample by the member that did not learn from
        each, the columns it judges (:func:`vaekit.context.informed_columns`) and their shares S(q);
        and each training row's rarity, by that member too. Sets ``context_``, ``context_columns_``,
        ``context_log_shares_`` and ``context_tail_``; returns the training rows' rarities, or None
        (and sets nothing) when no column is told."""
        seed = 0 if self.random_state is None else int(self.random_state)
        generator = torch.Generator().manual_seed(seed + 2)
        groups, members, batch = self._category_slots, self.CONTEXT_MEMBERS, self.CONTEXT_BATCH
        seen, observed = self._context_view(x, mask)
        fill = self._bent(self._missing[None]).float().cpu()[0]
        owner = self._owner_of_feature.cpu()
        slots, held = held_levels(seen, groups)
        fold = row_folds(x, members)
        sample = torch.randperm(len(seen), generator=generator)[: self.CONTEXT_LEARN]
        pool = sample[held[sample].any(dim=1)]
        learns = [pool[fold[pool] != m] for m in range(members)]
        if any(len(rows) == 0 for rows in learns):
            return None
        n_slots = slot_offset(groups, len(groups))
        classifier = ContextClassifier(
            seen.shape[1] + observed.shape[1] + len(groups),
            n_slots,
            self.CONTEXT_HIDDEN,
            members,
            torch.Generator().manual_seed(seed),
        )

        def batch_losses(step: int) -> torch.Tensor:
            rows = torch.stack([r[torch.randint(len(r), (batch,), generator=generator)] for r in learns])
            # a held category field of each row, at random, and a few other columns hidden as gaps
            hide = (torch.rand(*rows.shape, len(groups), generator=generator) + held[rows]).argmax(dim=-1)
            flat = rows.reshape(-1)
            dropped = torch.rand(len(flat), observed.shape[1], generator=generator) < self.CONTEXT_DROPOUT
            rows_seen = torch.where(dropped[:, owner], fill, seen[flat])
            inputs = hidden_inputs(rows_seen, groups, hide.reshape(-1), observed[flat] * ~dropped)
            slot = slots[rows].gather(-1, hide[..., None])[..., 0]
            logits = classifier(inputs.reshape(members, batch, -1))
            return -level_log_probs(logits, groups, hide, slot)

        fewest, most = self.CONTEXT_STEPS
        steps = min(most, max(fewest, math.ceil(self.CONTEXT_EPOCHS * len(learns[0]) / batch)))
        with _small_model_threads(torch.device("cpu"), classifier):
            losses = self._optimise(
                classifier, self.CONTEXT_LR, steps, batch_losses, "context classifier", trim=self.CONTEXT_TRIM
            )
        self.history_["context classifier loss (mean cross-entropy, nats)"] = losses
        classifier.eval()

        def held_out(rows: torch.Tensor, k: int) -> torch.Tensor:
            """(rows, levels of column k): the distributions by the member that did not learn each row."""
            return column_log_probs(classifier, seen[rows], groups, k, observed[rows], fold[rows])

        def level_of(log_p: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
            return observed_level(log_p, slots[rows, k], held[rows, k], groups, k)

        # which columns are told, and how often a good row holds a level that unlikely: on the sample
        every = torch.zeros(len(sample), len(groups), dtype=torch.float64)
        mass = torch.zeros(len(groups), len(GRID), dtype=torch.float64)
        with _small_model_threads(torch.device("cpu"), classifier):
            for k in range(len(groups)):
                log_p = held_out(sample, k)
                every[:, k] = level_of(log_p, sample, k)
                mass[k] = tail_mass(log_p[held[sample, k]][:, :-1])  # the "other" level is not judged
        shares = log_shares(seen, groups)
        columns = informed_columns(information(every, seen[sample], groups, shares), self.CONTEXT_COLUMNS)
        if not columns:
            return None
        self.context_, self.context_columns_, self.context_log_shares_ = classifier, columns, shares
        self.context_tail_ = fit_tail(mass[columns].sum(dim=0), len(sample))
        # each training row's least likely judged field: the sample's are known already
        least = torch.zeros(len(seen), dtype=torch.float64)
        least[sample] = every[:, columns].amin(dim=1)
        rest = torch.ones(len(seen), dtype=torch.bool)
        rest[sample] = False
        with _small_model_threads(torch.device("cpu"), classifier):
            for part in torch.nonzero(rest)[:, 0].split(65_536):
                fields = [level_of(held_out(part, k), part, k) for k in columns]
                least[part] = torch.stack(fields, dim=1).amin(dim=1)
        return context_rarity(least, self.context_tail_).numpy()

    def _garbage_inputs(self, encoded: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
        """:func:`vaekit.corruption.garbage_inputs` of encoded rows (float64, on the CPU)."""
        return garbage_inputs(
            encoded,
            self.cell_bend_,
            self.cell_mean_,
            self.cell_precision_,
            self._number_units,
            self._number_features,
            seen,
        )

    GARBAGE_STEPS = 1000
    GARBAGE_BATCH = 256  # rows as they are, and as many spoilt copies, per step and member
    GARBAGE_LR = 1e-3
    GARBAGE_HIDDEN = 64
    GARBAGE_MEMBERS = 2  # each judges the training rows the others learnt from
    GARBAGE_COPIES = 2  # spoilt copies of each row the members learn from
    GARBAGE_LEARN = 40_000  # at most, rows the members learn from (a uniform sample)
    # at most, number columns: the inputs grow with them, the cell model's product as their square
    GARBAGE_FEATURES = 256

    def _fit_garbage(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[GarbageClassifier, np.ndarray]:
        """The garbage classifier of the training rows ``x`` (:mod:`vaekit.corruption`): of a
        uniform sample of at most ``GARBAGE_LEARN`` training rows and ``GARBAGE_COPIES`` spoilt
        copies of each, drawn once, member m learns from the rows outside fold m (half, for two
        members) and their copies, for ``GARBAGE_STEPS`` steps on batches of ``GARBAGE_BATCH`` of
        each; and each training row's log odds from the member that did not learn from it (a new
        row's are the members' mean). The trim leaves out the spoilt copies that look most like rows
        as they are (two near values swapped), never the rows: rows unlike the rest (a reading of
        exactly 0 in 1% of them), left out, were learnt as garbage from their own spoilt copies,
        which keep what sets them apart (in a table of 2,000 rows, 13 of the 19 rows holding a 0.00
        were flagged so; none now)."""
        seed = 0 if self.random_state is None else int(self.random_state)
        generator = torch.Generator().manual_seed(seed + 1)
        number = self._number_features
        encoded = x.to(*CPU64)
        seen = self._observed_features(mask)
        units = self._number_units[:, number]
        own = encoded[:, number] * units[0] + units[1]
        observed = torch.ones_like(own, dtype=torch.bool) if seen is None else seen[:, number] > 0
        spread = torch.where(observed, own, float("nan")).numpy()
        low, high = torch.from_numpy(np.nanquantile(spread, [0.005, 0.995], axis=0))

        def inputs_of(rows: torch.Tensor, values: torch.Tensor | None = None) -> torch.Tensor:
            """The classifier's inputs of the training ``rows``, their number fields set to
            ``values`` (own units) when given; a chunk at a time."""
            parts = []
            for part in torch.arange(len(rows)).split(65_536):
                chosen = encoded[rows[part]]
                if values is not None:
                    chosen = chosen.clone()
                    # through float32, as rows encoded for the models are
                    chosen[:, number] = ((values[part] - units[1]) / units[0]).float().double()
                parts.append(self._garbage_inputs(chosen, None if seen is None else seen[rows[part]]))
            return torch.cat(parts)

        fold = torch.randperm(len(x), generator=generator) % self.GARBAGE_MEMBERS
        pool = torch.randperm(len(x), generator=generator)[: self.GARBAGE_LEARN]
        origin = pool.repeat(self.GARBAGE_COPIES)
        values = corrupt(own[origin], low, high, generator, observed[origin])
        changed = ((values != own[origin]) & observed[origin]).any(dim=1)  # not a factor on a row of zeros
        origin = origin[changed]
        as_given, spoilt = inputs_of(pool), inputs_of(origin, values[changed])
        # each member's rows and copies: those of the rows outside its fold
        learns = [torch.nonzero(fold[pool] != m)[:, 0] for m in range(self.GARBAGE_MEMBERS)]
        learns_spoilt = [torch.nonzero(fold[origin] != m)[:, 0] for m in range(self.GARBAGE_MEMBERS)]
        classifier = GarbageClassifier(
            as_given.shape[1], self.GARBAGE_HIDDEN, self.GARBAGE_MEMBERS, torch.Generator().manual_seed(seed)
        )
        batch = self.GARBAGE_BATCH
        target = torch.cat([torch.zeros(batch), torch.ones(batch)]).expand(self.GARBAGE_MEMBERS, -1)

        def batch_losses(step: int) -> torch.Tensor:
            drawn = [
                torch.cat(
                    [
                        as_given[good[torch.randint(len(good), (batch,), generator=generator)]],
                        spoilt[bad[torch.randint(len(bad), (batch,), generator=generator)]],
                    ]
                )
                for good, bad in zip(learns, learns_spoilt, strict=True)
            ]
            logits = classifier(torch.stack(drawn))
            return nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")

        with _small_model_threads(torch.device("cpu"), classifier):
            # the rows as they are first in each batch: the trim takes only spoilt copies
            losses = self._optimise(
                classifier,
                self.GARBAGE_LR,
                self.GARBAGE_STEPS,
                batch_losses,
                "garbage classifier",
                untrimmed=batch,
            )
        self.history_["garbage classifier loss (trimmed mean cross-entropy, nats)"] = losses
        classifier.eval()
        odds = torch.zeros(len(x), dtype=torch.float64)
        with torch.no_grad():
            for m in range(self.GARBAGE_MEMBERS):
                for rows in torch.nonzero(fold == m)[:, 0].split(65_536):
                    odds[rows] = classifier(inputs_of(rows))[m].double()
        return classifier, odds.numpy()

    def _garbage_odds(self, encoded: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
        """(rows,) float64: the garbage classifier's log odds that the encoded rows (float64, on the
        CPU; ``seen``: their observed features) are spoilt copies, the mean of its members'."""
        with torch.no_grad():
            return self.garbage_(self._garbage_inputs(encoded, seen)).mean(dim=0).double()

    def _framing_profiles(self, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(rows, 2 * turns) float64 on the CPU: the zoom classifier's framing profile of each image
        (:meth:`vaekit.models.views.ViewClassifier.framing`)."""
        zoom = self.views_["zoom"]
        with torch.no_grad():
            return torch.cat([zoom.framing(x[i : i + chunk]).to(*CPU64) for i in range(0, len(x), chunk)])

    def _profiles(self, x: torch.Tensor, chunk: int = 4096) -> dict[str, torch.Tensor]:
        """The rows' profiles of each profile sign the detector has (see ``PROFILE_SIGNS``): the
        framing profiles when it has a zoom classifier, the spectrum profiles
        (:func:`vaekit.spectrum.spectrum_profile`) of images."""
        out = {}
        references = getattr(self, "profile_references_", {})
        # with a zoom classifier: the framing sign's, and a view sign from both classifiers (files of
        # older versions) reads the zoom classifier's loss off them
        if "zoom" in getattr(self, "views_", {}):
            out["framing"] = self._framing_profiles(x, chunk)
        if "spectrum" in references:
            out["spectrum"] = spectrum_profile(x, self.image_shape_, chunk=chunk)
        return out

    def _profile_distances(self, profiles: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        """Per profile sign the detector has, (rows,) the mean distance from each row's profile to
        its ``NEIGHBOURS`` nearest among those of ``PROFILE_REFERENCE`` distinct training images
        judged good, the row's own profile (within ``SAME_PROFILE``) not counting."""
        out, references = {}, getattr(self, "profile_references_", {})
        for name, rows in profiles.items():
            if name not in references:  # framing profiles of a detector saved before the sign
                continue
            reference, chunk, k = references[name].to(*CPU64), 4096, self.NEIGHBOURS
            parts = [
                _mean_nearest(rows[i : i + chunk], reference, k, copy_within=self.SAME_PROFILE)
                for i in range(0, len(rows), chunk)
            ]
            out[name] = np.concatenate(parts) if parts else np.zeros(0)
        return out

    def _on_score_scale(self, parts: list[torch.Tensor]) -> np.ndarray:
        # Images: logs, for a pixel error spans orders of magnitude between a plain and a busy
        # image. Tables: as they are, for a log would squeeze a wrong field's error (hundreds of
        # times the typical one) into the spread of the small errors of good rows.
        values = torch.cat(parts, dim=1).to(*CPU64)
        if self.scores_are_logs:
            values = torch.log(values + 1e-12)
        return values.numpy()

    def _standardised(self, errors: np.ndarray, distances: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        center, scale = self.score_center_, self.score_scale_  # (2, members)
        error = ((errors - center[0, :, None]) / scale[0, :, None]).mean(axis=0)
        distance = ((distances - center[1, :, None]) / scale[1, :, None]).mean(axis=0)
        return error, distance

    def _signs(
        self,
        errors: np.ndarray,
        distances: np.ndarray,
        view_odds: np.ndarray | None = None,
        neighbours: np.ndarray | None = None,
        profile_distances: dict[str, np.ndarray] | None = None,
        table: dict[str, np.ndarray] | None = None,
        rarities: dict[str, np.ndarray] | None = None,
        groups: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Each sign of trouble on the score's scale (see ``SIGNS``); the score is the largest.
        ``table``: the signs of the cell model that are not rarities (``TABLE_SIGNS``);
        ``rarities``: the signs that are on the score's scale already (``RARITIES``); ``groups``:
        (rows, groups) whether each row is in each of ``error_groups_``."""
        error, distance = self._standardised(errors, distances)
        tails = getattr(self, "sign_tails_", None)
        if tails is not None and neighbours is not None:  # tables
            raw = {"error": error, "distance": distance, "neighbours": neighbours} | (table or {})
            if "distance" not in tails:  # a detector hunting garbage leaves it out
                del raw["distance"]
            signs = {name: _surprise(values, *tails[name]) for name, values in raw.items()}
            if groups is not None:
                signs["error"] = self._error_in_groups(error, signs["error"], groups)
            return signs | (rarities or {})
        signs = {"error": error}
        if self.scores_are_logs:
            # an image far simpler than the training images (a blank page, a crop of plain
            # cloth) is reconstructed too well: on the log scale, its error is as far below
            # the typical one as the error of a noisy image is above it. Below, only what lies
            # beyond SIMPLER_MARGIN counts: plain good images (trousers, a digit 1) are simpler
            # than most, and counted in full they outranked rotated or foreign images
            signs["simpler"] = -error - self.SIMPLER_MARGIN
        signs["distance"] = distance
        if view_odds is not None:
            signs["view"] = (view_odds - self.view_center_) / self.view_scale_
        for name, far in (profile_distances or {}).items():
            center, scale = self.profile_maps_[name]
            signs[name] = (np.log(far + EPS) - center) / scale
        return signs

    def _combined(
        self,
        errors: np.ndarray,
        distances: np.ndarray,
        view_odds: np.ndarray | None = None,
        neighbours: np.ndarray | None = None,
        profile_distances: dict[str, np.ndarray] | None = None,
        table: dict[str, np.ndarray] | None = None,
        rarities: dict[str, np.ndarray] | None = None,
        groups: np.ndarray | None = None,
    ) -> np.ndarray:
        signs = self._signs(
            errors, distances, view_odds, neighbours, profile_distances, table, rarities, groups
        )
        return np.maximum.reduce(list(signs.values()))

    SIGNS: ClassVar[dict[str, str]] = {
        "error": "reconstructed badly",
        "simpler": "reconstructed far better than the training images: far simpler than them",
        "distance": "its code lies far from the codes of the training rows",
        "neighbours": "its values lie far from those of the training rows nearest to it",
        "cells": "a field far from what the row's other fields predict",
        "edge": "a field far beyond the edge of its column's values",
        "grid": "a field off the grid its column's values lie on (a fraction among counts, "
        "a digit more than the others have, a number from elsewhere)",
        "level": "a field none of the few values its column's values come from (a number from elsewhere)",
        "copy": "two fields holding the same value, one their columns seldom hold (a value copied into "
        "another field?)",
        "category": "a category its column seldom holds (misspelt, or from elsewhere?)",
        "context": "a category the rest of the row makes unlikely (a wrong label, or a field from another "
        "record?)",
        "garbage": "like the copies of the training rows spoilt the ways pipelines spoil data (a field in "
        "another unit, shifted, swapped, copied, a sentinel or noise) more than like the rows themselves",
        "view": "not the way up the training images are: turned, or from elsewhere?",
        "framing": "framed unlike the training images: a crop, a small image blown up, or from elsewhere?",
        "spectrum": "its detail, if any, at other scales than the training images': blank, blown up "
        "from a small image, blurred, noisy, or from elsewhere?",
    }

    def signs(self, X: ArrayLike) -> pd.DataFrame:
        """(rows, signs): each sign of trouble of each row on the score's scale, named by the keys
        of ``SIGNS``; a row's score is the largest of them."""
        check_is_fitted(self, "threshold_")
        return self._signs_of(*self._encoded(self._rows(X)))

    def _signs_of(self, x: torch.Tensor, mask: torch.Tensor | None) -> pd.DataFrame:
        chunks = list(self._chunk_signs(x, mask))
        if not chunks:
            return pd.DataFrame()
        return pd.DataFrame({name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]})

    def why(self, X: ArrayLike) -> list[str]:
        """For each row, in words, the sign of trouble that set its score; for tables, also the
        field farthest from what the rest of the row predicts when the cells sign set the score or
        alone passes the "auto" cut, and the values (at most two, the farthest out) outside the range of their
        column's values among the training rows judged good (those under the "auto" threshold)."""
        check_is_fitted(self, "threshold_")
        rows = self._rows(X)
        x, mask = self._encoded(rows)
        signs = self._signs_of(x, mask)
        top = signs.idxmax(axis=1).to_numpy()
        words = [self.SIGNS[name] for name in top]
        if getattr(self, "column_range_", None) is None:
            return words
        numbers = self.encoder_.numbers(rows)  # the values as given, for the notes
        for name, make_notes in (
            ("cells", self._cell_notes),
            ("grid", self._grid_notes),
            ("level", self._level_notes),
            ("copy", self._copy_notes),
            ("category", self._category_notes),
            ("context", self._context_notes),
        ):
            if name in signs:
                # the garbage classifier reads the deviations too: its rows get the cells note; a
                # field far out throws the classifier's view of the row's categories, whose note
                # would then blame them: the context note only where its sign set the score
                chosen = (signs[name].to_numpy() > self.auto_cut_) | (top == name)
                if name == "context":
                    chosen = top == name
                if name == "cells":
                    chosen |= top == "garbage"
                notes = make_notes(x, mask, chosen, numbers)
                words = [f"{word} {note}" if note else word for word, note in zip(words, notes, strict=True)]
        x = x.double().cpu().numpy()
        observed = (
            np.ones((len(x), len(self.encoder_.columns)), bool) if mask is None else mask.cpu().numpy() > 0
        )
        notes: list[list[tuple[float, str]]] = [[] for _ in range(len(x))]
        for j, (column, where, bounds) in enumerate(
            zip(self.encoder_.columns, self.encoder_.slices(), self.column_range_, strict=True)
        ):
            if bounds is None:
                continue
            lo, hi = bounds
            value = x[:, where.start]
            excess = np.maximum(lo - value, value - hi) / max(hi - lo, EPS)
            outside = np.flatnonzero((excess > 0) & observed[:, j])
            if column.kind == "datetime":  # the date as given, the range as dates
                given = rows.iloc[outside][column.name] if isinstance(rows, pd.DataFrame) else None
                said = [repr(str(v).strip()) for v in given] if given is not None else ["?"] * len(outside)
                values = dict(zip(outside, said, strict=True))
                lo, hi = _dates_in_units((lo, hi), column)
            else:
                values = {i: f"{numbers[i, j]:.4g}" for i in outside}
                lo, hi = (f"{_in_units(v, column):.4g}" for v in (lo, hi))
            for i in outside:
                said = f"{column.name} = {values[i]} is outside the range of the rows judged good "
                said += f"({lo} to {hi})"
                notes[i].append((excess[i], said))
        return [
            "; ".join([word, *(text for _, text in sorted(note, key=lambda t: -t[0])[:2])])
            for word, note in zip(words, notes, strict=True)
        ]

    def _cell_notes(
        self, x: torch.Tensor, mask: torch.Tensor | None, rows: np.ndarray, numbers: np.ndarray
    ) -> list[str]:
        """For each of the ``rows`` (a boolean mask), a number field farthest from what the rest of
        the row predicts, with that prediction, in the column's own units: "(c = 41.5 where the
        rest of the row suggests 4.2)"; "" for the other rows. ``numbers``: the rows' values as
        given (:meth:`vaekit.tabular.TableEncoder.numbers`)."""
        notes = [""] * len(x)
        chosen = np.flatnonzero(rows)
        if not len(chosen) or getattr(self, "cell_precision_", None) is None:
            return notes
        index = torch.from_numpy(chosen).to(x.device)
        values = x[index].to(*CPU64)
        bent = warp(values, self.cell_bend_)
        model = (
            self.cell_mean_,
            self.cell_precision_,
            self._observed_features(None if mask is None else mask[index]),
        )
        deviations = cell_deviations(bent, *model)
        predicted = unwarp(predicted_values(bent, *model), self.cell_bend_)
        farthest = (deviations.abs() * self._cell_judged).argmax(dim=1)
        owner = self._owner_of_feature.cpu()
        for row, i, feature in zip(chosen, range(len(chosen)), farthest.tolist(), strict=True):
            j = int(owner[feature])
            column = self.encoder_.columns[j]
            if column.kind == "numeric":
                value, guess = numbers[row, j], _in_units(float(predicted[i, feature]), column)
                notes[row] = f"({column.name} = {value:.4g} where the rest of the row suggests {guess:.4g})"
        return notes

    def _grid_notes(
        self, x: torch.Tensor, mask: torch.Tensor | None, rows: np.ndarray, numbers: np.ndarray
    ) -> list[str]:
        """For each of the ``rows`` (a boolean mask), its rarest number field off its column's grid,
        with the grid in the column's own units: "(count = 2.5 is off the grid of count's values:
        steps of 1 from 4)"; "" for the other rows and those with every field on its grid."""
        grids = getattr(self, "cell_grids_", None)

        def said(feature: int, column, value: float) -> str:
            step = float(grids[1, feature]) * column.scale
            origin = _in_units(float(grids[0, feature]), column)
            return (
                f"({column.name} = {value:.6g} is off the grid of {column.name}'s values: "
                f"steps of {step:.6g} from {origin:.6g})"
            )

        return self._rarest_field_notes(x, mask, rows, numbers, grids, off_grid_rarities, said)

    def _level_notes(
        self, x: torch.Tensor, mask: torch.Tensor | None, rows: np.ndarray, numbers: np.ndarray
    ) -> list[str]:
        """For each of the ``rows`` (a boolean mask), its rarest number field that is none of its
        column's levels, with the levels in the column's own units: "(dial = 0.7 is none of dial's
        values: -2.13, -0.49, 1.3)"; "" for the other rows and those with every field on them."""
        levels = getattr(self, "cell_levels_", None)

        def said(feature: int, column, value: float) -> str:
            values = sorted(levels[1:, feature][~levels[1:, feature].isnan()].tolist())
            shown = ", ".join(f"{_in_units(v, column):.6g}" for v in values)
            return f"({column.name} = {value:.6g} is none of {column.name}'s values: {shown})"

        return self._rarest_field_notes(x, mask, rows, numbers, levels, off_level_rarities, said)

    def _category_notes(
        self, x: torch.Tensor, mask: torch.Tensor | None, rows: np.ndarray, numbers: np.ndarray
    ) -> list[str]:
        """For each of the ``rows`` (a boolean mask), its rarest category and how many training
        rows hold one as rare: "(country: a value that fewer than 2 training rows hold)" for the
        column's "other" level, "(size = 'XXL': among its rarest 0.10% of the training rows)" for
        a level; "" for the other rows."""
        from vaekit.tabular import MIN_LEVEL_COUNT

        notes = [""] * len(x)
        chosen = np.flatnonzero(rows)
        categories = getattr(self, "category_shares_", None)
        if not len(chosen) or categories is None:
            return notes
        encoded = x[torch.from_numpy(chosen).to(x.device)].to(*CPU64)
        rarity, held = off_category_rarities(encoded, categories, self._category_slots)
        for n, (i, k) in enumerate(zip(chosen.tolist(), rarity.argmax(dim=1).tolist(), strict=True)):
            j, start, stop = self._groups[k]
            if not held[n, k]:
                continue
            column = self.encoder_.columns[j]
            slot = int(encoded[n, start:stop].argmax())
            if slot == len(column.levels):  # the "other" level: values too rare to have their own
                notes[i] = f"({column.name}: a value that fewer than {MIN_LEVEL_COUNT} training rows hold)"
            else:
                share = float(categories[0, start + slot])
                level = column.levels[slot]
                notes[i] = f"({column.name} = {level!r}: among its rarest {share:.2%} of the training rows)"
        return notes

    def _context_notes(
        self, x: torch.Tensor, mask: torch.Tensor | None, rows: np.ndarray, numbers: np.ndarray
    ) -> list[str]:
        """For each of the ``rows`` (a boolean mask), its category field that the rest of the row
        makes least likely, with the level the rest suggests and how often rows like it hold the
        field's: "(status = 'LOW' where the rest of the row suggests 'OK': 1 in 14,000 rows like it
        hold 'LOW', 28% of all rows)"; "" for the other rows and those whose least likely field is
        no less likely than among all rows."""
        from vaekit.tabular import MIN_LEVEL_COUNT

        notes = [""] * len(x)
        chosen = np.flatnonzero(rows)
        if not len(chosen) or getattr(self, "context_", None) is None:
            return notes
        index = torch.from_numpy(chosen).to(x.device)
        rows_mask = None if mask is None else mask[index]
        field = self._field_log_probs(x[index], rows_mask)
        seen, observed = self._context_view(x[index], rows_mask)
        slots, _ = held_levels(seen, self._category_slots)
        worst = field.argmin(dim=1)
        for n, k in enumerate(self.context_columns_):
            column = self.encoder_.columns[self._groups[k][0]]
            offset = slot_offset(self._category_slots, k)
            these = worst == n
            these &= field[:, n] < self.context_log_shares_[slots[:, k]]  # less likely than among all
            these = torch.nonzero(these)[:, 0]
            if not len(these):
                continue

            def named(slot: int, column=column) -> str:
                if slot < len(column.levels):
                    return repr(column.levels[slot])
                return f"a value fewer than {MIN_LEVEL_COUNT} training rows hold"

            with _small_model_threads(torch.device("cpu"), self.context_):
                fold = row_folds(x[index][these], self.context_.shape[2])
                log_p = column_log_probs(
                    self.context_, seen[these], self._category_slots, k, observed[these], fold
                )
            for i, row_log_p in zip(these.tolist(), log_p, strict=True):
                slot = int(slots[i, k]) - offset
                likely = float(row_log_p[slot].exp())
                share = float(self.context_log_shares_[offset + slot].exp())
                level, best = named(slot), named(int(row_log_p.argmax()))
                notes[int(chosen[i])] = (
                    f"({column.name} = {level} where the rest of the row suggests {best}: "
                    f"{_how_often(likely)} rows like it hold {level}, {_how_often(share)} of all rows)"
                )
        return notes

    def _copy_model(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The arguments of :func:`vaekit.cells.copy_rarity` after the rows: units, judged, common, copies."""
        return self._number_units, self._number_targets, self.cell_common_, self.cell_copies_

    def _copy_notes(
        self, x: torch.Tensor, mask: torch.Tensor | None, rows: np.ndarray, numbers: np.ndarray
    ) -> list[str]:
        """For each of the ``rows`` (a boolean mask), its rarest pair of number fields holding the
        same value, with how often the two columns agree so: "(b = 4.53, the value of a too: the two
        agree, at a value neither column often holds, in 0.02% of the training rows)"; "" for the
        other rows and those with none."""
        notes = [""] * len(x)
        chosen = np.flatnonzero(rows)
        if not len(chosen) or getattr(self, "cell_copies_", None) is None:
            return notes
        index = torch.from_numpy(chosen).to(x.device)
        seen = self._observed_features(None if mask is None else mask[index])
        at, first, second, rarity = copy_rarities(x[index].to(*CPU64), *self._copy_model(), seen)
        owner = self._owner_of_feature.cpu()
        copies = self.cell_copies_
        pairs = zip(copies[0].long().tolist(), copies[1].long().tolist(), strict=True)
        shares = dict(zip(pairs, copies[2].tolist(), strict=True))
        rarest: dict[int, tuple[int, int]] = {}  # each row's rarest agreement
        order = rarity.argsort(descending=True, stable=True).tolist()
        for i, a, b in zip(at[order].tolist(), first[order].tolist(), second[order].tolist(), strict=True):
            rarest.setdefault(i, (a, b))
        for i, (a, b) in rarest.items():
            row, ja, jb = int(chosen[i]), int(owner[a]), int(owner[b])
            left, right = self.encoder_.columns[ja], self.encoder_.columns[jb]
            share = shares.get((a, b), 0.0)
            seen_in = f"{share:.2%} of the training rows" if share > 0 else "none of the training rows"
            notes[row] = (
                f"({right.name} = {numbers[row, jb]:.6g}, the value of {left.name} too: the two agree, "
                f"at a value neither column often holds, in {seen_in})"
            )
        return notes

    def _rarest_field_notes(self, x, mask, rows, numbers, fitted, rarities_of, said) -> list[str]:
        """For each of the ``rows``, ``said(feature, column, value)`` of its rarest field by
        ``rarities_of(rows, fitted, judged, seen)`` (rows, features); "" where none is rare."""
        notes = [""] * len(x)
        chosen = np.flatnonzero(rows)
        if not len(chosen) or fitted is None:
            return notes
        index = torch.from_numpy(chosen).to(x.device)
        seen = self._observed_features(None if mask is None else mask[index])
        rarest = rarities_of(x[index].to(*CPU64), fitted, self._number_targets, seen).max(dim=1)
        owner = self._owner_of_feature.cpu()
        for row, feature, rarity in zip(chosen, rarest.indices.tolist(), rarest.values.tolist(), strict=True):
            if rarity > 0:
                j = int(owner[feature])
                notes[row] = said(feature, self.encoder_.columns[j], numbers[row, j])
        return notes

    def _column_ranges(self, x: torch.Tensor, mask: torch.Tensor | None, good: np.ndarray) -> list:
        """Per kept column, (lowest, highest) in encoded units of a number or date column's observed
        values among the ``good`` training rows; None for the other columns."""
        rows = torch.from_numpy(np.flatnonzero(good)).to(x.device)
        values = x[rows].double().cpu().numpy()
        observed = None if mask is None else mask[rows].cpu().numpy() > 0
        ranges: list = []
        for j, (column, where) in enumerate(zip(self.encoder_.columns, self.encoder_.slices(), strict=True)):
            seen = values[:, where.start] if observed is None else values[observed[:, j], where.start]
            if column.kind not in ("numeric", "datetime") or len(seen) < 2:
                ranges.append(None)
                continue
            ranges.append((float(seen.min()), float(seen.max())))
        return ranges

    NEIGHBOURS = 10
    REFERENCE_CODES = 256
    INPUT_REFERENCE = 512  # training rows kept (scaled) in the detector for the neighbours sign
    PROFILE_SIGNS = ("framing", "spectrum")
    PROFILE_REFERENCE = 512  # profiles of training images kept for each profile sign
    FRAMING_QUANTILE = 0.98  # of the framing sign among the images judged good, put on the score's
    SAME_PROFILE = 1e-4  # log odds: profiles this close are one image's (float32 rounds them apart)
    SIMPLER_MARGIN = 1.0  # interquartile ranges of the log errors below the median that do not count

    def _fit_scores(self, x: torch.Tensor, mask: torch.Tensor | None, chunk: int = 4096) -> np.ndarray:
        """Per member, from the training rows it reconstructs best (the worst ``trim`` share left
        out, as in training): the codes' mean and Ledoit-Wolf covariance, whose inverse whitens
        the codes, and as the reference a sample of the codes of distinct rows among them,
        whitened; then the parts' standardisation and, for tables, the reference rows of the
        neighbours sign, the signs' rarity scales and the "auto" cut; returns the training scores.
        The rows are encoded and decoded once; their distances come from the codes kept."""
        from sklearn.covariance import LedoitWolf

        errors, codes = zip(*self._errors_and_codes(x, mask, chunk), strict=True)
        errors = self._on_score_scale(list(errors))
        distinct = _distinct_rows(x, most=10 * self.REFERENCE_CODES)
        means, whitenings, candidates = [], [], []
        for m in range(self.n_models):
            keep = errors[m] <= np.quantile(errors[m], 1 - self.trim)
            if keep.sum() < 2:  # a covariance needs two rows (a detector may be fitted on two)
                keep[:] = True
            # shrunk towards a multiple of the identity: steady with few rows per dimension
            member_codes = torch.cat([code[m] for code in codes]).double().cpu().numpy()
            fitted = LedoitWolf().fit(member_codes[keep])
            means.append(fitted.location_)
            # (c - mean) V / sqrt(eigenvalues) of the covariance: the Mahalanobis distance is its length
            eigenvalues, vectors = np.linalg.eigh(fitted.covariance_)
            floor = 1e-12 * max(eigenvalues.max(), 1e-12)
            whitenings.append(vectors / np.sqrt(np.maximum(eigenvalues, floor)))
            chosen = distinct[keep[distinct]] if keep[distinct].any() else distinct
            # each member its own sample of reference rows: their average is steadier
            candidates.append(member_codes[np.random.default_rng(m).permutation(chosen)])
        n_reference = max(1, min(self.REFERENCE_CODES, *(len(c) for c in candidates)))
        self.latent_mean_ = torch.from_numpy(np.stack(means)).float().to(x.device)
        self.latent_whitening_ = torch.from_numpy(np.stack(whitenings)).float().to(x.device)
        reference = torch.from_numpy(np.stack([c[:n_reference] for c in candidates])).float().to(x.device)
        self.latent_reference_ = self._whitened(reference)
        with torch.no_grad():
            distances = self._on_score_scale([self._distances(code) for code in codes])
        del codes
        parts = np.stack([errors, distances])  # (2, members, rows)
        q1, center, q3 = np.percentile(parts, [25, 50, 75], axis=2)
        self.score_center_ = center
        self.score_scale_ = np.maximum(q3 - q1, 1e-6)
        self.auto_cut_ = self.sign_tails_ = self.input_reference_ = self.error_groups_ = None
        self.cell_mean_ = self.cell_precision_ = self.cell_bend_ = self.cell_edges_ = self.cell_grids_ = None
        self.cell_weights_ = None
        self.cell_levels_ = self.cell_common_ = self.cell_copies_ = self.garbage_ = None
        self.category_shares_ = self.context_ = self.context_columns_ = None
        self.context_log_shares_ = self.context_tail_ = None
        self.profile_references_, self.profile_maps_ = {}, {}
        if not self.scores_are_logs:
            # Tables: the signs' tails differ (a column whose good values have a long tail makes
            # the errors' tail long), so each sign is put on the scale of its rarity among the
            # training rows judged good (under every sign's "auto" fence) before the largest is
            # taken: otherwise the longest tail decides which rows come first. Among all the rows,
            # a heap of garbage (a tenth of them, or more) would pass for a long tail. The highest
            # of the fences, on that scale, cuts.
            # the reference: rows with no gaps, unless gaps are common
            pool = _reference_pool(x, mask)
            rows = _distinct_rows(pool, most=self.INPUT_REFERENCE)
            self.input_reference_ = self._bent(pool[torch.from_numpy(rows).to(x.device)]).float()
            error, distance = self._standardised(errors, distances)
            raw = {"error": error, "distance": distance, "neighbours": self._neighbour_distances(x, mask)}
            if self.garbage_classifier:
                # hunting garbage, the codes' distance finds little that the others miss, and
                # unusual good rows (see the class's docstring)
                del raw["distance"]
            if fits(x.shape[1]) and bool(self._cell_targets.any()):
                # fitted on the pool of the reference rows: those with no gaps, unless gaps are common
                pool64 = pool.to(*CPU64)
                # a detector hunting garbage takes a column's values off its pile as rare as they
                # are (vaekit.cells.piled_at); an anomaly hunter, as its normal model makes them
                # (the autoencoders' bend, when they have one, is this one, fitted on the same rows;
                # a copy, for a file's tensors may not share memory)
                self.cell_bend_ = (
                    self.input_bend_.clone()
                    if self.input_bend_ is not None
                    else fit_warp(pool64, *self._number_units, self.garbage_classifier)
                )
                bent = warp(pool64, self.cell_bend_)
                self.cell_mean_, self.cell_precision_, self.cell_weights_, largest = fit_cells(
                    bent, self._cell_targets, self.garbage_classifier
                )
                # a column's tail beyond its edges is estimated from a few rows beyond them
                # with fewer rows, those at a column's edges (the largest of a few, a rare level)
                # would pass for anomalies; a detector hunting garbage (its garbage classifier on)
                # wants the field times 1,000 of a small table found, and judges edges from fewer
                least = GARBAGE_ROWS if self.garbage_classifier else EDGE_ROWS
                self.cell_edges_ = fit_edges(bent) if len(pool) >= least else None
                # on the encoded values (a grid is lost when bent); none if no number column has one
                grids = fit_grids(pool64, self._number_targets)
                self.cell_grids_ = grids if bool((grids[1] * self._number_targets).any()) else None
                # the columns without a grid whose values come from a few levels
                levels = fit_levels(pool64, self._number_targets, grids)
                self.cell_levels_ = levels if bool((~levels[0].isnan()).any()) else None
                # two number fields holding the same value, one their columns seldom hold
                if int(self._number_targets.sum()) >= 2:
                    self.cell_common_, self.cell_copies_ = fit_copies(
                        pool64, self._number_units, self._number_targets
                    )
                if pool is x:
                    raw["cells"] = largest.numpy()
                    if self.cell_edges_ is not None:
                        raw["edge"] = edge_rarity(bent, self.cell_edges_, self._cell_targets).numpy()
                    if self.cell_grids_ is not None:
                        raw["grid"] = grid_rarity(pool64, self.cell_grids_, self._number_targets).numpy()
                    if self.cell_levels_ is not None:
                        raw["level"] = level_rarity(pool64, self.cell_levels_, self._number_targets).numpy()
                    if self.cell_copies_ is not None:
                        raw["copy"] = copy_rarity(pool64, *self._copy_model()).numpy()
                else:
                    table, rarities = self._cells(x, mask)
                    raw |= table | rarities
                del bent, pool64
                # a classifier of spoilt copies of the rows; each training row judged by a member
                # that did not learn from it
                wide = len(self._number_features) > self.GARBAGE_FEATURES
                if (
                    self.garbage_classifier
                    and len(x) >= GARBAGE_ROWS
                    and len(self._number_features)
                    and not wide
                ):
                    self.garbage_, raw["garbage"] = self._fit_garbage(x, mask)
            # a level that its column seldom holds: a misspelt or foreign category
            if self._category_slots:
                self.category_shares_ = fit_categories(pool.to(*CPU64), self._category_slots)
                raw |= self._categories(x)
                # a level that the rest of its row makes unlikely: a wrong label, a field from elsewhere
                context = self._fit_context(x, mask) if len(x) >= self.CONTEXT_ROWS else None
                if context is not None:
                    raw["context"] = context
            rarities = {name: raw.pop(name) for name in RARITIES if name in raw}
            fences = {name: auto_fence(values) for name, values in raw.items()}
            good = np.logical_and.reduce([raw[name] <= fence for name, fence in fences.items()])
            for rarity in rarities.values():
                good &= rarity <= RARITY_FENCE
            cut = good.sum() >= 2  # the values of the rows judged good end at each sign's fence
            if not cut:
                good[:] = True
            self.sign_tails_ = tails = {
                name: _tail_of(values[good], fences[name] if cut else None, _log_shift(values))
                for name, values in raw.items()
            }
            # "auto": the highest of the signs' fences on the rarity scale, but no rarer than a normal
            # sample's fence (0.13%) raised for the number of signs a good row may pass (as for
            # images): a sign whose fence lies far out in a long tail would hide the garbage that
            # another sign finds rare
            # (not the garbage classifier's: its log odds pile up wherever the garbage it was taught
            # as rows as they are falls, and a heap of noise rows put its fence far out)
            at_fence = [
                float(_surprise(np.array([fences[name]]), *tails[name])[0])
                for name in raw
                if name != "garbage"
            ]
            highest = max([*at_fence, *([RARITY_FENCE] if rarities or "garbage" in raw else [])])
            self.auto_cut_ = min(highest, -math.log(NormalDist().cdf(-fence_z(len(raw) + len(rarities)))))
            if self.garbage_classifier and "error" in raw:
                self.error_groups_ = self._fit_error_groups(x, mask, raw, fences, rarities)
            table = {name: raw[name] for name in TABLE_SIGNS if name in raw}
            groups = self._error_groups_of(x, mask)
            score = self._combined(errors, distances, None, raw["neighbours"], None, table, rarities, groups)
            self.column_range_ = self._column_ranges(x, mask, score <= self.auto_cut_)
            return score
        # Images: the other signs are mapped onto the reconstruction and distance score, each after
        # the one before, by its "auto" fence; the cut is a stricter fence of it, for more signs
        # let more good images pass one of them
        score = self._combined(errors, distances)
        base, fence = score, auto_fence(score, log_scale=True)
        profiles = {"framing": self._framing_profiles(x, chunk)} if "zoom" in self.views_ else {}
        losses = self._view_losses(x, profiles.get("framing"))
        for kind, loss in losses.items():
            # chance guesses a view with a cross-entropy of log(views): a classifier that does
            # not get to half of that on most training images found nothing to learn (no upright
            # in textures, cells or views from above), and its judgement would only add noise
            wanted = self.orientation if kind == "turn" else self.framing
            if wanted == "auto" and np.median(loss) > np.log(self.views_[kind].n_views) / 2:
                del self.views_[kind]
        view_odds = None
        # the view sign: how the turn classifier misjudges an image (the zoom classifier's
        # judgement is part of the framing profile, a sign of its own); its median onto the
        # score's and its own fence onto the score's
        self.view_sign_ = [kind for kind in ("turn",) if kind in self.views_]
        if self.view_sign_:
            view_odds = _log_odds(np.mean([losses[kind] for kind in self.view_sign_], axis=0))
            self.view_center_, self.view_scale_ = _onto(view_odds, score, fence)
            score = self._combined(errors, distances, view_odds)
        if "zoom" not in self.views_:
            profiles.pop("framing", None)
        if self.sharpness is True or (self.sharpness == "auto" and min(self.image_shape_[1:]) >= MIN_SIDE):
            profiles["spectrum"] = spectrum_profile(x, self.image_shape_, chunk=chunk)
        far = {}
        for name in self.PROFILE_SIGNS:
            if name in profiles:
                far[name] = self._fit_profile_sign(name, profiles[name], score, fence)
                score = self._combined(errors, distances, view_odds, None, far)
        # what is fenced: the autoencoders' score (its error, both ways, and distance fenced as
        # one), the view sign and the profile signs
        self.auto_signs_ = 1 + bool(self.view_sign_) + len(far)
        self.auto_z_ = fence_z(self.auto_signs_)
        self.auto_cut_ = auto_fence(base, log_scale=True, z=self.auto_z_)
        return score

    def _fit_error_groups(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None,
        raw: dict[str, np.ndarray],
        fences: dict[str, float],
        rarities: dict[str, np.ndarray],
    ) -> dict | None:
        """Hunting garbage, the groups of training rows that share a value off a feature's pile
        (a rare yes, a count of 1 that most rows hold 0 of), held by ``PILE_OFF`` of the rows and
        ``GROUP_ROWS`` at least, whose reconstruction errors lie beyond the error sign's fence as
        a whole (their median): the autoencoders, a few latent variables wide and trimmed of their
        worst rows, may leave out a column that few rows set apart, and every row of the group
        then lay beyond the fence, with the garbage (all the yes rows of a flag that 5% of the rows
        raise, in half of the fits of a table of two readings and two flags). A row of such a group
        is judged among the group's rows too, as rare as the group plus as rare as its error there
        (:meth:`_error_in_groups`). For each group: the feature, its value, -log of its share and
        the tail of its rows' errors (of those under the group's own fence and every other sign's)."""
        error = raw["error"]
        others = [raw[name] <= fence for name, fence in fences.items() if name != "error"]
        others += [rarity <= RARITY_FENCE for rarity in rarities.values()]
        usual = np.logical_and.reduce(others) if others else np.ones(len(error), dtype=bool)
        pile, share = piles(x.to(*CPU64))
        observed = self._observed_features(mask)
        seen = np.ones(x.shape, dtype=bool) if observed is None else observed.numpy() > 0
        values = x.cpu().numpy()
        groups: dict[str, list] = {"features": [], "values": [], "log_shares": [], "tails": []}
        for f in torch.nonzero(piled_at(share))[:, 0].tolist():
            column = values[seen[:, f], f]
            levels, counts = np.unique(column[column != float(pile[f])], return_counts=True)
            for value, count in zip(levels, counts, strict=True):
                if count < max(GROUP_ROWS, PILE_OFF * len(column)):
                    continue
                inside = seen[:, f] & (values[:, f] == value)
                if not np.median(error[inside]) > fences["error"]:
                    continue
                fence = auto_fence(error[inside])
                good = inside & usual & (error <= fence)
                if good.sum() < GROUP_ROWS // 2:
                    continue
                groups["features"].append(f)
                groups["values"].append(float(value))
                groups["log_shares"].append(-math.log(count / len(column)))
                groups["tails"].append(_tail_of(error[good], fence, _log_shift(error[inside])))
        return groups if groups["features"] else None

    def _error_groups_of(self, x: torch.Tensor, mask: torch.Tensor | None) -> np.ndarray | None:
        """(rows, groups) bool: whether each row is in each of ``error_groups_`` (its feature
        observed and at the group's value); None without groups."""
        groups = getattr(self, "error_groups_", None)
        if groups is None:
            return None
        features = torch.tensor(groups["features"], device=x.device)
        values = torch.tensor(groups["values"], dtype=x.dtype, device=x.device)
        inside = x[:, features] == values
        if mask is not None:
            inside &= mask[:, self._owner_of_feature[features]] > 0
        return inside.cpu().numpy()

    def _error_in_groups(self, error: np.ndarray, surprise: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The error sign of rows in ``error_groups_``: the least of its rarity among all the rows
        (``surprise``) and, for each group a row is in, the group's rarity plus that of the row's
        ``error`` among the group's rows."""
        out = surprise.copy()
        for k, tail in enumerate(self.error_groups_["tails"]):
            inside = groups[:, k]
            if inside.any():
                within = self.error_groups_["log_shares"][k] + _surprise(error[inside], *tail)
                out[inside] = np.minimum(out[inside], within)
        return out

    def _fit_profile_sign(
        self, name: str, profiles: torch.Tensor, score: np.ndarray, fence: float
    ) -> np.ndarray:
        """The profile sign ``name``: its reference, the profiles of ``PROFILE_REFERENCE`` distinct
        training images judged good (``score`` under the ``fence``), and its map onto the score.
        Framing: its median and ``FRAMING_QUANTILE`` among the images judged good fall on the
        score's (its own fence let its long tail of good images outrank noise and turned images).
        Spectrum: as the view sign, its median and its own fence onto the score's median and fence
        (its tail among good images is short; a high quantile among the images judged good would
        fall on the garbage that the other signs missed, when there is enough of it). Returns the
        training images' distances."""
        good = np.flatnonzero(score <= fence)
        pool = profiles[torch.from_numpy(good).to(profiles.device)]
        chosen = torch.from_numpy(_distinct_rows(pool, self.PROFILE_REFERENCE)).to(profiles.device)
        self.profile_references_[name] = pool[chosen].float()
        far = self._profile_distances({name: profiles})[name]
        sign = np.log(far + EPS)
        if name == "framing":
            levels = [0.5, self.FRAMING_QUANTILE]
            low, high = np.quantile(sign[good], levels)
            to_low, to_high = np.quantile(score[good], levels)
            scale = max(high - low, 1e-6) / max(to_high - to_low, 1e-6)
            self.profile_maps_[name] = (low - to_low * scale, scale)
        else:
            self.profile_maps_[name] = _onto(sign, score, fence)
        return far

    def auto_threshold(self, scores: np.ndarray) -> float:
        """For tables: the highest of the signs' fences (median + 3 robust standard deviations of
        each sign of the training rows, as in :func:`vaekit.thresholds.auto_fence`) on the score's
        scale, the signs' rarity among the training rows judged good, but no higher than the rarity
        of a normal sample's fence (-log of 0.13%) raised for the number of signs a row can fail
        (:func:`vaekit.thresholds.fence_z`); learnt in ``fit``, it also cuts other data.
        For images: a fence of the autoencoders' score, learnt in ``fit``, raised from 3 robust
        standard deviations for the number of signs fenced (the autoencoders' score, the view sign,
        the profile signs: :func:`vaekit.thresholds.fence_z`), for each lets a few good images pass;
        a detector saved by an older vaekit without view classifiers finds it by the rule of
        :func:`vaekit.thresholds.auto_threshold` on the scores it is given."""
        cut = getattr(self, "auto_cut_", None)
        return super().auto_threshold(scores) if cut is None else float(cut)

    @property
    def auto_rule(self) -> str:
        if getattr(self, "auto_cut_", None) is None:
            return super().auto_rule
        if self.scores_are_logs:
            maps = getattr(self, "profile_maps_", {})
            z = getattr(self, "auto_z_", 3.0)
            raised = f" (3, raised for the {self.auto_signs_} signs an image can fail)" if z > 3 else ""
            return (
                f"median + {z:.2f} robust standard deviations{raised} of the training images' scores "
                "from the autoencoders"
                + (
                    (
                        ", or of how often the view classifiers misjudge which way up they are and how "
                        "closely framed (log odds)"
                        if "zoom" in self.view_sign_
                        else ", or of how often the turn classifier misjudges which way up they are "
                        "(log odds)"
                    )
                    if getattr(self, "view_sign_", None)
                    else ""
                )
                + ", whichever an image passes"
                + (
                    ", or the distance of its framing profile to the training images' (its median "
                    f"and {self.FRAMING_QUANTILE:.0%} quantile put on those of the scores)"
                    if "framing" in maps
                    else ""
                )
                + (
                    ", or of the distance of the spectrum of its detail to the training images'"
                    if "spectrum" in maps
                    else ""
                )
                + "; estimated without labels"
            )
        if getattr(self, "sign_tails_", None) is None:  # a detector saved by an older vaekit
            return (
                "the higher of two fences, median + 3 robust standard deviations of the log-scaled "
                "reconstruction errors and of the distances of the codes of the training rows, "
                "estimated without labels"
            )
        cells = "cells" in self.sign_tails_
        codes = "distance" in self.sign_tails_  # left out by a detector hunting garbage
        # the signs that are rarities already, as counted by the cut (fit: fence_z)
        rare = [
            text
            for attribute, text in (
                ("cell_edges_", "so far beyond its column's edges"),
                ("cell_grids_", "so far off its column's grid"),
                ("cell_levels_", "none of the few values of its column"),
                ("cell_copies_", "holding the value of another field, one neither column often holds"),
                ("category_shares_", "holding a level its column holds so seldom"),
                ("context_", "holding a level the rest of its row makes so unlikely"),
            )
            if getattr(self, attribute, None) is not None
        ]
        signs = (
            "the log-scaled reconstruction errors"
            + (", the distances of the codes" * codes)
            + ", the distances to the nearest rows"
            + (", the largest deviation of a field from what the rest of its row predicts" * cells)
        )
        fences = ("two", "three", "four")[codes + cells]
        if next(iter(self.sign_tails_.values())).shift is None:  # saved by an older vaekit
            return (
                f"the highest of {fences} fences, median + 3 robust standard "
                f"deviations of {signs} of the training rows, estimated without labels"
                + (
                    f", or a field {' or '.join(rare)} that fewer than 0.13% of rows would have "
                    "one like it (the share of a normal sample beyond such a fence)"
                    if rare
                    else ""
                )
            )
        n_signs = len(self.sign_tails_) + len(rare)
        return (
            f"the highest of {fences} fences, median + 3 robust standard "
            f"deviations over the training rows of {signs}"
            + (f", and a field {' or '.join(rare)} (fewer than 0.13% of rows have one)" * bool(rare))
            + (
                ", and a garbage classifier's log odds that the row is a spoilt copy (as rare as 0.13% "
                "of rows)"
            )
            * ("garbage" in self.sign_tails_)
            + "; each sign on the scale of its rarity among the rows under every fence, but no rarer "
            f"than {100 * NormalDist().cdf(-Z) / n_signs:.2g}% of rows (a normal sample's share beyond "
            f"median + 3 standard deviations, 0.13%, divided by the {n_signs} signs a row can fail); "
            "estimated without labels"
        )

    def _scores(self, X: ArrayLike) -> np.ndarray:
        return self._row_scores(*self._encoded(X))

    def _feature_errors(self, X: ArrayLike) -> np.ndarray:
        """Counterfactual attribution: how much the row's score drops when one column is set to a
        typical value (its median, or for a category the one of its ``ATTRIBUTION_LEVELS`` most
        common levels that lowers it most: a city swapped for the most common one is not undone by
        the most common one). When no single column brings the score down to the typical row's
        (fields each enough to flag the row, such as two amounts both far out: set one right, the
        other keeps the score up, and the drops would share the blame among columns that lower it by
        a hair), the part left unexplained goes by how much the typical row's score rises when it
        takes the row's value in a column: for the rows scored above ``threshold_``, whose
        explanation is read (it costs as many passes again as the drops). Errors alone blame the
        wrong column: a corrupted field throws the whole reconstruction off, so that columns
        correlated with it are reconstructed badly too; they choose the ``ATTRIBUTION_CANDIDATES``
        columns tried, and a row whose score no column moves falls back to them. Missing cells get
        no blame."""
        x, mask = self._encoded(X)
        plain = self._in_chunks(x, mask, lambda errors, m: errors.mean(dim=0, keepdim=True))[0]
        if self.image_shape_ is not None:
            return plain  # one pixel set to a typical value explains nothing: the error map does
        k = min(plain.shape[1], self.ATTRIBUTION_CANDIDATES)
        candidates = np.argsort(-plain, axis=1, kind="stable")[:, :k]
        options, counts = self._replacements()  # the typical row first, then other levels
        typical = options[0].expand_as(x)
        base = self._row_scores(x, mask)
        floor = self._row_scores(typical, mask)  # the typical row, with the row's gaps
        drops, rises = np.zeros_like(plain), np.zeros_like(plain)
        rows, columns = np.repeat(np.arange(len(x)), k), candidates.reshape(-1)

        def scores_of(r: np.ndarray, c: np.ndarray, make) -> np.ndarray:
            """The scores of the rows ``make(row indices, column masks)`` builds, in chunks."""
            out = np.empty(len(r))
            for start in range(0, len(r), 65_536):
                part = slice(start, start + 65_536)
                at = torch.from_numpy(r[part]).to(x.device)
                where = self._column_of[torch.from_numpy(c[part]).to(x.device)]
                out[part] = self._row_scores(make(at, where), None if mask is None else mask[at])
            return out

        for level, replacement in enumerate(options):
            tried = counts[columns] > level
            r, c = rows[tried], columns[tried]
            repaired = scores_of(r, c, lambda at, where, by=replacement: torch.where(where, by, x[at]))
            drops[r, c] = np.maximum(drops[r, c], base[r] - repaired)
        excess = base - floor
        share = np.divide(drops.max(axis=1), excess, out=np.ones_like(excess), where=excess > 0)
        unexplained = np.clip(1.0 - share, 0.0, 1.0)  # of the score, by the largest drop
        needed = (unexplained > 0) & (base > self.threshold_)  # the others' rises: nothing or unread
        needed = needed[rows]
        r, c = rows[needed], columns[needed]
        alone = scores_of(r, c, lambda at, where: torch.where(where, x[at], typical[at]))
        rises[r, c] = np.maximum(alone - floor[r], 0.0)
        blame = drops + unexplained[:, None] * rises
        if mask is not None:
            blame *= mask.cpu().numpy()
        explained = blame.sum(axis=1) > 1e-9
        return np.where(explained[:, None], blame, plain)

    def _replacements(self) -> tuple[torch.Tensor, np.ndarray]:
        """The rows whose values replace a column's in :meth:`_feature_errors`: the first the
        typical row, the n-th each category at its n-th most common level other than the typical
        one; and how many of them each column has (1 for numbers and dates)."""
        rows, counts = [self.encoder_.typical_row()], []
        for column, where in zip(self.encoder_.columns, self.encoder_.slices(), strict=True):
            others = [i for i in range(len(column.levels)) if i != column.typical]
            others = others[: self.ATTRIBUTION_LEVELS - 1] if column.kind == "categorical" else []
            counts.append(1 + len(others))
            for n, level in enumerate(others, start=1):
                if n == len(rows):
                    rows.append(rows[0].copy())
                rows[n][where] = 0.0
                rows[n][where.start + level] = 1.0
        device = self._typical.device
        return torch.from_numpy(np.stack(rows)).to(device), np.asarray(counts)

    ATTRIBUTION_CANDIDATES = 16
    ATTRIBUTION_LEVELS = 8

    # -- saving: one safetensors file for the ensemble, the rest in config.json ----------
    def _write_members(self, folder: Path) -> dict:
        from safetensors.torch import save_file

        from vaekit.persistence import WEIGHTS, _sha256

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.module_.state_dict().items()}
        tensors["column_scale"] = self.column_scale_.detach().cpu().contiguous()
        tensors["latent_mean"] = self.latent_mean_.detach().cpu().contiguous()
        tensors["latent_whitening"] = self.latent_whitening_.detach().cpu().contiguous()
        tensors["latent_reference"] = self.latent_reference_.detach().cpu().contiguous()
        if getattr(self, "input_reference_", None) is not None:
            tensors["input_reference"] = self.input_reference_.detach().cpu().contiguous()
        if getattr(self, "input_bend_", None) is not None:  # absent from the files of older versions
            tensors["input_bend"] = self.input_bend_
        if getattr(self, "cell_precision_", None) is not None:
            tensors["cell_mean"], tensors["cell_precision"] = self.cell_mean_, self.cell_precision_
            # absent from the detectors of older versions
            for name in ("bend", "weights", "edges", "grids", "levels", "common", "copies"):
                if getattr(self, f"cell_{name}_", None) is not None:
                    tensors[f"cell_{name}"] = getattr(self, f"cell_{name}_")
        if getattr(self, "category_shares_", None) is not None:  # absent from older versions' files
            tensors["category_shares"] = self.category_shares_
        if getattr(self, "garbage_", None) is not None:
            for k, v in self.garbage_.state_dict().items():
                tensors[f"garbage.{k}"] = v.detach().cpu().contiguous()
        if getattr(self, "context_", None) is not None:
            for k, v in self.context_.state_dict().items():
                tensors[f"context.{k}"] = v.detach().cpu().contiguous()
            tensors["context_log_shares"] = self.context_log_shares_
            tensors["context_tail"] = self.context_tail_
        for name, reference in getattr(self, "profile_references_", {}).items():
            tensors[f"{name}_reference"] = reference.detach().cpu().contiguous()
        for kind, classifier in getattr(self, "views_", {}).items():
            for k, v in classifier.state_dict().items():
                tensors[f"views.{kind}.{k}"] = v.detach().cpu().contiguous()
        save_file(tensors, str(folder / WEIGHTS))
        return {"n_members": 0, "weights_sha256": _sha256(folder / WEIGHTS)}

    def _state(self) -> dict:
        return {
            "dims": self.module_.dims,
            "steps": self.steps_,
            "history": self.history_,
            "encoder": self.encoder_.to_dict(),
            "score_center": self.score_center_.tolist(),
            "score_scale": self.score_scale_.tolist(),
            "auto_cut": self.auto_cut_,
            "auto_z": getattr(self, "auto_z_", None),
            "auto_signs": getattr(self, "auto_signs_", None),
            "column_range": getattr(self, "column_range_", None),
            "sign_tails": None
            if getattr(self, "sign_tails_", None) is None
            else {name: _tail_state(tail) for name, tail in self.sign_tails_.items()},
            "error_groups": None
            if getattr(self, "error_groups_", None) is None
            else self.error_groups_ | {"tails": [_tail_state(tail) for tail in self.error_groups_["tails"]]},
            "garbage": None
            if getattr(self, "garbage_", None) is None
            else dict(zip(("inputs", "hidden", "members"), self.garbage_.shape, strict=True)),
            "context": None
            if getattr(self, "context_", None) is None
            else dict(zip(("inputs", "hidden", "members"), self.context_.shape, strict=True))
            | {"slots": self.context_.n_slots, "columns": self.context_columns_},
            "views": None
            if not getattr(self, "views_", None)
            else {
                "kinds": list(self.views_),
                "sign": self.view_sign_,
                "center": self.view_center_ if self.view_sign_ else None,
                "scale": self.view_scale_ if self.view_sign_ else None,
            },
        } | {
            name: {"center": self.profile_maps_[name][0], "scale": self.profile_maps_[name][1]}
            if name in self.profile_maps_
            else None
            for name in self.PROFILE_SIGNS
        }

    def _read_members(self, path: Path, config: dict) -> None:
        from vaekit.models.ensemble import EnsembleAutoencoder
        from vaekit.persistence import load_state_checked, read_weights
        from vaekit.tabular import TableEncoder
        from vaekit.training import resolve_device

        state = config["detector"]
        dims = [int(d) for d in state["dims"]]
        self.encoder_ = TableEncoder.from_dict(state["encoder"], path / "config.json")
        tensors = read_weights(path, config)
        module = EnsembleAutoencoder(self.n_models, dims)
        column_scale = tensors.pop("column_scale", None)
        latent = [tensors.pop(f"latent_{name}", None) for name in ("mean", "whitening", "reference")]
        expected = (self.n_models, len(self.encoder_.columns))
        if column_scale is None or tuple(column_scale.shape) != expected or dims[0] != self.encoder_.width:
            raise ModelFileError(
                f"{path}: the weights do not fit the column encoding in config.json; "
                "retrain or restore the detector"
            )
        k = dims[len(dims) // 2]
        if any(t is None for t in latent) or tuple(latent[0].shape) != (self.n_models, k):
            raise ModelFileError(
                f"{path}: a detector without the reference codes of its training rows (saved by an "
                "older vaekit?); retrain it"
            )
        input_reference = tensors.pop("input_reference", None)  # absent from older files
        input_bend = tensors.pop("input_bend", None)  # absent from the files of older versions
        fitting = self.image_shape_ is None and input_bend is not None and input_bend.shape == (5, dims[0])
        if input_bend is not None and not fitting:
            raise ModelFileError(
                f"{path}: the bend of the autoencoders' inputs does not fit the column encoding; "
                "retrain the detector"
            )
        if (input_reference is None) != (state.get("sign_tails") is None):
            raise ModelFileError(
                f"{path}: the detector's file holds the neighbours sign's reference rows or its "
                "scale but not both; retrain or restore the detector"
            )
        if input_reference is not None and (input_reference.ndim != 2 or input_reference.shape[1] != dims[0]):
            raise ModelFileError(
                f"{path}: the reference rows do not fit the column encoding; retrain the detector"
            )
        # absent from older files
        cell_model = [tensors.pop(f"cell_{name}", None) for name in ("mean", "precision")]
        # absent from the files of older versions
        cell_bend, cell_weights, cell_edges, cell_grids, cell_levels, cell_common, cell_copies = (
            tensors.pop(f"cell_{name}", None)
            for name in ("bend", "weights", "edges", "grids", "levels", "common", "copies")
        )
        category_shares = tensors.pop("category_shares", None)  # absent from older versions' files
        if category_shares is not None and tuple(category_shares.shape) != (1, dims[0]):
            raise ModelFileError(
                f"{path}: the category sign's shares do not fit the column encoding; retrain the detector"
            )
        has_cells = "cells" in (state.get("sign_tails") or {})
        if (
            any((t is None) == has_cells for t in cell_model)
            or (
                has_cells
                and (tuple(cell_model[0].shape), tuple(cell_model[1].shape)) != ((dims[0],), (dims[0],) * 2)
            )
            or any(
                t is not None and (not has_cells or tuple(t.shape) != (rows, dims[0]))
                for t, rows in ((cell_bend, 5), (cell_edges, 6), (cell_grids, 3), (cell_levels, 1 + LEVELS))
            )
            or (cell_edges is not None and cell_bend is None)  # the edges are on the bent scale
            or (cell_weights is not None and (not has_cells or tuple(cell_weights.shape) != (dims[0],)))
            or (cell_common is None) != (cell_copies is None)
            or (
                cell_common is not None
                and (not has_cells or tuple(cell_common.shape) != (1 + COMMON, dims[0]))
            )
            or (
                cell_copies is not None
                and (cell_copies.ndim != 2 or cell_copies.shape[0] != 4 or cell_copies.shape[1] < 1)
            )
        ):
            raise ModelFileError(
                f"{path}: the detector's file holds part of the cells sign (its model of the columns or "
                "its scale) or a model that does not fit the column encoding; retrain or restore the detector"
            )
        profile_references = {}
        for name in self.PROFILE_SIGNS:  # absent from older files
            reference, scale = tensors.pop(f"{name}_reference", None), state.get(name)
            needs = "zoom" if name == "framing" else None
            if (reference is None) != (scale is None) or (
                scale is not None and needs and needs not in (state.get("views") or {}).get("kinds", [])
            ):
                raise ModelFileError(
                    f"{path}: the detector's file holds part of the {name} sign (its reference profiles, "
                    f"its scale{' or its zoom classifier' if needs else ''}) but not all; retrain or "
                    "restore the detector"
                )
            if reference is not None:
                profile_references[name] = reference
        views = {k: tensors.pop(k) for k in list(tensors) if k.startswith("views.")}
        garbage_weights = {
            k.removeprefix("garbage."): tensors.pop(k) for k in list(tensors) if k.startswith("garbage.")
        }
        context_weights = {
            k.removeprefix("context."): tensors.pop(k) for k in list(tensors) if k.startswith("context.")
        }
        context_tables = [tensors.pop(f"context_{name}", None) for name in ("log_shares", "tail")]
        garbage = state.get("garbage")  # absent from the files of older versions
        if (garbage is None) != ("garbage" not in (state.get("sign_tails") or {})) or (
            garbage is not None and not has_cells
        ):
            raise ModelFileError(
                f"{path}: the detector's file holds part of the garbage sign (its classifier or its "
                "scale) but not all; retrain or restore the detector"
            )
        self.garbage_ = None
        if garbage is not None:
            self.garbage_ = GarbageClassifier(
                int(garbage["inputs"]), int(garbage["hidden"]), int(garbage["members"])
            )
            load_state_checked(self.garbage_, GarbageClassifier.stacked(garbage_weights), path)
            self.garbage_.eval()
        elif garbage_weights:
            raise ModelFileError(f"{path}: a garbage classifier without its settings; retrain the detector")
        load_state_checked(module, tensors, path)
        device = resolve_device(self.device)
        self.views_ = {}
        saved = config["detector"].get("views")  # absent from the files of older versions
        from vaekit.models.views import KINDS, ViewClassifier

        for kind in [] if saved is None else saved["kinds"]:
            if self.image_shape_ is None or kind not in KINDS:
                raise ModelFileError(
                    f"{path}: a {kind!r} view classifier does not belong here; retrain the detector"
                )
            classifier = ViewClassifier(self.image_shape_, kind)
            prefix = f"views.{kind}."
            load_state_checked(
                classifier,
                {k.removeprefix(prefix): v for k, v in views.items() if k.startswith(prefix)},
                path,
            )
            self.views_[kind] = classifier.to(device).eval()
        self.module_ = module.to(device).eval()
        self.column_scale_ = column_scale.to(device)
        self.latent_mean_, self.latent_whitening_, self.latent_reference_ = (t.to(device) for t in latent)
        self.input_reference_ = None if input_reference is None else input_reference.to(device)
        self.input_bend_ = None if input_bend is None else input_bend.to(*CPU64)
        self.cell_mean_, self.cell_precision_ = (
            (t.to(*CPU64) for t in cell_model) if has_cells else (None, None)
        )
        (
            self.cell_bend_,
            self.cell_weights_,
            self.cell_edges_,
            self.cell_grids_,
            self.cell_levels_,
            self.cell_common_,
            self.cell_copies_,
        ) = (
            None if t is None else t.to(*CPU64)
            for t in (cell_bend, cell_weights, cell_edges, cell_grids, cell_levels, cell_common, cell_copies)
        )
        self.category_shares_ = None if category_shares is None else category_shares.to(*CPU64)
        self.profile_references_ = profile_references  # on the CPU, as the profiles
        self.dropped_columns_ = dict(self.encoder_.dropped)
        self._layout(device)
        self._read_context(path, state, context_weights, *context_tables)
        if (
            self.garbage_ is not None
            and int(garbage["inputs"]) != dims[0] + 2 * len(self._number_features) + 1
        ):
            raise ModelFileError(
                f"{path}: the garbage classifier does not fit the column encoding; retrain the detector"
            )

    def _read_context(
        self,
        path: Path,
        state: dict,
        weights: dict[str, torch.Tensor],
        shares: torch.Tensor | None,
        tail: torch.Tensor | None,
    ) -> None:
        """The context classifier and its tables from the detector's file (absent from the files of
        older versions), checked against the column encoding (:meth:`_layout` done)."""
        from vaekit.persistence import load_state_checked

        context = state.get("context")
        self.context_ = self.context_columns_ = self.context_log_shares_ = self.context_tail_ = None
        if context is None and not weights and shares is None and tail is None:
            return
        n_slots = slot_offset(self._category_slots, len(self._category_slots))
        columns = None if context is None else context.get("columns")
        if (
            context is None
            or shares is None
            or tail is None
            or not isinstance(columns, list)
            or not columns
            or any(not isinstance(k, int) or not 0 <= k < len(self._category_slots) for k in columns)
            or int(context["inputs"])
            != self.encoder_.width + len(self.encoder_.columns) + len(self._category_slots)
            or int(context["slots"]) != n_slots
            or tuple(shares.shape) != (n_slots,)
            or tuple(tail.shape) != (len(GRID),)
        ):
            raise ModelFileError(
                f"{path}: the detector's file holds part of the context sign (its classifier, its "
                "settings or its tables) or one that does not fit the column encoding; retrain or "
                "restore the detector"
            )
        classifier = ContextClassifier(
            int(context["inputs"]), n_slots, int(context["hidden"]), int(context["members"])
        )
        load_state_checked(classifier, weights, path)
        self.context_ = classifier.eval()
        self.context_columns_ = [int(k) for k in columns]
        self.context_log_shares_, self.context_tail_ = shares.to(*CPU64), tail.to(*CPU64)

    def _set_state(self, state: dict) -> None:
        self.steps_ = int(state["steps"])
        self.history_ = {str(k): [float(v) for v in values] for k, values in state.get("history", {}).items()}
        self.score_center_ = np.asarray(state["score_center"], dtype=np.float64)
        self.score_scale_ = np.asarray(state["score_scale"], dtype=np.float64)
        cut = state["auto_cut"]
        self.auto_cut_ = None if cut is None else float(cut)
        if state.get("auto_z") is not None:  # absent from the files of older versions (3)
            self.auto_z_, self.auto_signs_ = float(state["auto_z"]), int(state["auto_signs"])
        ranges = state.get("column_range")  # absent from the files of older versions
        self.column_range_ = None if ranges is None else [None if r is None else tuple(r) for r in ranges]
        tails = state.get("sign_tails")  # absent from the files of older versions
        self.sign_tails_ = (
            None
            if tails is None
            else {
                # files of older versions: tails on the signs' own scale
                str(k): SignTail(
                    np.asarray(v["body"], dtype=np.float64),
                    float(v["scale"]),
                    None if v.get("shift") is None else float(v["shift"]),
                )
                for k, v in tails.items()
            }
        )
        groups = state.get("error_groups")  # absent from the files of older versions
        self.error_groups_ = (
            None
            if groups is None
            else {
                "features": [int(f) for f in groups["features"]],
                "values": [float(v) for v in groups["values"]],
                "log_shares": [float(v) for v in groups["log_shares"]],
                "tails": [
                    SignTail(np.asarray(t["body"], dtype=np.float64), float(t["scale"]), float(t["shift"]))
                    for t in groups["tails"]
                ],
            }
        )
        views = state.get("views")
        if views is not None:
            # files of older versions: the view sign from every classifier
            self.view_sign_ = [str(kind) for kind in views.get("sign", views["kinds"])]
            if self.view_sign_:
                self.view_center_ = float(views["center"])
                self.view_scale_ = float(views["scale"])
        self.profile_maps_ = {
            name: (float(state[name]["center"]), float(state[name]["scale"]))
            for name in self.PROFILE_SIGNS
            if state.get(name) is not None
        }


def _onto(values: np.ndarray, score: np.ndarray, cut: float) -> tuple[float, float]:
    """(center, scale) such that (values - center) / scale puts the median of ``values`` on that
    of ``score`` and their "auto" fence (:func:`vaekit.thresholds.auto_fence`, on a log scale) on
    ``cut``."""
    middle, values_middle = np.median(score), np.median(values)
    scale = max(auto_fence(values, log_scale=True) - values_middle, 1e-6) / max(cut - middle, 1e-6)
    return float(values_middle - middle * scale), float(scale)


def _reference_pool(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """The rows of ``x`` that models of the good rows are fitted on: those with no gaps (``mask``
    all ones), unless gaps are common (in half of the rows or more)."""
    complete = None if mask is None else mask.all(dim=1)
    return x if complete is None or 2 * int(complete.sum()) < len(x) else x[complete]


def _distinct_rows(x: torch.Tensor, most: int) -> np.ndarray:
    """Indices of at most ``most`` rows of ``x`` in a fixed random order, each distinct row once
    (told apart by a hash of their bytes: ``np.unique`` on whole rows sorts wide ones slowly; which
    rows are kept depends only on which rows are equal, not on the hash values)."""
    rows = np.random.default_rng(0).permutation(len(x))[:most]
    sample = x[torch.from_numpy(rows).to(x.device)].cpu().numpy()
    _, first = np.unique(np.array([hash(row.tobytes()) for row in sample]), return_index=True)
    return rows[np.sort(first)]


def _mean_nearest(
    rows: torch.Tensor,
    reference: torch.Tensor,
    k: int,
    seen: torch.Tensor | None = None,
    copy_within: float = 0.0,
) -> np.ndarray:
    """(rows,): the mean distance from each of ``rows`` to its ``k`` nearest ``reference`` rows
    (distinct, float64), a reference row identical to it not counting (a training row is not its
    own neighbour); with ``copy_within`` > 0, nor one at most that far (values computed in float32,
    which round differently with the number of rows at a time). With ``seen`` (rows' 0/1 observed
    features), on the observed features only, scaled up to a whole row's width."""
    # with its own copy left out, a reference row has one neighbour fewer to choose from
    k = max(1, min(k, len(reference) - 1))
    reference_norms = (reference**2).sum(dim=1)
    if seen is None:
        norms = (rows**2).sum(dim=1, keepdim=True)
        squared = torch.addmm(reference_norms, rows, reference.T, alpha=-2).add_(norms)
    else:  # |m(x - r)|^2 = |m x|^2 + m . r^2 - 2 (m x) . r over the observed features m
        rows = rows * seen
        norms = (rows**2).sum(dim=1, keepdim=True)
        squared = torch.addmm(norms + seen @ (reference**2).T, rows, reference.T, alpha=-2)
        squared *= seen.shape[1] / seen.sum(dim=1, keepdim=True).clamp_min(1)
    squared = squared.clamp_min_(0)
    # a row's copy among the reference rows (at most one: they are distinct) is its nearest: at a
    # distance of zero up to rounding, then checked value for value; or within copy_within
    closest, which = squared.min(dim=1)
    if copy_within > 0:
        same = torch.nonzero(closest <= copy_within**2)[:, 0]
    else:
        close = torch.nonzero(closest <= 1e-9 * (norms[:, 0] + reference_norms[which]) + EPS)[:, 0]
        same = close[(rows[close] == reference[which[close]]).all(dim=1)]
    squared[same, which[same]] = torch.inf
    nearest = _smallest(squared, k)
    finite = torch.isfinite(nearest)
    total = torch.where(finite, nearest.sqrt(), 0).sum(dim=1)
    return (total / finite.sum(dim=1).clamp_min(1)).cpu().numpy()


def _smallest(values: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k`` smallest values along the last axis, in no particular order but the k-th last."""
    if values.device.type == "cpu":  # numpy's introselect: several times faster than topk here
        return torch.from_numpy(np.partition(values.numpy(), k - 1, axis=-1)[..., :k])
    return values.topk(k, dim=-1, largest=False, sorted=True).values


TAIL = 0.1  # the share of the training rows above which a sign's tail is modelled as exponential
MAX_CUT_SCALE = 10.0  # the largest tail scale fitted to values cut at a fence, in widths of the cut tail
BODY_LEVELS = 181  # at most, quantiles of a sign's training values kept below its tail: every 0.5%
BODY_ROWS = 10  # at least, training values per step between two of them


class SignTail(NamedTuple):
    """A table sign's rarity among the training rows judged good (:func:`_tail_of`): the body's
    quantiles, the exponential tail's scale beyond them and the shift of the log scale both are on
    (None: the sign's own scale, as in the files of older versions)."""

    body: np.ndarray
    scale: float
    shift: float | None = None


def _tail_state(tail: SignTail) -> dict:
    """A sign's tail as JSON."""
    return tail._asdict() | {"body": tail.body.tolist()}


def _tail_of(values: np.ndarray, fence: float | None = None, shift: float | None = None) -> SignTail:
    """A sign's rarity among the training rows, on the scale log(value + ``shift``) (the value
    itself when None): its quantiles up to ``1 - TAIL`` (the body), and the scale of an
    exponential tail above them with the median excess of the values beyond the body, cut at the
    ``fence`` when there is one (the rows judged good are those under every sign's fence:
    :func:`_uncut_scale`)."""
    values = _on_tail_scale(values, shift)
    # steps of at least BODY_ROWS values: between two quantiles of few values the map is steep,
    # and would blow up the rounding of the signs (which differs with the rows scored at a time)
    levels = int(np.clip((1 - TAIL) * len(values) / BODY_ROWS, 2, BODY_LEVELS))
    body = np.quantile(values, np.linspace(0, 1 - TAIL, levels))
    excess = values[values > body[-1]] - body[-1]
    half = float(np.median(excess)) if len(excess) else 0.0
    if not half > 0:  # no tail seen: the body's spread, or 1 when the sign is constant
        return SignTail(body, float(body[-1] - body[0]) or 1.0, shift)
    width = math.inf if fence is None else float(_on_tail_scale(np.array([fence]), shift)[0]) - body[-1]
    return SignTail(body, _uncut_scale(half, width), shift)


def _log_shift(values: np.ndarray) -> float:
    """The shift of the log scale on which a sign's "auto" fence is found
    (:func:`vaekit.thresholds.auto_fence`: log(value - lowest + a thousandth of the median's
    height above it)); its tail is modelled on the same scale, where the tail of a long-tailed
    sign (the errors of good rows on a table of long-tailed columns) is about exponential."""
    low = float(values.min())
    return (float(np.median(values)) - low) * 1e-3 + 1e-12 - low


def _on_tail_scale(values: np.ndarray, shift: float | None) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if shift is None:
        return values
    # values below the training rows' lowest (a new row's) lie below the body: rarity 0 either way
    return np.log(np.maximum(values + shift, 1e-300))


def _uncut_scale(median_excess: float, width: float) -> float:
    """The scale s of an exponential tail cut ``width`` beyond its start (inf: not cut) whose
    median excess there is ``median_excess``: (1 - exp(-m / s)) / (1 - exp(-w / s)) = 1/2, so
    s = m / log 2 uncut. The median, not the mean: a few garbage rows under every fence, far out
    in a sign's tail, would stretch the mean excess and with it the tail. A tail cut short has a
    smaller median excess than its scale would give (for a scale of 1 cut 1 beyond, 0.38 and not
    0.69), and taken as uncut it would make the rows beyond the cut far rarer than they are. At
    most ``width`` times ``MAX_CUT_SCALE`` (a cut tail about flat)."""
    if not math.isfinite(width):
        return median_excess / math.log(2)
    if width <= 0 or median_excess >= width / 2:
        return max(median_excess / math.log(2), MAX_CUT_SCALE * width)
    lo, hi = median_excess / math.log(2) / 2, MAX_CUT_SCALE * width
    for _ in range(100):  # the cut median rises with s: bisection
        mid = (lo + hi) / 2
        cut_median = -mid * math.log1p(math.expm1(-width / mid) / 2)
        if cut_median < median_excess:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _surprise(values: np.ndarray, body: np.ndarray, scale: float, shift: float | None = None) -> np.ndarray:
    """-log of the share of training rows with a sign at least as large: from the body's quantiles
    up to ``1 - TAIL``, beyond them -log(TAIL) plus the excess in units of the tail's scale (rows
    beyond every training row still keep their order); on the scale of :func:`_tail_of`."""
    values = _on_tail_scale(values, shift)
    below = np.interp(values, body, np.linspace(0, 1 - TAIL, len(body)))
    out = -np.log1p(-below)
    above = values > body[-1]
    out[above] = -np.log(TAIL) + (values[above] - body[-1]) / scale
    return out


def _how_often(share: float) -> str:
    """A share in words: "28%", "1.5%", "1 in 14,000", "fewer than 1 in a million"."""
    if share >= 0.01:
        return f"{100 * share:.3g}%"
    if share < 1e-6:
        return "fewer than 1 in a million"
    return f"1 in {round(1 / share):,}"


def _in_units(encoded: float, column) -> float:
    """An encoded number in its column's own units, rounded to a millionth of the column's
    scale (the float32 encoding leaves noise below that: a 0 would read 4e-08)."""
    resolution = column.scale * 1e-6
    return float(np.round((encoded * column.scale + column.center) / resolution) * resolution)


def _dates_in_units(encoded: tuple[float, ...], column) -> list[str]:
    """Encoded dates (days) as text, to the minute (the float32 encoding leaves seconds of noise),
    without the time when every one of them is at midnight."""
    days = np.asarray(encoded, dtype=np.float64) * column.scale + column.center
    stamps = pd.to_datetime(days * 86_400e9, unit="ns").round("min")  # as the encoder's inverse reads them
    written = "%Y-%m-%d" if (stamps == stamps.normalize()).all() else "%Y-%m-%d %H:%M"
    return list(stamps.strftime(written))


def _log_odds(loss: np.ndarray) -> np.ndarray:
    """log(exp(loss) - 1): for the cross-entropy -log p of a right answer, the log odds of a wrong one."""
    return np.log(np.maximum(np.expm1(loss), EPS))


def _masked_median(errors: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """(members, columns): the median error of each column over the rows where it is observed."""
    if mask is None:  # a member at a time: the median's sort needs a copy and int64 indices
        return torch.stack([member.median(dim=0).values for member in errors])
    observed = mask.bool().T  # (columns, rows)
    out = torch.zeros(errors.shape[0], errors.shape[2], dtype=errors.dtype, device=errors.device)
    for j in range(errors.shape[2]):
        if observed[j].any():
            out[:, j] = errors[:, observed[j], j].median(dim=1).values
    return out


@contextlib.contextmanager
def _small_model_threads(device: torch.device, module: nn.Module) -> Iterator[None]:
    """One CPU thread for small models: their operations are too short to share out, and a
    second thread waiting on a busy core costs more than it brings."""
    small = sum(p.numel() for p in module.parameters()) < 500_000
    if device.type != "cpu" or not small or torch.get_num_threads() == 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def _progress(total: int, verbose: int, desc: str = "training") -> Iterator[object]:
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, unit="step", disable=not verbose, leave=False) as bar:
        yield bar


def wrap_model(model: VAE | Autoencoder, random_state: int = 0) -> BaseDetector:
    """A detector around a trained :class:`VAE` (scores: -ELBO) or :class:`Autoencoder` (scores:
    the reconstruction error on its scaled data), with no threshold yet: call ``set_threshold``."""
    check_is_fitted(model, "module_")
    if isinstance(model, VAE):
        detector = VAEDetector(random_state=random_state)
        detector.seed_ = random_state
    else:
        detector = AutoencoderDetector(random_state=random_state)
    detector.models_ = [model]
    detector.n_features_in_ = model.n_features_in_
    detector.image_shape_ = model.image_shape_
    return detector


DETECTORS: dict[str, type[BaseDetector]] = {
    cls.__name__: cls
    for cls in (AutoencoderDetector, VAEDetector, RobustAutoencoderDetector, AnomalyDetector)
}
