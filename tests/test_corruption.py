"""Rows spoilt the ways pipelines spoil data, and what the garbage classifier reads of a row."""

import numpy as np
import torch

from vaekit import corruption
from vaekit.cells import COPY_TOLERANCE


def _kind(before: np.ndarray, after: np.ndarray, low: np.ndarray, high: np.ndarray) -> str:
    """Which corruption turned the row ``before`` into ``after`` (fields of distinct values)."""
    changed = np.flatnonzero(before != after)
    if len(changed) == len(before):
        assert ((after >= low) & (after <= high)).all()
        return "row of noise"
    if len(changed) == 2:
        a, b = changed
        assert after[a] == before[b] and after[b] == before[a], (before, after)
        return "swap"
    assert len(changed) == 1, (before, after)
    j = changed[0]
    value = after[j]
    if value in corruption.SENTINELS:
        return "sentinel"
    if value in np.delete(before, j):
        return "copy"
    ratio = value / before[j]
    if np.isclose(ratio, corruption.FACTORS, rtol=1e-12).any():
        return "factor"
    assert low[j] <= value <= high[j], (before, after)
    return "noise"


def test_each_row_is_spoilt_once_by_one_of_the_kinds_in_about_equal_shares():
    """Rows of distinct values in (1, 2): each spoilt row differs from its original by exactly one
    of the kinds (a field times a factor, two fields swapped, a sentinel, another field's value, a
    field or every field of noise between the columns' low and high), each kind about a sixth of
    the rows; a copy takes its neighbour's value half the time, any other field's otherwise;
    unobserved fields are never touched; the same generator seed spoils the same way."""
    rng = np.random.default_rng(0)
    n, k = 6000, 5
    values = torch.from_numpy(1 + rng.random((n, k)))
    low, high = torch.full((k,), 1.0, dtype=torch.float64), torch.full((k,), 2.0, dtype=torch.float64)
    spoilt = corruption.corrupt(values, low, high, torch.Generator().manual_seed(1))
    again = corruption.corrupt(values, low, high, torch.Generator().manual_seed(1))
    torch.testing.assert_close(spoilt, again, rtol=0, atol=0)
    before, after = values.numpy(), spoilt.numpy()
    kinds = [_kind(b, a, low.numpy(), high.numpy()) for b, a in zip(before, after, strict=True)]
    shares = {kind: kinds.count(kind) / n for kind in corruption.KINDS}
    assert all(0.13 < share < 0.2 for share in shares.values()), shares
    copies = [i for i, kind in enumerate(kinds) if kind == "copy"]
    neighbour = []
    for i in copies:
        j = int(np.flatnonzero(before[i] != after[i])[0])
        source = int(np.flatnonzero(before[i] == after[i, j])[0])
        neighbour.append((source - j) % k in (1, k - 1))
    # half the time the neighbour, else any other field: 2 of the k - 1 are neighbours too
    assert abs(np.mean(neighbour) - (0.5 + 0.5 * 2 / (k - 1))) < 0.05, np.mean(neighbour)

    seen = torch.from_numpy(rng.random((n, k)) < 0.7)
    spoilt = corruption.corrupt(values, low, high, torch.Generator().manual_seed(2), seen).numpy()
    assert (spoilt[~seen.numpy()] == before[~seen.numpy()]).all()
    assert (spoilt != before).any(axis=1).mean() > 0.95


def test_agreement_counts_count_the_other_fields_holding_the_same_value():
    values = torch.tensor(
        [
            [1.0, 2.0, 1.0, float("nan"), 1.0],
            [3.0, 3.0, float("nan"), float("nan"), 4.0],
            [5.0, 5.0 * (1 + COPY_TOLERANCE / 4), 5.0 * (1 + 4 * COPY_TOLERANCE), -5.0, 0.0],
        ],
        dtype=torch.float64,
    )
    expected = [[2, 0, 2, 0, 2], [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]
    assert corruption.agreement_counts(values, torch.zeros(5, dtype=torch.float64)).tolist() == expected


def test_two_zeros_decoded_from_float32_agree_in_columns_centred_far_from_zero():
    """Encoded for the models, a value carries float32's rounding of its column's center: two zeros
    in columns centred near 50 decode to about 1e-6, not equal, yet the same value."""
    units = torch.tensor([[7.3, 11.9, 1.0], [50.7, 48.3, 0.0]], dtype=torch.float64)
    raw = torch.tensor([[0.0, 0.0, 3.0]], dtype=torch.float64)
    decoded = ((raw - units[1]) / units[0]).float().double() * units[0] + units[1]
    assert decoded[0, 0] != decoded[0, 1]
    assert corruption.agreement_counts(decoded, units[1]).tolist() == [[1, 1, 0]]
    assert corruption.agreement_counts(decoded, torch.zeros(3, dtype=torch.float64)).tolist() == [[0, 0, 0]]


def test_the_inputs_are_every_feature_and_each_number_field_s_deviation_and_agreements():
    """Widths: every encoded feature, a deviation and an agreement count per number feature, the
    largest deviation; a sentinel's thousands are squeezed (asinh) onto the scale of the rest."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(200, 4)))
    x[0, 1] = -999.0
    units = torch.tensor([[2.0, 1.0, float("nan"), 0.5], [10.0, 0.0, float("nan"), 1.0]], dtype=torch.float64)
    number = torch.tensor([0, 1, 3])
    mean, precision = torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64)
    inputs = corruption.garbage_inputs(x, None, mean, precision, units, number)
    assert inputs.shape == (200, 4 + 2 * 3 + 1) and inputs.dtype == torch.float32
    assert inputs.abs().max() < 10
    torch.testing.assert_close(inputs[:, :4], torch.asinh(x).float())
    torch.testing.assert_close(inputs[:, 4:7], torch.asinh(x[:, number]).float())  # identity precision
    torch.testing.assert_close(inputs[:, 7], torch.asinh(x[:, number].abs().amax(dim=1)).float())
    assert (inputs[:, 8:] == 0).all()  # no two fields agree


def test_the_classifier_s_members_each_judge_their_own_rows_or_all_rows_alike():
    classifier = corruption.GarbageClassifier(
        5, hidden=8, members=3, generator=torch.Generator().manual_seed(0)
    )
    assert classifier.shape == (5, 8, 3)
    rows = torch.randn(4, 5)
    every = classifier(rows)
    assert every.shape == (3, 4)
    own = classifier(torch.stack([rows, torch.randn(4, 5), rows]))
    torch.testing.assert_close(own[[0, 2]], every[[0, 2]])
    assert not torch.allclose(own[1], every[1])


def test_a_classifier_saved_in_the_first_layout_loads_and_judges_alike():
    """Until 2026-12 the members were an nn.ModuleList of nn.Sequential: (out, in) weights each."""
    torch.manual_seed(0)
    members = torch.nn.ModuleList(
        torch.nn.Sequential(
            torch.nn.Linear(5, 8),
            torch.nn.ReLU(),
            torch.nn.Linear(8, 8),
            torch.nn.ReLU(),
            torch.nn.Linear(8, 1),
        )
        for _ in range(2)
    )
    old = {f"members.{k}": v for k, v in members.state_dict().items()}
    classifier = corruption.GarbageClassifier(5, hidden=8, members=2)
    classifier.load_state_dict(corruption.GarbageClassifier.stacked(old))
    rows = torch.randn(6, 5)
    with torch.no_grad():
        torch.testing.assert_close(classifier(rows), torch.stack([m(rows)[:, 0] for m in members]))
    assert len(old) == 12  # not emptied
