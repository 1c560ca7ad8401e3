"""Where to cut the anomaly scores: a known contamination, an estimate of it, or a false-positive rate.

``contamination=0.05`` flags the 5% highest training scores (PyOD's rule). ``contamination="auto"``
estimates the cut without labels: the scores are put on a log scale (anomaly scores are errors with
a long right tail, near normal after the log), and the threshold is the median plus ``Z = 3`` robust
standard deviations (1.4826 * MAD) of that scale. Inliers seldom pass it (0.13% of a normal
sample), and the median and MAD, unlike the mean and standard deviation, are moved but little
by anomalies, even at 20% of the rows. Scores that are already on such a scale (the image scores
of :class:`vaekit.AnomalyDetector`, standardised logs) skip the log (``log_scale=True``).
:class:`vaekit.AnomalyDetector` on tables scores a row by the largest of its signs, four with their
own fence found by this rule on the training rows (the edge and grid signs, rarities already, have
that of a normal sample); its "auto" threshold is the highest of them on the scale of the signs'
rarity, but no higher than a normal sample's fence raised for the number of signs (:func:`fence_z`).
A threshold for a target false-positive rate comes from data the user says is clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import NormalDist

import numpy as np

from vaekit.errors import ParameterError

Z = 3.0


def check_contamination(contamination: object) -> None:
    if contamination == "auto":
        return
    if isinstance(contamination, bool) or not isinstance(contamination, float | int):
        raise ParameterError(f"contamination={contamination!r}: give 'auto' or a fraction in (0, 0.5]")
    if not 0 < contamination <= 0.5:
        raise ParameterError(f"contamination={contamination!r}: must be in (0, 0.5], or 'auto'")


def auto_threshold(scores: np.ndarray, log_scale: bool = False) -> float:
    """The threshold of ``contamination="auto"``: median + 3 robust standard deviations of the
    log-scaled scores (of the scores as they are, with ``log_scale``). Millions of scores are
    common: the medians are found a slice of the scores at a time (:func:`order_statistics`),
    with no copy of them all. The fence itself is the threshold, so that other data are cut by the
    same rule (a score anywhere above it is flagged)."""
    return auto_fence(scores, log_scale)


def fence_z(signs: int) -> float:
    """How many robust standard deviations a fence on each of ``signs`` signs of trouble stands
    above the median, so that a normal sample passes one of them about as often as it passes one
    fence at ``Z`` (Bonferroni: the tail share of one fence divided by the number of signs)."""
    normal = NormalDist()
    return normal.inv_cdf(1 - normal.cdf(-Z) / max(int(signs), 1))


def auto_fence(scores: np.ndarray, log_scale: bool = False, z: float = Z) -> float:
    """The cut of :func:`auto_threshold`, in score units: median + ``z`` (3) robust standard deviations."""
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    n = len(scores)
    middle = [(n - 1) // 2, n // 2]  # the median: the mean of these (one rank when n is odd)
    lower, upper = order_statistics(scores, middle)
    if log_scale:
        low = floor = None
        median = (lower + upper) / 2

        def scale(part: np.ndarray) -> np.ndarray:
            return part.astype(np.float64)
    else:
        low = float(scores.min())
        floor = ((lower - low) + (upper - low)) / 2 * 1e-3 + 1e-12

        def scale(part: np.ndarray) -> np.ndarray:
            # a monotone map to a scale where the bulk of the scores is roughly symmetric
            return np.log(part.astype(np.float64) - low + floor)

        median = float((scale(np.array([lower])) + scale(np.array([upper])))[0] / 2)
    mad = float(np.mean(order_statistics(scores, middle, lambda part: np.abs(scale(part) - median))))
    fence = median + z * 1.4826 * mad
    return fence if low is None else float(np.exp(fence)) - floor + low  # the fence in score units


CHUNK = 1 << 20  # scores looked at together


def order_statistics(values: np.ndarray, ranks: list[int], transform=None, bins: int = 4096) -> list[float]:
    """The ``ranks``-th smallest (0-based) of ``transform(values)``, exactly, with memory that
    does not grow with the values: a histogram narrows down the range that holds each rank
    until at most ``CHUNK`` values lie in it, which are then sorted. ``transform`` (elementwise)
    is applied a slice at a time."""
    transform = transform or (lambda part: part.astype(np.float64))
    if len(values) <= CHUNK:  # few enough to sort at once
        ordered = np.sort(transform(values))
        return [float(ordered[r]) for r in ranks]
    results = {}
    for rank in sorted(set(ranks)):
        lo, hi, closed, below = -np.inf, np.inf, True, 0
        while True:
            count, vmin, vmax = 0, np.inf, -np.inf
            for v in _within(values, transform, lo, hi, closed):
                if len(v):
                    count, vmin, vmax = count + len(v), min(vmin, float(v.min())), max(vmax, float(v.max()))
            if vmin == vmax:
                results[rank] = vmin
                break
            if count <= CHUNK:
                kept = np.sort(np.concatenate(list(_within(values, transform, lo, hi, closed))))
                results[rank] = float(kept[rank - below])
                break
            edges = np.linspace(vmin, vmax, bins + 1)
            counts = np.zeros(bins, dtype=np.int64)
            for v in _within(values, transform, lo, hi, closed):
                counts += np.histogram(v, edges)[0]
            cumulative = np.cumsum(counts)
            b = int(np.searchsorted(cumulative, rank - below, side="right"))
            below += int(cumulative[b - 1]) if b else 0
            lo, hi, closed = float(edges[b]), float(edges[b + 1]), b == bins - 1
    return [results[r] for r in ranks]


def _within(values: np.ndarray, transform, lo: float, hi: float, closed: bool) -> Iterator[np.ndarray]:
    """``transform(values)`` in [lo, hi] (``closed``) or [lo, hi), a slice of the values at a time."""
    for start in range(0, len(values), CHUNK):
        v = transform(values[start : start + CHUNK])
        yield v[(v >= lo) & ((v <= hi) if closed else (v < hi))]


def threshold_for(scores: np.ndarray, contamination: float | str, log_scale: bool = False) -> float:
    """The score above which a row is flagged; ``contamination`` is a fraction or ``"auto"``;
    ``log_scale``: the scores are logs already (see :func:`auto_threshold`)."""
    check_contamination(contamination)
    if contamination == "auto":
        return auto_threshold(scores, log_scale)
    # numpy's percentile (linear interpolation between the two nearest ranks), without a copy
    scores = np.asarray(scores)
    position = (len(scores) - 1) * (1 - contamination)
    below, above = int(np.floor(position)), int(np.ceil(position))
    a, b = order_statistics(scores, [below, above])
    return float(a + (b - a) * (position - below))


def threshold_for_false_positive_rate(clean_scores: np.ndarray, false_positive_rate: float) -> float:
    """The score that flags ``false_positive_rate`` of rows known to be clean."""
    if not 0 < false_positive_rate < 1:
        raise ParameterError(f"false_positive_rate={false_positive_rate!r}: must be in (0, 1)")
    return float(np.quantile(clean_scores, 1 - false_positive_rate, method="higher"))
