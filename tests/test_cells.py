"""The cell model: each field's residual given the rest of its row, fitted robustly."""

import numpy as np
import pytest
import torch

from vaekit import cells


def _correlated(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n))
    return np.stack([a, b, a + 0.5 * b + 0.3 * rng.normal(size=n), a - b + 0.5 * rng.normal(size=n)], axis=1)


def test_a_deviation_is_the_standardised_residual_of_regressing_the_field_on_the_others(monkeypatch):
    """One round (every row kept): field j's deviation is its residual from the linear regression
    on the other fields under the ridged covariance, over the conditional standard deviation, and
    the predicted value is the regression's."""
    monkeypatch.setattr(cells, "MAX_ROUNDS", 1)
    x = _correlated(500)
    model = cells.fit_cells(torch.from_numpy(x))[:2]
    deviations = cells.cell_deviations(torch.from_numpy(x), *model).numpy()
    predicted = cells.predicted_values(torch.from_numpy(x), *model).numpy()
    mu = x.mean(axis=0)
    cov = np.cov(x, rowvar=False) + cells.RIDGE * np.eye(4)
    for j in range(4):
        rest = [i for i in range(4) if i != j]
        beta = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, j])
        guess = mu[j] + (x[:, rest] - mu[rest]) @ beta
        sd = np.sqrt(cov[j, j] - cov[j, rest] @ beta)
        np.testing.assert_allclose(predicted[:, j], guess, atol=1e-10)
        np.testing.assert_allclose(deviations[:, j], (x[:, j] - guess) / sd, atol=1e-9)


def test_wild_fields_do_not_bend_the_model_of_the_good_rows():
    """5% of the rows with one field a thousand times too large: the robust fit predicts the good
    rows' fields as a fit on the good rows alone does, where one round on all rows is far off."""
    x = _correlated(2000, seed=1)
    dirty = x.copy()
    rng = np.random.default_rng(2)
    wild = rng.choice(len(x), 100, replace=False)
    dirty[wild, rng.integers(0, 4, size=100)] *= 1000
    good = np.setdiff1d(np.arange(len(x)), wild)

    def predictions(mean, precision):
        return cells.predicted_values(torch.from_numpy(x[good]), mean, precision).numpy()

    clean = predictions(*cells.fit_cells(torch.from_numpy(x[good]))[:2])
    robust = predictions(*cells.fit_cells(torch.from_numpy(dirty))[:2])
    rows = torch.from_numpy(dirty)
    centred = rows - rows.mean(dim=0)
    naive = predictions(
        rows.mean(dim=0), torch.linalg.inv(centred.T @ centred / (len(rows) - 1) + cells.RIDGE * torch.eye(4))
    )
    assert np.abs(robust - clean).max() < 0.1
    assert np.abs(naive - clean).max() > 1.0
    mean, precision, _, largest = cells.fit_cells(rows)
    # the fit's largest deviations are those of the rows under the model it returns
    np.testing.assert_array_equal(
        largest, cells.largest_deviation(cells.cell_deviations(rows, mean, precision))
    )
    largest = largest.numpy()
    assert largest[wild].min() > largest[good].max()


def test_the_largest_deviation_leaves_out_the_fields_not_judged():
    deviations = torch.tensor([[1.0, -5.0, 2.0], [0.5, 0.2, -3.0]], dtype=torch.float64)
    seen = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    np.testing.assert_array_equal(cells.largest_deviation(deviations, seen).numpy(), [2.0, 3.0])
    np.testing.assert_array_equal(cells.largest_deviation(deviations).numpy(), [5.0, 3.0])
    assert not cells.fits(1) and cells.fits(2) and not cells.fits(cells.MAX_FEATURES + 1)


def test_a_row_with_gaps_is_judged_on_its_observed_fields_alone():
    """With fields missing, a field's deviation and prediction are those of the regression on the
    row's other observed fields (the marginal of the model's Gaussian); the missing get 0; rows
    without gaps are judged as when no row has any."""
    x = torch.from_numpy(_correlated(300))
    mean, precision, *_ = cells.fit_cells(x)
    seen = torch.ones_like(x)
    seen[:100, 2] = 0
    seen[100:200, [0, 3]] = 0
    deviations = cells.cell_deviations(x, mean, precision, seen).numpy()
    predicted = cells.predicted_values(x, mean, precision, seen).numpy()
    cov, mu, values = torch.linalg.inv(precision).numpy(), mean.numpy(), x.numpy()
    for rows, observed in ((slice(0, 100), [0, 1, 3]), (slice(100, 200), [1, 2])):
        for j in observed:
            rest = [i for i in observed if i != j]
            beta = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, j])
            guess = mu[j] + (values[rows][:, rest] - mu[rest]) @ beta
            sd = np.sqrt(cov[j, j] - cov[j, rest] @ beta)
            np.testing.assert_allclose(predicted[rows, j], guess, atol=1e-9)
            np.testing.assert_allclose(deviations[rows, j], (values[rows, j] - guess) / sd, atol=1e-9)
        missing = [i for i in range(4) if i not in observed]
        assert (deviations[rows][:, missing] == 0).all()
    np.testing.assert_array_equal(deviations[200:], cells.cell_deviations(x[200:], mean, precision).numpy())


def _amounts(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two long-tailed amounts, the second about 0.3 times the first, and a normal column."""
    rng = np.random.default_rng(seed)
    price = rng.lognormal(3, 1.5, n)
    return np.stack([price, 0.3 * price * rng.lognormal(0, 0.1, n), rng.normal(10, 2, n)], axis=1), rng


def test_the_bend_is_kept_where_it_brings_a_column_nearer_a_normal_one_and_undone_exactly():
    """The long-tailed amounts are bent (asinh of their values over their lower quartile, then
    standardised), which brings them nearer a normal distribution; the normal column and a feature
    that is no number are not; unwarp undoes warp."""
    values, _ = _amounts(3000)
    center, scale = np.median(values, axis=0), values.std(axis=0)
    x = torch.from_numpy((values - center) / scale)
    units = torch.tensor([[*scale, np.nan], [*center, np.nan]])  # a fourth feature that is no number
    x = torch.cat([x, torch.from_numpy(np.random.default_rng(1).normal(size=(3000, 1)))], dim=1)
    bend = cells.fit_warp(x, *units)
    assert bend[4].tolist() == [1.0, 1.0, 0.0, 0.0]
    u = cells.warp(x, bend)
    np.testing.assert_array_equal(u[:, 2:].numpy(), x[:, 2:].numpy())
    for j in (0, 1):
        bent = np.arcsinh(values[:, j] / np.quantile(values[:, j], 0.25))
        q1, q2, q3 = np.percentile(bent, [25, 50, 75])
        standard = (bent - q2) / ((q3 - q1) / 1.349)
        np.testing.assert_allclose(u[:, j].numpy(), standard, atol=1e-9)
        gap, plain = cells.normal_gap(standard[:, None])[0], cells.normal_gap(x[:, j : j + 1].numpy())[0]
        assert gap < plain - cells.NEARER
    np.testing.assert_allclose(cells.unwarp(u, bend).numpy(), x.numpy(), rtol=1e-9, atol=1e-9)


def test_a_shifted_decimal_point_in_a_long_tailed_column_is_found_wherever_the_value_lies():
    """On the bent scale a factor of 10 is the same shift for a small amount as for a large one;
    on the encoded (linear) scale the small amounts' shifts hide among the large amounts' spread."""
    values, rng = _amounts(3000, seed=3)
    shifted = rng.choice(np.flatnonzero(values[:, 0] < np.quantile(values[:, 0], 0.5)), 20, replace=False)
    values[shifted, 1] *= 10
    center, scale = np.median(values, axis=0), values.std(axis=0)
    x = torch.from_numpy((values - center) / scale)
    units = torch.from_numpy(np.stack([scale, center]))

    def found(bend: torch.Tensor) -> float:
        u = cells.warp(x, bend)
        largest = cells.fit_cells(u)[3].numpy()
        top = np.argsort(-largest)[: len(shifted)]
        return np.isin(shifted, top).mean()

    bend = cells.fit_warp(x, *units)
    straight = bend.clone()
    straight[:] = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0])[:, None]
    assert found(bend) == 1.0
    assert found(straight) < 0.5


def test_edge_rarity_is_the_share_of_rows_with_a_field_that_far_out_for_exponential_tails():
    """A Laplace column has exponential tails on both sides, as edge_rarity assumes beyond the
    edges: among fresh rows, the share with a rarity of at least r is exp(-r) (within sampling
    error); a row of two such columns is twice as likely to have a field out, and its rarity
    says so."""
    rng = np.random.default_rng(0)
    fit = torch.from_numpy(rng.laplace(size=(200_000, 2)))
    fresh = torch.from_numpy(rng.laplace(size=(1_000_000, 2)))
    edges = cells.fit_edges(fit)
    for judged in (torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])):
        rarity = cells.edge_rarity(fresh, edges, judged).numpy()
        for r in (5.0, 6.5, 8.0):
            expected = np.exp(-r) * len(fresh)
            assert abs((rarity >= r).sum() - expected) < 4 * np.sqrt(expected) + 0.05 * expected, (judged, r)


def test_a_value_beyond_a_floor_is_far_out_and_the_tail_of_long_tailed_amounts_is_not():
    """Counts of at least 1 (many of exactly 1) and a flag that is 1 in 0.3% of rows: a 0 or a -999
    below the floor lies beyond it, and is rarer than the "auto" fence of a normal sample (0.13% of
    rows); a rare but seen 1 of the flag is not, nor are the largest of fresh long-tailed
    amounts (bent, as the cell model sees them), while the same amounts in the wrong unit (x 1000)
    are; a field not observed does not count."""
    rng = np.random.default_rng(1)
    n = 5000
    counts = rng.poisson(0.5, n) + 1.0
    flag = (rng.random(n) < 0.003).astype(np.float64)
    amounts = np.log(rng.lognormal(3, 1.5, n))  # the bend of a long-tailed column is about a log
    u = torch.from_numpy(np.stack([counts, flag, amounts], axis=1))
    edges, judged, fence = cells.fit_edges(u), torch.ones(3), -np.log(0.00135)

    def rarity(rows, seen=None):
        return cells.edge_rarity(torch.tensor(rows, dtype=torch.float64), edges, judged, seen).numpy()

    # none of 5,000 counts below 1: a 0 is rarer than 1 / 5,000, and one step out, ten times more
    expected = -np.log(2 / n) + np.log(cells.TENFOLD) - np.log(3)
    assert rarity([[0.0, 0.0, 3.0]]) == pytest.approx(expected) and expected > fence
    assert (rarity([[-999.0, 0.0, 3.0], [1.0, -999.0, 3.0]]) > 100).all()
    assert (rarity([[1.0, 1.0, 3.0]]) < fence).all()
    largest = np.log(np.sort(rng.lognormal(3, 1.5, n))[-3:])
    assert (rarity([[1.0, 0.0, v] for v in largest]) < fence).all()
    assert (rarity([[1.0, 0.0, v + np.log(1000)] for v in largest]) > fence).all()
    assert rarity([[2.0, 0.0, 3.0]]) == 0.0  # every field within its edges
    assert rarity([[-999.0, 0.0, 3.0]], torch.tensor([[0.0, 1.0, 1.0]])) == 0.0


def _encoded(values: np.ndarray) -> torch.Tensor:
    """As the table encoder does: centred on the median, divided by the interquartile range, float32."""
    center = np.median(values, axis=0)
    scale = np.subtract(*np.percentile(values, [75, 25], axis=0))
    return torch.from_numpy(((values - center) / scale).astype(np.float32).astype(np.float64))


def test_a_grid_is_found_however_the_column_was_scaled_and_not_in_continuous_values():
    """Counts, readings to two decimals and a continuous column, each with 1% of garbage off any
    grid and a few repeated halves among the counts (which would make a grid twice too fine):
    the counts' grid has steps of 1 and the readings' of 0.01, in encoded units, from values on
    them; the continuous column has none; the share off each grid is counted."""
    rng = np.random.default_rng(0)
    n = 5000
    values = np.stack([rng.poisson(4, n), np.round(rng.normal(3, 1, n), 2), rng.normal(size=n)], axis=1)
    values[:50] = rng.uniform(0, 6, size=(50, 3))
    values[50:60, 0] = 2.5
    x = _encoded(values)
    origin, step, share = cells.fit_grids(x).numpy()
    scale = np.subtract(*np.percentile(values, [75, 25], axis=0))
    np.testing.assert_allclose(step[:2], [1 / scale[0], 0.01 / scale[1]], rtol=1e-6)
    assert step[2] == 0.0
    for j in range(2):  # the origin is a value on the grid
        k = (x[60:, j].numpy() - origin[j]) / step[j]
        assert (abs(k - k.round()) < 1e-3).all()
    np.testing.assert_allclose(share[:2], [60 / n, 50 / n])


def test_a_grid_is_found_through_five_percent_of_garbage_but_not_where_a_finer_grid_holds_the_rest():
    """Colour channels (whole numbers 0-255) standardised, as many data sets come, with 5% of
    garbage: values swapped in from the other channel (on its grid, not this one's, each repeated),
    zeros as sentinels (mid-range, repeated: between two steps), a shifted decimal point and noise.
    Each channel's grid is found, its step to float32's precision over all 256 levels, and every
    garbage value is rarer than any good value (on the grid: 0). Amounts in whole units but for 5%
    in cents have none: a grid a hundred times finer holds those, which are no garbage; counts with
    5% of halves have one of halves."""
    rng = np.random.default_rng(3)
    n = 5000
    raw = np.clip(rng.normal([150, 110], [45, 40], size=(n, 2)).round(), 0, 255)
    standard = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    values = standard.copy()
    bad = rng.choice(n, 250, replace=False)
    swap, zero, shift, noise = np.split(bad, [90, 140, 190])
    values[swap] = standard[swap][:, ::-1]
    values[zero, 0] = 0.0
    values[shift, 1] *= 0.1
    values[noise] = rng.uniform(-2, 2, size=(len(noise), 2))
    x = _encoded(values)
    grids = cells.fit_grids(x)
    _, step, share = grids.numpy()
    scale = np.subtract(*np.percentile(values, [75, 25], axis=0))
    np.testing.assert_allclose(step, 1 / raw.std(axis=0) / scale, rtol=1e-6)
    assert (share > 0.03).all() and (share < 0.1).all()
    rarity = cells.off_grid_rarities(x, grids, torch.ones(2)).numpy()
    changed = values != standard
    assert rarity[changed].min() > 10 and rarity[~changed].max() == 0.0
    amounts = rng.integers(1, 500, n).astype(np.float64)
    amounts[:250] += rng.integers(1, 99, 250) / 100
    counts = rng.poisson(5, n).astype(np.float64)
    counts[:250] += 0.5
    grids = cells.fit_grids(_encoded(np.stack([amounts, counts], axis=1)))
    assert float(grids[1, 0]) == 0.0
    halves = 0.5 / np.subtract(*np.percentile(counts, [75, 25]))
    assert float(grids[1, 1]) == pytest.approx(halves, rel=1e-6) and float(grids[2, 1]) == 1 / n


def test_a_grid_is_refined_far_out_by_the_values_on_its_points_not_by_garbage_near_them():
    """A colour channel's 256 levels, 10 rows each, standardised, and 12 values from elsewhere
    repeated 4 times, each 0.0731 of a step off a point 200 to 255 steps from the origin (as values
    swapped in from another channel land). The step is refined near the origin by the values within
    a tenth of a step of its points, farther out only by those within a hundredth: garbage a tenth
    of a step off, hundreds of steps out, pulled it so far that the values there fell off the grid,
    and the column had none (skin's third channel in the garbage benchmark). A value of the column's
    own off the steps of the others makes them no grid."""
    rng = np.random.default_rng(0)
    levels = np.repeat(np.arange(256.0), 10)
    garbage = np.repeat(rng.choice(np.arange(200, 256), 12, replace=False) + 0.0731, 4)
    raw = np.concatenate([levels, garbage])
    values = (raw - raw.mean()) / raw.std()
    x = torch.from_numpy(values.astype(np.float32).astype(np.float64))[:, None]
    grids = cells.fit_grids(x)
    assert float(grids[1, 0]) == pytest.approx(1 / raw.std(), rel=1e-6)
    rarity = cells.off_grid_rarities(x, grids, torch.ones(1)).numpy()[:, 0]
    assert rarity[: len(levels)].max() == 0.0 and rarity[len(levels) :].min() > 10
    # but a value as common as the column's own off the others' steps is one of its levels, not
    # garbage (Lymphography: 0.653, 0.823 and 3.205, 6 rows of 148; 3.205 is 15.06 steps out)
    three = np.repeat([0.653407, 0.822825, 3.205453], [77, 65, 6])
    x = _encoded(three[:, None])
    assert float(cells.fit_grids(x)[1, 0]) == 0.0
    assert not np.isnan(cells.fit_levels(x, torch.ones(1))[0, 0])


def test_rows_of_noise_do_not_make_a_field_off_its_grid_or_levels_seem_common():
    """Four columns of counts, one of readings to 0.01 and one of three levels with 1% of rows of
    noise, off every grid and level, and a few rows with one field off its grid (a decimal point
    shifted, a half) or two, or off its levels: a column's share off its grid or levels is that of
    the rows on them in most fields (the noise counted, a shifted decimal point in a count would be
    as common as 1% of the rows and pass), so the shifted fields are as rare as they are; the noise
    rows are judged by the same shares."""
    rng = np.random.default_rng(5)
    n = 4000
    levels = rng.choice([0.0, 0.0132, 1.0], n, p=[0.5, 0.2, 0.3])
    values = np.column_stack([rng.poisson(6, (n, 4)), np.round(rng.normal(2, 0.5, n), 2), levels])
    values[:4, :4] = 3.0
    values[:5, 4] = 1.37
    noise = np.arange(100, 140)
    values[noise] = rng.uniform(values.min(axis=0), values.max(axis=0), (len(noise), 6))
    values[6, 5] = 0.5
    values[[0, 1, 2, 3], [0, 1, 2, 3]] = 0.3  # 3 with its decimal point shifted
    values[4, 4] = 0.137
    values[5, :2] = 2.5, 3.5  # two fields off their grids of five: not lost
    x = _encoded(values)
    grids = cells.fit_grids(x)
    assert (grids[1, :5] != 0).all() and grids[1, 5] == 0
    kept = n - len(noise)
    share = cells.fit_levels(x, torch.ones(6), grids)[0].numpy()
    assert np.isnan(share[:5]).all() and share[5] == 1 / kept
    np.testing.assert_allclose(grids[2, :5].numpy(), np.array([2, 2, 1, 1, 1]) / kept)
    rarity = cells.grid_rarity(x, grids, torch.ones(6)).numpy()
    five = np.log(5)
    np.testing.assert_allclose(rarity[:2], np.log(kept / 2) + np.log(10) - five)
    np.testing.assert_allclose(rarity[2:5], np.log(kept) + np.log(10) - five)
    assert rarity[5] == pytest.approx(np.log(kept / 2) + np.log(2) - five)
    assert rarity[noise].min() > np.log(kept / 2) + np.log(10 * cells.FOREIGN) - five
    assert rarity[6:100].max() == 0.0 and rarity[140:].max() == 0.0


def test_a_field_off_its_grid_is_rarer_the_finer_a_grid_it_needs():
    """A count of 2.5 needs a grid twice as fine, a reading 0.151 among readings to 0.01 one ten
    times as fine, a number from elsewhere none: -log of the column's share off its grid plus
    log 2, log 10 and log(10 FOREIGN); a row of two such columns is twice as likely to have one.
    Fields on their grid, unobserved or too far out for float32 to tell count nothing; clean rows
    have none off."""
    rng = np.random.default_rng(1)
    n = 4000
    values = np.stack([rng.poisson(6, n), np.round(rng.normal(2, 0.5, n), 2)], axis=1).astype(np.float64)
    odd = [[3.0, 1.37], [2.5, 1.5], [4.0, 0.151], [1.2345678, 2.0], [2.0, 1e9], [2.0, 2.0], [5.0, 2.0]]
    values[:7] = odd
    center = np.median(values, axis=0)
    scale = np.subtract(*np.percentile(values, [75, 25], axis=0))
    x = _encoded(values)
    grids = cells.fit_grids(x)
    share = grids[2].numpy()
    np.testing.assert_allclose(share, [2 / n, 1 / n])  # 2.5 and 1.2345678; 0.151 (1e9 is too far out)
    rarity = cells.grid_rarity(x, grids, torch.ones(2)).numpy()
    two = np.log(2)
    assert rarity[0] == 0.0 and rarity[4:].max() == 0.0
    assert rarity[1] == pytest.approx(-np.log(share[0]) + np.log(2) - two)
    assert rarity[2] == pytest.approx(-np.log(share[1]) + np.log(10) - two)
    assert rarity[3] == pytest.approx(-np.log(share[0]) + np.log(10 * cells.FOREIGN) - two)
    assert cells.grid_rarity(x[:4], grids, torch.tensor([0.0, 1.0]))[1] == 0.0  # the count not judged
    seen = torch.tensor([[1.0, 0.0]]).expand(4, 2)
    assert cells.grid_rarity(x[:4], grids, torch.ones(2), seen)[2] == 0.0  # the reading unobserved
    assert cells.grid_rarity(x[:4], grids, torch.ones(2), seen)[1] == pytest.approx(
        -np.log(share[0]) + np.log(2)
    )
    fresh = np.stack([rng.poisson(6, 100_000), np.round(rng.normal(2, 0.5, 100_000), 2)], axis=1)
    fresh = torch.from_numpy(((fresh - center) / scale).astype(np.float32).astype(np.float64))
    assert cells.grid_rarity(fresh, grids, torch.ones(2)).max() == 0.0


def test_the_levels_of_a_column_whose_values_come_from_a_few():
    """A column of three levels not on one grid (0, 0.0137 and 0.9), with garbage from another column
    repeated a few times (0.0051 in 6 of 5,000 rows: fewer than the 0.2% a level needs): its levels
    are the three, the garbage rows are rare (-log of the share off the levels, FOREIGN times rarer,
    shared by the row's two fields with levels), the good rows not at all. A continuous column and a
    column of counts (a grid: the grid sign judges it, its tail would be no level) have none."""
    rng = np.random.default_rng(0)
    n = 5000
    flags = rng.choice([0.0, 0.0137, 0.9], size=n, p=[0.8, 0.15, 0.05])
    flags[:6] = 0.0051
    dial = rng.choice([-2.1266, -0.4933, 1.3], size=n)
    x = torch.from_numpy(np.c_[flags, dial, rng.normal(size=n), rng.poisson(3, n).astype(float)]).to(
        torch.float64
    )
    judged = torch.ones(4, dtype=torch.float64)
    grids = cells.fit_grids(x, judged)
    assert float(grids[1, 3]) != 0  # the counts have a grid
    levels = cells.fit_levels(x, judged, grids)
    assert float(grids[1, 0]) == 0 and float(grids[1, 1]) == 0
    assert sorted(levels[1:, 0][~levels[1:, 0].isnan()].tolist()) == [0.0, 0.0137, 0.9]
    assert levels[:, 2].isnan().all()
    assert levels[:, 3].isnan().all()
    assert float(levels[0, 0]) == pytest.approx(6 / n)
    rarity = cells.level_rarity(x, levels, judged)
    expected = -np.log(6 / n) + np.log(cells.FOREIGN) - np.log(2)
    np.testing.assert_allclose(rarity[:6].numpy(), expected)
    assert (rarity[6:] == 0).all()
    # a field not observed counts nothing; an unjudged column nothing
    seen = torch.ones_like(x)
    seen[:3, 0] = 0
    rarity = cells.level_rarity(x, levels, judged, seen)
    assert (rarity[:3] == 0).all() and (rarity[3:6] > 0).all()
    assert (cells.level_rarity(x, levels, torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64)) == 0).all()


def test_a_rare_value_on_the_even_steps_of_its_columns_levels_is_a_rare_level_not_from_elsewhere():
    """A scale whose levels are 1 to 4 with a 7 in two rows (too few for a level) and a 3.5 in one,
    and a flag of 0 and 1 with a 2 in two rows and a 0.5 in one, scaled and rounded to float32 as
    the detector encodes them: the 7 and the 2 lie on their levels' even steps, as rare as the
    column's share of values off its levels; the 3.5 and the 0.5 lie off them, FOREIGN times rarer.
    Levels not evenly spaced (0, 0.0137 and 1) have no steps."""
    rng = np.random.default_rng(1)
    n = 1000
    scale = rng.choice([1.0, 2.0, 3.0, 4.0], size=n)
    scale[:2], scale[2] = 7.0, 3.5
    flag = rng.choice([0.0, 1.0], size=n)
    flag[3:5], flag[5] = 2.0, 0.5
    raw = np.c_[scale, flag]
    x = torch.from_numpy(((raw - raw.mean(axis=0)) / raw.std(axis=0)).astype(np.float32).astype(np.float64))
    judged = torch.ones(2, dtype=torch.float64)
    levels = cells.fit_levels(x, judged)  # as for columns without a grid (noise spoils one)
    assert (~levels[1:].isnan()).sum(dim=0).tolist() == [4, 2]
    rarities = cells.off_level_rarities(x, levels, judged).numpy()
    off = -np.log(3 / n)  # each column's share of values off its levels
    np.testing.assert_allclose(
        rarities[:6],
        [
            [off, 0],
            [off, 0],
            [off + np.log(cells.FOREIGN), 0],
            [0, off],
            [0, off],
            [0, off + np.log(cells.FOREIGN)],
        ],
    )
    assert (rarities[6:] == 0).all()
    assert cells._even_steps(np.array([0.0, 0.0137, 1.0, np.nan])) is None


def test_a_heap_at_a_columns_edge_does_not_make_a_value_a_little_beyond_it_far_out():
    """Loan amounts of 10,000 rows, uniform from 1,000 to 35,000 with 5% of them at that cap and
    25 at a later cap of 40,000: the upper edge is 35,000 and both its quantiles lie on the heap,
    so the spacing of the tail beyond it was a hundredth of the width between the edges, and a
    loan of 40,000 lay 15 spacings out, rarity 38 (vaekit clean removed such loans). The spacing
    is at least a quarter of the distance from the median to the edge now: 40,000 lies 1.2
    spacings out (rarity 8), a loan times 10 still far out. On a normal column that floor changes
    nothing (its tail has 2.8 spacings between the median and the edge)."""
    rng = np.random.default_rng(0)
    n = 10_000
    loans = np.round(rng.uniform(1000, 35000, n), -2)
    loans[rng.random(n) < 0.05] = 35000.0
    loans[:25] = 40000.0
    edges = cells.fit_edges(torch.from_numpy(loans)[:, None])
    assert float(edges[3, 0]) == 35000.0
    judged = torch.ones(1, dtype=torch.float64)
    rarity = cells.edge_rarity(torch.tensor([[40000.0], [350000.0]], dtype=torch.float64), edges, judged)
    assert rarity[0] < 9 and rarity[1] > 100, rarity
    normal = torch.from_numpy(rng.normal(size=(n, 1)))
    q = np.quantile(normal.numpy(), [0.005, 0.05, 0.95, 0.995])
    np.testing.assert_allclose(cells.fit_edges(normal)[[1, 4], 0].numpy(), [q[1] - q[0], q[3] - q[2]])


def test_a_long_tailed_column_a_third_zeros_is_bent_on_its_values_not_the_rounding_of_its_zeros():
    """Assets of 0 in a third of 3,000 rows and lognormal in the rest, encoded in float32 about a
    center of 3,000 as the detector encodes them: a 0 comes back as a few ten-thousandths, and
    these had set the bend's a (the lower quartile of the nonzero sizes) at about 1e-4, which
    split the column into two lumps far apart, so that it was left unbent and its long tail of
    good values (50,000 beside a median of 3,000) passed for garbage. Its a is the lower quartile
    of the true nonzero values now, and the column is bent."""
    rng = np.random.default_rng(0)
    n = 3000
    assets = np.where(rng.random(n) < 0.35, 0.0, np.round(rng.lognormal(8.5, 1.0, n), -2))
    center, scale = 3000.0, 4447.0
    x = torch.from_numpy(((assets - center) / scale).astype(np.float32).astype(np.float64))[:, None]
    decoded = x[:, 0].numpy() * scale + center
    assert 0 < np.abs(decoded[assets == 0]).max() < 1e-3  # the rounding of the encoding
    bend = cells.fit_warp(x, torch.tensor([scale]), torch.tensor([center]))
    a = np.quantile(assets[assets > 0], 0.25)
    assert bend[4, 0] == 1
    np.testing.assert_allclose(float(bend[0, 0]), scale / a, rtol=1e-4)


def test_the_even_steps_of_levels_may_be_finer_than_their_least_gap():
    """A share of land zoned (Boston's zn): 0 in most rows, then 12.5, 20, 21, 22, 25, 80 and
    90 (the least gap 1, the steps halves), with an 85 and an 82.5 in two rows each and a 33.37 in
    one, scaled and rounded to float32: the 85 and the 82.5 are rare levels, as rare as the
    column's share of values off its levels; the 33.37 is from elsewhere, FOREIGN times rarer (the
    85s were too, as the 18s and 100s of Boston's zn that vaekit clean removed). Steps a tenth
    of the least gap at most: 0, 0.0137 and 1 still have none."""
    rng = np.random.default_rng(2)
    n = 1000
    zone = rng.choice([0.0, 12.5, 20.0, 21.0, 22.0, 25.0, 80.0, 90.0], size=n, p=[0.72] + [0.04] * 7)
    zone[:2], zone[2:4], zone[4] = 85.0, 82.5, 33.37
    x = torch.from_numpy(((zone - 3.0) / 11.0).astype(np.float32).astype(np.float64))[:, None]
    judged = torch.ones(1, dtype=torch.float64)
    levels = cells.fit_levels(x, judged)
    assert (~levels[1:].isnan()).sum().item() == 8
    rarities = cells.off_level_rarities(x, levels, judged)[:, 0].numpy()
    off = -np.log(5 / n)
    np.testing.assert_allclose(rarities[:5], [off] * 4 + [off + np.log(cells.FOREIGN)])
    assert (rarities[5:] == 0).all()
    assert cells._even_steps(np.array([0.0, 12.5, 20.0, 21.0, np.nan])) == (0.0, 0.5)
    assert cells._even_steps(np.array([0.0, 0.0137, 1.0])) is None


def test_two_fields_holding_one_rare_value_are_found_as_a_copy():
    """Six rows whose second column holds the first's value (both continuous, on other scales),
    encoded in float32 as the detector does: the pair agrees in 6 of 5,000 rows, each of them as
    rare as -log(6 / n); the good rows are not, nor two fields agreeing at a value common in both
    (two amounts of 0) or two columns of a few values agreeing (a count of 2 and a flag of 2), nor
    two columns that often agree, nor two columns of readings to a hundredth that agree by chance.
    A pair that never agreed in training, at scoring: -log(1 / n).
    Values a ten-thousandth apart do not agree; a field not observed counts nothing."""
    rng = np.random.default_rng(0)
    n = 5000
    raw = np.c_[
        rng.normal(50, 5, n),
        rng.normal(40, 9, n),
        rng.gamma(2, 30, n) * (rng.random(n) < 0.7),
        rng.poisson(2, n),
        rng.integers(0, 3, n),
        rng.exponential(10, n) * (rng.random(n) < 0.8),
        rng.normal(0, 1, n),
        rng.normal(0, 1, n),
        np.round(rng.normal(20, 1, n), 2),
        np.round(rng.normal(20, 1, n), 2),
    ]
    raw[:6, 1] = raw[:6, 0]
    raw[6:9, 3], raw[6:9, 4] = 2.0, 2.0
    often = rng.random(n) < 0.02  # two readings that agree in 2% of the rows
    raw[often, 7] = raw[often, 6]
    assert ((raw[:, 2] == 0) & (raw[:, 5] == 0)).mean() > 0.05
    center, scale = np.median(raw, axis=0), raw.std(axis=0)
    units = torch.from_numpy(np.stack([scale, center]))
    judged = torch.ones(raw.shape[1], dtype=torch.float64)

    def encoded(values):
        return torch.from_numpy(((values - center) / scale).astype(np.float32).astype(np.float64))

    x = encoded(raw)
    common, copies = cells.fit_copies(x, units, judged)
    assert common[0].tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]  # the counts and flags have a few values
    assert common[1:, 0].isnan().all() and common[1:, 1].isnan().all()
    zero = encoded(np.zeros((1, 10)))[0]
    assert float(zero[2]) in common[1:, 2].tolist() and float(zero[5]) in common[1:, 5].tolist()
    by_chance = (raw[:, 8] == raw[:, 9]).mean()
    assert 0.001 < by_chance < cells.COPY_SHARE
    assert copies.shape == (4, 4)
    np.testing.assert_allclose(copies[:, 0].numpy(), [-1, -1, 1 / n, 1 / n])
    np.testing.assert_allclose(copies[:, 1].numpy(), [0, 1, 6 / n, 6 / n])
    np.testing.assert_allclose(copies[:, 2].numpy(), [6, 7, often.mean(), 1])
    np.testing.assert_allclose(copies[:, 3].numpy(), [8, 9, by_chance, 1])
    rarity = cells.copy_rarity(x, units, judged, common, copies)
    np.testing.assert_allclose(rarity[:6].numpy(), -np.log(6 / n))
    assert (rarity[6:] == 0).all()
    fresh = raw[:4].copy()
    fresh[0, 2] = fresh[0, 0]  # a pair never seen agreeing
    fresh[1, 1] = fresh[1, 0] * (1 + 1e-4)
    fresh[2:4] = raw[10:12]
    rarity = cells.copy_rarity(encoded(fresh), units, judged, common, copies)
    np.testing.assert_allclose(rarity.numpy(), [np.log(n), 0, 0, 0])
    seen = torch.ones(6, 10, dtype=torch.float64)
    seen[:3, 1] = 0
    rarity = cells.copy_rarity(x[:6], units, judged, common, copies, seen)
    assert (rarity[:3] == 0).all() and (rarity[3:] > 0).all()


def test_a_category_is_as_rare_as_the_share_of_rows_holding_a_level_at_most_as_common():
    """Levels held by 600, 300, 99 and 1 of 1,000 rows (the last one-hot slot, the column's
    "other" level, by none): the tail shares 1, 0.4, 0.1, 0.001 and half a row's; a row's rarity is
    -log of its rarest field's share, less log m for m category fields (a gap holds none)."""
    counts = [600, 300, 99, 1, 0]
    x = torch.zeros(1000, 7, dtype=torch.float64)  # a number column, then a category of 5 slots, a number
    x[:, 0] = torch.arange(1000.0)
    level = torch.repeat_interleave(torch.arange(5), torch.tensor(counts))
    x[torch.arange(1000), 1 + level] = 1.0
    shares = cells.fit_categories(x, [(1, 6)])
    assert torch.isnan(shares[0, [0, 6]]).all()
    torch.testing.assert_close(
        shares[0, 1:6], torch.tensor([1.0, 0.4, 0.1, 0.001, 0.0005], dtype=torch.float64)
    )
    rarity = cells.category_rarity(x, shares, [(1, 6)])
    torch.testing.assert_close(
        rarity[[0, 700, 950, 999]], -torch.log(torch.tensor([1.0, 0.4, 0.1, 0.001])).double()
    )
    # two category columns: the rarest field, the row twice as likely to have one
    y = torch.cat([x, x[:, 1:6]], dim=1)
    both = cells.category_rarity(y, cells.fit_categories(y, [(1, 6), (7, 12)]), [(1, 6), (7, 12)])
    torch.testing.assert_close(both[999], torch.tensor(-np.log(0.001) - np.log(2), dtype=torch.float64))
    y[999, 7:12] = 0.0  # a gap in the second: one field held
    both = cells.category_rarity(y, cells.fit_categories(y, [(1, 6), (7, 12)]), [(1, 6), (7, 12)])
    torch.testing.assert_close(both[999], torch.tensor(-np.log(0.001), dtype=torch.float64))


def _orders(n: int, seed: int = 0) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Order lines: a quantity of 1 to 9, a price, total = quantity x price to the cent, and a
    weight that has nothing to do with them; as values, then encoded (robustly scaled) and the
    (scale, center) of each column."""
    rng = np.random.default_rng(seed)
    quantity = rng.integers(1, 10, n).astype(float)
    price = np.round(rng.lognormal(3, 0.5, n), 2)
    values = np.stack([quantity, price, np.round(quantity * price, 2), rng.normal(50, 10, n)], axis=1)
    center = np.median(values, axis=0)
    scale = np.subtract(*np.percentile(values, [75, 25], axis=0))
    return values, torch.from_numpy((values - center) / scale), torch.from_numpy(np.stack([scale, center]))


@pytest.mark.parametrize("garbage", [False, True])
def test_a_total_of_quantity_times_price_is_bent_logarithmically_in_all_three(garbage):
    """total = quantity x price is linear in the logarithms of the three and far from linear in
    them as each is bent for itself: the cell model (linear) put the rows of a quantity of 1 and a
    high price far off its fit, about 10% of the rows of an order file flagged. The three are bent
    logarithmically now (asinh of the value over a tenth of its 2nd percentile), the weight as
    before; found too with 5% of the rows noise or a total in another unit, which break the
    relation; and a total 10 times what it should be is then the field farthest off."""
    values, x, units = _orders(3000)
    if garbage:
        rng = np.random.default_rng(1)
        noise = rng.choice(3000, 150, replace=False)
        x[noise[:75]] = torch.from_numpy(rng.uniform(x.min(0).values, x.max(0).values, (75, 4)))
        x[noise[75:], 2] = x[noise[75:], 2] * 1000 + 1000 * units[1, 2] / units[0, 2]
    bend = cells.fit_warp(x, *units)
    assert bend[4, :3].tolist() == [1.0, 1.0, 1.0]
    own = cells.fit_warp(x[:, 3:], units[0, 3:], units[1, 3:])  # the weight alone: its own bend
    np.testing.assert_array_equal(bend[:, 3].numpy(), own[:, 0].numpy())
    for j in range(3):
        a = units[0, j].item() / bend[0, j].item()  # the bend's scale, in the column's values
        np.testing.assert_allclose(a, np.quantile(np.abs(x[:, j] * units[0, j] + units[1, j]), 0.02) / 10)
    good = np.ones(3000, dtype=bool)
    if garbage:
        good[noise] = False
    u = cells.warp(x, bend)
    *_, largest = cells.fit_cells(u)
    one_dear = good & (values[:, 0] == 1) & (values[:, 1] > np.quantile(values[:, 1], 0.8))
    assert np.median(largest[one_dear].numpy()) < 1.5 * np.median(largest[good].numpy())
    wrong = x[:1].clone()
    wrong[0, 2] = (values[0, 2] * 10 - units[1, 2]) / units[0, 2]
    mean, precision, *_ = cells.fit_cells(u)
    deviations = cells.cell_deviations(cells.warp(wrong, bend), mean, precision)[0].abs()
    assert int(deviations.argmax()) == 2 and deviations[2] > 10


def test_a_rare_levels_numbers_are_predicted_as_its_rows_have_them():
    """Directors, 4% of the rows, earn 2.4 times the others: a ridge of the same size on every
    feature shrank what the rare level's one-hot feature says of the salary (its variance is
    0.04), and the cell model predicted a Director's salary well below what Directors earn: the
    best paid were flagged. The one-hot features' ridge is relative to their variance."""
    rng = np.random.default_rng(0)
    n = 3000
    director = rng.random(n) < 0.04
    salary = np.where(director, 2.4, 1.0) + rng.normal(0, 0.1, n)
    x = torch.from_numpy(np.c_[(salary - 1) / 0.1, ~director, director].astype(np.float64))
    judged = torch.tensor([1.0, 0.0, 0.0])
    mean, precision, *_ = cells.fit_cells(x, judged)
    predicted = cells.predicted_values(x, mean, precision)[:, 0] * 0.1 + 1
    assert predicted[director].mean().item() == pytest.approx(salary[director].mean(), abs=0.01)
    assert predicted[~director].mean().item() == pytest.approx(salary[~director].mean(), abs=0.01)


def test_a_count_few_rows_hold_is_as_rare_as_it_is_and_one_in_another_unit_far_out():
    """A count that 3% of the rows hold (1 to 5, the others 0) beside two related amounts: under a
    normal model of a spike the rows holding it lay many standard deviations out, as rare as garbage.
    The column is piled at 0 (97% of its rows), so it is bent and spread so that the median of its
    values off the pile lies at :func:`cells.pile_z` of that share, and the cell model's deviations
    of its fields are weighted so that the median of theirs does too: the rows holding a count lie
    about as far out as the farthest of the others, and a count times 1,000 far beyond them."""
    rng = np.random.default_rng(0)
    n = 3000
    amount = rng.normal(0, 1, n)
    count = np.where(rng.random(n) < 0.03, rng.integers(1, 6, n), 0).astype(np.float64)
    x = torch.from_numpy(np.c_[amount, amount + rng.normal(0, 0.3, n), count])
    units = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    value, share = cells.piles(x)
    assert value[2] == 0 and share[2] == pytest.approx((count == 0).mean()) and share[0] < cells.PILE
    bend = cells.fit_warp(x, *units)
    u = cells.warp(x, bend)
    off = count > 0
    z = cells.pile_z(float(share[2]))
    assert 2 < z < 3 and np.median(np.abs(u[off, 2].numpy())) == pytest.approx(z, rel=0.01)
    mean, precision, weights, largest = cells.fit_cells(u, torch.ones(3, dtype=torch.float64))
    assert weights[0] == weights[1] == 1 and weights[2] < 1
    deviations = cells.cell_deviations(u, mean, precision)[:, 2].abs() * weights[2]
    assert float(deviations[off].median()) == pytest.approx(z, rel=0.05)
    assert largest[off].max() < 5 and largest[~off].max() > 3  # a count of 5: 0.6% of the rows
    wrong = x[off][:1].clone()
    wrong[0, 2] *= 1000
    deviations = cells.cell_deviations(cells.warp(wrong, bend), mean, precision)
    farthest = cells.largest_deviation(deviations, weights)
    assert farthest[0] > 3 * largest.max()
