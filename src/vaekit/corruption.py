"""Rows corrupted the ways data pipelines corrupt them, and a classifier that learns to tell them.

A pipeline that goes wrong leaves a field in the wrong unit or with its decimal point shifted
(times 10^k), two fields swapped, a sentinel (0, -1, -999) standing for a missing value, one
field's value copied into another, a field or a whole row of noise. Many such fields stay within
their column's range, where no single measure of a row tells them from good values; what gives
them away differs from table to table (which columns predict which, which values a column holds,
which fields often agree). So the detector learns it from the table itself: :func:`corrupt` makes
copies of the training rows spoilt in those ways, and a small classifier
(:class:`GarbageClassifier`) learns to tell the copies from the rows as they are, from what
:func:`garbage_inputs` says of each field: its value on the cell model's scale, how far it lies
from what the row's other fields predict (:mod:`vaekit.cells`), and how many of the row's other
number fields hold the same value. Its log odds that a row is a spoilt copy is the detector's
garbage sign. It has two members, each learning from half of the training rows: a training row's
sign comes from the member that did not learn from it, so that the signs the detector's scale is
set on are those of rows the classifier has not seen, as a new row's are (the mean of the members').
A classifier judging the rows it learnt from finds them cleaner than new rows, and new good rows
then looked rare: on ADBench's small sets the mean AUROC fell by 0.04 so.
"""

from __future__ import annotations

import torch

from vaekit.cells import cell_deviations, same_values, warp
from vaekit.models.ensemble import MemberMLPs

FACTORS = (1e-3, 1e-2, 1e-1, 10.0, 100.0, 1000.0)  # a value in another unit, a shifted decimal point
SENTINELS = (0.0, -1.0, -9.0, -99.0, -999.0, -9999.0, 999.0, 9999.0, 99999.0)  # stand-ins for a gap
KINDS = ("factor", "swap", "sentinel", "copy", "noise", "row of noise")


def corrupt(
    values: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    generator: torch.Generator,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """A copy of the number fields ``values`` (rows, fields; float64, in their columns' own units)
    with one corruption in each row, of a kind drawn from ``KINDS``, on observed fields (``seen``,
    0/1, None = all): a nonzero field times one of ``FACTORS``; two fields of different values
    swapped; a field set to one of ``SENTINELS``; a field set to another's different value (its
    neighbour's half the time: a record shifted by one field); a field, or every field, drawn
    uniformly between its column's ``low`` and ``high``. A row the draw leaves unchanged (a
    factor on a row of zeros) stays as it was."""
    n, k = values.shape
    rows = torch.arange(n)
    observed = torch.ones(n, k, dtype=torch.bool) if seen is None else seen > 0
    draw = lambda *shape: torch.rand(*shape, generator=generator, dtype=values.dtype)  # noqa: E731

    def field(allowed: torch.Tensor) -> torch.Tensor:
        """A random observed field of each row, one of the ``allowed`` when it has any."""
        weight = draw(n, k) + allowed.to(values.dtype)
        return torch.where(observed, weight, -1.0).argmax(dim=1)

    j = field(values != 0)
    at_j = values[rows, j]
    # another field: the next or the one before half the time, any other field otherwise
    step = torch.where(draw(n) < 0.5, 1, -1)
    near = (j + step) % k
    other = field(values != at_j[:, None])
    other = torch.where((draw(n) < 0.5) & observed[rows, near], near, other)
    at_other = values[rows, other]
    kind = torch.randint(len(KINDS), (n,), generator=generator)
    factor = torch.tensor(FACTORS, dtype=values.dtype)[torch.randint(len(FACTORS), (n,), generator=generator)]
    sentinel = torch.tensor(SENTINELS, dtype=values.dtype)[
        torch.randint(len(SENTINELS), (n,), generator=generator)
    ]
    noise = low + (high - low) * draw(n, k)
    new_j = torch.stack([at_j * factor, at_other, sentinel, at_other, noise[rows, j]])  # by kind, but rows
    out = values.clone()
    single = (kind != KINDS.index("row of noise")) & observed.any(dim=1)  # a row with no field left as is
    pick = kind.clamp_max(len(new_j) - 1)
    out[rows[single], j[single]] = new_j[pick[single], rows[single]]
    swap = single & (kind == KINDS.index("swap"))
    out[rows[swap], other[swap]] = at_j[swap]
    whole = kind == KINDS.index("row of noise")
    out[whole] = torch.where(observed[whole], noise[whole], values[whole])
    return out


def agreement_counts(values: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
    """(rows, fields): how many of each row's other fields hold the same value as each field
    (``values`` in their columns' own units, NaN for none; ``center``, the columns' centers), as
    :func:`vaekit.cells.same_values` judges it."""
    order, same = same_values(values, center)
    # runs of equal values: each field's run, and the run's length
    run = torch.cat([torch.zeros(len(values), 1, dtype=torch.long), (~same).long().cumsum(dim=1)], dim=1)
    length = torch.zeros_like(run).scatter_add_(1, run, torch.ones_like(run))
    counts = length.gather(1, run) - 1
    return torch.empty_like(counts).scatter_(1, order, counts)


def garbage_inputs(
    x: torch.Tensor,
    bend: torch.Tensor | None,
    mean: torch.Tensor,
    precision: torch.Tensor,
    units: torch.Tensor,
    number: torch.Tensor,
    seen: torch.Tensor | None = None,
) -> torch.Tensor:
    """(rows, inputs) float32: what the classifier reads of the encoded rows ``x`` (float64) with
    the cell model (``bend``, ``mean``, ``precision``, see :mod:`vaekit.cells`): every feature on
    the model's scale; each ``number`` feature's deviation from what the row's other fields predict,
    the largest, and how many other number fields of the row hold its value (in the columns' own
    units: ``units``, scale and center per feature); asinh or log1p of each, to keep a sentinel's
    thousands on the scale of the rest."""
    u = warp(x, bend)
    deviations = cell_deviations(u, mean, precision, seen)[:, number]
    own = x[:, number] * units[0, number] + units[1, number]
    if seen is not None:
        own = torch.where(seen[:, number] > 0, own, float("nan"))
    counts = agreement_counts(own, units[1, number])
    largest = deviations.abs().amax(dim=1, keepdim=True)
    parts = [torch.asinh(u), torch.asinh(deviations), torch.asinh(largest), torch.log1p(counts.double())]
    return torch.cat(parts, dim=1).float()


class GarbageClassifier(MemberMLPs):
    """``members`` small MLPs (inputs-hidden-hidden-1; :class:`vaekit.models.ensemble.MemberMLPs`):
    ``forward`` takes (rows, inputs), every member judging every row, or (members, rows, inputs),
    each member its own rows, and gives (members, rows): the log odds that a row is a spoilt copy."""

    def __init__(
        self, n_inputs: int, hidden: int = 64, members: int = 2, generator: torch.Generator | None = None
    ):
        super().__init__(n_inputs, hidden, members, generator)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return super().forward(inputs)[..., 0]

    @staticmethod
    def stacked(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state dict of the first layout (an ``nn.ModuleList`` of ``nn.Sequential`` members, as
        saved by the first version, of 2026-11-30) in this one's; any other unchanged."""
        if not any(k.startswith("members.") for k in state):
            return state
        state = dict(state)
        members = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("members."))
        layers = {}
        try:
            for i, layer in enumerate((0, 2, 4)):
                weight = [state.pop(f"members.{m}.{layer}.weight") for m in range(members)]
                bias = [state.pop(f"members.{m}.{layer}.bias") for m in range(members)]
                layers[f"weights.{i}"] = torch.stack([w.T for w in weight]).contiguous()
                layers[f"biases.{i}"] = torch.stack(bias)[:, None, :]
        except KeyError:
            pass  # incomplete: left for the state check to name what is missing
        return state | layers
