"""The maths of the models: KL, reparameterised gradients, the ELBO against exact likelihoods."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import FactorAnalysis

import vaekit.errors as vaekit_errors
from vaekit import VAE
from vaekit.models import ModelConfig, VAEModule, build_module, gaussian_kl
from vaekit.models.vae import gaussian_log_prob


def test_analytic_kl_matches_monte_carlo():
    """KL(q || N(0, I)) in closed form equals E_q[log q(z) - log p(z)] within its standard error."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.0, 0.0, 0.0], [1.5, -0.7, 0.2], [-2.0, 3.0, 0.5]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.5, -2.5], [1.2, -0.3, 0.0]], dtype=torch.float64)
    m = 400_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn((m, *mu.shape), generator=gen, dtype=torch.float64)
    zeros = torch.zeros_like(z)
    log_ratio = gaussian_log_prob(z, mu, logvar) - gaussian_log_prob(z, zeros, zeros)  # (m, batch)
    estimate = log_ratio.mean(0)
    stderr = log_ratio.std(0) / math.sqrt(m)
    analytic = gaussian_kl(mu, logvar).sum(-1)
    assert analytic[0] == 0.0  # q = p
    assert torch.all((estimate - analytic).abs()[1:] < 4 * stderr[1:]), (estimate, analytic, stderr)


def _tiny_vae(likelihood: str = "gaussian") -> VAEModule:
    torch.manual_seed(0)
    config = ModelConfig(
        kind="vae", n_features=3, latent_dim=2, hidden=[4], activation="tanh", likelihood=likelihood
    )
    return build_module(config).double()


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_gradients_flow_through_the_reparameterised_sample(likelihood):
    """Autograd through z = mu + sigma * eps agrees with central finite differences for the encoder."""
    module = _tiny_vae(likelihood)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(5, 3, generator=gen, dtype=torch.float64)
    eps = torch.randn(5, 2, generator=gen, dtype=torch.float64)

    def loss() -> torch.Tensor:
        return module(x, eps=eps).loss

    weight = module.encoder[0].weight  # first encoder layer: it reaches the loss only through z
    module.zero_grad()
    loss().backward()
    analytic = weight.grad.clone()
    numeric = torch.zeros_like(weight)
    h = 1e-6
    with torch.no_grad():
        for index in np.ndindex(*weight.shape):
            weight[index] += h
            up = loss().item()
            weight[index] -= 2 * h
            down = loss().item()
            weight[index] += h
            numeric[index] = (up - down) / (2 * h)
    assert analytic.abs().max() > 1e-3  # the gradient is not trivially zero
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_gradient_reaches_the_encoder_through_the_reconstruction_term_alone():
    """With the KL weight at 0, the encoder still learns: the sample z carries the gradient."""
    module = _tiny_vae()
    x = torch.rand(8, 3, dtype=torch.float64)
    module(x, beta=0.0).loss.backward()
    assert module.encoder[0].weight.grad.abs().sum() > 0


def test_encoder_is_numerically_safe_for_extreme_inputs():
    module = _tiny_vae().float()
    x = torch.tensor([[1e6, -1e6, 1e6], [0.0, 0.0, 0.0], [-3e7, 5e5, 0.0]])
    mu, logvar = module.encode(x)
    assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    assert torch.isfinite(torch.exp(logvar)).all()
    assert torch.isfinite(module.elbo(x)).all()


def test_loss_is_reconstruction_plus_beta_kl_and_reports_the_true_elbo():
    module = _tiny_vae()
    x = torch.rand(6, 3, dtype=torch.float64)
    eps = torch.randn(6, 2, dtype=torch.float64)
    out1 = module(x, beta=1.0, eps=eps)
    out_half = module(x, beta=0.5, eps=eps)
    torch.testing.assert_close(out1.neg_elbo, out1.reconstruction + out1.kl)
    torch.testing.assert_close(out_half.loss, out1.reconstruction + 0.5 * out1.kl)
    torch.testing.assert_close(out_half.neg_elbo, out1.neg_elbo)  # beta changes the objective only
    torch.testing.assert_close(-module.elbo(x, eps=eps[None]).mean(), out1.neg_elbo)
    # free bits: units below the floor are held at it in the objective
    free = module(x, free_bits=10.0, eps=eps)
    torch.testing.assert_close(free.loss, out1.reconstruction + 10.0 * 2)


# -- the linear-Gaussian model, whose marginal likelihood is exact ----------------------------


def _linear_vae(X: np.ndarray, latent_dim: int, scaling: str) -> VAE:
    """A VAE with a linear encoder and decoder and a Gaussian likelihood: a factor model."""
    settings = dict(epochs=300, batch_size=256, lr=1e-2, patience=30, random_state=0)
    return VAE(latent_dim=latent_dim, hidden=(), likelihood="gaussian", scaling=scaling, **settings).fit(X)


@pytest.fixture(scope="module")
def linear_gaussian():
    """Data from a factor model x = W z + b + noise, and a linear VAE trained on it."""
    rng = np.random.RandomState(0)
    n, d, k = 3000, 6, 2
    w = rng.normal(size=(d, k))
    b = rng.normal(size=d) * 3
    noise = rng.uniform(0.2, 0.6, size=d)
    X = rng.normal(size=(n, k)) @ w.T + b + rng.normal(size=(n, d)) * noise
    return X, _linear_vae(X, latent_dim=k, scaling="none")


def _exact_log_likelihood(vae: VAE, X: np.ndarray) -> np.ndarray:
    """log N(x; b, W W^T + Psi) under the VAE's own linear decoder."""
    decoder = vae.module_.decoder[0]
    w = decoder.weight.detach().double()
    b = decoder.bias.detach().double()
    psi = torch.exp(vae.module_.likelihood.logvar.detach().double().clamp(math.log(1e-4), 10.0))
    cov = w @ w.T + torch.diag(psi)
    dist = torch.distributions.MultivariateNormal(b, covariance_matrix=cov)
    return dist.log_prob(torch.as_tensor(X, dtype=torch.float64)).numpy()


def _analytic_elbo(vae: VAE, X: np.ndarray) -> np.ndarray:
    """The ELBO of a linear-Gaussian VAE in closed form: E_q[log p(x|z)] needs no sampling."""
    decoder = vae.module_.decoder[0]
    w = decoder.weight.detach().double()
    b = decoder.bias.detach().double()
    logpsi = vae.module_.likelihood.logvar.detach().double().clamp(math.log(1e-4), 10.0)
    mu, logvar = (torch.as_tensor(a, dtype=torch.float64) for a in vae.encode(X))
    x = torch.as_tensor(X, dtype=torch.float64)
    mean_sq = (x - (mu @ w.T + b)) ** 2 + torch.exp(logvar) @ (w**2).T  # E_q[(x - Wz - b)^2]
    expected_log_px = -0.5 * (math.log(2 * math.pi) + logpsi + mean_sq / torch.exp(logpsi)).sum(-1)
    return (expected_log_px - gaussian_kl(mu, logvar).sum(-1)).numpy()


def _smallest_diagonal_gap(vae: VAE) -> float:
    """The least log p(x) - ELBO a diagonal q can reach: KL from the best diagonal Gaussian to the
    exact posterior N(m, Lambda^-1), Lambda = I + W^T Psi^-1 W, is (sum log Lambda_ii - log det Lambda) / 2.
    """
    w = vae.module_.decoder[0].weight.detach().double()
    psi = torch.exp(vae.module_.likelihood.logvar.detach().double().clamp(math.log(1e-4), 10.0))
    precision = torch.eye(w.shape[1], dtype=torch.float64) + w.T @ (w / psi[:, None])
    return float(0.5 * (torch.log(torch.diagonal(precision)).sum() - torch.logdet(precision)))


def test_elbo_is_below_the_exact_log_likelihood_and_close_to_it(linear_gaussian):
    X, vae = linear_gaussian
    exact = _exact_log_likelihood(vae, X)
    analytic = _analytic_elbo(vae, X)
    assert np.all(analytic <= exact + 1e-9)  # a bound for every single example
    gap = float(np.mean(exact - analytic))
    floor = _smallest_diagonal_gap(vae)
    # the amortised encoder comes within 0.1 nats of the best diagonal posterior (SGD noise
    # leaves a few hundredths: 0.06 after this budget, 0.02 after 600 epochs)
    assert floor - 1e-6 <= gap < floor + 0.1, (gap, floor)
    # the model's own Monte Carlo ELBO estimates the same quantity
    estimate = vae.elbo(X, k=2000)
    assert abs(float(np.mean(estimate - analytic))) < 0.01


def test_trained_linear_vae_reaches_the_maximum_likelihood_of_factor_analysis(linear_gaussian):
    """sklearn's FactorAnalysis gives the MLE of the same model: no bound of ours can beat it."""
    X, vae = linear_gaussian
    fa_loglik = FactorAnalysis(n_components=2, random_state=0).fit(X).score(X)
    elbo = float(np.mean(vae.elbo(X, k=500)))
    exact = float(np.mean(_exact_log_likelihood(vae, X)))
    assert exact <= fa_loglik + 1e-3
    assert fa_loglik - 0.1 < elbo <= fa_loglik + 0.01, (elbo, fa_loglik)


def test_importance_weighted_bound_tightens_with_k_and_converges_to_the_exact_value(linear_gaussian):
    X, vae = linear_gaussian
    X = X[:400]
    exact = _exact_log_likelihood(vae, X).mean()
    one_sample = vae.log_likelihood(X, k=1, random_state=1) - _analytic_elbo(vae, X)
    # k = 1 is an unbiased estimate of the ELBO
    assert abs(one_sample.mean()) < 4 * one_sample.std() / np.sqrt(len(X))
    bounds = [vae.log_likelihood(X, k=k, random_state=1).mean() for k in (1, 5, 50, 500)]
    assert all(a <= b + 1e-4 for a, b in itertools.pairwise(bounds)), bounds
    # E[estimate] <= log p(x); one draw of the mean over 400 rows scatters by its standard error
    gaps = vae.log_likelihood(X, k=500, random_state=1) - _exact_log_likelihood(vae, X)
    assert bounds[-1] <= exact + 4 * gaps.std() / np.sqrt(len(X)), (bounds[-1], exact)
    assert exact - bounds[-1] < 0.01


def test_elbo_is_reported_in_the_units_of_the_users_data(linear_gaussian):
    """Standardising the data inside the model must not change the density of the raw rows."""
    X, _ = linear_gaussian
    fa_loglik = FactorAnalysis(n_components=2, random_state=0).fit(X).score(X)
    vae = _linear_vae(X, latent_dim=2, scaling="standard")
    elbo = float(np.mean(vae.elbo(X, k=200)))
    assert fa_loglik - 0.1 < elbo <= fa_loglik + 0.01, (elbo, fa_loglik)


def test_iwae_on_a_nonlinear_model_is_above_the_elbo_and_grows_with_k():
    from sklearn.datasets import load_digits

    X = load_digits().data[:600] / 16.0
    vae = VAE(latent_dim=4, hidden=(64,), epochs=15, random_state=0).fit(X)
    elbo = vae.elbo(X, k=1, random_state=3).mean()
    iw = [vae.log_likelihood(X, k=k, random_state=3).mean() for k in (1, 10, 100)]
    assert abs(iw[0] - elbo) < 0.5
    assert iw[0] < iw[1] < iw[2]
    assert iw[2] - elbo > 0.1  # a visible gap on a nonlinear model


def test_iwae_training_loss_with_one_sample_is_the_elbo_and_with_more_is_tighter():
    torch.manual_seed(0)
    vae = _tiny_vae()
    x = torch.randn(64, 3, dtype=torch.float64)
    # k=1: a Monte Carlo estimate of the same -ELBO (its KL sampled, not analytic): equal on average
    with torch.no_grad():
        draws = [
            vae._iwae_loss(x, 1, torch.randn(1, 64, 2, dtype=torch.float64)).loss.item() for _ in range(2000)
        ]
        analytic = np.mean([vae(x).loss.item() for _ in range(2000)])
    assert abs(np.mean(draws) - analytic) < 4 * np.std(draws) / np.sqrt(len(draws))
    # with more samples the bound is tighter: -IWAE_k <= -ELBO, in expectation (many draws here)
    k_losses = [vae(x, iwae_samples=k).loss.item() for k in (2, 8, 32) for _ in range(20)]
    means = [np.mean(k_losses[i * 20 : (i + 1) * 20]) for i in range(3)]
    elbo_mean = np.mean([vae(x).neg_elbo.item() for _ in range(60)])
    assert elbo_mean > means[0] > means[1] > means[2]
    out = vae(x, iwae_samples=8)
    out.loss.backward()  # differentiable end to end
    assert all(p.grad is not None for p in vae.encoder.parameters())
    assert out.kl.item() > 0 and math.isfinite(out.neg_elbo.item())


def test_a_vae_trained_on_the_iwae_bound_saves_and_reloads(tmp_path):
    from sklearn.datasets import load_digits

    X = load_digits().data[:300] / 16.0
    vae = VAE(latent_dim=4, hidden=(32,), likelihood="bernoulli", iwae_samples=5, epochs=3, random_state=0)
    vae.fit(X)
    assert vae._train_config(0).iwae_samples == 5
    vae.save(tmp_path / "m")
    from vaekit import load

    again = load(tmp_path / "m")
    assert again.iwae_samples == 5
    np.testing.assert_array_equal(again.elbo(X[:10]), vae.elbo(X[:10]))
    for bad in (0, 2.5, True):
        with pytest.raises(vaekit_errors.ParameterError, match="iwae_samples"):
            VAE(iwae_samples=bad).fit(X)
    with pytest.raises(vaekit_errors.ParameterError, match="beta"):
        VAE(iwae_samples=3, beta=0.5).fit(X)


def test_evaluate_reports_bits_per_dimension_and_active_units():
    from sklearn.datasets import load_digits

    X = load_digits().data[:400] / 16.0
    vae = VAE(latent_dim=6, hidden=(64,), likelihood="bernoulli", epochs=20, random_state=0).fit(X)
    result = vae.evaluate(X, iwae_k=50)
    assert result["bits_per_dim"] == pytest.approx(result["neg_elbo"] / (64 * math.log(2)))
    assert result["nll_iwae_bits_per_dim"] == pytest.approx(result["nll_iwae"] / (64 * math.log(2)))
    assert result["nll_iwae"] <= result["neg_elbo"] + 0.05
    mu = vae.transform(X)
    assert result["active_units"] == int((mu.var(axis=0) > 0.01).sum())
    assert 1 <= result["active_units"] <= 6


def test_active_units_counts_the_dimensions_whose_posterior_mean_moves():
    """A VAE whose encoder ignores x in some latent dimensions: those are not active."""
    torch.manual_seed(0)
    encoder = torch.nn.Linear(3, 8)
    with torch.no_grad():
        encoder.weight[[1, 3, 5, 7]] = 0.0  # the mean of z_1 and z_3 does not depend on x ...
        encoder.weight[:4] *= torch.tensor([[3.0], [1.0], [0.01], [1.0]])  # ... nor, nearly, z_2's
    X = np.random.RandomState(0).normal(size=(500, 3)).astype(np.float32)
    vae = VAE(latent_dim=4, encoder=encoder, decoder=torch.nn.Linear(4, 3), epochs=1, random_state=0)
    vae.fit(X)
    with torch.no_grad():  # put the weights back after the epoch of training
        vae.module_.encoder.weight.copy_(encoder.weight)
    variances = vae.transform(X).var(axis=0)
    assert vae.active_units(X) == int((variances > 0.01).sum())
    assert variances[1] < 1e-10 and variances[3] < 1e-10


def test_autoregressive_likelihood_is_a_normalised_distribution_that_sampling_follows():
    """MADE pixels: every logit sees only the pixels before it, the probabilities of all 2^D
    binary vectors sum to one, and sequential sampling draws them with those probabilities."""
    from vaekit.models.likelihoods import AutoregressiveBernoulli

    torch.manual_seed(0)
    d, h = 4, 7
    made = AutoregressiveBernoulli(d, h)
    with torch.no_grad():
        for p in made.parameters():
            p.normal_(0, 1.5)
    params = torch.randn(1, d + h)
    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))  # (16, d)
    with torch.no_grad():
        probs = made.log_prob(params.expand(len(patterns), -1), patterns).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)

    x = torch.rand(1, d, requires_grad=True)  # the logit of pixel i depends on x_<i only
    for i in range(d):
        logits, context = params.split([d, h], -1)
        hidden = torch.relu(
            torch.nn.functional.linear(x, made.x_to_hidden.weight * made.mask_in, made.x_to_hidden.bias)
            + context
        )
        out = logits + torch.nn.functional.linear(
            hidden, made.hidden_to_x.weight * made.mask_out, made.hidden_to_x.bias
        )
        (grad,) = torch.autograd.grad(out[0, i], x)
        assert torch.all(grad[0, i:] == 0)

    torch.manual_seed(1)
    with torch.no_grad():
        draws = made.sample(params.expand(20000, -1))
    codes = (draws * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(codes, minlength=16).double() / len(codes)
    np.testing.assert_allclose(freq.numpy(), probs.double().numpy(), atol=0.012)


@pytest.mark.parametrize("image_shape", [(1, 2, 3), (2, 2, 2)])
def test_neighbour_tables_and_weights_keep_the_made_a_normalised_distribution_that_sampling_follows(
    image_shape,
):
    """With tables and z-dependent weights of neighbouring pixels (random, as after training), the
    probabilities of all 2^D binary images still sum to one (a table or weight that read a pixel
    at or after its own would break this) and sequential sampling draws images with those
    probabilities; each pixel's neighbours are the ones before it in its window, and the same
    pixel of the channel before. One z an example and several give the same log-probabilities."""
    from vaekit.models.likelihoods import AutoregressiveBernoulli, causal_neighbours

    c, h, w = image_shape
    d, rank = c * h * w, 3
    neighbours = causal_neighbours(image_shape, radius=2)
    # pixel (row 1, col 1) of a channel sees (0, 0), (0, 1), (0, 2) and (1, 0) of it, where they exist
    window = {r * w + q for r, q in [(0, 0), (0, 1), (0, 2), (1, 0)] if q < w}
    assert set(neighbours[w + 1].tolist()) - {d} == window
    if c > 1:  # and in channel 1, the same pixel of channel 0 too
        assert set(neighbours[h * w + w + 1].tolist()) - {d} == {h * w + i for i in window} | {w + 1}
    assert torch.all((neighbours < torch.arange(d)[:, None]) | (neighbours == d))

    torch.manual_seed(0)
    made = AutoregressiveBernoulli(d, 5, image_shape, neighbour_rank=rank)
    with torch.no_grad():
        for p in made.parameters():
            p.normal_(0, 1.5)
    params = torch.randn(1, d + 5 + rank)
    patterns = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))
    # scoring finds the neighbours by shifted views of the image, sampling by their indices: the same
    bits = made.neighbour_bits(patterns)
    assert torch.equal(bits, torch.nn.functional.pad(patterns, (0, 1))[:, neighbours].transpose(1, 2))
    assert torch.equal(made.table_entries(bits), made.table_start + (bits * made.powers).sum(1).long())
    # mixed precision must not round the patterns (2^12 of them in a 5x5 window, 2^13 with channels)
    big = AutoregressiveBernoulli(c * 8 * 8, 5, (c, 8, 8))
    images = (torch.rand(20, c * 64) < 0.7).float()
    gathered = torch.nn.functional.pad(images, (0, 1))[:, big.neighbours]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        entries = big.table_entries(big.neighbour_bits(images))
    assert torch.equal(entries, big.table_start + (gathered @ big.powers).squeeze(-1).long())

    with torch.no_grad():
        probs = made.log_prob(params.expand(len(patterns), -1), patterns).exp()
        several = made.log_prob(params.expand(2, len(patterns), -1), patterns).exp()
        plain = AutoregressiveBernoulli(d, 5)
        plain.load_state_dict(made.state_dict(), strict=False)
        without = plain.log_prob(params[:, : d + 5].expand(len(patterns), -1), patterns).exp()
        tables_only = made.log_prob(torch.cat([params[:, : d + 5], torch.zeros(1, rank)], 1), patterns).exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(several.numpy(), probs.expand(2, -1).numpy(), rtol=1e-5)
    assert (tables_only - without).abs().max() > 0.01  # the tables change the distribution
    assert (probs - tables_only).abs().max() > 0.01  # and so do the weights

    torch.manual_seed(1)
    with torch.no_grad():
        draws = made.sample(params.expand(40000, -1))
    codes = (draws * 2.0 ** torch.arange(d - 1, -1, -1)).sum(1).long()
    freq = torch.bincount(codes, minlength=2**d).double() / len(codes)
    np.testing.assert_allclose(freq.numpy(), probs.double().numpy(), atol=0.01)


def test_a_vae_with_autoregressive_pixels_trains_scores_samples_and_reloads(tmp_path):
    from sklearn.datasets import load_digits

    from vaekit import load

    X = load_digits().data[:400] / 16.0
    plain = VAE(latent_dim=4, hidden=(64,), likelihood="bernoulli", binarize=True, epochs=30, random_state=0)
    made = VAE(latent_dim=4, hidden=(64,), likelihood="made", binarize=True, epochs=30, random_state=0)
    test = (np.random.RandomState(0).uniform(size=X.shape) < X).astype(np.float64)
    plain.fit(X)
    made.fit(X)
    assert made.elbo(test).mean() > plain.elbo(test).mean()  # neighbouring pixels carry information
    assert made.log_likelihood(test, k=50, random_state=0).mean() >= made.elbo(test).mean()
    samples = made.sample(5, random_state=0)
    assert samples.shape == (5, 64) and set(np.unique(samples)) <= {0.0, 1.0}
    recon = made.reconstruct(X[:3])
    assert recon.shape == (3, 64) and np.all((recon >= 0) & (recon <= 1))
    made.save(tmp_path / "m")
    again = load(tmp_path / "m")
    np.testing.assert_array_equal(again.elbo(test[:20]), made.elbo(test[:20]))
    with pytest.raises(vaekit_errors.ParameterError, match="likelihood"):
        from vaekit import Autoencoder

        Autoencoder(likelihood="made").fit(X)


def test_a_made_on_images_learns_neighbouring_pixels_and_older_files_load_without(tmp_path, monkeypatch):
    """Digits given as 8x8 images get the tables and z-dependent weights of neighbouring pixels
    (flat rows do not) and a better test log-likelihood from each; samples are binary images; the
    model reloads identical. A file from before the weights (no made_neighbour_rank) loads as the
    model it was, and one from before the tables as well (no made_neighbours, no table tensors)
    as the MADE alone, which is that model with its tables at zero."""
    import json

    from safetensors.torch import load_file, save_file
    from sklearn.datasets import load_digits

    from vaekit import estimators, load
    from vaekit.models.likelihoods import NEIGHBOUR_RANK
    from vaekit.persistence import _sha256

    digits = load_digits().data / 16.0
    X, test = digits[:1400], (np.random.RandomState(0).uniform(size=(397, 64)) < digits[1400:]) * 1.0
    settings = dict(latent_dim=4, hidden=(64,), likelihood="made", binarize=True, epochs=20, random_state=0)
    images = VAE(**settings).fit(X.reshape(-1, 8, 8))
    flat = VAE(**settings).fit(X)
    monkeypatch.setattr(estimators, "NEIGHBOUR_RANK", 0)  # as vaekit before the weights
    tables = VAE(**settings).fit(X.reshape(-1, 8, 8))
    assert images.module_.likelihood.rank == min(NEIGHBOUR_RANK, 64) and tables.module_.likelihood.rank == 0
    assert flat.module_.likelihood.context_gain is None and tables.module_.likelihood.context_gain is not None

    def ll(model, x):
        return model.log_likelihood(x, k=50, random_state=0).mean()

    ll_tables = ll(tables, test.reshape(-1, 8, 8))
    assert ll_tables > ll(flat, test) + 0.25  # 0.4-0.6 seen
    assert ll(images, test.reshape(-1, 8, 8)) > ll_tables + 0.5  # 1.1-1.2 seen
    samples = images.sample(4, random_state=0)
    assert samples.shape == (4, 1, 8, 8) and set(np.unique(samples)) <= {0.0, 1.0}
    images.save(tmp_path / "images")
    np.testing.assert_array_equal(load(tmp_path / "images").elbo(test[:20]), images.elbo(test[:20]))

    folder = tmp_path / "tables"
    tables.save(folder)
    config = json.loads((folder / "config.json").read_text())
    del config["module"]["made_neighbour_rank"]
    (folder / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(load(folder).elbo(test[:20]), tables.elbo(test[:20]))
    tensors = load_file(str(folder / "model.safetensors"))
    assert [k for k in tensors if "context_" in k]
    save_file({k: v for k, v in tensors.items() if "context_" not in k}, str(folder / "model.safetensors"))
    del config["module"]["made_neighbours"]
    config["weights_sha256"] = _sha256(folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config))
    older = load(folder)
    assert older.module_.likelihood.context_gain is None
    with torch.no_grad():
        tables.module_.likelihood.context_gain.zero_()
        tables.module_.likelihood.context_bias.zero_()
    np.testing.assert_allclose(older.elbo(test[:20]), tables.elbo(test[:20]), rtol=1e-6)


# -- a learned mixture prior ---------------------------------------------------------------------


def test_mixture_prior_is_the_mixture_distribution_and_samples_from_it():
    from vaekit.models import MixturePrior

    torch.manual_seed(0)
    prior = MixturePrior(3, 2).double()
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-4.0, 0.0], [3.0, 2.0], [0.0, -5.0]]))
        prior.logvars.copy_(torch.tensor([[0.0, -1.0], [0.5, 0.0], [-2.0, 1.0]]))
        prior.logits.copy_(torch.tensor([0.0, 1.0, -0.5]))
    D = torch.distributions
    reference = D.MixtureSameFamily(
        D.Categorical(logits=prior.logits),
        D.Independent(D.Normal(prior.means, torch.exp(0.5 * prior.logvars)), 1),
    )
    z = torch.randn(50, 4, 2, dtype=torch.float64) * 4
    with torch.no_grad():
        torch.testing.assert_close(prior.log_prob(z), reference.log_prob(z))
        with torch.autocast("cpu", torch.bfloat16):  # as in mixed-precision training: float32 inside
            mixed = prior.float().log_prob(z.to(torch.bfloat16))
        prior.double()
        assert mixed.dtype == torch.float32
        expected = reference.log_prob(z.to(torch.bfloat16).double())
        torch.testing.assert_close(mixed.double(), expected, rtol=1e-5, atol=1e-4)  # bfloat16: ~0.1
        draws = prior.sample(200_000)
    weights, means, variances = (
        t.detach() for t in (torch.softmax(prior.logits, 0), prior.means, prior.logvars.exp())
    )
    mean = (weights[:, None] * means).sum(0)
    second = (
        weights[:, None, None] * (torch.diag_embed(variances) + means[:, :, None] * means[:, None, :])
    ).sum(0)
    torch.testing.assert_close(draws.mean(0), mean, atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), second - torch.outer(mean, mean), atol=0.1, rtol=0.01)


def test_a_mixture_of_one_standard_normal_is_the_standard_prior():
    """With one component at N(0, I) the mixture prior gives the standard model's bounds and
    importance-weighted training loss for the same draws, and its sampled KL estimates the closed form."""
    config = ModelConfig(kind="vae", n_features=5, latent_dim=3, hidden=[8], likelihood="gaussian")
    torch.manual_seed(0)
    standard = build_module(config).double().eval()
    mixture = build_module(ModelConfig(**{**config.to_dict(), "prior": "mixture", "prior_components": 1}))
    mixture = mixture.double().eval()
    mixture.load_state_dict(standard.state_dict(), strict=False)
    with torch.no_grad():
        mixture.prior.means.zero_()
    x = torch.randn(20, 5, dtype=torch.float64)
    with torch.no_grad():
        torch.manual_seed(1)
        a = standard.iwae_log_likelihood(x, k=50)
        torch.manual_seed(1)
        b = mixture.iwae_log_likelihood(x, k=50)
        torch.testing.assert_close(a, b)
        mu, logvar = mixture.encode(x)
        z = mixture.reparameterize(mu, logvar, torch.randn(20_000, *mu.shape, dtype=torch.float64))
        sampled = mixture.kl(mu, logvar, z)
        torch.testing.assert_close(sampled, gaussian_kl(mu, logvar).sum(-1), atol=0.05, rtol=0.02)
        assert standard.kl(mu, logvar, z).equal(gaussian_kl(mu, logvar).sum(-1))
        # the importance-weighted training loss too; its reported KL is the sampled one of its draws
        eps = torch.randn(7, *mu.shape, dtype=torch.float64)
        trained_standard, trained_mixture = standard._iwae_loss(x, 7, eps), mixture._iwae_loss(x, 7, eps)
        torch.testing.assert_close(trained_mixture.loss, trained_standard.loss)
        drawn = mixture.reparameterize(mu, logvar, eps)
        torch.testing.assert_close(trained_mixture.kl, mixture.kl(mu, logvar, drawn).mean())


@pytest.fixture(scope="module")
def clustered_linear():
    """A factor model whose factors come in three clusters, and linear VAEs with each prior."""
    rng = np.random.RandomState(1)
    n, d = 3000, 5
    centres = np.array([[-3.0, 0.0], [3.0, 1.0], [0.0, -3.5]])
    z = centres[rng.randint(3, size=n)] + rng.normal(size=(n, 2)) * 0.5
    w = rng.normal(size=(d, 2))
    X = z @ w.T + rng.normal(size=d) + rng.normal(size=(n, d)) * 0.3
    settings = dict(latent_dim=2, hidden=(), likelihood="gaussian", scaling="none", epochs=300)
    settings.update(batch_size=256, lr=1e-2, patience=30, random_state=0)
    return X, VAE(prior="mixture", prior_components=3, **settings).fit(X), VAE(**settings).fit(X)


def _exact_mixture_log_likelihood(vae: VAE, X: np.ndarray) -> np.ndarray:
    """log sum_c pi_c N(x; W m_c + b, W S_c W^T + Psi) under the VAE's linear decoder and mixture prior."""
    module = vae.module_
    w = module.decoder[0].weight.detach().double()
    b = module.decoder[0].bias.detach().double()
    psi = torch.exp(module.likelihood.logvar.detach().double().clamp(math.log(1e-4), 10.0))
    prior = module.prior
    means = prior.means.detach().double() @ w.T + b
    covs = w @ torch.diag_embed(prior.logvars.detach().double().exp()) @ w.T + torch.diag(psi)
    D = torch.distributions
    weights = D.Categorical(logits=prior.logits.detach().double())
    marginal = D.MixtureSameFamily(weights, D.MultivariateNormal(means, covariance_matrix=covs))
    return marginal.log_prob(torch.as_tensor(X, dtype=torch.float64)).numpy()


def test_mixture_prior_bounds_are_below_the_exact_likelihood_and_converge_to_it(clustered_linear):
    X, vae, _ = clustered_linear
    X = X[:400]
    exact = _exact_mixture_log_likelihood(vae, X)
    elbo = vae.elbo(X, k=2000)  # the KL too estimated with the 2,000 draws of z
    assert elbo.mean() < exact.mean() and np.all(elbo <= exact + 0.1)
    one_sample = vae.log_likelihood(X, k=1, random_state=1) - elbo  # an unbiased estimate of the ELBO
    assert abs(one_sample.mean()) < 4 * one_sample.std() / np.sqrt(len(X))
    bounds = [vae.log_likelihood(X, k=k, random_state=1).mean() for k in (1, 10, 100, 1000)]
    assert all(a <= b + 1e-4 for a, b in itertools.pairwise(bounds)), bounds
    gaps = vae.log_likelihood(X, k=1000, random_state=2) - exact
    assert bounds[-1] <= exact.mean() + 4 * gaps.std() / np.sqrt(len(X))
    assert exact.mean() - bounds[-1] < 0.05, (bounds[-1], exact.mean())


def test_mixture_prior_fits_clustered_codes_better_than_the_standard_normal(clustered_linear, tmp_path):
    """The exact likelihood of the linear model with a learned mixture prior beats the best a linear
    model with N(0, I) can reach (factor analysis' maximum), and the model saves and reloads."""
    X, vae, standard = clustered_linear
    fa_best = FactorAnalysis(n_components=2, random_state=0).fit(X).score(X)
    mixture = float(np.mean(_exact_mixture_log_likelihood(vae, X)))
    assert float(np.mean(standard.elbo(X, k=200))) < fa_best + 0.01
    assert mixture > fa_best + 0.3, (mixture, fa_best)
    samples = vae.sample(3000, random_state=0)  # z from the mixture: the clusters come back
    assert abs(np.mean(samples, 0) - X.mean(0)).max() < 0.3
    vae.save(tmp_path / "m")
    from vaekit import load

    again = load(tmp_path / "m")
    assert again.prior == "mixture" and again.module_.prior.n_components == 3
    np.testing.assert_array_equal(again.log_likelihood(X[:20], k=50), vae.log_likelihood(X[:20], k=50))
    np.testing.assert_array_equal(again.sample(5, random_state=3), vae.sample(5, random_state=3))
    with pytest.raises(vaekit_errors.ParameterError, match="prior"):
        VAE(prior="vamp").fit(X)
    with pytest.raises(vaekit_errors.ParameterError, match="free_bits"):
        VAE(prior="mixture", free_bits=0.5).fit(X)
    with pytest.raises(vaekit_errors.ParameterError, match="prior_components"):
        VAE(prior="mixture", prior_components=0).fit(X)


def test_binarized_draws_each_entry_with_its_value_as_the_probability():
    from vaekit.models.likelihoods import binarized

    p = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0]).repeat(40_000, 1)
    torch.manual_seed(0)
    draws = binarized(p)
    assert draws.dtype == p.dtype and set(draws.unique().tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.mean(dim=0).numpy(), [0.0, 0.1, 0.5, 0.9, 1.0], atol=0.01)
    torch.manual_seed(0)
    assert torch.equal(binarized(p), draws)
