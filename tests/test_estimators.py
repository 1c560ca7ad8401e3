"""The scikit-learn contract of VAE and Autoencoder, and their settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from vaekit import VAE, Autoencoder, DataError, ParameterError

ESTIMATORS = [VAE, Autoencoder]


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.RandomState(0)
    return rng.normal(size=(300, 5)) @ rng.normal(size=(5, 8))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_init_stores_settings_untouched_and_clone_works(cls):
    model = cls(latent_dim=3, hidden=[7, 5], epochs=4)
    assert model.get_params()["hidden"] == [7, 5]
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    assert not hasattr(copy, "module_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_returns_self_and_sets_learned_attributes(cls, X):
    model = cls(hidden=(16,), epochs=2, random_state=0)
    assert model.fit(X) is model
    assert model.n_features_in_ == 8 and model.n_epochs_ == 2 and len(model.history_) == 2
    assert model.n_train_ + model.n_val_ == len(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_unfitted_model_refuses_to_score(cls, X):
    with pytest.raises(NotFittedError):
        cls().transform(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitting_twice_gives_the_same_result(cls, X):
    model = cls(hidden=(16,), epochs=3, random_state=0)
    first = model.fit(X).transform(X)
    np.testing.assert_array_equal(model.fit(X).transform(X), first)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"latent_dim": 0}, "latent_dim=0"),
        ({"hidden": (16, -1)}, "hidden="),
        ({"activation": "sigmoidal"}, "activation='sigmoidal'"),
        ({"likelihood": "poisson"}, "likelihood='poisson'"),
        ({"dropout": 1.5}, "dropout=1.5"),
        ({"lr": 0}, "lr=0"),
        ({"epochs": 2.5}, "epochs=2.5"),
    ],
)
def test_bad_settings_are_named_with_their_allowed_values(setting, message, X):
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        VAE(**setting).fit(X)


def test_shapes_and_types_follow_the_input(X):
    vae = VAE(latent_dim=3, hidden=(16,), epochs=2, random_state=0).fit(X)
    mu, logvar = vae.encode(X)
    assert mu.shape == logvar.shape == (300, 3) and mu.dtype == np.float32
    assert isinstance(vae.reconstruct(X), np.ndarray) and vae.reconstruct(X).shape == X.shape
    assert vae.sample(7).shape == (7, 8)
    assert vae.decode(np.zeros((2, 3))).shape == (2, 8)
    assert vae.elbo(X).shape == (300,)
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(8)])
    fitted = VAE(latent_dim=3, hidden=(16,), epochs=2, random_state=0).fit(frame)
    assert list(fitted.reconstruct(frame).columns) == list(frame.columns)
    assert list(fitted.feature_names_in_) == list(frame.columns)


def test_elbo_is_deterministic_by_default_and_sampling_follows_its_seed(X):
    vae = VAE(hidden=(16,), epochs=2, random_state=0).fit(X)
    np.testing.assert_array_equal(vae.elbo(X), vae.elbo(X))
    np.testing.assert_array_equal(vae.sample(5, random_state=3), vae.sample(5, random_state=3))
    assert not np.array_equal(vae.sample(5, random_state=3), vae.sample(5, random_state=4))


def test_likelihood_auto_picks_bernoulli_for_unit_interval_data():
    rng = np.random.RandomState(0)
    binary = (rng.rand(200, 6) > 0.5).astype(float)
    assert VAE(hidden=(8,), epochs=1).fit(binary).config_.likelihood == "bernoulli"
    counts = binary * 16  # digits-like grey levels: Gaussian unless asked
    assert VAE(hidden=(8,), epochs=1).fit(counts).config_.likelihood == "gaussian"
    vae = VAE(hidden=(8,), epochs=1, likelihood="bernoulli").fit(counts)
    assert vae.scaler_.method == "minmax"
    means = vae.sample(20, mean=True)
    assert means.min() >= 0 and means.max() <= 16
    with pytest.raises(DataError, match="needs \\[0, 1\\]"):
        VAE(hidden=(8,), epochs=1, likelihood="bernoulli", scaling="none").fit(counts)


def test_bad_data_names_the_column_and_row():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, np.nan, 2.0]})
    with pytest.raises(DataError, match="column 'b', row 2"):
        VAE().fit(frame)
    with pytest.raises(DataError, match="at least 2 rows"):
        VAE().fit(np.ones((1, 3)))
    vae = VAE(hidden=(4,), epochs=1).fit(pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [1.0, 0.0, 2.0]}))
    with pytest.raises(DataError, match=r"\['b'\] that are missing"):
        vae.transform(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(DataError, match="has 3 column"):
        vae.transform(np.ones((2, 3)))


@pytest.mark.parametrize("k", [0, -3, 1.5])
def test_number_of_samples_is_checked(X, k):
    vae = VAE(hidden=(8,), epochs=1, random_state=0).fit(X)
    with pytest.raises(ParameterError, match="number of samples"):
        vae.elbo(X, k=k)
    with pytest.raises(ParameterError, match="number of samples"):
        vae.log_likelihood(X, k=k)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_bfloat16_training_runs_the_forward_pass_in_bfloat16_and_learns_as_float32_does(cls, monkeypatch):
    """Mixed precision: the linear layers' outputs in bfloat16 while training (seen by a global
    forward hook), in float32 when validating and scoring; the weights in float32; a loss within
    3% of float32 training's after as many epochs; the same result from the same seed. On a
    device without bfloat16 units: a warning, and training in float32, the same as asked for."""
    import warnings

    import torch
    from sklearn.datasets import load_digits

    from vaekit import training

    monkeypatch.setattr(training, "has_bfloat16_units", lambda device: True)  # emulated here if need be

    X = load_digits().data / 16.0

    def fit(precision: str):
        seen = set()

        def record(module, inputs, out):
            if isinstance(module, torch.nn.Linear):
                seen.add((module.training, out.dtype))

        hook = torch.nn.modules.module.register_module_forward_hook(record)
        try:
            model = cls(latent_dim=4, hidden=(32,), epochs=8, random_state=0, precision=precision).fit(X)
            model.transform(X[:5])
        finally:
            hook.remove()
        return model, seen

    full, seen_full = fit("float32")
    half, seen_half = fit("bfloat16")
    assert seen_full == {(True, torch.float32), (False, torch.float32)}
    assert seen_half == {(True, torch.bfloat16), (False, torch.float32)}
    assert all(p.dtype == torch.float32 for p in half.module_.parameters())
    last_full, last_half = full.history_[-1]["train_loss"], half.history_[-1]["train_loss"]
    assert abs(last_half - last_full) <= 0.03 * abs(last_full)
    again, _ = fit("bfloat16")
    assert [r["train_loss"] for r in again.history_] == [r["train_loss"] for r in half.history_]
    with pytest.raises(ParameterError, match="precision"):
        cls(precision="half").fit(X)
    monkeypatch.setattr(training, "has_bfloat16_units", lambda device: False)
    with pytest.warns(RuntimeWarning, match="no bfloat16 matrix units.*float32 instead"):
        fallback, seen_fallback = fit("bfloat16")
    assert seen_fallback == seen_full
    assert [r["train_loss"] for r in fallback.history_] == [r["train_loss"] for r in full.history_]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit("float32")
