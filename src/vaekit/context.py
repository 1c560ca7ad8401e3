"""How unlikely each category field of a row is, given the row's other fields.

A level can be one its column often holds and still be wrong for its row: a reading marked
LOW_BATTERY at full charge, an Enterprise plan billed the Basic fee, a city in another country.
The category sign (:func:`vaekit.cells.category_rarity`) looks at one column alone and cannot see
it; the autoencoders can, but spread over the whole row. Here one small network per member
(:class:`ContextClassifier`) predicts a category column's level from the rest of the row: the row
with that column's one-hot block set to zeros, as a gap is, and a flag naming the hidden column.
One network serves every column; it learns from rows with one of their category fields hidden at
random, as masked language models learn from hidden words.

A field is as rare as its level is unlikely given the rest of its row: its rarity is -log of the
share of rows expected to hold, in some judged column, a level at most as likely given the rest,
S(q) = mean over rows of the sum over judged columns and their levels l of p(l | rest) [p(l | rest)
<= q] (:func:`fit_tail`, :func:`context_rarity`), the classifier's own account of how often good rows
hold such unlikely levels; the training rows' garbage does not count in it, as it would in the
share of training rows seen so. A row's is that of its least likely field.

The classifier has two members, each learning from the training rows of one fold (a hash of a
row's values, :func:`row_folds`, says which) and judging the rows of the other: a training row's
probabilities, and the shares S, come from the member that did not learn from it, whenever it is
scored (a classifier judging a row it learnt from, a wrong level with it, is sure of it), and a new
row is judged as a training row would be. Only the columns that the rest of the row
tells something of are judged (:func:`informed_columns`): the others add nothing but chances for a
good row to look rare, and each judged column costs a pass of the network.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from vaekit.models.ensemble import MemberMLPs

INFORMED = 0.02  # nats: at least, the mean held-out information the rest of a row gives of a column


class ContextClassifier(MemberMLPs):
    """``members`` MLPs from a row with one category column hidden (its block zeroed, see
    :func:`hidden_inputs`) to logits of every category column's levels, (members, rows, slots):
    the slots are the category columns' one-hot features, in order; only the hidden column's are
    read (:func:`level_log_probs`)."""

    def __init__(
        self,
        n_inputs: int,
        n_slots: int,
        hidden: int = 64,
        members: int = 2,
        generator: torch.Generator | None = None,
    ):
        super().__init__(n_inputs, hidden, members, generator, n_outputs=n_slots)

    @property
    def n_slots(self) -> int:
        return self.weights[-1].shape[-1]


def slot_features(groups: list[tuple[int, int]]) -> torch.Tensor:
    """(slots,) long: the encoded feature of each slot, the category columns' one-hot features in order."""
    return torch.cat([torch.arange(start, stop) for start, stop in groups])


def column_slots(groups: list[tuple[int, int]]) -> torch.Tensor:
    """(category columns, slots) bool: which slots are each column's."""
    widths = [stop - start for start, stop in groups]
    owner = torch.repeat_interleave(torch.arange(len(groups)), torch.tensor(widths))
    return owner[None, :] == torch.arange(len(groups))[:, None]


def slot_offset(groups: list[tuple[int, int]], k: int) -> int:
    """The first slot of category column ``k``: the number of slots of the columns before it
    (``k = len(groups)``: the number of slots)."""
    return sum(stop - start for start, stop in groups[:k])


def held_levels(x: torch.Tensor, groups: list[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, category columns) each: the slot of each row's level in each category column, and
    whether the field holds one of the column's levels: a gap holds none, and the column's last
    slot, its "other" level (values too rare in training to have their own, or never seen), is
    the category sign's to judge (a value seen once or never has no context to learn)."""
    slots, held, offset = [], [], 0
    for start, stop in groups:
        block = x[:, start:stop] > 0.5
        slots.append(offset + block.to(torch.uint8).argmax(dim=1))
        held.append(block[:, :-1].any(dim=1))
        offset += stop - start
    return torch.stack(slots, dim=1), torch.stack(held, dim=1)


def hidden_inputs(
    x: torch.Tensor, groups: list[tuple[int, int]], hide: torch.Tensor, observed: torch.Tensor
) -> torch.Tensor:
    """(rows, features + columns + category columns) float32: the rows ``x`` (float32, as the
    autoencoders see them, gaps filled) with category column ``hide[i]`` of row i hidden (its block
    set to zeros, as a gap's), which of the row's columns are ``observed`` ((rows, columns) 0/1: a
    filled gap is not a value the rest of the row may be judged by) and a flag naming the hidden
    column; ``hide`` (rows,) long."""
    flags = torch.nn.functional.one_hot(hide, len(groups)).to(x.dtype)
    hidden = x.clone()
    if len(hide) and bool((hide == hide[0]).all()):  # one column for every row (scoring): a slice
        start, stop = groups[int(hide[0])]
        hidden[:, start:stop] = 0.0
    else:
        features = slot_features(groups).to(x.device)
        blocks = column_slots(groups).to(x.device)[hide]  # (rows, slots): the hidden column's slots
        hidden[:, features] = torch.where(blocks, 0.0, x[:, features])
    return torch.cat([hidden, observed.to(x.dtype), flags], dim=1).float()


def level_log_probs(
    logits: torch.Tensor, groups: list[tuple[int, int]], hide: torch.Tensor, slot: torch.Tensor
) -> torch.Tensor:
    """(members, rows): log p(level | rest of the row) of level ``slot[i]`` among the levels of
    column ``hide[i]``, from the ``logits`` (members, rows, slots); ``hide`` and ``slot`` (rows,),
    the same for every member, or (members, rows)."""
    blocks = column_slots(groups).to(logits.device)[hide]
    log_p = torch.log_softmax(logits.masked_fill(~blocks, float("-inf")), dim=-1)
    return log_p.gather(-1, slot.expand(logits.shape[:-1])[..., None])[..., 0]


def column_log_probs(
    classifier: ContextClassifier,
    x: torch.Tensor,
    groups: list[tuple[int, int]],
    k: int,
    observed: torch.Tensor,
    fold: torch.Tensor,
) -> torch.Tensor:
    """(rows, levels of column ``k``) float64 on the CPU: log p(each level | rest of the row) for
    the rows ``x`` (float32, as the autoencoders see them; ``observed``: see :func:`hidden_inputs`),
    each by the member of its ``fold`` (:func:`row_folds`), the others' not computed."""
    start, width = slot_offset(groups, k), groups[k][1] - groups[k][0]
    out = torch.zeros(len(x), width, dtype=torch.float64)
    for m in range(classifier.shape[2]):
        rows = torch.nonzero(fold == m)[:, 0]
        if not len(rows):
            continue
        hide = torch.full((len(rows),), k, dtype=torch.long, device=x.device)
        with torch.no_grad():
            logits = classifier.member(m, hidden_inputs(x[rows], groups, hide, observed[rows]))
        out[rows] = torch.log_softmax(logits[:, start : start + width].double(), dim=-1).cpu()
    return out


def observed_level(
    log_p: torch.Tensor, slots: torch.Tensor, held: torch.Tensor, groups: list[tuple[int, int]], k: int
) -> torch.Tensor:
    """(..., rows) float64: from ``log_p`` (..., rows, levels of column ``k``), the log probability
    of each row's level in column ``k`` (``slots``, ``held``: its (rows,) columns of
    :func:`held_levels`); 0 for a field that holds none."""
    level = (slots - slot_offset(groups, k)).clamp_min(0)
    picked = log_p.gather(-1, level.expand(log_p.shape[:-1])[..., None])[..., 0]
    return torch.where(held, picked, 0.0)


def log_shares(x: torch.Tensor, groups: list[tuple[int, int]]) -> torch.Tensor:
    """(slots,) float64: log of the share of the rows holding each level among those holding one
    in its column (a level held by no row: half a row's share)."""
    parts = []
    for start, stop in groups:
        counts = (x[:, start:stop] > 0.5).sum(dim=0).to(torch.float64)
        parts.append(torch.log(counts.clamp_min(0.5) / counts.sum().clamp_min(1.0)))
    return torch.cat(parts)


def observed_log_probs(
    classifier: ContextClassifier,
    x: torch.Tensor,
    groups: list[tuple[int, int]],
    columns: list[int],
    observed: torch.Tensor,
    fold: torch.Tensor,
) -> torch.Tensor:
    """(rows, len(columns)) float64: log p(level | rest of the row) of each row's level in each of
    the category ``columns`` (indices into ``groups``), by the member of its ``fold``; 0 for a gap."""
    slots, held = (t.cpu() for t in held_levels(x, groups))
    out = torch.zeros(len(x), len(columns), dtype=torch.float64)
    for n, k in enumerate(columns):
        log_p = column_log_probs(classifier, x, groups, k, observed, fold)
        out[:, n] = observed_level(log_p, slots[:, k], held[:, k], groups, k)
    return out


def row_folds(x: torch.Tensor, members: int) -> torch.Tensor:
    """(rows,) long: each row's fold, from a hash of its encoded values (float32 bits): a row
    scored again, or a copy of it, falls in the fold it fell in when the classifier was fitted,
    and is judged by the member that did not learn from it."""
    bits = x.detach().float().cpu().contiguous().numpy().view(np.uint32).astype(np.uint64)
    weights = np.random.default_rng(0).integers(1, 2**62, size=bits.shape[1], dtype=np.uint64) | np.uint64(1)
    h = (bits * weights).sum(axis=1, dtype=np.uint64)  # modulo 2**64
    h ^= h >> np.uint64(31)
    h *= np.uint64(0xBF58476D1CE4E5B9)  # a 64-bit finaliser (splitmix64's): every bit of h stirs the low ones
    h ^= h >> np.uint64(32)
    return torch.from_numpy((h % np.uint64(members)).astype(np.int64))


GRID = torch.linspace(math.log(1e-12), 0.0, 241, dtype=torch.float64)  # log q of the shares S(q)


def tail_mass(log_p: torch.Tensor) -> torch.Tensor:
    """(len(GRID),) float64: the probability mass of the distributions ``log_p`` (rows, levels;
    log probabilities) at each q of ``GRID``: the summed p of the levels whose p lies between the
    q before and this one (:func:`fit_tail` adds them up)."""
    values = log_p.reshape(-1).double()
    at = torch.searchsorted(GRID, values.clamp(GRID[0], GRID[-1]))  # the first q at least p
    return torch.zeros(len(GRID), dtype=torch.float64).index_add_(0, at, values.exp())


def fit_tail(mass: torch.Tensor, n_rows: int) -> torch.Tensor:
    """(len(GRID),) float64: log S(q) at each q of ``GRID`` from the :func:`tail_mass` of the
    held-out distributions of the judged columns over ``n_rows`` rows, summed."""
    return torch.log((torch.cumsum(mass, dim=0) / max(n_rows, 1)).clamp_min(1e-300))


def context_rarity(log_p: torch.Tensor, tail: torch.Tensor) -> torch.Tensor:
    """-log S(q) of log probabilities ``log_p`` (any shape; float64) by the shares ``tail``
    (:func:`fit_tail`) at the first q of ``GRID`` at least as large (S rises with q: no rarer than
    it is), S at least q itself (a level at q in every row's distribution), and at least 0."""
    values = log_p.double().clamp(GRID[0], GRID[-1])
    share = tail[torch.searchsorted(GRID, values)]
    return (-torch.maximum(share, values)).clamp_min(0.0)


def information(log_p: torch.Tensor, x: torch.Tensor, groups: list[tuple[int, int]], shares: torch.Tensor):
    """(category columns,) float64: the mean over the rows holding a level in each column of
    log p(level | rest) - log p(level), from ``log_p`` (rows, category columns), the training rows'
    held-out log probabilities of their levels: an estimate of the information in nats that the
    rest of a row gives of the column (0 or below when it gives none)."""
    slots, held = held_levels(x, groups)
    gain = torch.where(held, log_p - shares[slots], 0.0)
    return gain.sum(dim=0) / held.sum(dim=0).clamp_min(1)


def informed_columns(gain: torch.Tensor, most: int) -> list[int]:
    """The category columns whose level the rest of a row tells something of (:func:`information`
    ``gain`` at least ``INFORMED`` nats), the ``most`` most informed first."""
    order = torch.argsort(gain, descending=True, stable=True).tolist()
    return [k for k in order if gain[k] >= INFORMED][:most]
