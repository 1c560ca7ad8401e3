"""The batched ensemble behind AnomalyDetector: each member is a plain MLP autoencoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import vaekit
from vaekit import AnomalyDetector, ModelFileError
from vaekit.models.ensemble import EnsembleAutoencoder


def test_each_member_is_the_mlp_its_weights_describe():
    dims = [7, 16, 8, 3, 8, 16, 7]
    ensemble = EnsembleAutoencoder(4, dims, torch.Generator().manual_seed(0))
    x = torch.randn(5, 7)
    out = ensemble(x)
    assert out.shape == (4, 5, 7)
    for m in range(4):
        layers = []
        for i, (w, b) in enumerate(zip(ensemble.weights, ensemble.biases, strict=True)):
            linear = nn.Linear(dims[i], dims[i + 1])
            linear.weight.data, linear.bias.data = w[m].T.clone(), b[m, 0].clone()
            layers.append(linear)
            if i not in (2, 5):  # the latent layer (index 2) and the output are linear
                layers.append(nn.ReLU())
        torch.testing.assert_close(out[m], nn.Sequential(*layers)(x))
    torch.testing.assert_close(ensemble.squared_errors(x), (out - x) ** 2)


def test_members_start_apart_and_the_seed_fixes_them():
    a = EnsembleAutoencoder(3, [5, 8, 2, 8, 5], torch.Generator().manual_seed(1))
    b = EnsembleAutoencoder(3, [5, 8, 2, 8, 5], torch.Generator().manual_seed(1))
    for wa, wb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(wa, wb)
    assert not torch.allclose(a.weights[0][0], a.weights[0][1])
    with pytest.raises(ValueError, match="dims"):
        EnsembleAutoencoder(2, [5, 8, 2, 8])


def test_trimming_keeps_garbage_from_being_learned():
    """With trimming, rows far off the data's line are reconstructed worse than without it."""
    rng = np.random.RandomState(0)
    t = rng.uniform(-1, 1, size=(900, 1))
    X = np.hstack([t, 2 * t, -t, 0.5 * t]) + 0.01 * rng.normal(size=(900, 4))
    garbage = rng.uniform(-3, 3, size=(100, 4))
    data = np.vstack([X, garbage])
    y = np.r_[np.zeros(900), np.ones(100)]
    from sklearn.metrics import roc_auc_score

    trimmed = AnomalyDetector(random_state=0).fit(data)
    plain = AnomalyDetector(random_state=0, trim=0.0).fit(data)

    def garbage_to_good(detector):  # the ratio of the median reconstruction errors
        errors = detector._parts(*detector._encoded(data))[0].mean(axis=0)
        return np.median(errors[y == 1]) / np.median(errors[y == 0])

    assert garbage_to_good(trimmed) > 2 * garbage_to_good(plain)
    assert roc_auc_score(y, trimmed.decision_scores_) > 0.99


def test_wide_tables_get_fewer_steps_and_images_more_unless_few():
    detector = AnomalyDetector(random_state=0)
    detector.image_shape_ = None
    assert detector._n_steps(10, 256, 5000) == AnomalyDetector.STEPS_TABLES
    assert 20 <= detector._n_steps(2000, 256, 5000) < AnomalyDetector.STEPS_TABLES
    detector.image_shape_ = (1, 28, 28)
    assert detector._n_steps(784, 256, 10_000) == AnomalyDetector.STEPS_IMAGES
    assert detector._n_steps(784, 256, 150) == AnomalyDetector.STEPS_TABLES  # not 1,000 epochs
    detector.steps = 50
    assert detector._n_steps(784, 256, 10_000) == 50


def test_image_scores_see_where_the_code_of_a_blank_image_lies():
    """A blank image can be easy to reconstruct; where its code lies gives it away."""
    from sklearn.datasets import load_digits

    digits = load_digits().images / 16.0
    images = np.concatenate([digits, np.zeros((5, 8, 8))])[:, None]
    detector = AnomalyDetector(random_state=0).fit(images)
    assert detector.scores_are_logs
    x, _ = detector._encoded(images.reshape(len(images), -1))
    _, distances = detector._parts(x, None)
    blank = slice(len(digits), None)
    # the members together put the blank images' codes beyond those of 99% of the digits
    center, scale = detector.score_center_[1], detector.score_scale_[1]
    distance = ((distances - center[:, None]) / scale[:, None]).mean(axis=0)
    assert distance[blank].min() > np.quantile(distance[: len(digits)], 0.99)
    assert (detector.decision_scores_[blank] > detector.threshold_).all()
    assert detector.labels_[: len(digits)].mean() < 0.05


@pytest.mark.parametrize("bad", [dict(n_models=0), dict(steps=1.5), dict(trim=0.6), dict(lr=0)])
def test_settings_are_checked(bad):
    with pytest.raises(vaekit.ParameterError):
        AnomalyDetector(**bad).fit(np.random.RandomState(0).normal(size=(50, 3)))


def test_a_damaged_detector_file_is_refused(tmp_path):
    X = np.random.RandomState(0).normal(size=(200, 4))
    AnomalyDetector(random_state=0, steps=30).fit(X).save(tmp_path / "det")
    weights = tmp_path / "det" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match=r"model\.safetensors"):
        vaekit.load(tmp_path / "det")
