"""Model files: safetensors + JSON, bit-identical after a round trip, loud when damaged."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import vaekit
from vaekit import VAE, Autoencoder, ModelFileError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return load_wine(as_frame=True).data


@pytest.fixture(scope="module")
def fitted(frame):
    return {
        "vae": VAE(latent_dim=3, hidden=(32,), epochs=5, random_state=0).fit(frame),
        "vae_decoder_variance": VAE(
            latent_dim=2, hidden=(16, 8), variance="decoder", norm="layer", epochs=3, random_state=0
        ).fit(frame),
        "ae": Autoencoder(latent_dim=3, hidden=(32,), norm="batch", epochs=5, random_state=0).fit(frame),
    }


@pytest.mark.parametrize("name", ["vae", "vae_decoder_variance", "ae"])
def test_saved_and_loaded_model_gives_bit_identical_outputs(fitted, frame, tmp_path, name):
    model = fitted[name]
    model.save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    assert type(loaded) is type(model)
    assert loaded.get_params() == {**model.get_params(), "verbose": 0}
    for method in ("transform", "reconstruct"):
        a, b = getattr(model, method)(frame), getattr(loaded, method)(frame)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    if name.startswith("vae"):
        np.testing.assert_array_equal(model.elbo(frame, k=3), loaded.elbo(frame, k=3))
        np.testing.assert_array_equal(model.sample(5, random_state=1), loaded.sample(5, random_state=1))
        np.testing.assert_array_equal(model.log_likelihood(frame, k=20), loaded.log_likelihood(frame, k=20))
    else:
        np.testing.assert_array_equal(model.reconstruction_error(frame), loaded.reconstruction_error(frame))
    assert loaded.history_ == model.history_


def test_model_folder_holds_only_json_and_safetensors(fitted, tmp_path):
    fitted["vae"].save(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["config.json", "model.safetensors", "preprocessing.json", "training.json"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["format"] == "vaekit-model" and config["format_version"] == 1
    for name in names:
        assert b"\x80\x04" not in (tmp_path / "m" / name).read_bytes()[:2]  # no pickle header


def test_data_frame_columns_are_kept(fitted, frame, tmp_path):
    fitted["vae"].save(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m")
    samples = loaded.sample(4, random_state=0)
    assert isinstance(samples, pd.DataFrame) and list(samples.columns) == list(frame.columns)
    shuffled = frame[frame.columns[::-1]]  # column order does not matter when names are known
    np.testing.assert_array_equal(loaded.transform(shuffled), loaded.transform(frame))


def test_saving_over_an_existing_model_replaces_it(fitted, tmp_path):
    fitted["vae"].save(tmp_path / "m")
    fitted["ae"].save(tmp_path / "m")
    assert isinstance(vaekit.load(tmp_path / "m"), Autoencoder)
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary folder left behind


def test_damaged_weights_are_detected(fitted, tmp_path):
    fitted["vae"].save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte inside a tensor: safetensors alone would not notice
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        vaekit.load(tmp_path / "m")


def test_weights_of_another_architecture_are_refused(fitted, tmp_path):
    fitted["vae"].save(tmp_path / "a")
    fitted["vae_decoder_variance"].save(tmp_path / "b")
    (tmp_path / "a" / "model.safetensors").write_bytes((tmp_path / "b" / "model.safetensors").read_bytes())
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    config.pop("weights_sha256")
    (tmp_path / "a" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match=r"do not fit the architecture|has shape"):
        vaekit.load(tmp_path / "a")


def test_newer_format_version_is_refused(fitted, tmp_path):
    fitted["vae"].save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["format_version"] = 99
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFileError, match="format version 99"):
        vaekit.load(tmp_path / "m")


class Encoder(nn.Module):
    def __init__(self, n_features: int, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, 24), nn.Tanh(), nn.Linear(24, 2 * latent_dim))

    def forward(self, x):
        return self.net(x)


def test_custom_encoder_is_trained_saved_and_needed_to_load(frame, tmp_path):
    user_encoder = Encoder(frame.shape[1], 2)
    before = {k: v.clone() for k, v in user_encoder.state_dict().items()}
    vae = VAE(latent_dim=2, hidden=(16,), epochs=3, random_state=0, encoder=user_encoder).fit(frame)
    assert all(torch.equal(before[k], v) for k, v in user_encoder.state_dict().items())  # not mutated
    assert isinstance(vae.module_.encoder, Encoder)
    vae.save(tmp_path / "m")
    with pytest.raises(ModelFileError, match="custom encoder"):
        vaekit.load(tmp_path / "m")
    loaded = vaekit.load(tmp_path / "m", encoder=Encoder(frame.shape[1], 2))
    np.testing.assert_array_equal(loaded.transform(frame), vae.transform(frame))
