"""The HTML report of ``vaekit clean``: one self-contained file (pictures embedded) to read in a browser.

:class:`CleanReport` holds what the cleaning found; :func:`write_report` turns it into a page:
the summary, the score histogram with the threshold, the most anomalous rows with the columns
that made them so highlighted, typical rows for contrast, rows that could not be read, duplicates,
the latent space with the flagged rows marked, training curves, thumbnails for images, and with
known labels the ROC and precision-recall curves. Everything a user's file supplies is escaped.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vaekit.io import atomic_path

N_SHOWN = 20  # rows in the table of the most anomalous rows
N_TYPICAL = 8
N_THUMBNAILS = 24
MAX_POINTS = 5000  # points drawn in the latent scatter


def extreme_places(scores: np.ndarray, k: int, highest: bool) -> np.ndarray:
    """The places of the ``k`` highest (or lowest) scores, without sorting all of them."""
    k = min(k, len(scores))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    cut = np.partition(scores, len(scores) - k if highest else k - 1)[len(scores) - k if highest else k - 1]
    places = np.flatnonzero(scores >= cut if highest else scores <= cut)
    order = np.argsort(-scores[places] if highest else scores[places], kind="stable")
    return places[order[:k]]


def ranks_among(scores: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """The ranks of ``scores`` among all the scores, ``ordered`` (sorted ascending): 1 + how many
    are higher, so equal scores share a rank. Scores that are NaN (rows not scored) get 0."""
    ranks = len(ordered) - np.searchsorted(ordered, scores, side="right") + 1
    return np.where(np.isnan(scores), 0, ranks).astype(np.int64)


FLAGGED_COLOUR = "#d62728"
KEPT_COLOUR = "#1f77b4"


@dataclass
class CleanReport:
    """What a cleaning run found, for :func:`write_report`. ``m`` is the number of scored rows."""

    title: str
    input_path: str
    kind: str  # "table" or "images"
    n_rows: int
    n_kept: int
    n_garbage: int
    n_unparseable: int
    n_flagged: int
    n_duplicates: int
    duplicates_dropped: bool
    threshold: float
    threshold_rule: str
    detector: str
    seconds: float
    scores: np.ndarray
    flagged: np.ndarray
    row_ids: list[str]
    table: pd.DataFrame | None
    shares: np.ndarray | None
    share_columns: list[str]
    unparseable: list[tuple[str, str]]
    duplicates: list[tuple[str, str]]
    latent: np.ndarray | None
    history: dict[str, list[float]]
    images: np.ndarray | None
    reconstructions: np.ndarray | None
    labels: np.ndarray | None
    dropped_columns: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    # what set the score of flagged rows among the most anomalous, by their place in ``scores``
    why: dict[int, str] = field(default_factory=dict)
    # For a file too large to show whole: the (sorted) places in ``scores`` of the rows that
    # ``row_ids``, ``table``, ``shares`` and ``latent`` hold; None when they hold every row.
    shown: np.ndarray | None = None

    def at(self, i: int) -> int:
        """Where the scored row ``i`` sits in ``row_ids``, ``table``, ``shares`` and ``latent``."""
        return i if self.shown is None else int(np.searchsorted(self.shown, i))


def write_report(path: str | os.PathLike, data: CleanReport) -> Path:
    """Write the report of ``data`` to the HTML file ``path`` (atomically) and return the path."""
    sections = [
        _summary(data),
        _histogram(data),
        _metrics(data),
        _anomalous_rows(data),
        _typical_rows(data),
        _thumbnails(data),
        _unparseable(data),
        _duplicates(data),
        _latent(data),
        _curves(data),
        _dropped(data),
    ]
    body = "\n".join(s for s in sections if s)
    page = (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_e(data.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_e(data.title)}</h1>\n{body}\n"
        "<footer>Written by vaekit. Scores: higher = more anomalous.</footer>\n</main>\n</body>\n</html>\n"
    )
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


# -- sections ---------------------------------------------------------------------------------------


def _summary(d: CleanReport) -> str:
    removed = f"{d.n_garbage:,} ({d.n_garbage / max(d.n_rows, 1):.1%})"
    cards = [
        ("rows in", f"{d.n_rows:,}"),
        ("kept", f"{d.n_kept:,}"),
        ("removed", removed),
        ("flagged by the detector", f"{d.n_flagged:,}"),
        ("could not be read", f"{d.n_unparseable:,}"),
    ]
    if d.kind == "table":
        dup = f"{d.n_duplicates:,}" + (" (removed)" if d.duplicates_dropped else " (kept)")
        cards.append(("exact duplicates", dup))
    boxes = "".join(
        f"<div class='card'><div class='v'>{_e(v)}</div><div>{_e(k)}</div></div>" for k, v in cards
    )
    outputs = ", ".join(f"<a href='{_e(p)}'>{_e(name)}</a>" for name, p in d.outputs.items())
    rows = [
        ("input", _e(d.input_path)),
        ("threshold", f"{d.threshold:.4g}: {_e(d.threshold_rule)}"),
        ("detector", _e(d.detector)),
        ("time", f"{d.seconds:.1f} s"),
    ]
    if outputs:
        rows.append(("outputs", outputs))
    facts = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<section><div class='cards'>{boxes}</div><table class='facts'>{facts}</table></section>"


def _histogram(d: CleanReport) -> str:
    if len(d.scores) == 0:
        return ""
    import matplotlib.pyplot as plt

    scores, flagged = np.asarray(d.scores), np.asarray(d.flagged)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    # Scores with a long right tail are drawn on a log axis, shifted to start just above 0.
    low, high, median = float(scores.min()), float(scores.max()), float(np.median(scores))
    offset = low - max(median - low, 1e-6) * 0.1
    log = len(scores) > 10 and high - offset > 50 * (median - offset)
    if log:
        bins = np.geomspace(low - offset, high - offset, 60)
    else:
        bins = np.histogram_bin_edges([low, high], bins=60)
    # counted a million scores at a time: millions of rows cost no copies of their scores
    kept, bad = np.zeros(len(bins) - 1), np.zeros(len(bins) - 1)
    for start in range(0, len(scores), 1 << 20):
        part, marked = scores[start : start + (1 << 20)], flagged[start : start + (1 << 20)]
        values = part - offset if log else part
        kept += np.histogram(values[~marked], bins=bins)[0]
        bad += np.histogram(values[marked], bins=bins)[0]
    ax.stairs(kept, bins, fill=True, color=KEPT_COLOUR, label="kept")
    ax.stairs(bad, bins, fill=True, color=FLAGGED_COLOUR, label="flagged")
    cut = d.threshold - offset if log else d.threshold
    if np.isfinite(cut) and cut > 0:
        ax.axvline(cut, color="black", linestyle="--", label=f"threshold {d.threshold:.3g}")
    if log:
        ax.set_xscale("log")
    shifted = f"minus {offset:.3g}" if offset >= 0 else f"plus {-offset:.3g}"
    ax.set_xlabel(f"anomaly score {shifted} (log axis)" if log else "anomaly score")
    ax.set_ylabel("rows" if d.kind == "table" else "images")
    ax.set_yscale("log")
    ax.set_title("Scores of every row, with the threshold")
    ax.legend(loc="upper right")
    return _figure_section("Score distribution", fig, "Score histogram (log count axis)")


def _metrics(d: CleanReport) -> str:
    if d.labels is None or len(np.unique(d.labels)) < 2:
        return ""
    import matplotlib.pyplot as plt
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    y, s = np.asarray(d.labels), np.asarray(d.scores)
    auroc, auprc = roc_auc_score(y, s), average_precision_score(y, s)
    hits = int((d.flagged & (y == 1)).sum())
    recall, precision = hits / max(int(y.sum()), 1), hits / max(int(d.flagged.sum()), 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.4))
    fpr, tpr, _ = roc_curve(y, s)
    left.plot(fpr, tpr, color=KEPT_COLOUR)
    left.plot([0, 1], [0, 1], color="grey", linestyle=":")
    left.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, AUROC {auroc:.3f}")
    prec, rec, _ = precision_recall_curve(y, s)
    right.plot(rec, prec, color=FLAGGED_COLOUR)
    right.scatter([recall], [precision], color="black", zorder=3, label="at the threshold")
    right.set(xlabel="recall", ylabel="precision", title=f"Precision-recall, AUPRC {auprc:.3f}")
    right.legend(loc="lower left")
    text = (
        f"<p>Against the known labels: recall {recall:.3f} and precision {precision:.3f} at the "
        f"threshold; AUROC {auroc:.3f}, AUPRC {auprc:.3f}. The labels were not used for training.</p>"
    )
    return _figure_section("Against the known labels", fig, "ROC and precision-recall curves", text)


def _anomalous_rows(d: CleanReport) -> str:
    if d.table is None or len(d.scores) == 0:
        return ""
    order = extreme_places(np.asarray(d.scores), N_SHOWN, highest=True)
    note = (
        "<p>Cells are shaded by the column's share of the row's score (darker = more to blame).</p>"
        if d.shares is not None
        else ""
    )
    return (
        f"<section><h2>The {len(order)} most anomalous rows</h2>{note}"
        f"{_rows_table(d, order, shade=True)}</section>"
    )


def _typical_rows(d: CleanReport) -> str:
    if d.table is None or len(d.scores) == 0:
        return ""
    order = extreme_places(np.asarray(d.scores), N_TYPICAL, highest=False)
    return (
        "<section><h2>Typical rows, for contrast</h2><p>The rows with the lowest scores.</p>"
        f"{_rows_table(d, order, shade=False)}</section>"
    )


def _rows_table(d: CleanReport, order: np.ndarray, shade: bool) -> str:
    columns = list(d.table.columns)
    share_index = {c: j for j, c in enumerate(d.share_columns)}
    scores = np.asarray(d.scores)
    ranks = dict(zip(order.tolist(), ranks_among(scores[order], np.sort(scores)).tolist(), strict=True))
    why = shade and any(int(i) in d.why for i in order)
    head = "".join(f"<th>{_e(c)}</th>" for c in ["row", "rank", "score", *(["why"] if why else []), *columns])
    body = []
    for i in order:
        j = d.at(i)
        cells = [
            f"<td>{_e(d.row_ids[j])}</td><td>{ranks[i]}</td>"
            f"<td class='{'bad' if d.flagged[i] else ''}'>{d.scores[i]:.4g}</td>"
        ]
        if why:
            cells.append(f"<td class='why'>{_e(d.why.get(int(i), ''))}</td>")
        row = d.table.iloc[j]  # once per row: a wide table has thousands of cells in it
        for c in columns:
            value = row[c]
            style, title = "", ""
            if shade and d.shares is not None and c in share_index:
                share = float(d.shares[j, share_index[c]])
                if share >= 0.05:
                    style = f" style='background: rgba(214, 39, 40, {min(0.85, 0.15 + share):.2f})'"
                    title = f" title='{share:.0%} of the score'"
            cells.append(f"<td{style}{title}>{_e(_format(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<div class='scroll'><table class='rows'><tr>{head}</tr>{''.join(body)}</table></div>"


def _thumbnails(d: CleanReport) -> str:
    if d.images is None or len(d.scores) == 0:
        return ""
    worst = extreme_places(np.asarray(d.scores), N_THUMBNAILS, highest=True)
    best = extreme_places(np.asarray(d.scores), N_THUMBNAILS // 2, highest=False)

    def gallery(indices: np.ndarray) -> str:
        tiles = []
        for i in indices:
            pair = [_png_image(d.images[i])]
            if d.reconstructions is not None:
                pair.append(_png_image(d.reconstructions[i]))
            imgs = "".join(f"<img src='{uri}' alt='image {_e(d.row_ids[i])}'>" for uri in pair)
            tag = " flagged" if d.flagged[i] else ""
            why = d.why.get(int(i), "")
            title = f" title='{_e(why)}'" if why else ""
            tiles.append(
                f"<figure class='tile{tag}'{title}>{imgs}<figcaption>{_e(d.row_ids[i])}<br>"
                f"score {d.scores[i]:.3g}{'<br>' + _e(_short(why)) if why else ''}</figcaption></figure>"
            )
        return f"<div class='gallery'>{''.join(tiles)}</div>"

    pair = " each beside its reconstruction" if d.reconstructions is not None else ""
    return (
        f"<section><h2>The most anomalous images</h2><p>Highest scores first,{pair}; "
        f"flagged images have a red frame.</p>{gallery(worst)}"
        f"<h2>Typical images</h2><p>The lowest scores{pair}.</p>{gallery(best)}</section>"
    )


def _short(why: str) -> str:
    """A sign of trouble in a few words, for a thumbnail's caption (the whole in its tooltip)."""
    return why.split(" (")[0].split(":")[0]


def _unparseable(d: CleanReport) -> str:
    if not d.unparseable:
        return ""
    rows = "".join(f"<tr><td>{_e(w)}</td><td>{_e(r)}</td></tr>" for w, r in d.unparseable[:200])
    more = (
        f"<p>and {len(d.unparseable) - 200} more (see the garbage file).</p>"
        if len(d.unparseable) > 200
        else ""
    )
    return (
        f"<section><h2>Could not be read ({len(d.unparseable)})</h2><p>These are garbage by definition "
        "(a line that does not parse or holds one value alone, a value its column cannot hold: text among "
        "numbers, a date that is not one, a slip of one of a column's values): they are in the garbage "
        "output with their reason.</p>"
        f"<table class='rows'><tr><th>where</th><th>why</th></tr>{rows}</table>{more}</section>"
    )


def _duplicates(d: CleanReport) -> str:
    if not d.duplicates:
        return ""
    fate = (
        "removed (--drop-duplicates)"
        if d.duplicates_dropped
        else "kept (use --drop-duplicates to remove them)"
    )
    rows = "".join(f"<tr><td>{_e(w)}</td><td>{_e(r)}</td></tr>" for w, r in d.duplicates[:200])
    return (
        f"<section><h2>Exact duplicates ({len(d.duplicates)})</h2><p>Repeated rows were {fate}.</p>"
        f"<table class='rows'><tr><th>row</th><th>repeats</th></tr>{rows}</table></section>"
    )


def _latent(d: CleanReport) -> str:
    if d.latent is None or len(d.latent) < 3:
        return ""
    import matplotlib.pyplot as plt

    codes = np.asarray(d.latent, dtype=float)
    flagged = d.flagged if d.shown is None else d.flagged[d.shown]
    scores = np.asarray(d.scores) if d.shown is None else np.asarray(d.scores)[d.shown]
    if codes.shape[1] > 2:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(codes)
        points = pca.transform(codes)
        share = pca.explained_variance_ratio_
        labels = (
            f"principal component 1 ({share[0]:.0%} of variance)",
            f"principal component 2 ({share[1]:.0%})",
        )
    elif codes.shape[1] == 2:
        points, labels = codes, ("latent z1", "latent z2")
    else:
        points = np.column_stack([codes[:, 0], scores])
        labels = ("latent z1", "anomaly score")
    rng = np.random.RandomState(0)
    drawn = np.arange(len(points))
    if len(points) > MAX_POINTS:
        drawn = np.union1d(rng.choice(len(points), MAX_POINTS, replace=False), np.flatnonzero(flagged))
    kept = drawn[~flagged[drawn]]
    bad = drawn[flagged[drawn]]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(points[kept, 0], points[kept, 1], s=6, color=KEPT_COLOUR, alpha=0.5, label="kept")
    ax.scatter(points[bad, 0], points[bad, 1], s=28, color=FLAGGED_COLOUR, marker="x", label="flagged")
    ax.set(xlabel=labels[0], ylabel=labels[1], title="Latent space of the rows")
    ax.legend(loc="best")
    caption = "Latent codes" + (
        " projected on their first two principal components" if codes.shape[1] > 2 else ""
    )
    return _figure_section("Latent space", fig, caption)


def _curves(d: CleanReport) -> str:
    curves = {k: v for k, v in d.history.items() if len(v) > 1}
    if not curves:
        return ""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3.2))
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set(xlabel="training step", ylabel="loss", title="Training")
    ax.set_yscale("log")
    # beside the axes, not over the curves (the models' curves fill the whole width)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    return _figure_section("Training curves", fig, "Training loss")


def _dropped(d: CleanReport) -> str:
    if not d.dropped_columns:
        return ""
    rows = "".join(f"<tr><td>{_e(c)}</td><td>{_e(r)}</td></tr>" for c, r in d.dropped_columns.items())
    return (
        "<section><h2>Columns not used for scoring</h2><p>They are kept in the outputs unchanged.</p>"
        f"<table class='rows'><tr><th>column</th><th>why</th></tr>{rows}</table></section>"
    )


# -- helpers -------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _format(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    return str(value)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _png_image(image: np.ndarray) -> str:
    """A (channels, h, w) image in [0, 1] as a PNG data URI, enlarged to about 64 pixels high."""
    scale = max(1, 64 // max(image.shape[1:]))
    from PIL import Image

    array = np.clip(np.asarray(image, dtype=float), 0, 1)
    array = (array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)) * 255
    picture = Image.fromarray(array.astype(np.uint8))
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure_section(title: str, fig, alt: str, text: str = "") -> str:
    return (
        f"<section><h2>{_e(title)}</h2>{text}<img class='figure' src='{_png(fig)}' alt='{_e(alt)}'></section>"
    )


CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222;
       background: #f6f7f9; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 16px; }
h2 { font-size: 1.2em; margin: 0 0 10px; }
.gallery + h2 { margin-top: 18px; }
section { background: white; border-radius: 8px; padding: 16px 20px; margin-bottom: 18px;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 14px; }
.card { background: #eef2f7; border-radius: 6px; padding: 10px 14px; min-width: 120px; }
.card .v { font-size: 1.5em; font-weight: 600; }
table { border-collapse: collapse; font-size: 0.9em; }
.facts th { text-align: left; padding: 3px 14px 3px 0; color: #555; vertical-align: top; }
.rows th, .rows td { border-bottom: 1px solid #e3e6ea; padding: 4px 8px; text-align: right;
                     white-space: nowrap; }
.rows th { background: #f0f2f5; position: sticky; top: 0; }
.rows td:first-child, .rows th:first-child { text-align: left; }
td.bad { color: #b00; font-weight: 600; }
.scroll { overflow-x: auto; }
img.figure { max-width: 100%; height: auto; }
.gallery { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { margin: 0; padding: 6px; border: 2px solid #ddd; border-radius: 6px; text-align: center;
        font-size: 0.8em; }
.tile.flagged { border-color: #d62728; }
.tile img { image-rendering: pixelated; margin: 0 2px; }
.tile figcaption { max-width: 150px; margin: 0 auto; }
td.why { text-align: left; white-space: normal; min-width: 16em; color: #b00; }
footer { color: #777; font-size: 0.85em; text-align: center; margin-top: 10px; }
"""
