"""Convolutional models on images: shapes for any size, training, save/load, auto-selection, binarization."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vaekit
from vaekit import VAE, Autoencoder, DataError, ParameterError
from vaekit.images import ImageData
from vaekit.models import ConvDecoder, ConvEncoder, Gaussian, ModelConfig, build_module
from vaekit.models.conv import feature_map_sizes
from vaekit.training import TrainConfig, Trainer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions are quicker on one thread, and much quicker on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def blobs(n: int, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """(n, c, h, w) float32 in [0, 1]: a soft bright disc at a random place on a dark ground."""
    c, h, w = shape
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    centres = rng.uniform(0.25, 0.75, size=(n, 2)) * (h, w)
    radius = min(h, w) / 4
    d2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    disc = 1 / (1 + np.exp((np.sqrt(d2) - radius) * 1.5))  # (n, h, w)
    colours = rng.uniform(0.5, 1.0, size=(n, c, 1, 1))
    return (disc[:, None] * colours).astype(np.float32)


# -- the halves ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (1, 64, 64), (1, 30, 30), (3, 13, 21)], ids=str
)
def test_encoder_and_decoder_shapes_for_any_image_size(shape):
    torch.manual_seed(0)
    d = math.prod(shape)
    encoder = ConvEncoder(shape, 6, channels=(4, 8))
    decoder = ConvDecoder(3, shape, n_params_per_pixel=2, channels=(4, 8))
    assert encoder(torch.rand(5, d)).shape == (5, 6)  # flat in, flat out
    assert decoder(torch.randn(5, 3)).shape == (5, 2 * d)
    assert 4 <= min(feature_map_sizes(*shape[1:])[-1]) <= 7


def test_feature_maps_halve_down_to_four_to_seven_pixels():
    assert feature_map_sizes(28, 28) == [(28, 28), (14, 14), (7, 7)]
    assert feature_map_sizes(64, 64)[-1] == (4, 4) and len(feature_map_sizes(64, 64)) == 5
    assert feature_map_sizes(8, 8) == [(8, 8), (4, 4)]
    assert feature_map_sizes(30, 30) == [(30, 30), (15, 15), (7, 7)]


def test_decoder_gives_the_gaussian_its_means_then_its_log_variances():
    """Output channels [0, C) are the means and [C, 2C) the log-variances, flattened image by image."""
    shape = (3, 10, 10)
    decoder = ConvDecoder(2, shape, n_params_per_pixel=2, channels=(4,))
    last = decoder.deconvs[-1]
    with torch.no_grad():
        last.weight[:, 3:] = 0.0  # ConvTranspose2d weight: (in, out, kH, kW)
        last.bias[3:] = 1.5
    mean, logvar = Gaussian(math.prod(shape), variance="decoder").mean_logvar(decoder(torch.randn(4, 2)))
    assert torch.all(logvar == 1.5) and not torch.all(mean == 1.5)


def test_model_config_without_the_image_fields_still_builds_an_mlp():
    old = {"kind": "vae", "n_features": 5, "latent_dim": 2, "hidden": [8], "likelihood": "gaussian"}
    config = ModelConfig.from_dict(old)
    assert config.architecture == "mlp" and config.image_shape is None and not config.binarize
    assert isinstance(build_module(config).encoder, torch.nn.Sequential)
    bad = ModelConfig(kind="vae", n_features=5, latent_dim=2, architecture="conv", image_shape=[1, 2, 2])
    with pytest.raises(ValueError, match="image_shape"):
        build_module(bad)


# -- dynamic binarization -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_dynamic_binarization_draws_new_binary_images_every_epoch_and_not_in_eval(kind):
    torch.manual_seed(0)
    config = ModelConfig(
        kind=kind,
        n_features=64,
        latent_dim=2,
        likelihood="bernoulli",
        architecture="conv",
        image_shape=[1, 8, 8],
        channels=[4],
        binarize=True,
    )
    module = build_module(config)
    seen: list[torch.Tensor] = []
    module.encoder.register_forward_pre_hook(lambda _, args: seen.append(args[0].detach().clone()))
    x = torch.full((40, 64), 0.5)
    trainer = Trainer(
        module, TrainConfig(epochs=3, batch_size=40, patience=None), torch.device("cpu"), verbose=0
    )
    trainer.fit(x)
    assert len(seen) == 3  # one batch per epoch
    for batch in seen:
        assert set(batch.unique().tolist()) == {0.0, 1.0} and 0.4 < batch.mean() < 0.6
    assert not torch.equal(seen[0], seen[1]) and not torch.equal(seen[1], seen[2])
    seen.clear()
    module.eval()
    module(x)
    assert torch.equal(seen[0], x)  # eval mode: the grey values as given


def test_binarize_and_channels_are_checked():
    with pytest.raises(ParameterError, match="binarize=True"):
        VAE(binarize=True, likelihood="gaussian", epochs=1).fit(blobs(10, (1, 8, 8)))
    with pytest.raises(ParameterError, match="binarize='yes'"):
        VAE(binarize="yes", epochs=1).fit(blobs(10, (1, 8, 8)))
    for channels in [(0, 8), 32, ()]:
        with pytest.raises(ParameterError, match="channels="):
            VAE(channels=channels, epochs=1).fit(blobs(10, (1, 8, 8)))


# -- estimators on images -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def grey() -> np.ndarray:
    return blobs(160, (1, 16, 16), seed=1)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return blobs(48, (3, 20, 18), seed=2)


@pytest.fixture(scope="module")
def fitted(grey, rgb):
    small = dict(latent_dim=3, channels=(4, 8), batch_size=32, random_state=0)
    return {
        "vae_binarized": VAE(epochs=6, binarize=True, **small).fit(ImageData(images=grey)),
        "vae_rgb_decoder_variance": VAE(
            epochs=2, likelihood="gaussian", variance="decoder", norm="layer", **small
        ).fit(rgb),
        "ae_rgb": Autoencoder(epochs=2, norm="batch", **small).fit(rgb),
    }


def data_for(name, grey, rgb):
    return grey if name == "vae_binarized" else rgb


def test_conv_vae_training_lowers_the_loss(fitted):
    model = fitted["vae_binarized"]
    assert model.config_.architecture == "conv" and model.module_.binarize
    history = [record["train_neg_elbo"] for record in model.history_]
    assert history[-1] < history[0] - 5, history


@pytest.mark.parametrize("name", ["vae_binarized", "vae_rgb_decoder_variance", "ae_rgb"])
def test_image_models_give_images_back(fitted, grey, rgb, name):
    model = fitted[name]
    x = data_for(name, grey, rgb)
    shape = x.shape[1:]
    assert model.image_shape_ == shape and model.n_features_in_ == math.prod(shape)
    assert model.reconstruct(x[:5]).shape == (5, *shape)
    if shape[0] == 1:
        assert model.reconstruct(x[:5, 0]).shape == (5, *shape)  # (n, h, w) for grey images
    assert model.transform(x.reshape(len(x), -1)).shape == (len(x), 3)  # rows of pixels are fine too
    assert model.decode(np.zeros((4, 3))).shape == (4, *shape)
    if isinstance(model, VAE):
        assert model.sample(6, random_state=0).shape == (6, *shape)
        assert model.elbo(x[:5]).shape == (5,)
    with pytest.raises(DataError, match=r"trained on \(\d, \d+, \d+\); give"):
        model.reconstruct(np.zeros((2, 1, 9, 9), dtype=np.float32))


@pytest.mark.parametrize("name", ["vae_binarized", "vae_rgb_decoder_variance", "ae_rgb"])
def test_saved_and_loaded_image_model_gives_bit_identical_outputs(fitted, grey, rgb, tmp_path, name):
    model = fitted[name]
    x = data_for(name, grey, rgb)[:20]
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    assert loaded.config_ == model.config_ and loaded.image_shape_ == model.image_shape_
    np.testing.assert_array_equal(loaded.reconstruct(x), model.reconstruct(x))
    if isinstance(model, VAE):
        np.testing.assert_array_equal(loaded.elbo(x, k=3), model.elbo(x, k=3))
        np.testing.assert_array_equal(loaded.sample(4, random_state=1), model.sample(4, random_state=1))
    else:
        np.testing.assert_array_equal(loaded.encode(x), model.encode(x))


def test_architecture_auto_takes_conv_for_images_of_16_pixels_and_more():
    from sklearn.datasets import load_digits

    digits = load_digits().images[:60]  # (60, 8, 8), values 0..16
    quick = dict(latent_dim=2, hidden=(8,), channels=(4,), epochs=1, random_state=0)
    mlp = VAE(**quick).fit(digits)
    assert mlp.config_.architecture == "mlp" and mlp.image_shape_ == (1, 8, 8)
    assert mlp.reconstruct(digits[:3]).shape == (3, 1, 8, 8)
    assert len(set(mlp.scaler_.scale)) == 1  # one range 0..16 -> [0, 1] for every pixel
    assert mlp.scaler_.center[0] == 0 and mlp.scaler_.scale[0] == 16

    forced = VAE(architecture="conv", **quick).fit(digits)
    assert forced.config_.architecture == "conv" and forced.sample(2).shape == (2, 1, 8, 8)
    assert Autoencoder(**quick).fit(blobs(20, (1, 16, 16))).config_.architecture == "conv"
    assert Autoencoder(**quick).fit(blobs(20, (1, 16, 12))).config_.architecture == "mlp"
    assert VAE(architecture="mlp", **quick).fit(blobs(20, (3, 16, 16))).config_.architecture == "mlp"

    table = digits.reshape(60, -1)
    assert VAE(**quick).fit(table).image_shape_ is None
    with pytest.raises(ParameterError, match="architecture='conv' needs images"):
        VAE(architecture="conv", **quick).fit(table)
    with pytest.raises(ParameterError, match="architecture='dense'"):
        VAE(architecture="dense", **quick).fit(digits)
    with pytest.raises(DataError, match="channels-last"):
        VAE(**quick).fit(np.zeros((5, 8, 8, 3)))
