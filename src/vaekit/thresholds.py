"""Where to cut the anomaly scores: a known contamination, an estimate of it, or a false-positive rate.

``contamination=0.05`` flags the 5% highest training scores (PyOD's rule). ``contamination="auto"``
estimates the cut without labels: the scores are put on a log scale (anomaly scores are errors with
a long right tail, near normal after the log), and the threshold is the median plus ``Z = 3`` robust
standard deviations (1.4826 * MAD) of that scale. Inliers seldom pass it (0.13% of a normal
sample), and the median and MAD, unlike the mean and standard deviation, are moved but little
by anomalies, even at 20% of the rows. Scores that are already on such a scale (the image scores
of :class:`vaekit.AnomalyDetector`, standardised logs) skip the log (``log_scale=True``).
A threshold for a target false-positive rate comes from data the user says is clean.
"""

from __future__ import annotations

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


def _log_scale(scores: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A monotone map of the scores to a scale where their bulk is roughly symmetric: (the
    mapped scores, in one new array, and the shift and floor of the map)."""
    low = float(np.min(scores))
    shifted = scores - low
    floor = float(np.median(shifted)) * 1e-3 + 1e-12
    shifted += floor
    return np.log(shifted, out=shifted), low, floor


def auto_threshold(scores: np.ndarray, log_scale: bool = False) -> float:
    """The threshold of ``contamination="auto"``: median + 3 robust standard deviations of the
    log-scaled scores (of the scores as they are, with ``log_scale``). Millions of scores are
    common: beside them, it needs one array of their size."""
    scores = np.asarray(scores)
    if scores.dtype not in (np.float32, np.float64):
        scores = scores.astype(np.float64)
    work, low, floor = (scores.copy(), None, None) if log_scale else _log_scale(scores)
    median = float(np.median(work, overwrite_input=True))
    work -= median
    np.abs(work, out=work)
    fence = median + Z * 1.4826 * float(np.median(work, overwrite_input=True))
    del work
    cut = fence if low is None else float(np.exp(fence)) - floor + low  # the fence in score units
    # the threshold: halfway between the highest inlier and the lowest flagged score, found a
    # slice at a time (no further array of the scores' size)
    highest_inlier, lowest_flagged = -np.inf, np.inf
    for start in range(0, len(scores), 1 << 20):
        part = scores[start : start + (1 << 20)]
        above = part > cut
        if above.any():
            lowest_flagged = min(lowest_flagged, float(part[above].min()))
        if not above.all():
            highest_inlier = max(highest_inlier, float(part[~above].max()))
    if lowest_flagged == np.inf:
        return float(np.max(scores))
    return (highest_inlier + lowest_flagged) / 2


def threshold_for(scores: np.ndarray, contamination: float | str, log_scale: bool = False) -> float:
    """The score above which a row is flagged; ``contamination`` is a fraction or ``"auto"``;
    ``log_scale``: the scores are logs already (see :func:`auto_threshold`)."""
    check_contamination(contamination)
    if contamination == "auto":
        return auto_threshold(scores, log_scale)
    return float(np.percentile(scores, 100 * (1 - contamination)))


def threshold_for_false_positive_rate(clean_scores: np.ndarray, false_positive_rate: float) -> float:
    """The score that flags ``false_positive_rate`` of rows known to be clean."""
    if not 0 < false_positive_rate < 1:
        raise ParameterError(f"false_positive_rate={false_positive_rate!r}: must be in (0, 1)")
    return float(np.quantile(clean_scores, 1 - false_positive_rate, method="higher"))
