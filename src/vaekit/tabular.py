"""Mixed tables in, numbers out: typing, encoding and scaling of real-world columns, with a mask for gaps.

:class:`TableEncoder` looks at each column of the training table once and decides what it is:

- ``numeric``: numbers (and booleans, as 0/1, and numbers as spreadsheets format them, $1,234.50,
  12.5%, (45.00), 1.234,50 €, 3.5 kg: :func:`vaekit.io.formatted_numbers`; in one unit, the
  column's), centred on the median and divided by the interquartile range / 1.349 (outliers
  cannot set the scale; a column whose quartiles coincide falls back to its standard deviation,
  then to 1);
- ``datetime``: datetime64 columns and text columns that parse as dates in full, turned into the
  time in days (scaled as a number) plus the day of the week on a circle (cos, sin);
- ``categorical``: text or category columns with few distinct values, one-hot encoded, with one
  extra ``other`` level for values seen fewer than twice in training and for values never seen
  (those warn, naming the column and values, when scoring);
- left out, with a warning that names them: constant columns, identifiers (every value distinct,
  text, or whole numbers named like an id or counting up by one) and free text or high-cardinality
  text columns.

Missing values (NaN, None, NA, empty text) are never silently zero: ``transform`` gives, besides the
encoded matrix (with a neutral fill), an observed-mask with one entry per kept column, and models
leave masked entries out of their loss and scores.

At scoring time: a kept column that is missing is an error naming it; columns the encoder did
not see are ignored with a warning naming them; text in a numeric column is an error naming the
column and the row.
"""

from __future__ import annotations

import datetime
import logging
import re
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from vaekit.errors import DataError, ModelFileError
from vaekit.io import column_unit, formatted_numbers, row_number

logger = logging.getLogger(__name__)

MAX_LEVELS = 50  # a text column with more distinct values than this is free text, not a category
MIN_LEVEL_COUNT = 2  # rarer values share the "other" level
DATE_SHARE = 0.95  # a text column is dates if this share of its values parse as dates
ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key|index|idx)$|^(id|uuid|guid|key|index|idx)([_\s-]|$)", re.I)
NUMBER_PATTERN = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
FORMAT_VERSION = 1


@dataclass
class Column:
    """One kept column: its name, kind, and what encoding it needs."""

    name: str
    kind: str  # numeric | datetime | categorical
    center: float = 0.0
    scale: float = 1.0
    levels: list[str] = field(default_factory=list)  # categorical: the one-hot levels, then "other"
    typical: int = 0  # categorical: the index of the most common level
    written: str = ""  # numbers as text formatted with this decimal mark ($1,234.50: io.formatted_numbers);
    # dates written DAY_FIRST (31/12/2024)
    unit: str = ""  # and their currency, percent sign or unit: a number in another is an error

    @property
    def width(self) -> int:
        return {"numeric": 1, "datetime": 3}.get(self.kind, len(self.levels) + 1)


@dataclass
class TableEncoder:
    """Fitted once on a training table; then ``transform`` gives (matrix, mask) for any table
    with the same columns. ``scaling="none"`` keeps numbers as they are; ``images=True`` keeps
    every column (pixel) as a number, constant or not, all scaled alike (by the mean and standard
    deviation of every pixel value); pixels get no mask from ``transform``."""

    scaling: str = "robust"
    images: bool = False
    columns: list[Column] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    named: bool = False
    input_columns: list[str] = field(default_factory=list)

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, data: pd.DataFrame | np.ndarray, source: str = "X") -> TableEncoder:
        frame = _as_frame(data, source)
        self.named = isinstance(data, pd.DataFrame)
        self.input_columns = [str(c) for c in frame.columns]
        self.columns, self.dropped = [], {}
        n = len(frame)
        floats = self.images or all(dtype.kind == "f" for dtype in frame.dtypes)
        # a float matrix (the usual numpy input, and every image) needs no column-by-column typing
        numbers = self._numeric_columns(frame.to_numpy(dtype=np.float64)) if floats else None
        for j, name in enumerate(frame.columns):
            if numbers is not None:
                column, reason = numbers[j]
                column.name = str(name)
                if column.kind == "numeric":
                    self.columns.append(column)
                else:
                    self.dropped[str(name)] = reason
                continue
            column, reason = self._type(str(name), frame[name], n)
            if column is None:
                self.dropped[str(name)] = reason
            else:
                self.columns.append(column)
        if self.dropped:
            shown = "; ".join(f"{name!r} ({why})" for name, why in self.dropped.items())
            logger.warning("%s: left out %d column(s): %s", source, len(self.dropped), shown)
        if not self.columns:
            raise DataError(
                f"{source}: no column is usable ({'; '.join(f'{k}: {v}' for k, v in self.dropped.items())}); "
                "give a table with numeric, date or categorical columns"
            )
        return self

    def _type(self, name: str, values: pd.Series, n: int) -> tuple[Column | None, str]:
        present = values.dropna()
        if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
            present = present[present.astype(str).str.strip() != ""]
        distinct = present.nunique()
        if distinct <= 1:
            return None, "constant" if len(present) else "empty"
        kind = values.dtype.kind
        if kind == "b" or (values.dtype == object and present.map(type).isin([bool, np.bool_]).all()):
            return self._numeric(name, present.astype(float)), ""
        if kind in "iuf":
            if kind in "iu" and distinct == n and (ID_NAME.search(name) or _counts_up(present)):
                return None, "an identifier (every value distinct)"
            return self._numeric(name, present.astype(float)), ""
        if kind == "M":
            return self._datetime(name, present), ""
        if kind == "m":
            return self._numeric(name, present.dt.total_seconds()), ""
        text = present.astype(str).str.strip()
        if text.str.match(NUMBER_PATTERN).mean() >= 0.99:
            return self._numeric(name, pd.to_numeric(text, errors="coerce").dropna()), ""
        for decimal in ".,":
            if _formatted(text.iloc[:1000], decimal)[0].notna().mean() < 0.99:
                continue  # the first cells tell, without reading a long column of text twice
            numbers, units = _formatted(text, decimal)
            unit = column_unit(units[numbers.notna()])
            numbers = numbers.where(units.isin(["", unit]))  # a number in another unit is not the column's
            if numbers.notna().mean() >= 0.99:
                column = self._numeric(name, numbers.dropna())
                column.written, column.unit = decimal, unit
                return column, ""
        dayfirst = day_first(text)
        dates = parse_dates(text, dayfirst)
        if dates.notna().mean() >= DATE_SHARE:
            column = self._datetime(name, dates.dropna())
            column.written = DAY_FIRST if dayfirst else ""
            return column, ""
        if distinct == len(present) and len(present) > MAX_LEVELS // 2:
            return None, "an identifier (every value distinct)"
        if distinct > MAX_LEVELS:
            return None, f"free text or too many distinct values ({distinct})"
        counts = text.value_counts()
        levels = [str(v) for v, c in counts.items() if c >= MIN_LEVEL_COUNT]
        return Column(name, "categorical", levels=levels, typical=0), ""

    def _numeric_columns(self, matrix: np.ndarray) -> list[tuple[Column, str]]:
        """What ``_type`` and ``_numeric`` give each column of a float matrix, all columns at
        once: a numeric column, or (for tables) a constant or empty one to leave out."""
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: reported as empty
            # nanpercentile goes a column at a time; with no gaps, percentile does them all at once
            percentile = np.nanpercentile if np.isnan(matrix).any() else np.percentile
            q1, median, q3 = percentile(matrix, [25, 50, 75], axis=0)
            std = np.nanstd(matrix, axis=0)
            constant = ~(np.nanmax(matrix, axis=0) > np.nanmin(matrix, axis=0))
            empty = np.isnan(matrix).all(axis=0)
        if self.images and self.scaling != "none":
            # one scale for every pixel: a pixel that is nearly always dark must not turn faint
            # ink into huge numbers, and an image's contrast must stay what it is
            center, spread = float(np.nanmean(matrix)), float(np.nanstd(matrix))
            scale = spread if spread > 1e-12 else 1.0
            return [(Column("", "numeric", center=center, scale=scale), "") for _ in constant]
        out = []
        for j in range(matrix.shape[1]):
            if constant[j] and not self.images:
                out.append((Column("", "dropped"), "empty" if empty[j] else "constant"))
            elif self.scaling == "none":
                out.append((Column("", "numeric"), ""))
            else:
                scale = (q3[j] - q1[j]) / 1.349 if q3[j] - q1[j] > 1e-12 else std[j]
                scale = float(scale) if scale > 1e-12 else 1.0
                out.append((Column("", "numeric", center=float(median[j]), scale=scale), ""))
        return out

    def _numeric(self, name: str, values: pd.Series) -> Column:
        v = values.to_numpy(dtype=np.float64)
        if self.scaling == "none":
            return Column(name, "numeric")
        q1, median, q3 = np.percentile(v, [25, 50, 75])
        scale = (q3 - q1) / 1.349 if q3 - q1 > 1e-12 else v.std()
        return Column(name, "numeric", center=float(median), scale=float(scale if scale > 1e-12 else 1.0))

    def _datetime(self, name: str, values: pd.Series) -> Column:
        days = _days(values)
        column = self._numeric(name, pd.Series(days))
        column.kind = "datetime"
        return column

    # -- encoding -----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """The kept columns, in order: the columns of the mask and of ``feature_scores``."""
        return [c.name for c in self.columns]

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def simple(self) -> bool:
        """Every kept column is one number: the encoded matrix has one column per kept column."""
        return all(c.kind == "numeric" for c in self.columns)

    def slices(self) -> list[slice]:
        """Where each kept column's encoding sits in the encoded matrix."""
        out, start = [], 0
        for column in self.columns:
            out.append(slice(start, start + column.width))
            start += column.width
        return out

    def typical_row(self) -> np.ndarray:
        """The encoding of a typical row: medians, the most common levels."""
        row = np.zeros(self.width, dtype=np.float32)
        for column, where in zip(self.columns, self.slices(), strict=True):
            if column.kind == "categorical":
                row[where.start + column.typical] = 1.0
            elif column.kind == "datetime":
                row[where.start + 1] = 1.0  # cos of the weekday angle, a neutral point on the circle
        return row

    def missing_row(self) -> np.ndarray:
        """What ``transform`` puts in the place of a missing value: 0 for numbers (their median),
        no level at all for a category, the median time on a neutral weekday for a date."""
        row = np.zeros(self.width, dtype=np.float32)
        for column, where in zip(self.columns, self.slices(), strict=True):
            if column.kind == "datetime":
                row[where.start + 1] = 1.0
        return row

    def transform(
        self, data: pd.DataFrame | np.ndarray, source: str = "X", warn: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(encoded float32 matrix, observed mask with one column per kept column, or None when
        nothing is missing). ``warn``: name the categories mapped to "other"."""
        frame = self._select(data, source)
        n = len(frame)
        names = self.names
        if self.simple and all(dtype.kind == "f" for dtype in frame[names].dtypes):  # all at once
            numbers = frame[names].to_numpy(dtype=np.float64)
            if np.isinf(numbers).any():
                j = np.argwhere(np.isinf(numbers))[0, 1]
                _numbers(frame[names[j]], names[j], source)  # the error naming the cell
            centers = np.array([c.center for c in self.columns])
            scales = np.array([c.scale for c in self.columns])
            missing = np.isnan(numbers)
            matrix = np.where(missing, 0.0, (numbers - centers) / scales).astype(np.float32)
            return matrix, ((~missing).astype(np.float32) if missing.any() else None)
        matrix = np.zeros((n, self.width), dtype=np.float32)
        mask = np.ones((n, len(self.columns)), dtype=np.float32)
        for j, (column, where) in enumerate(zip(self.columns, self.slices(), strict=True)):
            values = frame[column.name]
            if column.kind == "numeric":
                numbers = _numbers(values, column.name, source, column.written, column.unit)
                missing = np.isnan(numbers)
                matrix[:, where.start] = np.where(missing, 0.0, (numbers - column.center) / column.scale)
            elif column.kind == "datetime":
                parsed = (
                    values
                    if values.dtype.kind == "M"
                    else parse_dates(values.astype("string").str.strip(), column.written == DAY_FIRST)
                )
                days = _days(parsed)
                missing = np.isnan(days)
                if warn and values.dtype.kind != "M":
                    text = values.astype("string").str.strip()
                    wrong = missing & (text.notna() & (text != "")).to_numpy()
                    if wrong.any():
                        what = "times" if times_alone(text[~missing]) else "dates"
                        self._warn_not_dates(column, sorted(set(text[wrong].astype(str))), source, what)
                angle = 2 * np.pi * np.nan_to_num(_weekday(parsed)) / 7
                matrix[:, where.start] = np.where(missing, 0.0, (days - column.center) / column.scale)
                matrix[:, where.start + 1] = np.where(missing, 1.0, np.cos(angle))
                matrix[:, where.start + 2] = np.where(missing, 0.0, np.sin(angle))
            else:
                text = values.astype("string").str.strip()
                missing = (text.isna() | (text == "")).to_numpy()
                index = {level: k for k, level in enumerate(column.levels)}
                codes = text.map(index).to_numpy(dtype=object)
                unseen = ~missing & pd.isna(codes)
                if warn and unseen.any():
                    self._warn_new(column, sorted(set(text[unseen].astype(str))), source)
                codes = np.where(pd.isna(codes), len(column.levels), codes).astype(np.int64)
                rows = np.flatnonzero(~missing)
                matrix[rows, where.start + codes[rows]] = 1.0
            mask[:, j] = ~missing
        return matrix, (None if mask.all() else mask)

    def _warn_not_dates(self, column: Column, wrong: list[str], source: str, what: str = "dates") -> None:
        shown = ", ".join(repr(v) for v in wrong[:5]) + (
            f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        )
        logger.warning(
            "%s: column %r has value(s) that are not %s (%s); they are scored as gaps "
            "(vaekit clean puts such rows in the garbage)",
            source,
            column.name,
            what,
            shown,
        )

    def _warn_new(self, column: Column, new: list[str], source: str) -> None:
        shown = ", ".join(repr(v) for v in new[:5]) + (f" and {len(new) - 5} more" if len(new) > 5 else "")
        logger.warning(
            "%s: column %r has value(s) seen fewer than %d times in training (%s); they are scored as "
            "the column's 'other' level",
            source,
            column.name,
            MIN_LEVEL_COUNT,
            shown,
        )

    def select(self, data: pd.DataFrame | np.ndarray, source: str = "X") -> pd.DataFrame:
        """``data`` checked against the columns seen in training (see the module's rules)."""
        return self._select(data, source)

    def numbers(self, data: pd.DataFrame | np.ndarray, source: str = "X") -> np.ndarray:
        """(rows, kept columns) float64: the values of the number columns as given (not through
        the float32 encoding), NaN for the other columns and for gaps."""
        frame = self._select(data, source)
        out = np.full((len(frame), len(self.columns)), np.nan)
        for j, column in enumerate(self.columns):
            if column.kind == "numeric":
                out[:, j] = _numbers(frame[column.name], column.name, source, column.written, column.unit)
        return out

    def inverse(self, matrix: np.ndarray) -> pd.DataFrame:
        """Encoded rows (categories as probabilities or one-hot) back in the kept columns' units."""
        out = {}
        for column, where in zip(self.columns, self.slices(), strict=True):
            block = matrix[:, where]
            if column.kind == "numeric":
                out[column.name] = block[:, 0] * column.scale + column.center
            elif column.kind == "datetime":
                days = block[:, 0].astype(np.float64) * column.scale + column.center
                out[column.name] = pd.to_datetime(days * 86_400e9, unit="ns")
            else:
                levels = np.asarray([*column.levels, "other"], dtype=object)
                out[column.name] = levels[block.argmax(axis=1)]
        return pd.DataFrame(out)

    def _select(self, data: pd.DataFrame | np.ndarray, source: str) -> pd.DataFrame:
        frame = _as_frame(data, source)
        if not self.named or not isinstance(data, pd.DataFrame):
            if frame.shape[1] != len(self.input_columns):
                raise DataError(
                    f"{source}: has {frame.shape[1]} column(s) but the model was trained on "
                    f"{len(self.input_columns)}; give data with the same columns as in training"
                )
            frame.columns = self.input_columns
            return frame
        frame = frame.rename(columns=str)
        missing = [c for c in self.names if c not in frame.columns]
        if missing:
            raise DataError(
                f"{source}: the model needs column(s) {missing}, missing here; give data with the "
                f"columns it was trained on ({self.names})"
            )
        extra = [c for c in frame.columns if c not in self.input_columns]
        if extra:
            logger.warning("%s: ignored column(s) %s, not seen in training", source, extra)
        return frame

    # -- saving -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format_version": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, state: dict, source: object = "the preprocessing state") -> TableEncoder:
        try:
            if state.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"format_version {state.get('format_version')!r}")
            return cls(
                scaling=str(state["scaling"]),
                images=bool(state.get("images", False)),
                columns=[Column(**c) for c in state["columns"]],
                dropped={str(k): str(v) for k, v in state["dropped"].items()},
                named=bool(state["named"]),
                input_columns=[str(c) for c in state["input_columns"]],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(
                f"{source}: the table encoding is unreadable ({type(exc).__name__}: {exc}); retrain or "
                "restore the model"
            ) from None


def _as_frame(data: pd.DataFrame | np.ndarray, source: str) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        array = np.asarray(data)
        if array.ndim == 1:
            raise DataError(
                f"{source}: expected a 2-D table (rows x columns) but got a 1-D array of {array.shape[0]} "
                "values; use X.reshape(-1, 1) for one column or X.reshape(1, -1) for one row"
            )
        if array.ndim != 2:
            raise DataError(f"{source}: expected a 2-D table but got shape {array.shape}")
        frame = pd.DataFrame(array, columns=[str(j) for j in range(array.shape[1])])
    if frame.shape[0] == 0:
        raise DataError(f"{source}: has no rows of data")
    if frame.shape[1] == 0:
        raise DataError(f"{source}: has no columns")
    return frame


def _formatted(text: pd.Series, decimal: str) -> tuple[pd.Series, pd.Series]:
    """:func:`vaekit.io.formatted_numbers` of a column's strings, the numbers as floats (NaN for
    the strings that are not such numbers)."""
    plain, units = formatted_numbers(text, decimal)
    return pd.to_numeric(plain, errors="coerce"), units


def _numbers(values: pd.Series, name: str, source: str, written: str = "", unit: str = "") -> np.ndarray:
    """A numeric column's values as numbers (NaN for gaps), read as ``Column.written`` says, a
    number in another unit than ``Column.unit`` an error."""
    if values.dtype.kind in "biuf":
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        text = values.astype("string").str.strip()
        if written:
            plain, units = formatted_numbers(text, written)
            other = (units.notna() & ~units.isin(["", unit])).to_numpy()
            if other.any():
                row = int(np.flatnonzero(other)[0])
                trained = unit or "plain numbers"
                raise DataError(
                    f"{source}: column {name!r}, row {row_number(values.index, row) + 1}: "
                    f"{values.iloc[row]!r} is in {units.iloc[row]}, not the column's {trained} "
                    f"({int(other.sum())} such value(s)); the column was in {trained} in training: "
                    "convert the values"
                )
            text = plain
        numbers = pd.to_numeric(text.where(text != ""), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan
        )
        bad = np.isnan(numbers) & ~(text.isna() | (text == "")).to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column {name!r}, row {row_number(values.index, row) + 1}: "
                f"{values.iloc[row]!r} is not a number "
                f"({int(bad.sum())} such value(s)); the column was numeric in training: fix the values"
            )
    if np.isinf(numbers).any():
        row = row_number(values.index, int(np.flatnonzero(np.isinf(numbers))[0]))
        raise DataError(f"{source}: column {name!r}, row {row + 1}: infinity; replace it with a number")
    return numbers


DAY_FIRST = "day first"  # Column.written of dates written day first (31/12/2024)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\b\.?"
)
TIME_ONLY = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?"  # 14:30, 2:30:15 PM
EPOCH_DAY = "1970-01-01 "  # the day of a time alone
MONTH_YEAR = ("%b %Y", "%B %Y", "%b-%Y", "%B-%Y", "%m/%Y", "%m-%Y", "%m.%Y", "%Y/%m")  # Mar 2024, 03/2024
# what parse_dates tries: 2024-03-01, 01/03/2024, 14:30; 3 Mar 2024, Mar 3, 2024, March 2024
LOOKS_LIKE_DATE = rf"\d[-/.:]\d|\d{{4}}-\d|(?i:\d[-\s]*\b{_MONTH}|\b{_MONTH},?[-\s]*\d)"


ESTABLISHED = 20  # at least, the cells holding a value for slips of it to be looked for
SLIP_RATIO = 20  # at least, how many times as many cells hold a value as a slip of it
SLIP_SHARE = 1e-3  # at most, the share of a column's cells holding a slip (and at least 2 cells allowed)
CLOSED = 0.9  # at least, the share of a column's cells its established values hold for slips to be looked for
BOOLEAN_PAIRS = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"})


def slips(counts: dict[str, int]) -> dict[str, str]:
    """The values of a column of text (``counts``: how many cells hold each value, stripped) that
    look like a slip for one of its established values (held by ``ESTABLISHED`` cells or more),
    each with a few words on what it should be: the same letters and digits in another case or
    spacing ('female', 'MALE' among 'Female' and 'Male'), or one letter off, missing, added or
    two letters swapped ('Femal', 'Germny'; two for values of 9 letters or more); in a column of
    two values, true and false or yes and no, anything else ('maybe'). A slip is rare: held by
    ``SLIP_RATIO`` times fewer cells than its value, and by at most ``SLIP_SHARE`` of the cells
    (or 2). Values with digits are not compared letter by letter (codes such as 'A100' and
    'A101' differ by design), nor values of fewer than 5 letters ('Iran' and 'Iraq'), nor values
    that differ in a word of one or two letters ('inpatient ward a' and 'inpatient ward w'). Only a
    column whose established values hold ``CLOSED`` of its cells is looked at: in one of names,
    most rare, 'Mario' beside 'Maria' is no slip."""
    from rapidfuzz.distance import OSA

    total = sum(counts.values())
    established = sorted(((n, v) for v, n in counts.items() if n >= ESTABLISHED), reverse=True)
    held = sum(n for n, _ in established)
    if held < CLOSED * total:
        return {}
    flags = (
        len(established) == 2
        and {_letters(v) for _, v in established} in BOOLEAN_PAIRS
        and held >= 0.99 * total
    )
    out = {}
    for value, count in counts.items():
        if count >= ESTABLISHED or count > max(2, SLIP_SHARE * total):
            continue
        best, nearest = None, None
        for n, level in established:
            if n < SLIP_RATIO * count:
                break
            if _letters(value) == _letters(level):
                best, nearest = level, 0
                break
            if len(level) < 5 or any(c.isdigit() for c in value + level):
                continue
            limit = 2 if len(level) >= 9 else 1
            d = OSA.distance(value.casefold(), level.casefold(), score_cutoff=limit)
            if d <= limit and (nearest is None or d < nearest) and not _labels_apart(value, level):
                best, nearest = level, d
        if best is not None:
            slip = "written another way" if nearest == 0 else "misspelt"
            out[value] = f"{best!r} {slip}? {counts[best]:,} rows hold it"
        elif flags:
            out[value] = " or ".join(repr(v) for _, v in established)
    return out


def _labels_apart(a: str, b: str) -> bool:
    """Whether two values differ only in words of one or two letters ('ward a' and 'ward w', 'type
    A' and 'type B'): labels of a series, not slips."""
    x, y = re.findall(r"\w+", a.casefold()), re.findall(r"\w+", b.casefold())
    if len(x) != len(y):
        return False
    differ = [(p, q) for p, q in zip(x, y, strict=True) if p != q]
    return bool(differ) and all(min(len(p), len(q)) <= 2 for p, q in differ)


def _letters(value: str) -> str:
    """A value's letters and digits, in lower case: 'N.Y.' and 'ny', 'Spain ' and 'spain' agree."""
    return re.sub(r"[\W_]+", "", value.casefold())


def times_alone(text: pd.Series) -> bool:
    """Whether most of the strings, a column's dates as written, are a time of day alone (14:30)."""
    present = text.dropna().astype(str).str.strip()
    return bool(len(present)) and float(present.str.fullmatch(TIME_ONLY).mean()) > 0.5


def date_counts(text: pd.Series) -> tuple[int, int]:
    """How many strings read as dates in one format (:func:`parse_dates` without dateutil)
    month first (12/31/2024) and day first (31/12/2024); day first only tried when some are not
    read month first (ISO 8601 dates are)."""
    month_first = int(parse_dates(text, False, one_by_one=False).notna().sum())
    if month_first == int(text.notna().sum()):  # every one read so: none more
        return month_first, month_first
    return month_first, int(parse_dates(text, True, one_by_one=False).notna().sum())


def day_first(text: pd.Series) -> bool:
    """Whether strings of dates read as dates more often day first (31/12/2024, 01/02/2024 the
    1st of February) than month first (12/31/2024), the month first when as often."""
    month_first, day_first = date_counts(text)
    return day_first > month_first


def _date_format(example: str, dayfirst: bool) -> str | None:
    """The format of dates written as ``example`` is, day or month first as ``dayfirst`` says
    when the year is not first (pandas' guess follows the example: 13/01/2024 is day first);
    pandas does not guess a month and year alone (Mar 2024, 03/2024): ``MONTH_YEAR``."""
    from pandas.tseries.api import guess_datetime_format

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "parsing dates day first when dayfirst=False": the example says so
        written = guess_datetime_format(example, dayfirst=dayfirst)
    if written is None:
        written = next((f for f in MONTH_YEAR if _reads(example.strip(), f)), None)
    ambiguous = written and written.startswith(("%d", "%m")) and "%d" in written and "%m" in written
    if ambiguous and (written.index("%d") < written.index("%m")) != dayfirst:
        written = written.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
    return written


def _reads(text: str, written: str) -> bool:
    try:
        datetime.datetime.strptime(text, written)
    except ValueError:
        return False
    return True


def parse_dates(text: pd.Series, dayfirst: bool = False, one_by_one: bool = True) -> pd.Series:
    """Strings of dates or times (2024-03-01, 01/03/2024 14:30, with a time zone) as naive
    timestamps in UTC, NaT for a string that is not one; months also by their English names or
    abbreviations (3 Mar 2024, March 3, 2024). Only strings with a digit, a separator and a
    digit (or a year and a dash), or a month's name beside a number, are tried
    (``LOOKS_LIKE_DATE``); ISO 8601 first, then in one format for all, guessed from the first
    that has one (``dayfirst``: 01/02 is the 1st of February; see :func:`day_first`), and, with
    ``one_by_one``, the strings still not read one by one (slow: dateutil). A time alone (14:30,
    2:30 PM) is that time of 1970-01-01."""
    looks_like_date = text.str.contains(LOOKS_LIKE_DATE, regex=True, na=False)
    if not looks_like_date.any():
        return pd.Series(pd.NaT, index=text.index)
    candidates = text.where(looks_like_date)
    # a time alone is on 1970-01-01, not on the day it is read (as dateutil would have it: the
    # same time would be another value tomorrow)
    time_only = candidates.str.fullmatch(TIME_ONLY, na=False)
    if time_only.any():
        candidates = candidates.where(~time_only, EPOCH_DAY + candidates)
    parsed = None
    tries = [{"format": "ISO8601"}, {"format": None}]
    for options in tries + ([{"dayfirst": dayfirst, "format": "mixed"}] if one_by_one else []):
        rest = looks_like_date if parsed is None else looks_like_date & parsed.isna()
        if not rest.any():
            break
        if options["format"] is None:  # the format of the first of the strings left that has one
            examples = candidates[rest].iloc[:20]
            written = (_date_format(example, dayfirst) for example in examples)
            options = {"format": next((w for w in written if w), None)}
            if options["format"] is None:
                continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "could not infer format": then it reads them one by one
            try:
                more = pd.to_datetime(candidates.where(rest), errors="coerce", utc=True, **options)
            except (ValueError, TypeError, OverflowError):
                continue
        parsed = more if parsed is None else parsed.fillna(more)
    parsed = parsed if parsed is not None else pd.Series(pd.NaT, index=text.index)
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed


def _days(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert(None)
    nanoseconds = stamps.astype("datetime64[ns]").to_numpy().astype("int64").astype(np.float64)
    nanoseconds[stamps.isna().to_numpy()] = np.nan
    return nanoseconds / 86_400e9


def _weekday(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, errors="coerce")
    return stamps.dt.day_of_week.to_numpy(dtype=np.float64, na_value=np.nan)


def _counts_up(values: pd.Series) -> bool:
    """Whole numbers that are a running index: sorted, they go up by one."""
    v = np.sort(values.to_numpy(dtype=np.float64))
    return len(v) > 2 and bool(np.all(np.diff(v) == 1))
