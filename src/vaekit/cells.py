"""How far each field of a row lies from what the row's other fields predict.

A wrong field (a value in the wrong unit, a shifted decimal point, a sentinel, two fields swapped
or one copied into the next) often stays within its column's range, and a whole-row measure spreads
its one bad field over all of them. Here the encoded columns are modelled as jointly Gaussian, with
a mean and covariance estimated robustly (rows far out under the model are left out and the model
refitted, until the rows kept settle). For field j of row x, with precision matrix P = Sigma^-1,

    deviation_j = (P (x - mean))_j / sqrt(P_jj)

is the residual of the linear regression of field j on all the others, in units of its conditional
standard deviation (the leave-one-column-out residual, without fitting one regression per column);
the field's predicted value is x_j - (P (x - mean))_j / P_jj. A row with gaps is judged on its
observed fields alone: P is then the precision of their marginal, the Schur complement
P_OO - P_OM P_MM^-1 P_MO, one for each pattern of gaps. In the spirit of the cellwise outlier
detection of Rousseeuw & Van den Bossche (2018), simpler: one linear model of all the columns.

A number column whose distribution is skewed or long-tailed (an amount, a count) is modelled
bent, u = asinh(v / a) with a the lower quartile of the column's nonzero absolute values, when that
makes it clearly more nearly normal (:func:`fit_warp`): linear for values small beside a,
logarithmic for large ones. A factor (a value in the wrong unit, a shifted decimal point) is then a
shift of about the same size wherever the value lies, not a small step for a small value and a leap
for a large one, and the long tail of good values does not pass for deviations.

A column piled at one value (a count that is 0 in 97% of the rows, a rare yes: :func:`piled_at`)
is bent so, and spread, and its deviations weighted (:func:`pile_weights`), so that the median of
its values off the pile is as rare as they are: under a normal model of the spike they lay so many
standard deviations out that every row holding a count passed for garbage.

Three checks of one column at a time sit beside the model, each giving a rarity (-log of the share
of rows expected to have a field like it): how far a field lies beyond its column's edges
(:func:`fit_edges`, :func:`edge_rarity`), whether it lies off the grid its column's values lie on
(:func:`fit_grids`, :func:`grid_rarity`): a fraction among counts, a third decimal among readings
to two, a number copied from another column or noise, which may all stay within the column's range;
and, for a column without a grid whose values come from a few, whether it is none of them
(:func:`fit_levels`, :func:`level_rarity`). A fourth looks at two columns at once: two fields of a
row that hold the same value, one rare in both columns (a value copied into the next field), as
rarely as two columns agree so (:func:`fit_copies`, :func:`copy_rarity`).
"""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import torch

from vaekit.thresholds import auto_fence

RIDGE = 1e-2  # added to a number feature's variance (robustly standardised); a level's: RIDGE x its own
MAX_ROUNDS = 10
MAX_FEATURES = 2048  # wider encodings get no cell model (its inverse costs features**3)
CHUNK = 65_536  # rows
NEARER = 0.1  # how much nearer a normal distribution a bent column must be (see normal_gap)
EDGE = 0.005  # the share of a column's values beyond each of its edges (see fit_edges)
EDGE_VALUES = 3  # at least, the values beyond each edge: a unit error repeated does not set it
TENFOLD = 10.0  # the tail's spacing: from the edge to the quantile of TENFOLD times that share
BODY_SPACINGS = 4.0  # at most, the spacings of a tail between the median and its edge (see fit_edges)
RESOLUTION = 0.01  # the least spacing, as a share of the width between the edges
GRID_SHARE = 0.98  # the share of a column's values that must lie on a grid for it to have one
GRID_TOLERANCE = 1e-3  # how far from a grid point, in steps, a value on the grid may lie
GRID_LOOSE = 0.9  # the share that must lie on it when the others lie on no finer grid (see _holds)
SPLIT = 0.1  # at most, the share of the gaps between a column's repeated values that garbage splits
HELD = 4  # a value held by a quarter of the rows the repeated values hold (their median), or 1%, is its own
ROUGHLY = 0.02  # the tolerance, in its steps, of a finer grid that holds values off a grid (see _holds)
NEAR_POINT = 0.1  # how near a grid point, in steps, a value must lie to refine the step with
ON_POINT = 0.01  # how near, once the step is known from the values near the origin (see _grid)
FINER = (2, 5, 10)  # the finer grids, steps / FINER, on which an off-grid value is looked for
LOST_FIELDS = 3  # at least, the fields off their grids of a row off them in most (see fit_grids)
FOREIGN = 1e4  # how much rarer than on a grid 10 times finer a value on none of them is taken to be
LEVELS = 30  # at most, the levels of a column without a grid whose values come from a few
LEVEL_SHARE = 0.002  # at least, the share of the rows at a value for it to be one of its column's levels
LEVEL_COVER = 0.98  # at least, the share of a column's values on its levels for it to have them
COPY_SHARE = 0.01  # at least, the share of a column's rows holding a value for it to be common there
COMMON = 100  # at most, the common values of a column (each held by COPY_SHARE of the rows)
CHANCE = 4.0  # how much more often than chance two columns must agree for their agreements to be copies
FLOAT32 = 2.0**-24  # the relative rounding of the encoded (float32) values
JOINT_FEATURES = 256  # at most, the encoded features of a table whose columns' bend is refined jointly
JOINT_ROWS = 20_000  # at most, the rows that refinement looks at
ONE_SIGN = 0.99  # at least, the share of a column's values of one sign for it to be bent logarithmically
JOINT_LEVELS = 5  # at least, the distinct values of a number column that may be bent for its relations
RELATED = 4.0  # how much less variance the others must leave unexplained for a column's bend to change
START = 4.0  # see _inside
JOINT_RIDGE = 1e-6  # the covariance's ridge when judging how well columns predict each other
PILE = 0.5  # at least, the share of a column's rows at one value for it to be piled there
PILE_OFF = 0.01  # at least, the share of the rows off a pile for them to be taken as part of the column
COPY_TOLERANCE = 8 * FLOAT32  # two fields agree within it, relative, for float32's rounding of the encoding


def fits(n_features: int) -> bool:
    """Whether an encoding this wide gets a cell model."""
    return 2 <= n_features <= MAX_FEATURES


def fit_cells(
    x: torch.Tensor, judged: torch.Tensor | None = None, weigh_piles: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, precision, weights) of the cell model of the rows ``x`` (float64, no gaps), and the
    rows' largest deviations under it (of the ``judged`` fields: a 0/1 vector, times their
    ``weights``: :func:`pile_weights` with ``weigh_piles``, otherwise ones). Fitted on all rows,
    then on those whose largest deviation is within its "auto" fence
    (:func:`vaekit.thresholds.auto_fence`), and again until that set settles."""
    judged = torch.ones(x.shape[1], dtype=x.dtype) if judged is None else judged
    # the piled columns are found once, on the rows their weights are judged from
    sample = x[torch.from_numpy(np.random.default_rng(0).permutation(len(x))[:JOINT_ROWS])]
    value, share = piles(sample)
    piled = torch.nonzero((judged > 0) & piled_at(share) & weigh_piles)[:, 0]
    keep = torch.ones(len(x), dtype=torch.bool)
    for _ in range(MAX_ROUNDS):
        rows = x[keep]
        mean = rows.mean(dim=0)
        centred = rows - mean
        covariance = centred.T @ centred / max(len(rows) - 1, 1)
        covariance.diagonal().add_(_ridge(covariance.diagonal(), judged, len(rows)))
        precision = torch.cholesky_inverse(torch.linalg.cholesky(covariance))
        # exactly symmetric, and row-major as when loaded from a file: the products' rounding
        # depends on the layout
        precision = ((precision + precision.T) / 2).contiguous()
        weights = pile_weights(sample, mean, precision, piled, value, share)
        largest = torch.cat(
            [
                largest_deviation(cell_deviations(part, mean, precision), judged * weights)
                for part in x.split(CHUNK)  # the deviations of a chunk of rows at a time
            ]
        )
        inside = torch.from_numpy(largest.numpy() <= auto_fence(largest.numpy()))
        if int(inside.sum()) < 2 or torch.equal(inside, keep):
            break
        keep = inside
    return mean, precision, weights, largest


def piles(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features,) each: the median of each column of the rows ``x`` and the share of the rows at
    it. A column with ``PILE`` of its rows or more at one value (a count mostly 0, a rare yes) is
    piled there: at its median."""
    if not len(x):
        return torch.zeros(x.shape[1], dtype=x.dtype), torch.zeros(x.shape[1], dtype=torch.float64)
    middle = x.median(dim=0).values
    return middle, (x == middle).double().mean(dim=0)


def piled_at(share: torch.Tensor) -> torch.Tensor:
    """(features,) bool: whether each column is piled at one value, from the share of its rows
    there (:func:`piles`), for the cell model and the bend: at least ``PILE``, and at least
    ``PILE_OFF`` of them off it. Values off a pile of 99% of the rows are as rare as garbage, and
    a heap of garbage there (two columns swapped in 1% of the rows) would pass for their spread."""
    return (share >= PILE) & (share < 1) & (1 - share >= PILE_OFF)


def pile_z(share: float) -> float:
    """The normal deviation beyond which (either way) a normal column holds half the share of its
    rows that a column piled with ``share`` of them at one value holds off it: where the median of
    its values off the pile lies on a normal column's scale of rarity."""
    return NormalDist().inv_cdf(1 - (1 - share) / 4)


def pile_weights(
    x: torch.Tensor,
    mean: torch.Tensor,
    precision: torch.Tensor,
    piled: torch.Tensor,
    value: torch.Tensor,
    share: torch.Tensor,
) -> torch.Tensor:
    """(features,): what the deviations of each field of the rows ``x`` are multiplied by, 1 but
    for the ``piled`` features (indices), columns piled at one ``value`` with ``share`` of the rows
    (:func:`piles`), whose few rows off the pile lie many conditional standard deviations out under
    a normal model of a spike: for them, the median of their deviations is put at :func:`pile_z`
    of the pile's share (never further out than it is). A count that 3% of the rows hold is then as
    rare as that, and a count times 1,000 still far out."""
    weights = torch.ones(x.shape[1], dtype=x.dtype)
    if not len(piled):
        return weights
    deviations = cell_deviations(x, mean, precision)[:, piled].abs()
    for k, j in enumerate(piled.tolist()):
        off = deviations[x[:, j] != value[j], k].median()
        if off > 0:
            weights[j] = min(1.0, pile_z(float(share[j])) / float(off))
    return weights


def _ridge(variance: torch.Tensor, judged: torch.Tensor | None, n_rows: int) -> torch.Tensor:
    """The ridge added to each feature's variance: ``RIDGE`` for the ``judged`` (number) features,
    robustly standardised; for the others, one-hot levels whose variance p (1 - p) is a few
    hundredths for a level of a few percent of the rows, ``RIDGE`` times their variance (at least
    a row's share): the same ridge would shrink what a rare level says of the numbers (a Director's
    salary) far more than a common one's, and leave its rows far from what is predicted."""
    if judged is None:
        return torch.full_like(variance, RIDGE)
    relative = RIDGE * variance.clamp_min(1.0 / max(n_rows, 1))
    return torch.where(judged > 0, RIDGE, relative)


def fit_warp(
    x: torch.Tensor, scale: torch.Tensor, center: torch.Tensor, bend_piles: bool = True
) -> torch.Tensor:
    """(5, features) float64: the bend of the encoded rows ``x`` (no gaps) for the cell model, rows
    gain, offset, center, spread, curved. The features whose ``scale`` is not NaN are numbers
    encoded as (v - center) / scale; each is bent, asinh(v / a) with a the lower quartile of its
    nonzero absolute values, standardised by the median and interquartile range / 1.349 of the bent
    values (their standard deviation if the quartiles coincide, 1 if that is 0 too), when that
    brings its distribution clearly nearer a normal one than the encoding's (by ``NEARER`` in
    :func:`normal_gap`), for the cell model is Gaussian. The others stay as they are. With
    ``bend_piles``, the columns piled at one value are bent and spread for it (:func:`_piled_bend`)."""
    x = x.cpu().double().numpy()
    number = ~np.isnan(scale.cpu().double().numpy())
    scale = np.where(number, scale.cpu().double().numpy(), 1.0)
    center = np.where(number, center.cpu().double().numpy(), 0.0)
    size = np.abs(_decoded(x, scale, center))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column of zeros: a = 1
        a = np.nanquantile(np.where(size > 0, size, np.nan), 0.25, axis=0)
    a = np.where(a > 0, a, 1.0)
    gain, offset = scale / a, center / a
    bent = np.arcsinh(x * gain + offset)
    middle, spread = _middle_and_spread(bent)
    curved = number & (normal_gap((bent - middle) / spread) < normal_gap(x) - NEARER)
    rows = [gain, offset, middle, spread, np.ones_like(gain)]
    identity = [1.0, 0.0, 0.0, 1.0, 0.0]
    bend = np.stack([np.where(curved, row, plain) for row, plain in zip(rows, identity, strict=True)])
    if x.shape[1] <= JOINT_FEATURES:
        bend = _related_bend(x, number, scale, center, bend)
    return torch.from_numpy(_piled_bend(x, number, bend, gain, offset) if bend_piles else bend)


def _decoded(x: np.ndarray, scale: np.ndarray, center: np.ndarray) -> np.ndarray:
    """The values v = x * scale + center of number columns encoded in float32 as x, with those
    within the encoding's rounding of 0 put at 0: a 0 of a column whose center is not 0 comes back
    as a few ten-thousandths (assets of 0 in 37% of the rows, centred at 3,000: the lower quartile
    of the nonzero sizes that sets the bend was one of them, 8e-5, and the column lay in two
    lumps, 0 and the rest far apart)."""
    v = x * scale + center
    return np.where(np.abs(v) <= COPY_TOLERANCE * (np.abs(x * scale) + np.abs(center)), 0.0, v)


def _piled_bend(
    x: np.ndarray, number: np.ndarray, bend: np.ndarray, gain: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """``bend`` with each number column piled at one value (:func:`piled_at`: a count mostly 0)
    bent (as asinh(v / a) with ``gain`` = scale / a and ``offset`` = center / a, unless it is
    already) and spread so that the median distance of its values off the pile lies at
    :func:`pile_z` of the pile's share, if that is wider than its spread otherwise: the standard
    deviation of a spike with a few values beside it puts the 3% of rows that hold a count many
    standard deviations out, far rarer than they are."""
    value, share = (t.numpy() for t in piles(torch.from_numpy(x)))
    bend = bend.copy()
    for j in np.flatnonzero(number & piled_at(torch.from_numpy(share)).numpy()):
        if not bend[4, j]:
            bend[:, j] = [gain[j], offset[j], 0.0, 1.0, 1.0]
        w = np.arcsinh(x[:, j] * bend[0, j] + bend[1, j])
        at = float(np.arcsinh(value[j] * bend[0, j] + bend[1, j]))
        off = float(np.median(np.abs(w - at)[x[:, j] != value[j]]))
        spread = float(_middle_and_spread(w[:, None])[1][0])
        bend[2, j], bend[3, j] = at, max(spread, off / pile_z(float(share[j])))
    return bend


def _log_bends(x: np.ndarray, scale: np.ndarray, center: np.ndarray) -> np.ndarray:
    """(5, columns) about logarithmic bends of number columns' encoded values x (rows, columns;
    v = x * scale + center, mostly of one sign): asinh(v / a), a a tenth of the 2nd percentile of
    the sizes |v|, standardised by the median and interquartile range of the bent values."""
    v = _decoded(x, scale, center)
    size = np.quantile(np.abs(v), 0.02, axis=0)
    a = np.where(size > 0, size, 1.0) / 10
    middle, spread = _middle_and_spread(np.arcsinh(v / a))
    return np.stack([scale / a, center / a, middle, spread, np.ones_like(a)])


def _middle_and_spread(bent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns,) each bent column's median and interquartile range / 1.349 (its standard
    deviation if the quartiles coincide, 1 if that is 0 too): what it is standardised by."""
    q1, middle, q3 = np.percentile(bent, [25, 50, 75], axis=0)
    spread = np.where(q3 - q1 > 1e-12, (q3 - q1) / 1.349, bent.std(axis=0))
    return middle, np.where(spread > 1e-12, spread, 1.0)


def _bent_column(x: np.ndarray, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One encoded column x bent as ``column`` (a column of a bend), and the log of the bend's
    derivative at each value (for the likelihood of the bent values: a change of variables)."""
    gain, offset, center, spread, curved = column
    if not curved:
        return x, np.zeros_like(x)
    w = x * gain + offset
    return (np.arcsinh(w) - center) / spread, np.log(gain / spread) - 0.5 * np.log1p(w * w)


def _inside(u: np.ndarray) -> np.ndarray:
    """The rows of ``u`` (columns standardised by their median and interquartile range) within
    the "auto" fence of their Mahalanobis distances under a normal model of them, refitted on the
    rows within until they settle (garbage left out); first fitted on the rows with no value beyond
    ``START`` of those units (unless that leaves fewer than half), for a few fields far out, a
    value in another unit, hide a relation of the columns from a model fitted on all rows."""
    keep = (np.abs(u) <= START).all(axis=1)
    if 2 * keep.sum() < len(u):
        keep[:] = True
    for _ in range(MAX_ROUNDS):
        mean = u[keep].mean(axis=0)
        precision = np.linalg.inv(np.cov(u[keep], rowvar=False) + JOINT_RIDGE * np.eye(u.shape[1]))
        centred = u - mean
        distance = np.sqrt(np.maximum(((centred @ precision) * centred).sum(axis=1), 0))
        inside = distance <= auto_fence(distance)
        if inside.sum() < 2 or np.array_equal(inside, keep):
            break
        keep = inside
    return keep


def _related_bend(
    x: np.ndarray, number: np.ndarray, scale: np.ndarray, center: np.ndarray, bend: np.ndarray
) -> np.ndarray:
    """``bend`` (5, features) refined for how the columns go together: number columns bent about
    logarithmically where that makes each of them much better predicted linearly by the others
    (its variance left unexplained by them at most ``1 / RELATED`` times as large as under its
    own bend) and the rows, taken as jointly normal, more likely. A total = quantity x price is
    linear in the logarithms of all three, and the cell model is linear: otherwise the rows of a
    quantity of 1 and a high price lie far off its fit. (A choice of the columns' transforms for
    joint normality, as the multivariate Box-Cox of Andrews, Gnanadesikan and Warner 1971,
    between two: as bent for itself, or logarithmic; all such columns logarithmic first, then
    those that gain too little put back one at a time.) Judged on the rows that both ways of
    bending them find within their fences, so that garbage, which breaks such relations, does not
    hide them."""
    x = x[np.random.default_rng(0).permutation(len(x))[:JOINT_ROWS]]
    # the columns that may be bent for their relations (of one sign: amounts, sizes, counts from
    # 1, not a column that crosses 0): their logarithmic bend
    v = _decoded(x, np.where(number, scale, 1.0), np.where(number, center, 0.0))
    one_sign = np.maximum((v > 0).mean(axis=0), (v < 0).mean(axis=0)) >= ONE_SIGN
    candidates = [
        j
        for j in np.flatnonzero(number & one_sign)
        if len(np.unique(v[: 100 * JOINT_LEVELS, j])) >= JOINT_LEVELS
    ]
    if not candidates:
        return bend
    bends = _log_bends(x[:, candidates], scale[candidates], center[candidates])
    logs = dict(zip(candidates, bends.T, strict=True))
    own = warp(torch.from_numpy(x), torch.from_numpy(bend)).numpy()
    all_logs, log_derivative = own.copy(), {}
    for j, column in logs.items():
        all_logs[:, j], log_derivative[j] = _bent_column(x[:, j], column)
    keep = _inside(own) & _inside(all_logs)
    if keep.sum() <= x.shape[1]:
        return bend
    # the mean log derivative of each column's bend over the kept rows, each way
    own_jacobian = {j: _bent_column(x[keep, j], bend[:, j])[1].mean() for j in logs}
    log_jacobian = {j: log_derivative[j][keep].mean() for j in logs}

    # the covariance of the kept rows' columns bent each way: any choice's is part of it
    both = np.cov(np.hstack([own[keep], all_logs[keep][:, list(logs)]]), rowvar=False)
    both += JOINT_RIDGE * np.eye(len(both))
    where_log = dict(zip(logs, range(own.shape[1], len(both)), strict=True))

    def fit(chosen: set[int]) -> tuple[float, np.ndarray]:
        """The kept rows' mean log likelihood as jointly normal, up to a constant, with the
        ``chosen`` columns logarithmic, and each column's log of its variance over its variance
        left unexplained by the others."""
        columns = [where_log[j] if j in chosen else j for j in range(own.shape[1])]
        covariance = both[np.ix_(columns, columns)]
        jacobian = sum(log_jacobian[j] if j in chosen else own_jacobian[j] for j in logs)
        explained = np.log(covariance.diagonal() * np.linalg.inv(covariance).diagonal())
        return -0.5 * np.linalg.slogdet(covariance)[1] + jacobian, explained

    base, base_explained = fit(set())
    chosen = set(logs)
    while chosen:
        likelihood, explained = fit(chosen)
        gain = {j: explained[j] - base_explained[j] for j in chosen}
        weakest = min(gain, key=gain.get)
        if gain[weakest] >= np.log(RELATED):
            break
        chosen.discard(weakest)
    if not chosen or likelihood <= base:
        return bend
    bend = bend.copy()
    for j in chosen:
        bend[:, j] = logs[j]
    return bend


def normal_gap(values: np.ndarray) -> np.ndarray:
    """(features,): how far each column of ``values`` (rows, features) is from a normal
    distribution, by its quantiles: the skew |q90 + q10 - 2 q50| / (q90 - q10) plus the log of the
    ratio of its tail width (q99 - q1) / (q90 - q10) to a normal one's."""
    q01, q10, q50, q90, q99 = np.percentile(values, [1, 10, 50, 90, 99], axis=0)
    width = np.maximum(q90 - q10, 1e-12)
    normal_tails = 2 * 2.3263 / (2 * 1.2816)  # (z99 - z01) / (z90 - z10)
    return np.abs(q90 + q10 - 2 * q50) / width + np.abs(
        np.log(np.maximum(q99 - q01, 1e-12) / width / normal_tails)
    )


def warp(x: torch.Tensor, bend: torch.Tensor | None) -> torch.Tensor:
    """The encoded rows ``x`` (float64) on the cell model's scale (:func:`fit_warp`); as they are
    when ``bend`` is None (a model saved before the bend)."""
    curved = None if bend is None else torch.nonzero(bend[4] > 0)[:, 0]
    if curved is None or not len(curved):
        return x
    gain, offset, center, spread = bend[:4, curved]  # the others' bend is the identity
    out = x.clone()
    out[:, curved] = (torch.asinh(x[:, curved] * gain + offset) - center) / spread
    return out


def unwarp(u: torch.Tensor, bend: torch.Tensor | None) -> torch.Tensor:
    """The inverse of :func:`warp`: values on the cell model's scale back to encoded ones."""
    if bend is None:
        return u
    y = u * bend[3] + bend[2]
    return (torch.where(bend[4] > 0, torch.sinh(y), y) - bend[1]) / bend[0]


def fit_edges(u: torch.Tensor) -> torch.Tensor:
    """(6, features) float64: each column's edges on the cell model's scale, of the rows ``u``
    (float64, no gaps): the lower edge, its spacing and the share of values below it, the upper
    edge, its spacing and the share above it. An edge is the quantile ``EDGE`` from its end (at
    least ``EDGE_VALUES`` rows' share, so that in a small table a unit error repeated does not set
    it), its spacing the distance to the quantile of ``TENFOLD`` times that share (at most a quarter
    of the rows), but at least the column's step, the median gap between its distinct values (1 for
    counts, the gap between levels for a flag), ``RESOLUTION`` of the width between the edges, and
    the distance from the median to the edge over ``BODY_SPACINGS`` (a normal or an exponential
    tail has 2.8 or 2 of its spacings there): a heap of values at an edge (loans at a cap of
    35,000 that 5% of them hold) makes both quantiles one, and a value a little beyond it (the
    later cap of 40,000) lay a hundred spacings out.
    The share beyond an edge is counted (at least one row's): a column whose values pile up at a
    floor (a count, a length of at least 1) has none below it, and a value there is rarer than one
    beyond the edge of a long tail."""
    n = max(len(u), 1)
    share = max(EDGE, EDGE_VALUES / n)
    wider = min(TENFOLD * share, 0.25)
    values = u.numpy()
    q = np.quantile(values, [share, wider, 0.5, 1 - wider, 1 - share], axis=0)
    step = np.array([_step(column) for column in values.T]) if values.shape[1] else np.zeros(0)
    least = np.maximum(RESOLUTION * np.maximum(q[4] - q[0], 1e-12), step)
    below = np.maximum((values < q[0]).mean(axis=0), 1 / n)
    above = np.maximum((values > q[4]).mean(axis=0), 1 / n)
    low_spacing = np.maximum(q[1] - q[0], np.maximum(least, (q[2] - q[0]) / BODY_SPACINGS))
    high_spacing = np.maximum(q[4] - q[3], np.maximum(least, (q[4] - q[2]) / BODY_SPACINGS))
    low, high = [q[0], low_spacing, below], [q[4], high_spacing, above]
    return torch.from_numpy(np.stack([*low, *high]))


def _step(values: np.ndarray) -> float:
    """The median gap between a column's distinct values (0 for a constant one)."""
    distinct = np.unique(values)
    return float(np.median(np.diff(distinct))) if len(distinct) > 1 else 0.0


def edge_rarity(
    u: torch.Tensor, edges: torch.Tensor, judged: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows,): how rare a row's farthest number field beyond its column's edges
    (:func:`fit_edges`) is, as -log of the share of rows expected to have a field that far out:
    the column's tail taken as exponential beyond each edge, ``TENFOLD`` times rarer with each
    spacing, starting from the share of values beyond that edge (doubled: a field can be out on
    either side), and a row of m ``judged`` (0/1) observed fields m times as likely to have one
    out. 0 for a row with every field within its edges."""
    low, low_spacing, low_share, high, high_spacing, high_share = edges
    rate = math.log(TENFOLD)
    rarity = torch.maximum(
        torch.where(u < low, (low - u) / low_spacing * rate - torch.log(2 * low_share), 0.0),
        torch.where(u > high, (u - high) / high_spacing * rate - torch.log(2 * high_share), 0.0),
    )
    judged = judged > 0 if seen is None else (judged > 0) & (seen > 0)
    return _rarest(rarity.masked_fill(~judged, 0.0), judged)


def _rarest(rarity: torch.Tensor, fields: torch.Tensor) -> torch.Tensor:
    """(rows,): the rarest of each row's fields' ``rarity`` (rows, features), a row of m ``fields``
    (rows, features: those judged and observed) m times as likely to have one; 0 for none."""
    farthest = rarity.max(dim=1).values if rarity.shape[1] else torch.zeros(len(rarity), dtype=rarity.dtype)
    count = fields.expand(len(rarity), -1).sum(dim=-1).clamp_min(1).to(rarity.dtype)
    return torch.where(farthest > 0, farthest - torch.log(count), 0.0).clamp_min(0.0)


def fit_grids(x: torch.Tensor, judged: torch.Tensor | None = None) -> torch.Tensor:
    """(3, features) float64: the grid of each column of the encoded rows ``x`` (float64, no gaps),
    of the ``judged`` (0/1) ones if given, the others without one (one-hot levels need none), rows
    origin, step and the share of the values off the grid (at least one row's) among the rows on
    their grids in most of their fields (rows off them in most, and in ``LOST_FIELDS`` or more,
    noise or rows from elsewhere, would make a single field off its grid seem common); a step of 0
    for a column without one. A column has a grid when its values other than its most common one (a
    column of mostly zeros says nothing by its zeros) lie on origin + k step, within
    ``GRID_TOLERANCE`` of a step: counts, amounts in whole cents, readings to two decimals, levels
    of a scale, however they were scaled. All but ``1 - GRID_SHARE`` of them, or all but ``1 -
    GRID_LOOSE`` when the rest lie on no finer grid (:func:`_holds`): the garbage a grid is wanted
    for, values from elsewhere, must not hide it. The origin is the most common value, the step that
    of the values that occur at least twice (a value that occurs once may be garbage; nor one held
    by a few rows where the column's own are held by tens, ``HELD``; and the least gap between them
    but for a share ``SPLIT``: :func:`_common_step`), refined by least squares over those near its
    points (within ``NEAR_POINT`` of a step near the origin, ``ON_POINT`` farther out, where garbage
    near a point would pull it far), then made 2, 5 or 10 times coarser while the grid still holds
    the values (a few odd values repeated, 4.5 among counts, would make it too fine). A grid too
    fine for the float32 encoding to show at most of the column's values (out to its 99th
    percentile: about 8,000 steps from the encoded 0, the column's median) does not count."""
    values = x.cpu().double().numpy()
    out = np.zeros((3, values.shape[1]))
    off = np.zeros(values.shape, dtype=bool)
    columns = range(values.shape[1]) if judged is None else torch.nonzero(judged > 0)[:, 0].tolist()
    for j in columns:
        column = values[:, j]
        grid = _grid(column)
        if grid is not None:
            out[:2, j] = grid
            off[:, j] = _plainly_off(column, *grid)
    gridded = out[1] != 0
    kept = off[~_lost(off[:, gridded])]  # never none: a grid holds 90% of its column's values
    out[2, gridded] = np.maximum(kept[:, gridded].mean(axis=0), 1 / len(values))
    return torch.from_numpy(out)


def _lost(off: np.ndarray) -> np.ndarray:
    """Whether each row of ``off`` (rows, fields: off its column's grid or levels) is off them in
    most of its fields and in ``LOST_FIELDS`` or more: noise, a row from elsewhere."""
    count = off.sum(axis=1)
    return (count >= LOST_FIELDS) & (2 * count > off.shape[1])


def _grid(values: np.ndarray) -> tuple[float, float] | None:
    """(origin, step) of the grid the repeated ``values`` suggest, if it holds them, or None."""
    distinct, counts = np.unique(values, return_counts=True)
    repeated = distinct[counts >= 2]
    if len(repeated):
        # values of garbage repeated (a sentinel, values swapped in from another column) are held
        # by a few rows where the column's own are held by tens: those each split a step in two
        fewest = min(np.median(counts[counts >= 2]) / HELD, COPY_SHARE * len(values))
        repeated = distinct[counts >= max(2, fewest)]
    if len(repeated) < 2:
        return None
    origin = float(distinct[counts.argmax()])
    # the least gap but for a few such values held by as many rows as the column's own
    least = float(np.quantile(np.diff(repeated), SPLIT, method="lower"))
    # the step from the values near the origin first: the least gap is known only to the float32
    # rounding, which a multiple of thousands of steps would turn into a step or more
    step = _common_step(repeated[np.abs(repeated - origin) <= 10 * least], origin, least)
    if step is None:
        return None
    for near in (10, 100, 1000, np.inf):
        held = repeated[np.abs(repeated - origin) <= near * least]
        k = (held - origin) / step
        # garbage off the grid would pull it away: once the values near the origin have refined
        # it, a garbage value a tenth of a step off a point hundreds of steps out pulls it by
        # far more than the float32 rounding of the values on the grid
        near_point = np.abs(k - k.round()) <= (NEAR_POINT if near == 10 else ON_POINT)
        multiples = k.round()[near_point]
        if multiples.any():
            step = float(np.sum((held[near_point] - origin) * multiples) / np.sum(multiples**2))
    others = values[values != origin]
    if not _told(np.quantile(np.abs(values), 0.99), origin, step) or not _holds(others, origin, step):
        return None
    # the column's own values are on it: but for a few garbage values repeated (as in the gaps),
    # a value as common as the column's own off the grid is one of its levels (0.65, 0.82, 3.21)
    if _plainly_off(repeated, origin, step).mean() > SPLIT:
        return None
    coarser = True
    while coarser:  # a few repeated odd values (4.5 among counts) make too fine a grid
        coarser = next((m for m in FINER if _holds(others, origin, step * m, repeated)), None)
        step *= coarser or 1
    return origin, step


def _common_step(repeated: np.ndarray, origin: float, least: float) -> float | None:
    """The largest step, the ``least`` gap between repeated values divided by 1 to 10, of a grid
    from ``origin`` that holds the ``repeated`` values (:func:`_holds`; gaps of 0.03 and 0.04:
    0.01); None if none does."""
    for parts in range(1, 11):
        if _holds(repeated, origin, least / parts):
            return least / parts
    return None


def _holds(values: np.ndarray, origin: float, step: float, repeated: np.ndarray | None = None) -> bool:
    """Whether the grid holds the ``values``: all but a share ``1 - GRID_SHARE`` of them that lie on a
    grid up to 100 times finer (2.5 among counts, cents among whole amounts: a finer grid's values),
    and all but ``1 - GRID_LOOSE`` in all (the rest on none: numbers from elsewhere, garbage, as a
    value swapped in from another column, noise, a sentinel in a scaled column); and, when coarsening,
    three of the ``repeated`` values (counts mostly 0, some 1 and 2, are not on steps of 2 with the
    1s off them; a flag is on no coarser grid)."""
    if repeated is not None and int((~_off_grid(repeated, origin, step, 1)).sum()) < 3:
        return False
    if len(values) == 0:
        return True
    off = _plainly_off(values, origin, step)
    finer = np.zeros_like(off)
    for m in (FINER[-1], FINER[-1] ** 2):  # as far as the float32 encoding tells, roughly
        finer |= ~_off_grid(values, origin, step, m, ROUGHLY) & _told(values, origin, step, m, ROUGHLY)
    return float((off & finer).mean()) <= 1 - GRID_SHARE and float(off.mean()) <= 1 - GRID_LOOSE


def _told(values, origin, step, finer: int = 1, tolerance: float = GRID_TOLERANCE):
    """Whether the float32 encoding is fine enough to tell whether ``values`` lie on the grid with
    steps ``step / finer``: its rounding of them and of the origin within half the ``tolerance``."""
    return (abs(values) + abs(origin)) * FLOAT32 <= 0.5 * tolerance * abs(step) / finer


def _off_grid(values, origin, step, finer: int, tolerance: float = GRID_TOLERANCE):
    """Whether ``values`` (numpy or torch) lie off the grid with steps ``step / finer``, farther
    than ``tolerance`` steps from its points."""
    k = (values - origin) / step * finer
    return abs(k - k.round()) > tolerance


def _plainly_off(values, origin, step, finer: int = 1):
    """Whether ``values`` (numpy or torch) lie off the grid with steps ``step / finer`` as far as
    the float32 encoding can tell (:func:`_off_grid`, :func:`_told`)."""
    return _off_grid(values, origin, step, finer) & _told(values, origin, step, finer)


def grid_rarity(
    x: torch.Tensor, grids: torch.Tensor, judged: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows,): how rare a row's number field off its column's grid (:func:`fit_grids`) is, as -log
    of the share of rows expected to have one like it: the rarest of its fields'
    (:func:`off_grid_rarities`), a row of m ``judged`` (0/1) observed fields on grids m times as
    likely to have one. 0 for a row with every field on its grid."""
    on = (judged > 0) & (grids[1] != 0) & (True if seen is None else seen > 0)
    return _rarest(off_grid_rarities(x, grids, judged, seen), on)


def off_grid_rarities(
    x: torch.Tensor, grids: torch.Tensor, judged: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows, features): for each ``judged`` (0/1) observed field off its column's grid, -log of
    the share of the column's values off it, plus the log of how much finer a grid must be to hold
    it, one of ``FINER`` (a 2.5 among counts: 2; a reading with a third decimal where the others
    have two: 10: ten times rarer for each digit more), or, on none of them (a number from
    elsewhere, noise), 10 times ``FOREIGN`` (a finer grid counts as holding a value too far out for
    the float32 encoding to tell). 0 for the other fields, and for those too far out for it to
    tell whether they are on the column's grid."""
    origin, step, share = grids
    gridded = step != 0
    step = torch.where(gridded, step, 1.0)
    rarity = torch.full_like(x, math.log(FINER[-1] * FOREIGN))
    for finer in reversed(FINER):  # where float32 cannot tell, the value may be on the finer grid
        off = _plainly_off(x, origin, step, finer)
        rarity = torch.where(off, rarity, math.log(finer))
    rarity = rarity - torch.log(share.clamp_min(1e-300))
    on = (judged > 0) & gridded & (True if seen is None else seen > 0)
    off = on & _plainly_off(x, origin, step)
    return rarity.masked_fill(~off, 0.0)


def cell_deviations(
    x: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows, features): each observed field's residual given the row's other observed fields
    (``seen``: rows' 0/1 observed features; None = all), in conditional standard deviations,
    signed; 0 for the unobserved."""
    residual, conditional = _conditionals(x, mean, precision, seen)
    return residual / conditional.sqrt()


def predicted_values(
    x: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows, features): each observed field's value as the row's other observed fields predict it
    (the unobserved as they are)."""
    residual, conditional = _conditionals(x, mean, precision, seen)
    return x - residual / conditional


def largest_deviation(deviations: torch.Tensor, judged: torch.Tensor | None = None) -> torch.Tensor:
    """(rows,): the largest absolute deviation of a row's fields, of the ``judged`` ones (0/1, a
    vector or one per row) if given."""
    size = deviations.abs()
    if judged is not None:
        size = size * judged
    return size.max(dim=1).values if size.shape[1] else torch.zeros(len(size), dtype=size.dtype)


def _conditionals(
    x: torch.Tensor, mean: torch.Tensor, precision: torch.Tensor, seen: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P~ (x - mean), diag P~) per row over its observed fields, P~ the precision of their
    marginal; (0, 1) for the unobserved fields.

    With y the centred row and its missing fields M set to 0, and a = (P y)_M, the observed part
    is P~ y_O = (P y)_O - P_OM P_MM^-1 a and diag P~ = diag P_OO - diag(P_OM P_MM^-1 P_MO): one
    product for every row, then small solves, batched over the rows with as many gaps."""
    centred = x - mean
    if seen is None or bool(seen.all()):
        return centred @ precision, precision.diagonal().expand_as(x)
    observed = seen > 0
    residual = torch.where(observed, centred, 0.0) @ precision
    conditional = precision.diagonal().repeat(len(x), 1)
    gaps = (~observed).sum(dim=1)
    for m in gaps.unique().tolist():
        if m == 0:
            continue
        rows_with_m = torch.nonzero(gaps == m)[:, 0]
        # (rows, features, m) at a time: at most ~16M numbers
        step = max(1, 2**24 // (x.shape[1] * m))
        for rows in rows_with_m.split(step):
            missing = torch.nonzero(~observed[rows])[:, 1].view(len(rows), m)
            within = precision[missing[:, :, None], missing[:, None, :]]  # (rows, m, m): P_MM
            across = precision[:, missing].permute(1, 0, 2)  # (rows, features, m): P_.M
            a = residual[rows].gather(1, missing)[..., None]
            solved = torch.linalg.solve(within, torch.cat([a, across.transpose(1, 2)], dim=2))
            residual[rows] -= (across @ solved[..., :1])[..., 0]
            conditional[rows] -= (across * solved[..., 1:].transpose(1, 2)).sum(dim=2)
    return residual.masked_fill(~observed, 0.0), conditional.masked_fill(~observed, 1.0)


def fit_levels(x: torch.Tensor, judged: torch.Tensor, grids: torch.Tensor | None = None) -> torch.Tensor:
    """(1 + LEVELS, features) float64: the levels of each ``judged`` (0/1) column of the encoded
    rows ``x`` (float64, no gaps) that has no grid (``grids``, :func:`fit_grids`) but whose values
    come from a few: at most ``LEVELS`` values, each held by at least ``LEVEL_SHARE`` of the rows
    (and 3), that hold ``LEVEL_COVER`` of them (0, 0.0132 and 1; seven readings of a dial). Row 0 the
    share of the values off them (at least one row's) among the rows on their grids and levels in
    most of their fields (as for :func:`fit_grids`), the others the levels; NaN for a column
    without levels. A value held by a few rows (garbage repeated: a swap from another column) is
    not a level."""
    n, features = x.shape
    out = torch.full((1 + LEVELS, features), float("nan"), dtype=torch.float64)
    least = max(3, math.ceil(LEVEL_SHARE * n))
    off = torch.zeros(x.shape, dtype=torch.bool)  # fields off their column's grid or levels
    checked = torch.zeros(features, dtype=torch.bool)  # the columns with a grid or levels
    for j in torch.nonzero(judged > 0).flatten().tolist():
        column = x[:, j]
        if grids is not None and float(grids[1, j]) != 0:
            # counts and readings: the grid sign judges them (their tails are no levels)
            off[:, j] = _plainly_off(column, grids[0, j], grids[1, j])
            checked[j] = True
            continue
        values, counts = torch.unique(column, return_counts=True)
        common = counts >= least
        if not 2 <= int(common.sum()) <= LEVELS or int(counts[common].sum()) < LEVEL_COVER * n:
            continue
        out[1 : 1 + int(common.sum()), j] = values[common].to(torch.float64)
        off[:, j] = ~torch.isin(column, values[common])
        checked[j] = True
    leveled = ~out[1].isnan()
    kept = off[~torch.from_numpy(_lost(off[:, checked].numpy()))]  # never none: levels hold 98%
    out[0, leveled] = kept[:, leveled].double().mean(dim=0).clamp_min(1 / n)
    return out


def level_rarity(
    x: torch.Tensor, levels: torch.Tensor, judged: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows,): how rare a row's number field off its column's levels (:func:`fit_levels`) is, as
    -log of the share of rows expected to have one like it: the rarest of its fields'
    (:func:`off_level_rarities`), a row of m ``judged`` observed fields with levels m times as
    likely to have one. 0 for a row with every field on its levels."""
    on = ~levels[0].isnan() & (judged > 0) & (True if seen is None else seen > 0)
    return _rarest(off_level_rarities(x, levels, judged, seen), on)


def off_level_rarities(
    x: torch.Tensor, levels: torch.Tensor, judged: torch.Tensor, seen: torch.Tensor | None = None
) -> torch.Tensor:
    """(rows, features): for each ``judged`` observed field of a column with levels that is none of
    them, -log of the column's share of values off its levels, ``FOREIGN`` times rarer (a value
    its column has not held: from elsewhere) unless it lies on the even steps of its levels (a 9
    where 1 to 4 are the levels: a rare level of a scale, not a number from elsewhere; how far
    beyond them it lies is the edge sign's to judge); 0 elsewhere."""
    out = torch.zeros(x.shape, dtype=torch.float64)
    columns = torch.nonzero(~levels[0].isnan() & (judged > 0)).flatten()
    if not len(columns):
        return out
    fields = x[:, columns].to(torch.float64)
    off = ~(fields.unsqueeze(1) == levels[1:, columns]).any(dim=1)
    if seen is not None:
        off &= seen[:, columns] > 0
    foreign = torch.ones_like(off)
    for i, j in enumerate(columns.tolist()):
        steps = _even_steps(levels[1:, j].numpy())
        if steps is not None:
            field = fields[:, i]
            foreign[:, i] = _plainly_off(field, *steps)
    rarity = -torch.log(levels[0, columns]) + math.log(FOREIGN) * foreign
    out[:, columns] = torch.where(off, rarity, 0.0)
    return out


def _even_steps(levels: np.ndarray) -> tuple[float, float] | None:
    """(origin, step) of the even steps a column's levels (NaN-padded) lie on (1, 2, 3, 5: a
    scale; 0, 0.25, 0.5, 1; a flag's 0 and 1), if they do; None otherwise (0, 0.0132 and 1). The
    step is the least gap between two levels, or that divided by one of ``FINER`` (0, 12.5, 20,
    21 and 22: halves)."""
    values = np.sort(levels[~np.isnan(levels)])
    if len(values) < 2:
        return None
    step = float(np.diff(values).min())
    if step <= 0:
        return None
    for finer in (1, *FINER):
        if not _off_grid(values, values[0], step, finer).any():
            return float(values[0]), step / finer
    return None


def fit_categories(x: torch.Tensor, groups: list[tuple[int, int]]) -> torch.Tensor:
    """(1, features) float64: for each one-hot feature of a category column (``groups``: the
    columns' features, start and stop) of the encoded rows ``x`` (float64), the share of the rows
    whose level in that column is held by at most as many rows as this feature's level is: its
    tail (of 3,000 rows, a level held by one, the only one so rare, 1/3,000; a level held by no
    row, as the column's "other" level may be, half a row's share); NaN for the other features."""
    shares = torch.full((1, x.shape[1]), float("nan"), dtype=torch.float64)
    for start, stop in groups:
        counts = (x[:, start:stop] > 0.5).sum(dim=0).to(torch.float64)
        tail = (counts.unsqueeze(0) * (counts.unsqueeze(0) <= counts.unsqueeze(1))).sum(dim=1)
        shares[0, start:stop] = tail.clamp_min(0.5) / max(len(x), 1)
    return shares


def category_rarity(x: torch.Tensor, categories: torch.Tensor, groups: list[tuple[int, int]]) -> torch.Tensor:
    """(rows,): how rare a row's rarest category is, as -log of the share of rows expected to
    have one as rare (:func:`fit_categories`), a row of m category fields m times as likely to
    have one; 0 for a row without one (a gap is no level)."""
    return _rarest(*off_category_rarities(x, categories, groups))


def off_category_rarities(
    x: torch.Tensor, categories: torch.Tensor, groups: list[tuple[int, int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, category columns) each: -log of the tail share (:func:`fit_categories`) of each
    row's level in each category column (0 for a gap), and whether the field holds a level."""
    rarity = torch.zeros(len(x), len(groups), dtype=torch.float64)
    held = torch.zeros(len(x), len(groups), dtype=torch.float64)
    for k, (start, stop) in enumerate(groups):
        on = x[:, start:stop].to(torch.float64) > 0.5
        rarity[:, k] = (on * -torch.log(categories[0, start:stop])).sum(dim=1)
        held[:, k] = on.any(dim=1).to(torch.float64)
    return rarity, held


def fit_copies(
    x: torch.Tensor, units: torch.Tensor, judged: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The copy sign's model of the encoded rows ``x`` (float64, no gaps), whose ``judged`` (0/1)
    number columns have ``units`` (2, features: scale and center, NaN for the other features).
    (1 + ``COMMON``, features) float64: row 0 1 for a judged column of more than ``LEVELS`` values (one
    of a few, a flag or a code, agrees with another by chance), 0 for the others; the other rows its
    common values, held by ``COPY_SHARE`` of the rows (and 3), NaN for none. (4, 1 + pairs) float64:
    for each pair of columns a < b whose fields agree in some row at a value common in neither
    (:func:`agreements`), a, b, the share of the rows where they do, and the share of the rows whose
    rarest agreement is at least as rare (the tail; 1 for a pair that agrees in ``COPY_SHARE`` of
    the rows or more: columns that often agree hold no copies); column 0, (-1, -1, 1 / rows, 1 /
    rows), stands for pairs that never agree so."""
    n, features = x.shape
    least = max(3, math.ceil(COPY_SHARE * n))
    common = torch.full((1 + COMMON, features), float("nan"), dtype=torch.float64)
    common[0] = 0.0
    rare_values = {}  # each judged column's rare values in its own units (float32) and their shares
    for j in torch.nonzero(judged > 0).flatten().tolist():
        values, counts = torch.unique(x[:, j], return_counts=True)
        if len(values) <= LEVELS:  # flags, codes, levels of a scale: they agree by chance
            continue
        held = values[counts >= least]
        common[0, j] = 1.0
        common[1 : 1 + len(held), j] = held.to(torch.float64)
        rare = counts < least
        own = (values[rare].double() * units[0, j] + units[1, j]).float().numpy()
        rare_values[j] = (own, counts[rare].double().numpy() / n)
    rows, a, b = agreements(x, units, judged, common)
    keys, pair_of, counts = torch.unique(a * features + b, return_inverse=True, return_counts=True)
    share = counts.to(torch.float64) / n
    # copies: two columns that seldom agree (not grey pixels, red = green), and more often than
    # chance has two columns of their values agree (not two columns of readings to a tenth)
    chance = torch.tensor(
        [_chance_agreement(*rare_values[k // features], *rare_values[k % features]) for k in keys.tolist()],
        dtype=torch.float64,
    )
    copied = (share < COPY_SHARE) & (share > CHANCE * chance)
    seldom = torch.where(copied, share, math.inf)
    rarest = torch.full((n,), math.inf, dtype=torch.float64).scatter_reduce(0, rows, seldom[pair_of], "amin")
    rarest = rarest[rarest.isfinite()].sort().values
    tail = torch.where(copied, torch.searchsorted(rarest, share, right=True) / n, 1.0)
    copies = torch.cat(
        [
            torch.tensor([[-1.0], [-1.0], [1 / n], [1 / n]], dtype=torch.float64),
            torch.stack([(keys // features).double(), (keys % features).double(), share, tail]),
        ],
        dim=1,
    )
    return common, copies


def _chance_agreement(
    values_a: np.ndarray, shares_a: np.ndarray, values_b: np.ndarray, shares_b: np.ndarray
) -> float:
    """The share of rows in which two columns of these values (sorted, distinct) with these shares
    would agree if they were independent: the sum over the values they share of the product."""
    _, in_a, in_b = np.intersect1d(values_a, values_b, return_indices=True)
    return float(shares_a[in_a] @ shares_b[in_b])


def same_values(own: torch.Tensor, center: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's fields ``own`` (rows, fields; in their columns' own units, NaN for none) in order
    of value, and whether each field holds the same value as the next, within ``COPY_TOLERANCE`` of
    their size (with their columns' ``center``: a value decoded from float32 near a center far from
    zero carries that center's rounding): the order, (rows, fields), and that, (rows, fields - 1)."""
    own, order = own.sort(dim=1)  # NaN last
    center = center.abs()[order]
    gap = (own[:, 1:] - own[:, :-1]).abs()
    size = own[:, 1:].abs() + own[:, :-1].abs() + center[:, 1:] + center[:, :-1]
    return order, gap <= COPY_TOLERANCE * size


def agreements(
    x: torch.Tensor,
    units: torch.Tensor,
    judged: torch.Tensor,
    common: torch.Tensor,
    seen: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The agreements among the encoded rows ``x`` (float64): each row, a, b (a < b, long) where two
    ``judged`` observed fields of columns of many values hold the same value in their columns' own
    units (``units``, see :func:`fit_copies`), within ``COPY_TOLERANCE``, and that value is none of
    either column's ``common`` ones. Three fields agreeing give two pairs (each with its nearest in
    value)."""
    columns = torch.nonzero((judged > 0) & (common[0] > 0)).flatten()
    rare = torch.ones(len(x), len(columns), dtype=torch.bool) if seen is None else seen[:, columns] > 0
    for i, j in enumerate(columns.tolist()):
        held = common[1:, j][~common[1:, j].isnan()]
        if len(held):
            rare[:, i] &= ~torch.isin(x[:, j], held)
    own = torch.where(rare, x[:, columns] * units[0, columns] + units[1, columns], float("nan"))
    order, same = same_values(own, units[1, columns])
    rows, at = torch.nonzero(same, as_tuple=True)
    first, second = columns[order[rows, at]], columns[order[rows, at + 1]]
    return rows, torch.minimum(first, second), torch.maximum(first, second)


def copy_rarities(
    x: torch.Tensor,
    units: torch.Tensor,
    judged: torch.Tensor,
    common: torch.Tensor,
    copies: torch.Tensor,
    seen: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each agreement of the rows ``x`` (:func:`agreements`): row, a, b and its rarity, -log of the
    share of the rows whose rarest agreement is as rare as that of a and b (:func:`fit_copies`)."""
    rows, a, b = agreements(x, units, judged, common, seen)
    features = x.shape[1]
    keys = (copies[0] * features + copies[1]).long()  # sorted: column 0's (-1, -1) first
    key = a * features + b
    at = torch.searchsorted(keys, key).clamp_max(len(keys) - 1)
    tail = torch.where(keys[at] == key, copies[3, at], copies[3, 0])
    return rows, a, b, -torch.log(tail)


def copy_rarity(
    x: torch.Tensor,
    units: torch.Tensor,
    judged: torch.Tensor,
    common: torch.Tensor,
    copies: torch.Tensor,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """(rows,): how rare the rarest agreement of each row's fields (:func:`copy_rarities`) is; 0 for
    a row without one."""
    rows, _, _, rarity = copy_rarities(x, units, judged, common, copies, seen)
    return torch.zeros(len(x), dtype=torch.float64).scatter_reduce(0, rows, rarity, "amax")
