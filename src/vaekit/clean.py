"""``vaekit clean``: find the garbage in a CSV file, a Parquet file or a folder of images, and split it off.

The input is never modified. Every input row (or image file) ends up in exactly one of the two
outputs, ``clean.<ext>`` and ``garbage.<ext>``, in the input's own format, column order and row
order; a kept CSV row is written byte for byte as it was read. A row is garbage when it cannot be
parsed (a wrong number of fields, bytes that are not text in the file's encoding, a value its
column cannot hold, a CSV record with one value alone, an image that does not open), when the
detector scores it above the threshold, or, with ``drop_duplicates``, when it repeats an earlier
row exactly. Each garbage row carries its reason. Every file is written atomically: an interrupted
run leaves no half-written file under a final name.

CSV files are read as the programs that write them write them: a comma, semicolon, tab or bar
between fields (or as Excel's first line ``sep=;`` says), quotes doubled inside quoted fields,
UTF-8 or cp1252 text (:func:`vaekit.io.sniff_encoding`), numbers with a decimal point or comma
and formatted as amounts, shares and measures ($1,234.50, 12.5%, (45.00), 3.5 kg: a number in another
unit than its column's is garbage; :func:`vaekit.io.formatted_numbers`), dates (a value that
is not a date in a column of dates is garbage; 31/12/2024 day first when the column is written so:
:func:`vaekit.tabular.parse_dates`), text (a slip of one of a column's common values, 'Femal' or
'female' among 'Female', is garbage: :func:`vaekit.tabular.slips`),
columns without a name or with a repeated one named as pandas names them, a delimiter at the end
of every data line and not of the header left out, gzipped files (``data.csv.gz``: the outputs are
gzipped too). A file most of whose records disagree with the header's number of fields is
refused, not called garbage.
"""

from __future__ import annotations

import codecs
import collections
import csv
import functools
import itertools
import logging
import operator
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from vaekit.errors import DataError, ParameterError
from vaekit.io import (
    ENCODING_SAMPLE,
    _suffix,
    atomic_path,
    column_unit,
    formatted_numbers,
    gzipped,
    open_bytes,
    open_output,
    sniff_dialect,
    sniff_encoding,
    trailing_delimiter,
)
from vaekit.report import N_SHOWN, extreme_places, ranks_among
from vaekit.streaming import _Smallest
from vaekit.tabular import DATE_SHARE, DAY_FIRST, date_counts, parse_dates, slips, times_alone

logger = logging.getLogger(__name__)

# by vaekit.io._suffix: every delimited name (.csv, .tsv, .txt, gzipped too) is ".csv"
TABLE_KINDS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
NUMERIC_SHARE = 0.9  # a text column whose non-empty cells are at least this share numbers is numeric
PROBE = 1000  # cells read formatted first: a column of words is not read so to the end
VOCABULARY = 200  # at most, the values of a column of text whose slips are looked for
LONE_COLUMNS = 3  # at least, the columns of a CSV file for a record with one value alone to be garbage
LONE_SHARE = 0.01  # at most, the share of its records so
MAX_IMAGE_PIXELS = 64 * 64  # images are scored at most this big (aspect kept)
SAMPLE_ROWS = 200_000  # the detector learns from a uniform sample of a file too large to hold


@dataclass
class CleanResult:
    """What ``clean`` did: counts, the threshold, and where the outputs are."""

    n_rows: int
    n_kept: int
    n_garbage: int
    n_unparseable: int
    n_flagged: int
    n_duplicates: int
    threshold: float
    threshold_rule: str
    outputs: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line that counts every input row exactly once."""
        dropped = self.n_garbage - self.n_unparseable - self.n_flagged
        parts = [f"{self.n_unparseable} unparseable", f"{self.n_flagged} flagged by the detector"]
        if dropped:
            parts.append(f"{dropped} duplicates dropped")
        duplicates = f"; {self.n_duplicates} exact duplicate rows" if self.n_duplicates else ""
        return (
            f"{self.n_rows} rows in: {self.n_kept} kept + {self.n_garbage} garbage ({', '.join(parts)})"
            f"{duplicates}; threshold {self.threshold:.4g}"
        )


# -- reading a CSV file record by record ---------------------------------------------------------


@dataclass
class CsvRecords:
    """A CSV file split into its header and records, each kept as the bytes it was read as."""

    header: bytes
    columns: list[str]
    dialect: type[csv.Dialect]
    raw: list[bytes]  # one entry per record, line ending included
    lines: list[int]  # the line number (1-based) each record starts on
    strings: pd.DataFrame  # the fields of the records that parse, indexed by record (0-based)
    reasons: list[str]  # why a record cannot be parsed ("" when it can)


def _own_suffix(source: Path) -> str:
    """A file's suffix as written, lower case, with the one before ".gz": ".csv", ".tsv",
    ".csv.gz" (the suffix clean's outputs take), ".parquet.gz"."""
    name = Path(source.name.lower())
    return "".join(name.suffixes[-2:]) if gzipped(source) else name.suffix


def _records(lines: Iterable[bytes]) -> Iterator[tuple[bytes, int]]:
    """Physical lines joined into records, each with the line it starts on (1-based): a quoted
    field may hold line breaks."""
    pending, start, quotes = b"", 1, 0
    for number, line in enumerate(lines, start=1):
        if not pending:
            start = number
        pending += line
        quotes += line.count(b'"')
        if quotes % 2 == 0:
            yield pending, start
            pending, quotes = b"", 0
    if pending:
        yield pending, start


def _split_records(data: bytes) -> tuple[list[bytes], list[int]]:
    """A whole file's records and the lines they start on."""
    pairs = list(_records(data.splitlines(keepends=True)))
    return [raw for raw, _ in pairs], [line for _, line in pairs]


def _file_lines(path: Path, block: int = 1 << 22) -> Iterator[bytes]:
    """The physical lines of a file read a block at a time, split as ``bytes.splitlines`` splits
    the whole file (the last line of a block waits for the next: it may be cut, or be the
    ``\\r`` of a ``\\r\\n``)."""
    carry = b""
    with open_bytes(path) as f:
        while chunk := f.read(block):
            lines = (carry + chunk).splitlines(keepends=True)
            carry = lines.pop()
            yield from lines
    if carry:
        yield from carry.splitlines(keepends=True)


EXCEL_HINT = re.compile(rb'"?sep=(.)"?(?:\r\n|\r|\n)')  # a first line "sep=;" tells Excel the delimiter


def _header_records(records: Iterator[bytes]) -> bytes:
    """The bytes before a CSV file's first data record, from its ``records``: the header line,
    after Excel's line ``sep=;`` naming the delimiter if the file begins with one."""
    first = next(records, b"")
    return first + next(records, b"") if EXCEL_HINT.fullmatch(first) else first


def _split_hint(header: bytes) -> tuple[bytes, bytes]:
    """The :func:`_header_records` of a CSV file as Excel's line ``sep=;`` (or b"") and the header line."""
    hint = EXCEL_HINT.match(header)
    if hint is None or hint.end() == len(header):
        return b"", header
    return header[: hint.end()], header[hint.end() :]


def _csv_header(header: bytes, path: Path, encoding: str) -> tuple[list[str], type[csv.Dialect]]:
    """The column names and the dialect (sniffed from the header line, or given by Excel's line
    ``sep=;``; its ``encoding``, the file's) of a CSV file, from its :func:`_header_records`."""
    hint, header = _split_hint(header)
    try:
        header_text = _decoded(header, encoding)
    except UnicodeDecodeError:
        raise DataError(
            f"{path}: the header line is not {encoding} text; save the file as UTF-8, or give its encoding"
        ) from None
    dialect = sniff_dialect(header_text, encoding)
    if hint:
        dialect.delimiter = EXCEL_HINT.fullmatch(hint).group(1).decode(encoding)
    fields = _header_fields(header, dialect)
    columns = _column_names(fields)
    renamed = [
        f"{name!r} ({'no name' if not written.strip() else f'a second {written!r}'})"
        for written, name in zip(fields, columns, strict=True)
        if written != name
    ]
    if renamed:
        logger.warning("%s: named column(s) as pandas does: %s", path, ", ".join(renamed))
    return columns, dialect


TRAILING_PROBE = 200  # records that tell whether a file's data lines end with a delimiter


def _note_trailing_delimiter(
    source: Path, raws: list[bytes], columns: list[str], dialect: type[csv.Dialect]
) -> None:
    """Mark ``dialect`` (``trailing_delimiter``) when most of a CSV file's first records ``raws``
    end with a delimiter that its header does not (:func:`vaekit.io.trailing_delimiter`): their
    last, empty, field is not read, and a record without it is read as it is."""
    texts = [raw.decode(_encoding_of(dialect), "replace").rstrip("\r\n") for raw in raws[:TRAILING_PROBE]]
    try:
        dialect.trailing_delimiter = trailing_delimiter(columns, texts, dialect)
    except csv.Error:
        dialect.trailing_delimiter = False
    if dialect.trailing_delimiter:
        logger.warning(
            "%s: its data lines end with a delimiter that its header line does not: each is read as "
            "the header's %d fields, the empty one after that delimiter left out",
            source,
            len(columns),
        )


def _without_trailing_delimiter(raws: list[bytes], dialect: type[csv.Dialect]) -> list[bytes]:
    """The records of a file marked by :func:`_note_trailing_delimiter` with the delimiter at
    their end taken off (one, before the line break), for parsing; others as they are."""
    if not getattr(dialect, "trailing_delimiter", False):
        return raws
    end = re.compile(rb"%s(\r\n|\r|\n)?\Z" % re.escape(dialect.delimiter.encode(_encoding_of(dialect))))
    return [end.sub(rb"\1", raw, count=1) for raw in raws]


def _header_fields(header: bytes, dialect: type[csv.Dialect]) -> list[str]:
    """The fields of a CSV file's header line as written (garbage files repeat them), from its
    :func:`_header_records`."""
    line = _split_hint(header)[1]
    return next(csv.reader([_decoded(line, _encoding_of(dialect)).rstrip("\r\n")], dialect))


def _excel_hint(header: bytes, dialect: type[csv.Dialect]) -> str:
    """Excel's line ``sep=;`` at the start of the :func:`_header_records`, or ""."""
    return _split_hint(header)[0].decode(_encoding_of(dialect))


def _decoded(header: bytes, encoding: str) -> str:
    """A header line as text, without the byte order mark UTF-8 files may begin with."""
    return header.decode("utf-8-sig" if encoding == "utf-8" else encoding)


def file_encoding(sample: bytes, encoding: str | None, path: Path) -> str:
    """The text encoding of a CSV file: ``encoding`` when given (checked), else sniffed from the
    file's first bytes ``sample`` (:func:`vaekit.io.sniff_encoding`)."""
    if encoding is None:
        return sniff_encoding(sample)
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise ParameterError(
            f"{path}: unknown encoding {encoding!r}; give one Python knows, such as utf-8, cp1252 or latin-1"
        ) from None


def _column_names(fields: list[str]) -> list[str]:
    """Distinct column names for a header's fields, as pandas' ``read_csv`` names them: a field
    without a name "Unnamed: j" (j its place from 0; a file written from a DataFrame with its
    index, or with a delimiter at the end of each line), the second "a" "a.1", the third "a.2"."""
    names: list[str] = []
    for j, written in enumerate(fields):
        name = written if written.strip() else f"Unnamed: {j}"
        base, k = name, 0
        while name in names or (name != written and name in fields):
            k += 1
            name = f"{base}.{k}"
        names.append(name)
    return names


NOT_TEXT = "bytes that are not "  # the start of the reason of a record not in the file's encoding


def _field_count_end(n_columns: int) -> str:
    """The end of the reason of a record with another number of fields than the header's."""
    return f" fields, but the header has {n_columns}"


def _parse_record(raw: bytes, n_columns: int, dialect: type[csv.Dialect]) -> tuple[list[str] | None, str]:
    """A record's fields, or None and why it cannot be parsed."""
    try:
        text = raw.decode(_encoding_of(dialect))
    except UnicodeDecodeError as exc:
        return None, f"{NOT_TEXT}{_named(_encoding_of(dialect))} text at position {exc.start}"
    stripped = text.rstrip("\r\n")
    if not stripped.strip():
        return None, "an empty line"
    try:
        values = next(csv.reader([stripped], dialect))
    except csv.Error as exc:
        return None, f"not valid CSV ({exc})"
    if len(values) != n_columns:
        return None, f"{len(values)}{_field_count_end(n_columns)}"
    return values, ""


def _field_counts(reasons: Iterable[str], n_columns: int) -> collections.Counter:
    """How many records have each wrong number of fields, from their :func:`_parse_record` reasons."""
    end = _field_count_end(n_columns)
    return collections.Counter(int(r[: -len(end)]) for r in reasons if r.endswith(end))


def _undecodable(reasons: Iterable[str]) -> int:
    """How many records are not text in their file's encoding, from their :func:`_parse_record` reasons."""
    return sum(1 for r in reasons if r.startswith(NOT_TEXT))


def _tell_of_undecodable(source: Path, n: int, dialect: type[csv.Dialect]) -> None:
    """Say once, beside each such record's reason, that records not in the file's encoding may
    mean that the file is in another one."""
    if n:
        logger.warning(
            "%s: %d record(s) are not %s text (garbage, each with its reason); if the file is in "
            "another encoding, give it (vaekit clean --encoding, e.g. cp1252 or latin-1)",
            source,
            n,
            _named(_encoding_of(dialect)),
        )


def _check_field_counts(source: Path, wrong: collections.Counter, n_records: int, n_columns: int) -> None:
    """Refuse a file most of whose records have one number of fields, not the header's: its first
    line is not their header (a title or notes above it), not a file of garbage."""
    if not wrong:
        return
    fields, count = wrong.most_common(1)[0]
    if count > n_records / 2:
        raise DataError(
            f"{source}: {count} of its {n_records} records have {fields} fields, but its first line, read "
            f"as the header, has {n_columns}: remove the lines above the header (a title, notes), or "
            "make the header and the records agree"
        )


def _parse_records(
    raws: list[bytes], n_columns: int, dialect: type[csv.Dialect]
) -> list[tuple[list[str] | None, str]]:
    """:func:`_parse_record` of each record, those that parse cleanly in one pass of the csv
    module (about twice as fast): each record is a whole number of quoted fields, so the reader starts
    a row at each; a row count that differs, a record it cannot read or a bad row sends the
    records one by one through :func:`_parse_record`."""
    try:
        texts = [raw.decode(_encoding_of(dialect)).rstrip("\r\n") for raw in raws]
        rows = list(csv.reader(texts, dialect))
    except (UnicodeDecodeError, csv.Error):
        texts, rows = [], None
    if rows is None or len(rows) != len(raws):
        return [_parse_record(raw, n_columns, dialect) for raw in raws]
    return [
        (row, "") if len(row) == n_columns and text.strip() else _parse_record(raw, n_columns, dialect)
        for row, text, raw in zip(rows, texts, raws, strict=True)
    ]


def _plain(raws: list[bytes], n_columns: int, dialect: type[csv.Dialect]) -> list[bool]:
    """Which records are plain: not blank, as many fields as the header has, each field without
    quote, escape character or delimiter, or quoted whole with no escape character or line break
    inside and no quote but doubled ones, when the dialect doubles them (``"a,b"`` and ``"a""b"``,
    but not ``a"b`` nor ``"a"b``). Such a record is read alike by the csv module and Arrow's
    reader; other quoting, a file whose delimiter may be followed by spaces to skip, may not be."""
    if dialect.skipinitialspace:
        return [False] * len(raws)
    delimiter = dialect.delimiter.encode()
    special = "".join(c for c in (dialect.quotechar, dialect.escapechar) if c).encode()
    has_special = re.compile(b"[%s]" % re.escape(special)).search if special else lambda raw: None
    quoted = _quoted_record(n_columns, dialect)
    return [
        (raw.count(delimiter) == n_columns - 1 and bool(raw.strip()))
        if not has_special(raw)
        else quoted is not None and quoted(raw) is not None
        for raw in raws
    ]


def _quoted_record(n_columns: int, dialect: type[csv.Dialect]) -> Callable[[bytes], re.Match | None] | None:
    """The ``fullmatch`` of a record whose fields are unquoted or simply quoted (:func:`_plain`),
    or None for a dialect that does not quote."""
    quote = _quote_char(dialect)
    if quote is None:
        return None
    q, d = re.escape(quote.encode()), re.escape(dialect.delimiter.encode())
    e = re.escape(dialect.escapechar.encode()) if dialect.escapechar else b""
    doubled = b"|%s%s" % (q, q) if dialect.doublequote else b""  # "" inside quotes: one quote
    field = b"(?:%s(?:[^%s%s\r\n]%s)*%s|[^%s%s%s\r\n]*)" % (q, q, e, doubled, q, q, e, d)
    return re.compile(b"%s(?:%s%s){%d}(?:\r\n|\r|\n)?" % (field, d, field, n_columns - 1)).fullmatch


def _quote_char(dialect: type[csv.Dialect]) -> str | None:
    """The character that quotes fields in ``dialect``, or None if it does not quote."""
    return dialect.quotechar if dialect.quotechar and dialect.quoting != csv.QUOTE_NONE else None


def _arrow_strings(raws: list[bytes], columns: list[str], dialect: type[csv.Dialect]) -> pd.DataFrame | None:
    """Plain records (:func:`_plain`) as a frame of strings by Arrow's CSV reader, or None when a
    record is not text in the file's encoding."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [f"f{i}" for i in range(len(columns))]  # any names: the header's may clash with Arrow's
    try:
        table = pa_csv.read_csv(
            pa.py_buffer(b"".join(raws)),
            read_options=pa_csv.ReadOptions(column_names=names, encoding=_encoding_of(dialect)),
            parse_options=pa_csv.ParseOptions(
                delimiter=dialect.delimiter,
                quote_char=_quote_char(dialect) or False,
                double_quote=bool(dialect.doublequote),
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if table.num_rows != len(raws):
        return None
    return table.rename_columns(columns).to_pandas()


def _decodes(raw: bytes, encoding: str) -> bool:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _encoding_of(dialect: type[csv.Dialect]) -> str:
    """The text encoding of the file a dialect was sniffed from (:func:`vaekit.io.sniff_dialect`);
    UTF-8 for one that does not say (``csv.excel``)."""
    return getattr(dialect, "encoding", "utf-8")


def _named(encoding: str) -> str:
    """An encoding's name as people write it."""
    return {"utf-8": "UTF-8"}.get(encoding, encoding)


def _parse_chunk(
    raws: list[bytes], columns: list[str], dialect: type[csv.Dialect]
) -> tuple[pd.DataFrame, list[str]]:
    """The fields of the records that parse, as a frame of strings indexed by the records'
    places in ``raws``, and per record why it cannot be parsed ("" when it can): what
    :func:`_parse_record` gives each record alone. The plain records (:func:`_plain`, most
    records of most files) are read by Arrow in one call, several times faster than the csv
    module and without building a list per record; the others by :func:`_parse_records`."""
    raws = _without_trailing_delimiter(raws, dialect)
    fast = [i for i, plain in enumerate(_plain(raws, len(columns), dialect)) if plain]
    strings = _arrow_strings([raws[i] for i in fast], columns, dialect) if fast else None
    if strings is None and fast:  # a record that is not text in the encoding among them: the others again
        text = [i for i in fast if _decodes(raws[i], _encoding_of(dialect))]
        if len(text) < len(fast):
            fast = text
            strings = _arrow_strings([raws[i] for i in fast], columns, dialect) if fast else None
    if strings is None:
        fast = []
    else:
        strings.index = fast
    taken = set(fast)
    slow = [i for i in range(len(raws)) if i not in taken]
    parsed = _parse_records([raws[i] for i in slow], len(columns), dialect)
    reasons = [""] * len(raws)
    for i, (_, reason) in zip(slow, parsed, strict=True):
        reasons[i] = reason
    ok = [(i, fields) for i, (fields, _) in zip(slow, parsed, strict=True) if fields is not None]
    if ok or strings is None:
        others = _string_frame([fields for _, fields in ok], columns)
        others.index = [i for i, _ in ok]
        strings = others if strings is None else pd.concat([strings, others]).sort_index()
    return strings, reasons


def read_csv_records(path: Path, encoding: str | None = None) -> CsvRecords:
    """Split a CSV file into records and parse them so that a bad record spoils only itself;
    ``encoding``: the file's (None: sniffed, see :func:`file_encoding`)."""
    with open_bytes(path) as f:
        data = f.read()
    if not data.strip():
        raise DataError(f"{path}: the file is empty; give a CSV file with a header line and rows")
    records, lines = _split_records(data)
    header_bytes = _header_records(iter(records))
    skip = 2 if _split_hint(header_bytes)[0] else 1
    records, lines = records[skip:], lines[skip:]
    columns, dialect = _csv_header(header_bytes, path, file_encoding(data[:ENCODING_SAMPLE], encoding, path))
    _note_trailing_delimiter(path, records, _header_fields(header_bytes, dialect), dialect)
    strings, reasons = _parse_chunk(records, columns, dialect)
    return CsvRecords(header_bytes, columns, dialect, records, lines, strings, reasons)


# what stands for a missing value in a cell: pandas read_csv's default na_values (as train and
# score read a file), among them Excel's #N/A
MISSING_TEXT = (
    *("", "NA", "N/A", "n/a", "NaN", "nan", "-NaN", "-nan", "null", "NULL", "None", "<NA>"),
    *("#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "1.#IND", "1.#QNAN"),
)


@dataclass
class _ColumnCounts:
    """Per column of a CSV file: how many cells hold something, how many of those are not numbers
    as written (a decimal point), and, per other reading (``FORMATTED``: $1,234.50, 12.5%, (45.00),
    3.5 kg, :func:`vaekit.io.formatted_numbers`; ``COMMA``: the same with a decimal comma, 1,5;
    1.234,5; 12,50 €), how many of those cells read so with each unit ("" none) and how many do
    not (key None). The other readings are tried only for a column with cells that are not numbers
    as written (and among them a number so read in the first ``PROBE``), the decimal comma only
    with ``decimal_commas`` (a CSV file whose delimiter is not a comma, a Parquet file); otherwise
    all those cells count as not read. And how many cells are dates or times (2024-03-01,
    01/03/2024 14:30: :func:`vaekit.tabular.parse_dates`) in one format, read month first and day
    first, and in any (those not read in one format read one by one, as the detector's
    :class:`vaekit.tabular.TableEncoder` reads them), counted in a column of cells that are not
    numbers when most of its first ``PROBE`` such cells are. And how many of the cells that are
    not numbers hold each value (stripped), while a column has at most ``VOCABULARY`` of them
    (None beyond: free text), for the slips among a column of text's values
    (:func:`vaekit.tabular.slips`). And how many records there are, and how many hold a value in
    one field only (:meth:`lone_is_rare`)."""

    present: np.ndarray
    not_numbers: np.ndarray
    readings: dict[str, list[collections.Counter]]
    dates: np.ndarray
    values: list[collections.Counter | None]
    records: int = 0
    lone: int = 0

    @classmethod
    def of(cls, frame: pd.DataFrame, decimal_commas: bool) -> _ColumnCounts:
        present, not_numbers, readings, dates, held = [], [], {FORMATTED: [], COMMA: []}, [], []
        filled = np.zeros(len(frame), dtype=np.int64)
        for column in frame.columns:
            values = frame[column]
            numbers, missing = _numbers(values)
            filled += ~missing.to_numpy()
            unread = ~missing & numbers.isna()
            bad = int(unread.sum())
            present.append(int((~missing).sum()))
            not_numbers.append(bad)
            text = values[unread].str.strip()
            probed = bad and parse_dates(text[:PROBE]).notna().mean() > 0.5
            dates.append(_date_counts(text) if probed else (0, 0, 0))
            counted = text.value_counts(sort=False) if bad else pd.Series(dtype=np.int64)
            held.append(collections.Counter(counted.to_dict()) if len(counted) <= VOCABULARY else None)
            for style in readings:
                units = collections.Counter({None: bad}) if bad else collections.Counter()
                tried = bad and (style == FORMATTED or decimal_commas)
                if tried and _read(values[unread][:PROBE], style)[0].notna().any():
                    read, unit = _read(values[unread], style)
                    units = collections.Counter(unit.where(read.notna(), None).tolist())
                readings[style].append(units)
        as_array = functools.partial(np.array, dtype=np.int64)
        lone = int((filled == 1).sum())
        return cls(
            as_array(present), as_array(not_numbers), readings, as_array(dates), held, len(frame), lone
        )

    def __add__(self, other: _ColumnCounts) -> _ColumnCounts:
        return _ColumnCounts(
            self.present + other.present,
            self.not_numbers + other.not_numbers,
            {
                style: [a + b for a, b in zip(mine, other.readings[style], strict=True)]
                for style, mine in self.readings.items()
            },
            self.dates + other.dates,
            [
                None if a is None or b is None or len(a.keys() | b.keys()) > VOCABULARY else a + b
                for a, b in zip(self.values, other.values, strict=True)
            ],
            self.records + other.records,
            self.lone + other.lone,
        )

    def lone_is_rare(self) -> bool:
        """Whether a record holding a value in one field only is an error in its file: one of
        ``LONE_COLUMNS`` columns or more, where fewer than ``LONE_SHARE`` of the records are so (a
        title, a note or a footer written with the header's number of fields: 'Exported by ...,,,')."""
        return len(self.present) >= LONE_COLUMNS and self.lone < LONE_SHARE * self.records

    def kinds(self, columns: list[str], label_column: str | None) -> list[ColumnKind]:
        """Per column (kind, reading, unit): kind "numbers" (every present cell a number),
        "mostly numbers" (a text cell, or a number in another unit than the column's, is an error
        in its row), "dates" (at least ``DATE_SHARE`` of the present cells dates or times, as the
        detector's :class:`vaekit.tabular.TableEncoder` takes a column for dates: a cell that is
        not one is an error in its row; reading ``DAY_FIRST`` when more so) or "text"; the
        reading under which the fewest cells are not numbers (as written "", then ``FORMATTED``,
        then ``COMMA``, when as many); the unit of the column's numbers
        (:func:`vaekit.io.column_unit`); for a column of text (not the label column), the slips
        among its values (:func:`vaekit.tabular.slips`): an error in its row."""
        kinds = []
        for j, (column, present) in enumerate(zip(columns, self.present, strict=True)):
            choices = [(int(self.not_numbers[j]), "", "")]
            for style, counts in self.readings.items():
                unit = column_unit(counts[j])  # None (not read so) and "" (no unit) are no unit
                choices.append((sum(c for u, c in counts[j].items() if u not in ("", unit)), style, unit))
            bad, style, unit = min(choices, key=lambda choice: choice[0])
            if present and bad and (present - bad) / present >= NUMERIC_SHARE and column != label_column:
                kinds.append(ColumnKind("mostly numbers", style, unit))
            elif present and not bad:
                kinds.append(ColumnKind("numbers", style, unit))
            elif present and self.dates[j, 2] >= DATE_SHARE * present and column != label_column:
                kinds.append(ColumnKind("dates", DAY_FIRST if self.dates[j, 1] > self.dates[j, 0] else ""))
            else:
                held = self.values[j] if column != label_column else None
                kinds.append(ColumnKind("text", slips=slips(dict(held)) if held else {}))
        return kinds


class ColumnKind(NamedTuple):
    """What :meth:`_ColumnCounts.kinds` says of a column: its kind ("numbers", "mostly numbers",
    "dates", "text"), its reading ("" as written, ``FORMATTED``, ``COMMA``; for dates ``DAY_FIRST``
    or ""), its numbers' unit, and for text the slips among its values with what each should be."""

    kind: str
    reading: str = ""
    unit: str = ""
    slips: dict[str, str] = {}  # noqa: RUF012 (a NamedTuple's default, never changed)


def _date_counts(text: pd.Series) -> tuple[int, int, int]:
    """How many of the strings are dates in one format, read month first and day first
    (:func:`vaekit.tabular.date_counts`), and in any, read the way more of them are read in one."""
    month_first, day_first = date_counts(text)
    if max(month_first, day_first) == int(text.notna().sum()):
        return month_first, day_first, max(month_first, day_first)
    return month_first, day_first, int(parse_dates(text, day_first > month_first).notna().sum())


# readings of a column's cells besides as written (:meth:`_ColumnCounts.kinds`)
FORMATTED = "formatted"  # $1,234.50, 12.5%, (45.00), 3.5 kg
COMMA = "decimal commas"  # 1,5; 1.234,5; 12,50 €


def _read(values: pd.Series, style: str) -> tuple[pd.Series, pd.Series]:
    """A column's strings read in ``style`` (``FORMATTED`` or ``COMMA``): as numbers (NaN where
    missing or not a number) and their units (:func:`vaekit.io.formatted_numbers`)."""
    plain, unit = formatted_numbers(values, "." if style == FORMATTED else ",")
    return _numbers(plain)[0], unit


def _fields_of(strings: pd.DataFrame, places: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """The fields of the records at ``places`` that parse (those in ``strings``' index), by place."""
    wanted = strings.index.intersection(places)
    return dict(zip(wanted, strings.loc[wanted].itertuples(index=False, name=None), strict=True))


def _string_frame(fields: list[list[str]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(fields, columns=columns, dtype=object).astype(str)


def _missing(values: pd.Series) -> pd.Series:
    """Which of a column's strings stand for a missing value (blank, or one of ``MISSING_TEXT``)."""
    return values.str.strip().isin(MISSING_TEXT)


def _numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A column's strings as numbers (NaN where missing or not a number), and which are missing:
    pandas' ``to_numeric`` of the strings that are not missing."""
    fast = _plain_numbers(values)
    if fast is not None:
        return fast
    missing = _missing(values)
    return pd.to_numeric(values.where(~missing), errors="coerce"), missing


def _plain_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series] | None:
    """:func:`_numbers` of a column of plain numbers and empty cells, the common case, by Arrow's
    cast (about six times faster); None for any other column. As ``to_numeric``: int64 when every
    cell is a whole number, float64 when a cell is empty or not whole; for what the cast reads
    otherwise than ``to_numeric`` (a "nan", a whole number beyond 2**53), None."""
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = pa.array(values)  # no copy for pandas' Arrow-backed strings
    if not (pa.types.is_string(strings.type) or pa.types.is_large_string(strings.type)):
        return None
    empty = pc.equal(strings, "")
    try:
        numbers = pc.cast(pc.if_else(empty, pa.scalar(None, pa.string()), strings), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if pc.any(pc.is_nan(numbers)).as_py():
        return None
    missing = empty.to_numpy(zero_copy_only=False)
    floats = numbers.to_numpy(zero_copy_only=False)  # nulls (the empty cells) become NaN
    whole = not missing.any() and pc.all(pc.match_substring_regex(strings, r"^[+-]?[0-9]+$")).as_py()
    if whole and len(floats) and np.abs(floats).max() >= 2.0**53:
        return None
    numbers = floats.astype(np.int64) if whole else floats
    return pd.Series(numbers, index=values.index, name=values.name), pd.Series(missing, index=values.index)


def _typed(
    frame: pd.DataFrame, kinds: list[ColumnKind], lone: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """A frame of the records' strings typed by the file's column kinds (:meth:`_ColumnCounts.kinds`),
    and per row a reason when a text value, or a number in another unit, sits in a column of
    numbers, or a value that is not a date in a column of dates, or a slip in a column of text;
    with ``lone`` (:meth:`_ColumnCounts.lone_is_rare`), when one field alone holds a value."""
    reasons = [""] * len(frame)
    given, gaps = [], []  # each column's strings and which are missing, for the lone values
    for column, (kind, style, unit, slipped) in zip(list(frame.columns), kinds, strict=True):
        values = frame[column]
        given.append(values)
        if kind == "text":
            stripped = values.str.strip()
            if slipped:
                for i in np.flatnonzero(stripped.isin(list(slipped)).to_numpy()):
                    value = stripped.iloc[i]
                    what = slipped[value]
                    reasons[i] = (
                        reasons[i] or f"column {column!r}: {value!r} is not one of its values ({what})"
                    )
            missing = stripped.isin(MISSING_TEXT)  # _missing, of the strings stripped once
            frame[column] = values.where(~missing, None)
            gaps.append(missing.to_numpy())
            continue
        if kind == "dates":
            missing = _missing(values)
            gaps.append(missing.to_numpy())
            stamps = parse_dates(values.where(~missing).str.strip(), style == DAY_FIRST)
            what = "a time" if times_alone(values[~missing & stamps.notna()]) else "a date"
            for i in np.flatnonzero((~missing & stamps.isna()).to_numpy()):
                reasons[i] = reasons[i] or f"column {column!r}: {values.iloc[i]!r} is not {what}"
            # as text: the detector reads the dates itself (TableEncoder), and keeps how they are
            # written for scoring this file, or another like it, later
            frame[column] = values.where(~missing, None)
            continue
        if style:
            numbers, units = _read(values, style)
            other = units.notna() & ~units.isin(["", unit])  # a number in another unit
            numbers, missing = numbers.where(~other), _missing(values)
        else:
            numbers, missing = _numbers(values)
        if kind == "mostly numbers":
            for i in np.flatnonzero((~missing & numbers.isna()).to_numpy()):
                what = (
                    f"is in {units.iloc[i]}, not the column's {unit}"
                    if style and other.iloc[i]
                    else "is not a number"
                )
                reasons[i] = reasons[i] or f"column {column!r}: {values.iloc[i]!r} {what}"
        frame[column] = numbers
        gaps.append(np.asarray(missing))
    if lone and len(frame):  # its reason before any other of its one value
        held = ~np.column_stack(gaps)
        for i in np.flatnonzero(held.sum(axis=1) == 1):
            j = int(np.argmax(held[i]))
            value = given[j].iloc[i].strip()
            reasons[i] = f"only {frame.columns[j]!r} holds a value ({value!r}): a title, a note or a footer?"
    return frame, reasons


def _text_columns(frame: pd.DataFrame) -> list:
    """The columns of a table read from a typed file (Parquet) that hold text, and nothing else."""
    return [
        c
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.StringDtype)
        or (
            frame[c].dtype == object
            and frame[c].map(lambda v: v is None or isinstance(v, str) or v != v).all()
        )
    ]


def _text_strings(frame: pd.DataFrame, columns) -> pd.DataFrame:
    """The text ``columns`` of a table read from a typed file (Parquet) as strings, "" for a gap."""
    return frame[list(columns)].fillna("").astype(str)


def _typed_text(
    frame: pd.DataFrame,
    columns,
    kinds: list[ColumnKind] | None = None,
    label_column: str | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """A table read from a typed file (Parquet) with its text ``columns`` typed as a CSV file's
    columns are (numbers as text, formatted or with decimal commas, become numbers) by their
    ``kinds`` (:meth:`_ColumnCounts.kinds`; None: from these rows), and per row a reason when a
    text value, or a number in another unit, sits in a column of numbers, or a slip in a column of
    text (:func:`_typed`)."""
    if not len(columns):
        return frame, [""] * len(frame)
    strings = _text_strings(frame, columns)
    if kinds is None:
        kinds = _ColumnCounts.of(strings, True).kinds(list(columns), label_column)
    typed, reasons = _typed(strings, kinds)
    frame = frame.copy()
    for c in columns:
        frame[c] = typed[c].to_numpy()
    return frame, reasons


def _typed_frame(records: CsvRecords, label_column: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The parsed records as a DataFrame with pandas' usual types, and per record a reason when one
    of its values is one its column cannot hold, or when it holds one value alone (:func:`_typed`)."""
    counts = _ColumnCounts.of(records.strings, records.dialect.delimiter != ",")
    kinds = counts.kinds(records.columns, label_column)
    return _typed(records.strings.copy(), kinds, counts.lone_is_rare())


# -- the pipeline ---------------------------------------------------------------------------------


class _Renamed(logging.Filter):
    """Log records about the table ``X`` told of the file ``source`` instead (see :func:`_told_of`),
    each once: the detector reads the table several times (to learn, to score, to explain)."""

    def __init__(self, source: Path):
        super().__init__()
        self.source = source
        self.told: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("X: "):
            message = f"{self.source}: {message.removeprefix('X: ')}"
            record.msg, record.args = message, None
        if message in self.told:
            return False
        self.told.add(message)
        return True


@contextmanager
def _told_of(source: Path) -> Iterator[None]:
    """Errors and log records about the table a detector is given (``X`` to it: the name of the
    argument) told of the file ``source`` instead."""
    renamed, tabular = _Renamed(source), logging.getLogger("vaekit.tabular")
    tabular.addFilter(renamed)
    try:
        yield
    except DataError as exc:
        if not str(exc).startswith("X: "):
            raise
        raise DataError(f"{source}: {str(exc).removeprefix('X: ')}") from None
    finally:
        tabular.removeFilter(renamed)


def clean(
    input: str | os.PathLike,
    output: str | os.PathLike,
    *,
    model: str | os.PathLike | None = None,
    contamination: float | str = "auto",
    label_column: str | None = None,
    drop_duplicates: bool = False,
    copy: bool = False,
    random_state: int = 0,
    verbose: int = 1,
    memory_budget: int | None = None,
    orientation: bool | str = "auto",
    framing: bool | str = "auto",
    sharpness: bool | str = "auto",
    garbage_classifier: bool = True,
    bend_long_tails: bool = True,
    encoding: str | None = None,
) -> CleanResult:
    """Find the garbage in ``input`` (a CSV or Parquet file, or a folder of images) and write
    ``clean.<ext>``, ``garbage.<ext>``, ``scores.csv``, ``model/`` and ``report.html`` into the
    folder ``output``.

    ``model``: a detector saved earlier (``vaekit train --model auto``) instead of training one on
    the input; its threshold is kept unless ``contamination`` is given as a fraction.
    ``label_column``: a known 0/1 column (1 = garbage) used only for the report's metrics.
    ``copy``: for an image folder, also copy the files into ``clean/`` and ``garbage/``.
    ``orientation``, ``framing``, ``sharpness``: of :class:`vaekit.AnomalyDetector`; False when
    turned images, images framed any way (close-ups, crops), or images of any sharpness (blown up
    from small ones, blurred) are fine. ``garbage_classifier``: of :class:`vaekit.AnomalyDetector`,
    for tables: on unless False (a classifier of copies of the rows spoilt the ways pipelines spoil
    data: on the garbage benchmark's tables, recall at 2% of good rows removed 0.720 -> 0.739).
    ``bend_long_tails``: of :class:`vaekit.AnomalyDetector`, for tables: on unless False (the
    largest values of an amount spread over several powers of ten are not garbage).
    ``memory_budget`` (bytes, default 1 GiB): a CSV or Parquet file larger than this is read in
    batches, its detector trained on a sample (see ``_StreamingParquetJob`` and ``_StreamingCsvJob``).
    ``encoding``: a CSV file's text encoding (None: UTF-8, or cp1252 when its first 4 MiB say so,
    as Windows programs write it: :func:`vaekit.io.sniff_encoding`); the garbage file is written
    in it too.
    """
    started = time.perf_counter()
    source = Path(input)
    out = Path(output)
    if not source.exists():
        raise DataError(f"{source}: no such file or folder; check the path")
    if out.resolve() == source.resolve() or (source.is_dir() and source.resolve() in out.resolve().parents):
        raise ParameterError(f"{out}: the output folder must not be the input or lie inside it")
    if out.exists() and not out.is_dir():
        raise ParameterError(f"{out}: exists and is not a folder; choose a folder for the outputs")
    if source.is_dir():
        job = _ImageJob(source, label_column)
    else:
        kind = TABLE_KINDS.get(_suffix(source))
        if kind is None:
            raise DataError(
                f"{source}: vaekit clean reads CSV files (gzipped too: .csv.gz), Parquet files and "
                f"folders of images, not {_own_suffix(source) or 'files without an extension'}"
            )
        from vaekit.scoring import DEFAULT_MEMORY_BUDGET, batch_rows

        try:
            rows = batch_rows(source, memory_budget or DEFAULT_MEMORY_BUDGET)
        except Exception:  # not readable: the in-memory reader says so clearly
            rows = None
        if rows is not None:
            streamed = _StreamingParquetJob if kind == "parquet" else _StreamingCsvJob
            job = streamed(source, label_column, drop_duplicates, rows)
        else:
            job = _TableJob(source, kind, label_column, drop_duplicates)
        job.encoding = encoding
    job.read()
    image_signs = dict(orientation=orientation, framing=framing, sharpness=sharpness)
    settings = dict(
        random_state=random_state,
        verbose=verbose,
        garbage_classifier=garbage_classifier,
        bend_long_tails=bend_long_tails,
        **image_signs,
    )
    with _told_of(source):  # the detector is given the table again to explain rows and to report
        detector = job.detect(model, contamination, settings)
        out.mkdir(parents=True, exist_ok=True)
        result = job.write(out, detector, copy)
        if model is None:
            detector.save(out / "model")
            result.outputs["model"] = out / "model"
        job.report(out / "report.html", detector, result, time.perf_counter() - started)
    result.outputs["report"] = out / "report.html"
    return result


class _Job:
    """What the table and image jobs share: scoring, the threshold, the split and the report."""

    label_column: str | None
    ids: list[str]  # a name for each scored row
    encoding: str | None = None  # a CSV file's text encoding (None: sniffed)

    def features(self):
        raise NotImplementedError

    def detect(self, model, contamination, settings: dict):
        X = self.features()
        detector = self._detector(X, model, contamination, settings)
        if model is not None or detector.garbage_ is not None:
            # as a file too large for memory is scored, batch by batch: the garbage classifier's
            # training scores (decision_scores_) come from the member that did not learn from a row
            self.scores = detector.decision_function(X)
        else:
            self.scores = detector.decision_scores_
        self.flagged = self.scores > self.threshold
        return detector

    def _detector(self, X, model, contamination, settings: dict):
        """The detector trained on ``X`` (or loaded from ``model``), with its threshold and the
        rule that set it (``self.threshold``, ``self.rule``)."""
        from vaekit.detectors import AnomalyDetector, BaseDetector
        from vaekit.persistence import load

        if len(X) < 2:
            raise DataError(f"{self.source}: only {len(X)} row can be read and scored; a detector needs more")
        if model is not None:
            detector = load(model)
            if not isinstance(detector, BaseDetector):
                raise ParameterError(
                    f"{model}: is a {type(detector).__name__}, not a detector; train one with "
                    "'vaekit train DATA -o MODEL --model auto'"
                )
            if contamination != "auto":
                detector.set_threshold(X, contamination)
                self.rule = f"the {contamination:.2%} highest scores (contamination={contamination})"
            else:
                self.rule = f"the threshold of the model {model}"
        else:
            detector = AnomalyDetector(contamination=contamination, **settings)
            detector.fit(X)
            if contamination == "auto":
                self.rule = f"contamination='auto': {detector.auto_rule}"
            else:
                self.rule = f"the {contamination:.2%} highest scores (contamination={contamination})"
        self.threshold = float(detector.threshold_)
        return detector

    def _write_report(self, path: Path, detector, result: CleanResult, seconds: float, **fields) -> None:
        """The report at ``path``: what every job reports, and the job's own ``fields``."""
        from vaekit.report import CleanReport, write_report

        common = dict(
            title=f"vaekit clean: {self.source.name}",
            input_path=str(self.source),
            n_rows=result.n_rows,
            n_kept=result.n_kept,
            n_garbage=result.n_garbage,
            n_unparseable=result.n_unparseable,
            n_flagged=result.n_flagged,
            n_duplicates=result.n_duplicates,
            threshold=self.threshold,
            threshold_rule=self.rule,
            detector=_describe(detector),
            seconds=seconds,
            scores=self.scores,
            flagged=self.flagged,
            history=_history(detector),
            outputs={name: os.path.relpath(p, path.parent) for name, p in result.outputs.items()},
        )
        write_report(path, CleanReport(**common, **fields))

    def _check_label_column(self) -> None:
        if self.label_column is not None and self.label_column not in self.columns:
            raise DataError(
                f"{self.source}: --label-column {self.label_column!r} is not a column; the columns are "
                f"{self.columns}"
            )

    def _why_shown(self, detector, X, shown: np.ndarray | None = None) -> dict[int, str]:
        """What set the score of each flagged row among the most anomalous ones that the report
        shows, by its place among the scored rows; ``X``: the features of the shown rows (of
        every scored row when ``shown`` is None)."""
        from vaekit.report import N_THUMBNAILS

        top = extreme_places(np.asarray(self.scores), max(N_SHOWN, N_THUMBNAILS), highest=True)
        top = top[self.flagged[top]]
        if not len(top):
            return {}
        at = top if shown is None else np.searchsorted(shown, top)
        rows = X.iloc[at] if isinstance(X, pd.DataFrame) else X[at]
        return dict(zip(top.tolist(), detector.why(rows), strict=True))

    def _shaded_shares(self, detector, X, shown: np.ndarray) -> np.ndarray:
        """The columns' shares of the score (``feature_scores``) of the rows the report shades, the
        most anomalous, and zero for the other shown rows, whose features are ``X`` (``shown``:
        their places among the scored rows)."""
        most = np.searchsorted(shown, extreme_places(np.asarray(self.scores), N_SHOWN, highest=True))
        shares = np.zeros((len(X), len(detector.feature_names)))
        shares[most] = detector.feature_scores(X.iloc[most])
        return shares

    def _write_table_report(
        self, path: Path, detector, result: CleanResult, seconds: float, X, **fields
    ) -> None:
        """:meth:`_write_report` for a table whose shown rows' features are ``X``."""
        self._write_report(
            path,
            detector,
            result,
            seconds,
            why=self._why_shown(detector, X, fields.get("shown")),
            kind="table",
            duplicates_dropped=self.drop_duplicates,
            share_columns=list(detector.feature_names),
            latent=_latent(detector, X),
            images=None,
            reconstructions=None,
            labels=self._known(),
            dropped_columns=dict(getattr(detector, "dropped_columns_", {}) or {}),
            **fields,
        )

    def _ranks(self) -> np.ndarray:
        """1 = the most anomalous scored row; equal scores share the better rank."""
        return ranks_among(self.scores, np.sort(self.scores))

    def _known(self) -> np.ndarray | None:
        """The 0/1 labels of the scored rows (``--label-column``), or None."""
        return None

    def _result(self, garbage: np.ndarray, outputs: dict, n_dropped: int, n_duplicates: int) -> CleanResult:
        """The counts of a finished run: every row once, kept or garbage (and why)."""
        n_flagged = int(self.flagged.sum())
        return CleanResult(
            n_rows=len(garbage),
            n_kept=int((~garbage).sum()),
            n_garbage=int(garbage.sum()),
            n_unparseable=int(garbage.sum()) - n_flagged - n_dropped,
            n_flagged=n_flagged,
            n_duplicates=n_duplicates,
            threshold=self.threshold,
            threshold_rule=self.rule,
            outputs=outputs,
            metrics=self._metrics(self._known()),
        )

    def _metrics(self, known: np.ndarray | None) -> dict[str, float]:
        if known is None or len(np.unique(known)) < 2:
            return {}
        from sklearn.metrics import average_precision_score, roc_auc_score

        flagged = self.flagged
        hits = int((flagged & (known == 1)).sum())
        return {
            "auroc": float(roc_auc_score(known, self.scores)),
            "auprc": float(average_precision_score(known, self.scores)),
            "recall": hits / max(int((known == 1).sum()), 1),
            "precision": hits / max(int(flagged.sum()), 1),
        }


class _TableJob(_Job):
    def __init__(self, source: Path, kind: str, label_column: str | None, drop_duplicates: bool):
        self.source, self.kind, self.label_column = source, kind, label_column
        self.drop_duplicates = drop_duplicates

    def read(self) -> None:
        if self.kind == "csv":
            self.records = read_csv_records(self.source, self.encoding)
            self.columns = self.records.columns
            wrong = _field_counts(self.records.reasons, len(self.columns))
            _check_field_counts(self.source, wrong, len(self.records.raw), len(self.columns))
            _tell_of_undecodable(self.source, _undecodable(self.records.reasons), self.records.dialect)
            frame, value_reasons = _typed_frame(self.records, self.label_column)
            parsed = self.records.strings.index.tolist()
            self.n_rows = len(self.records.raw)
            self.reasons = list(self.records.reasons)
            for i, reason in zip(parsed, value_reasons, strict=True):
                self.reasons[i] = reason
            self.keys = [None] * self.n_rows
            for i, key in zip(parsed, self.records.strings.itertuples(index=False, name=None), strict=True):
                self.keys[i] = key
            self.where = [f"row {i + 1} (line {line})" for i, line in enumerate(self.records.lines)]
        else:
            import pyarrow.parquet as pq

            try:
                self.arrow = pq.read_table(self.source)
            except Exception as exc:
                raise DataError(
                    f"{self.source}: not a readable Parquet file ({type(exc).__name__})"
                ) from None
            frame = self.arrow.to_pandas()
            parsed = list(range(len(frame)))
            self.columns = list(frame.columns)
            self.n_rows = len(frame)
            self.keys = list(frame.astype(str).itertuples(index=False, name=None))
            frame, self.reasons = _typed_text(frame, _text_columns(frame), label_column=self.label_column)
            self.where = [f"row {i + 1}" for i in range(self.n_rows)]
        if self.n_rows == 0:
            raise DataError(f"{self.source}: has a header but no rows; give a file with rows of data")
        self._check_label_column()
        frame.index = parsed
        self.frame = frame
        self.first_seen: dict[tuple, int] = {}
        self.duplicate_of: dict[int, int] = {}
        self.dropped: set[int] = set()
        for i, key in enumerate(self.keys):
            if key is None:
                continue
            if key in self.first_seen:
                self.duplicate_of[i] = self.first_seen[key]
                if self.drop_duplicates and not self.reasons[i]:
                    self.reasons[i] = f"an exact duplicate of {self.where[self.first_seen[key]]}"
                    self.dropped.add(i)
            else:
                self.first_seen[key] = i
        self.scored = np.array([i for i in parsed if not self.reasons[i]], dtype=np.int64)
        self.ids = [self.where[i] for i in self.scored]

    def features(self) -> pd.DataFrame:
        frame = self.frame.loc[self.scored]
        if self.label_column is not None:
            frame = frame.drop(columns=[self.label_column])
        return frame.reset_index(drop=True)

    def _known(self) -> np.ndarray | None:
        if self.label_column is None:
            return None
        values = pd.to_numeric(self.frame.loc[self.scored, self.label_column], errors="coerce")
        if values.isna().any() or not values.isin([0, 1]).all():
            raise DataError(
                f"{self.source}: --label-column {self.label_column!r} must hold 0 (clean) or 1 "
                "(garbage) in every scored row"
            )
        return values.to_numpy().astype(int)

    def write(self, out: Path, detector, copy: bool) -> CleanResult:
        X = self.features()
        # the counterfactual passes, the costly part of explaining a row, for the rows explained:
        # the garbage (its top columns) and the most anomalous (shaded in the report), as in batches
        explained = self.flagged.copy()
        explained[extreme_places(np.asarray(self.scores), N_SHOWN, highest=True)] = True
        self.shares = np.zeros((len(X), len(detector.feature_names)))
        if explained.any():
            self.shares[explained] = detector.feature_scores(X.loc[explained])
        names, shares = detector._top_of(self.shares, 3)
        ranks = self._ranks()
        garbage = np.array([bool(r) for r in self.reasons])
        score = np.full(self.n_rows, np.nan)
        rank = np.zeros(self.n_rows, dtype=np.int64)
        top = [""] * self.n_rows
        score[self.scored], rank[self.scored] = self.scores, ranks
        why = iter(_flag_reasons(detector, X.loc[self.flagged], self.scores[self.flagged], self.threshold))
        for j, i in enumerate(self.scored):
            if self.flagged[j]:
                top[i] = ", ".join(f"{n} ({s:.0%})" for n, s in zip(names[j], shares[j], strict=True))
                garbage[i] = True
                self.reasons[i] = next(why)
        self.garbage = garbage
        # the input's own: .csv, .tsv, .csv.gz; .parquet for .pq too
        ext = _own_suffix(self.source) if self.kind == "csv" else ".parquet"
        outputs = {
            "clean": out / f"clean{ext}",
            "garbage": out / f"garbage{ext}",
            "scores": out / "scores.csv",
        }
        extra = pd.DataFrame(
            {
                "vaekit_row": np.arange(1, self.n_rows + 1),
                "vaekit_score": score,
                "vaekit_rank": rank,
                "vaekit_reason": self.reasons,
                "vaekit_top_columns": top,
            }
        )
        if self.kind == "csv":
            self._write_csv(outputs, extra)
        else:
            self._write_parquet(outputs, extra)
        scores = extra.rename(columns=lambda c: c.removeprefix("vaekit_"))
        scores.insert(1, "garbage", garbage.astype(int))
        if self.kind == "csv":
            scores.insert(1, "line", self.records.lines)
        with atomic_path(outputs["scores"]) as tmp:
            scores.to_csv(tmp, index=False)
        return self._result(garbage, outputs, len(self.dropped), len(self.duplicate_of))

    def _write_csv(self, outputs: dict[str, Path], extra: pd.DataFrame) -> None:
        records = self.records
        compress = gzipped(self.source)
        with atomic_path(outputs["clean"]) as tmp, open_output(tmp, compress) as f:
            f.write(records.header)
            for raw, bad in zip(records.raw, self.garbage, strict=True):
                if not bad:
                    f.write(raw if raw.endswith((b"\n", b"\r")) else raw + b"\n")
        with (
            atomic_path(outputs["garbage"]) as tmp,
            open_output(tmp, compress, _encoding_of(records.dialect)) as f,
        ):
            f.write(_excel_hint(records.header, records.dialect))
            writer = csv.writer(f, records.dialect, lineterminator="\n")
            writer.writerow([*_header_fields(records.header, records.dialect), *extra.columns, "vaekit_raw"])
            garbage = np.flatnonzero(self.garbage)
            fields = _fields_of(records.strings, garbage)
            for i in garbage:
                values = fields.get(i)
                raw = (
                    ""
                    if values is not None
                    else records.raw[i]
                    .decode(_encoding_of(records.dialect), "backslashreplace")
                    .rstrip("\r\n")
                )
                writer.writerow([*(values or [""] * len(records.columns)), *extra.iloc[i].tolist(), raw])

    def _write_parquet(self, outputs: dict[str, Path], extra: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        kept = np.flatnonzero(~self.garbage)
        bad = np.flatnonzero(self.garbage)
        with atomic_path(outputs["clean"]) as tmp:
            pq.write_table(self.arrow.take(pa.array(kept)), tmp)
        garbage = self.arrow.take(pa.array(bad))
        for column in extra.columns:
            garbage = garbage.append_column(column, pa.array(extra[column].to_numpy()[bad]))
        with atomic_path(outputs["garbage"]) as tmp:
            pq.write_table(garbage, tmp)

    def report(self, path: Path, detector, result: CleanResult, seconds: float) -> None:

        X = self.features()
        table = self._as_written(self.scored)
        scored = set(self.scored.tolist())
        unparseable = [
            (self.where[i], self.reasons[i])
            for i in range(self.n_rows)
            if self.reasons[i] and i not in scored and i not in self.dropped
        ]
        duplicates = [(self.where[i], f"same as {self.where[j]}") for i, j in self.duplicate_of.items()]
        self._write_table_report(
            path,
            detector,
            result,
            seconds,
            X,
            row_ids=self.ids,
            table=table,
            shares=self.shares,
            unparseable=unparseable,
            duplicates=duplicates,
        )

    def _as_written(self, rows: np.ndarray) -> pd.DataFrame:
        """The ``rows`` (places in the file) as the file holds them, for the report to show: a
        CSV file's fields as written ($1,234.50, not 1234.5), a Parquet file's values."""
        if self.kind == "csv":
            return self.records.strings.loc[rows].reset_index(drop=True)
        import pyarrow as pa

        return self.arrow.take(pa.array(rows, type=pa.int64())).to_pandas()


class _StreamingParquetJob(_Job):
    """A Parquet file larger than the memory budget, read in record batches.

    The detector learns from a uniform sample of ``SAMPLE_ROWS`` rows, and the threshold comes
    from the sample's scores. Every row is then scored batch by batch (keeping 8 bytes per row
    for its score and, until duplicates are found, its 64-bit hash), and a second pass writes
    the outputs batch by batch. Unlike the in-memory path, only garbage rows get their top
    contributing columns, and the report shows the most anomalous and typical rows and a sample.
    """

    text: tuple[str, ...] = ()  # text columns, typed as a CSV file's are (a CSV file's batches: none)

    def __init__(self, source: Path, label_column: str | None, drop_duplicates: bool, rows: int):
        self.source, self.kind, self.label_column = source, "parquet", label_column
        self.drop_duplicates, self.rows = drop_duplicates, rows

    def _batches(self):
        from vaekit.scoring import iter_table

        return iter_table(self.source, self.rows)

    def read(self) -> None:
        import pyarrow.parquet as pq

        from vaekit.scoring import sample_table

        try:
            self.schema = pq.ParquetFile(self.source).schema_arrow
            self.n_rows = pq.ParquetFile(self.source).metadata.num_rows
        except Exception as exc:
            raise DataError(f"{self.source}: not a readable Parquet file ({type(exc).__name__})") from None
        self.columns = list(self.schema.names)
        if self.n_rows == 0:
            raise DataError(f"{self.source}: has a header but no rows; give a file with rows of data")
        self._check_label_column()
        import pyarrow as pa

        # text columns are typed as a CSV file's columns are, from all of their cells
        self.text = tuple(
            f.name for f in self.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        )
        counts = []
        # one pass: a uniform sample, every row's hash, kept in a temporary file (8 bytes a row
        # on disk), for the exact duplicates, and what the text columns hold
        with tempfile.TemporaryFile() as hashes:

            def hash_rows(frame: pd.DataFrame) -> None:
                pd.util.hash_pandas_object(frame, index=False).to_numpy().tofile(hashes)
                if self.text:
                    counts.append(_ColumnCounts.of(_text_strings(frame, self.text), True))

            sample = sample_table(self.source, SAMPLE_ROWS, self.rows, each=hash_rows)
            hashes.flush()
            self.repeats, self.first_of = _repeats(_from_file(hashes))  # few: two short lists
        self.kinds = (
            functools.reduce(operator.add, counts).kinds(self.text, self.label_column) if counts else []
        )
        sample, reasons = self._typed(sample)
        sample = sample[~reasons.astype(bool)]  # rows with text among numbers are not learnt from
        if self.drop_duplicates:  # dropped rows are not scored: not learnt from either
            sample = sample[~np.isin(sample.index, self.repeats)]
        self.sample = sample

    def _typed(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """A batch of rows with its text columns typed (:func:`_typed`), and each row's reason
        ("" for none) when a text value, or a number in another unit, sits in a column of numbers."""
        frame, reasons = _typed_text(frame, self.text, self.kinds)
        return frame, np.array(reasons, dtype=object)

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=[self.label_column]) if self.label_column is not None else frame

    def features(self) -> pd.DataFrame:
        return self._features(self.sample)

    def detect(self, model, contamination, settings: dict):
        detector = self._detector(self.features(), model, contamination, settings)  # scored below
        if len(self.sample) < self.n_rows:
            self.rule += f"; set on a uniform sample of {len(self.sample):,} of the {self.n_rows:,} rows"
        # filled in place, no lists of parts to join: scores in float32 (the models' precision)
        scores = np.empty(self.n_rows, dtype=np.float32)
        known = np.empty(self.n_rows, dtype=np.float32) if self.label_column is not None else None
        self.unreadable: dict[int, str] = {}  # rows with text among numbers, and why (few, usually)
        for frame in self._batches():
            rows = slice(frame.index[0], frame.index[0] + len(frame))
            frame, reasons = self._typed(frame)
            self.unreadable.update(
                (rows.start + int(j), reasons[j]) for j in np.flatnonzero(reasons.astype(bool))
            )
            scores[rows] = detector.decision_function(self._features(frame))
            if known is not None:
                known[rows] = pd.to_numeric(frame[self.label_column], errors="coerce").to_numpy()
        self.n_duplicates = len(self.repeats)
        self.dropped = np.zeros(self.n_rows, dtype=bool)
        if self.drop_duplicates:
            self.dropped[self.repeats] = True
        unscored = self.dropped.copy()
        unscored[list(self.unreadable)] = True
        self.scored = np.flatnonzero(~unscored) if unscored.any() else None  # None: every row
        self.scores = scores if self.scored is None else scores[self.scored]
        self.flagged = self.scores > self.threshold
        self.known = known
        if self.known is not None and self.scored is not None:
            self.known = self.known[self.scored]
        return detector

    def _file_rows(self, places: np.ndarray) -> np.ndarray:
        """The file rows of places in ``self.scores``."""
        return places if self.scored is None else self.scored[places]

    def _unparseable_listed(self) -> list[tuple[str, str]]:
        return [
            (f"row {i + 1}", why) for i, why in sorted(self.unreadable.items())[: _StreamingCsvJob.MAX_LISTED]
        ]

    def _known(self) -> np.ndarray | None:
        if self.known is None:
            return None
        if np.isnan(self.known).any() or not np.isin(self.known, [0, 1]).all():
            raise DataError(
                f"{self.source}: --label-column {self.label_column!r} must hold 0 (clean) or 1 "
                "(garbage) in every scored row"
            )
        return self.known.astype(int)

    def write(self, out: Path, detector, copy: bool) -> CleanResult:
        import pyarrow as pa
        import pyarrow.parquet as pq

        n = self.n_rows
        ordered = np.sort(self.scores)  # each batch's ranks come from it: no array of ranks
        if self.scored is None:  # every row scored: no copy
            score = self.scores
        else:
            score = np.full(n, np.nan, dtype=self.scores.dtype)
            score[self.scored] = self.scores
        garbage = self.dropped.copy()
        garbage[self._file_rows(np.flatnonzero(self.flagged))] = True
        garbage[list(self.unreadable)] = True
        self.garbage = garbage
        first_of = dict(zip(self.repeats.tolist(), self.first_of.tolist(), strict=True))
        outputs = {
            "clean": out / "clean.parquet",
            "garbage": out / "garbage.parquet",
            "scores": out / "scores.csv",
        }
        extra_schema = [
            ("vaekit_row", pa.int64()),
            ("vaekit_score", pa.float64()),
            ("vaekit_rank", pa.int64()),
            ("vaekit_reason", pa.string()),
            ("vaekit_top_columns", pa.string()),
        ]
        garbage_schema = pa.schema([*self.schema, *(pa.field(k, t) for k, t in extra_schema)])
        self.shown = self._shown()
        shown_frames = []
        with (
            atomic_path(outputs["clean"]) as clean_tmp,
            atomic_path(outputs["garbage"]) as garbage_tmp,
            atomic_path(outputs["scores"]) as scores_tmp,
            pq.ParquetWriter(clean_tmp, self.schema) as clean_writer,
            pq.ParquetWriter(garbage_tmp, garbage_schema) as garbage_writer,
            open(scores_tmp, "w", newline="", encoding="utf-8") as scores_file,
        ):
            for frame in self._batches():
                rows = np.asarray(frame.index)
                table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
                bad = garbage[rows]
                clean_writer.write_table(table.filter(pa.array(~bad)))
                reasons = np.full(len(rows), "", dtype=object)
                top = np.full(len(rows), "", dtype=object)
                flagged = bad & ~self.dropped[rows]
                for j in np.flatnonzero(self.dropped[rows]):
                    reasons[j] = f"an exact duplicate of row {first_of[int(rows[j])] + 1}"
                for j in np.flatnonzero(np.isin(rows, list(self.unreadable))):
                    reasons[j], flagged[j] = self.unreadable[int(rows[j])], False
                if flagged.any():
                    features = self._features(self._typed(frame[flagged])[0])
                    reasons[flagged] = _flag_reasons(detector, features, score[rows[flagged]], self.threshold)
                    names, shares = detector.top_features(features, n=3)
                    top[flagged] = [
                        ", ".join(f"{c} ({v:.0%})" for c, v in zip(nm, sh, strict=True))
                        for nm, sh in zip(names, shares, strict=True)
                    ]
                extra = pd.DataFrame(
                    {
                        "vaekit_row": rows + 1,
                        "vaekit_score": score[rows].astype(np.float64),
                        "vaekit_rank": ranks_among(score[rows], ordered),
                        "vaekit_reason": reasons,
                        "vaekit_top_columns": top,
                    }
                )
                if bad.any():
                    bad_part = table.filter(pa.array(bad))
                    for name, kind in extra_schema:
                        bad_part = bad_part.append_column(name, pa.array(extra[name].to_numpy()[bad], kind))
                    garbage_writer.write_table(bad_part)
                scores = extra.rename(columns=lambda c: c.removeprefix("vaekit_"))
                scores.insert(1, "garbage", bad.astype(int))
                scores.to_csv(scores_file, header=rows[0] == 0, index=False)
                wanted = np.isin(rows, self.shown)
                if wanted.any():
                    shown_frames.append(frame[wanted])
        self.shown_table = self.shown_written = pd.concat(shown_frames)
        return self._result(garbage, outputs, int(self.dropped.sum()), self.n_duplicates)

    def _shown(self) -> np.ndarray:
        """File rows the report shows: the most anomalous, the most typical, and a sample."""
        from vaekit.report import MAX_POINTS, N_TYPICAL

        rng = np.random.default_rng(0)
        sample = rng.choice(len(self.scores), min(MAX_POINTS, len(self.scores)), replace=False)
        most = extreme_places(self.scores, N_SHOWN, highest=True)
        least = extreme_places(self.scores, N_TYPICAL, highest=False)
        picked = np.union1d(np.union1d(most, least), sample)
        return self._file_rows(picked)

    def report(self, path: Path, detector, result: CleanResult, seconds: float) -> None:

        table = self.shown_written.loc[self.shown]  # as the file holds them
        X = self._features(self._typed(self.shown_table.loc[self.shown])[0])
        shown = self.shown if self.scored is None else np.searchsorted(self.scored, self.shown)
        duplicates = [
            (f"row {i + 1}", f"same as row {j + 1}")
            for i, j in zip(self.repeats[:200].tolist(), self.first_of[:200].tolist(), strict=True)
        ]
        self._write_table_report(
            path,
            detector,
            result,
            seconds,
            X,
            row_ids=[f"row {i + 1}" for i in self.shown],
            table=table.reset_index(drop=True),
            shares=self._shaded_shares(detector, X, shown),
            unparseable=self._unparseable_listed(),
            duplicates=duplicates,
            shown=shown,
        )


@dataclass
class _CsvChunk:
    """Consecutive records of a CSV file: their bytes, lines and parse, and the typed frame of
    the records that parse (indexed by their places among the file's records)."""

    places: np.ndarray
    raw: list[bytes]
    lines: list[int]
    strings: pd.DataFrame  # the fields of the records that parse, indexed by their places in raw
    reasons: list[str]
    frame: pd.DataFrame | None = None


class _StreamingCsvJob(_StreamingParquetJob):
    """A CSV file larger than the memory budget, read ``rows`` records at a time.

    A first pass counts the records, decides each column's kind from all of its cells (as the
    in-memory path does) and keeps a uniform sample of the records that parse; the detector
    learns from the sample. A second pass scores every record; a third writes ``clean.csv``
    (each kept record byte for byte), ``garbage.csv`` (with the reason of each record and, for
    flagged ones, the top contributing columns) and ``scores.csv``. Records that cannot be
    parsed are garbage, as in memory; the report lists the first ``MAX_LISTED`` of them.
    """

    MAX_LISTED = 1000

    def __init__(self, source: Path, label_column: str | None, drop_duplicates: bool, rows: int):
        super().__init__(source, label_column, drop_duplicates, rows)
        self.kind = "csv"

    def _chunks(self, typed: bool = True) -> Iterator[_CsvChunk]:
        records = _records(_file_lines(self.source))
        _header_records(raw for raw, _ in records)  # skipped
        place = 0
        while True:
            part = list(itertools.islice(records, self.rows))
            if not part:
                return
            raw = [raw for raw, _ in part]
            strings, reasons = _parse_chunk(raw, self.columns, self.dialect)
            chunk = _CsvChunk(
                places=np.arange(place, place + len(part)),
                raw=raw,
                lines=[line for _, line in part],
                strings=strings,
                reasons=reasons,
            )
            place += len(part)
            if typed:
                ok = strings.index.to_numpy()
                frame, reasons = _typed(strings.copy(), self.kinds, self.lone)
                for i, reason in zip(ok, reasons, strict=True):
                    chunk.reasons[i] = reason
                frame.index = chunk.places[ok]
                chunk.frame = frame
            yield chunk

    def read(self) -> None:
        data_lines = _file_lines(self.source)
        records = (raw for raw, _ in _records(data_lines))
        header = _header_records(records)
        if not header.strip():
            raise DataError(f"{self.source}: the file is empty; give a CSV file with a header line and rows")
        first = list(itertools.islice(records, TRAILING_PROBE))
        data_lines.close()
        self.header = header
        with open_bytes(self.source) as f:
            encoding = file_encoding(f.read(ENCODING_SAMPLE), self.encoding, self.source)
        self.columns, self.dialect = _csv_header(header, self.source, encoding)
        _note_trailing_delimiter(self.source, first, _header_fields(header, self.dialect), self.dialect)
        self._check_label_column()
        counts, n, hashed, wrong, undecodable = None, 0, [], collections.Counter(), 0
        keys_rng = np.random.default_rng(0)
        picked = _Smallest(SAMPLE_ROWS)  # a uniform sample of the records that parse
        for chunk in self._chunks(typed=False):
            n += len(chunk.places)
            wrong += _field_counts(chunk.reasons, len(self.columns))
            undecodable += _undecodable(chunk.reasons)
            strings = chunk.strings
            if len(strings):
                ok = strings.index.to_numpy()
                part = _ColumnCounts.of(strings, self.dialect.delimiter != ",")
                counts = part if counts is None else counts + part
                hashed.append((chunk.places[ok], pd.util.hash_pandas_object(strings, index=False).to_numpy()))
                keys = keys_rng.random(len(ok))
                enter = picked.entering(keys)  # the fields of the others are never needed
                fields = strings.iloc[enter].to_numpy(dtype=object)  # (records, columns)
                picked.add(keys[enter], chunk.places[ok][enter], fields)
        self.n_rows = n
        if n == 0:
            raise DataError(f"{self.source}: has a header but no rows; give a file with rows of data")
        _check_field_counts(self.source, wrong, n, len(self.columns))
        _tell_of_undecodable(self.source, undecodable, self.dialect)
        if counts is None:
            raise DataError(
                f"{self.source}: none of its {n} records can be parsed as CSV with its header's fields"
            )
        self.kinds, self.lone = counts.kinds(self.columns, self.label_column), counts.lone_is_rare()
        # exact duplicates among the records that parse, by a 64-bit hash of their fields
        parsed = np.concatenate([p for p, _ in hashed])
        repeats, first_of = _repeats(_in_parts(np.concatenate([h for _, h in hashed])))
        self.repeats, self.first_of = parsed[repeats], parsed[first_of]
        del hashed
        _, places, fields = picked.rows()
        sample, reasons = _typed(_string_frame(fields, self.columns), self.kinds, self.lone)
        sample.index = places
        usable = np.array([not r for r in reasons], dtype=bool)
        if self.drop_duplicates:  # dropped rows are not scored: not learnt from either
            usable &= ~np.isin(places, self.repeats)
        self.sample = sample[usable]

    def detect(self, model, contamination, settings: dict):
        detector = self._detector(self.features(), model, contamination, settings)  # scored below
        if len(self.sample) < self.n_rows:
            self.rule += f"; set on a uniform sample of {len(self.sample):,} of the {self.n_rows:,} rows"
        n = self.n_rows
        scores = np.full(n, np.nan, dtype=np.float32)
        valid = np.zeros(n, dtype=bool)  # the record parses and its values fit their columns: scored
        known = np.full(n, np.nan, dtype=np.float32) if self.label_column is not None else None
        for chunk in self._chunks():
            good = np.array([not r for r in chunk.reasons])
            valid[chunk.places] = good
            frame = chunk.frame.loc[chunk.places[good]]
            if len(frame):
                scores[frame.index] = detector.decision_function(self._features(frame))
                if known is not None:
                    known[frame.index] = pd.to_numeric(frame[self.label_column], errors="coerce").to_numpy()
        self.unparseable = ~valid
        self.n_duplicates = len(self.repeats)
        self.dropped = np.zeros(n, dtype=bool)
        if self.drop_duplicates:
            self.dropped[self.repeats[valid[self.repeats]]] = True
        self.scored = np.flatnonzero(valid & ~self.dropped)
        self.scores = scores[self.scored]
        self.flagged = self.scores > self.threshold
        self.known = None if known is None else known[self.scored]
        return detector

    def write(self, out: Path, detector, copy: bool) -> CleanResult:
        n = self.n_rows
        ordered = np.sort(self.scores)  # each batch's ranks come from it: no array of ranks
        score = np.full(n, np.nan, dtype=np.float32)
        score[self.scored] = self.scores
        garbage = self.unparseable | self.dropped
        garbage[self.scored[self.flagged]] = True
        self.garbage = garbage
        first_of = dict(zip(self.repeats.tolist(), self.first_of.tolist(), strict=True))
        firsts, line_of = np.unique(self.first_of), {}
        ext = _own_suffix(self.source)  # .csv, .tsv, .txt, .csv.gz: the input's own
        outputs = {
            "clean": out / f"clean{ext}",
            "garbage": out / f"garbage{ext}",
            "scores": out / "scores.csv",
        }
        self.shown = self._shown()
        self.listed: list[tuple[str, str]] = []
        shown_frames, shown_written = [], []
        extra_columns = ["vaekit_row", "vaekit_score", "vaekit_rank", "vaekit_reason", "vaekit_top_columns"]
        with (
            atomic_path(outputs["clean"]) as clean_tmp,
            atomic_path(outputs["garbage"]) as garbage_tmp,
            atomic_path(outputs["scores"]) as scores_tmp,
            open_output(clean_tmp, gzipped(self.source)) as clean_file,
            open_output(garbage_tmp, gzipped(self.source), _encoding_of(self.dialect)) as garbage_file,
            open(scores_tmp, "w", newline="", encoding="utf-8") as scores_file,
        ):
            clean_file.write(self.header)
            garbage_file.write(_excel_hint(self.header, self.dialect))
            writer = csv.writer(garbage_file, self.dialect, lineterminator="\n")
            writer.writerow([*_header_fields(self.header, self.dialect), *extra_columns, "vaekit_raw"])
            for chunk in self._chunks():
                rows = chunk.places
                rank = ranks_among(score[rows], ordered)
                reasons = list(chunk.reasons)
                top = [""] * len(rows)
                for j in np.flatnonzero(np.isin(rows, firsts)):
                    line_of[int(rows[j])] = chunk.lines[j]  # an earlier row that a later one repeats
                for j in np.flatnonzero(self.dropped[rows]):
                    first = first_of[int(rows[j])]
                    reasons[j] = f"an exact duplicate of row {first + 1} (line {line_of[first]})"
                flagged = garbage[rows] & ~self.unparseable[rows] & ~self.dropped[rows]
                if flagged.any():
                    features = self._features(chunk.frame.loc[rows[flagged]])
                    why = _flag_reasons(detector, features, score[rows[flagged]], self.threshold)
                    for j, reason in zip(np.flatnonzero(flagged), why, strict=True):
                        reasons[j] = reason
                    names, shares = detector.top_features(features, n=3)
                    for j, nm, sh in zip(np.flatnonzero(flagged), names, shares, strict=True):
                        top[j] = ", ".join(f"{c} ({v:.0%})" for c, v in zip(nm, sh, strict=True))
                fields = _fields_of(chunk.strings, np.flatnonzero(garbage[rows]))
                for j, place in enumerate(rows):
                    raw = chunk.raw[j]
                    if not garbage[place]:
                        clean_file.write(raw if raw.endswith((b"\n", b"\r")) else raw + b"\n")
                        continue
                    values = fields.get(j)
                    text = (
                        ""
                        if values is not None
                        else raw.decode(_encoding_of(self.dialect), "backslashreplace").rstrip("\r\n")
                    )
                    extra = [place + 1, float(score[place]), rank[j], reasons[j], top[j]]
                    writer.writerow([*(values or [""] * len(self.columns)), *extra, text])
                    if self.unparseable[place] and len(self.listed) < self.MAX_LISTED:
                        self.listed.append((f"row {place + 1} (line {chunk.lines[j]})", reasons[j]))
                scores = pd.DataFrame(
                    {
                        "row": rows + 1,
                        "line": chunk.lines,
                        "garbage": garbage[rows].astype(int),
                        "score": score[rows].astype(np.float64),
                        "rank": rank,
                        "reason": [r if garbage[p] else "" for r, p in zip(reasons, rows, strict=True)],
                        "top_columns": top,
                    }
                )
                scores.to_csv(scores_file, header=rows[0] == 0, index=False)
                wanted = np.isin(chunk.frame.index, self.shown)
                if wanted.any():
                    shown_frames.append(chunk.frame[wanted])
                    written = chunk.strings.set_axis(chunk.places[chunk.strings.index])
                    shown_written.append(written.loc[chunk.frame.index[wanted]])
        self.shown_table, self.shown_written = pd.concat(shown_frames), pd.concat(shown_written)
        return self._result(garbage, outputs, int(self.dropped.sum()), self.n_duplicates)

    def _file_rows(self, places: np.ndarray) -> np.ndarray:
        return self.scored[places]

    def _unparseable_listed(self) -> list[tuple[str, str]]:
        return self.listed


def _repeats(
    read_hashes: Callable[[], Iterator[np.ndarray]], buckets: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """(rows that repeat an earlier row, the earlier row each repeats), by equal 64-bit hashes.
    ``read_hashes()`` gives the rows' hashes in row order, a part at a time; they are read once
    for each sixteenth of the range of hash values, and only that sixteenth is held and sorted."""
    later_rows, first_rows = [], []
    step = (1 << 64) // buckets
    for b in range(buckets):
        lo, hi = np.uint64(b * step), np.uint64((b + 1) * step) if b < buckets - 1 else None
        places, values, start = [], [], 0
        for part in read_hashes():
            inside = part >= lo
            if hi is not None:
                inside &= part < hi
            found = np.flatnonzero(inside)
            places.append(found + start)
            values.append(part[found])
            start += len(part)
        rows, part = np.concatenate(places), np.concatenate(values)
        order = np.argsort(part, kind="stable")  # equal hashes: the first row first
        part, rows = part[order], rows[order]
        later = np.flatnonzero(part[1:] == part[:-1]) + 1
        first_rows.append(rows[np.searchsorted(part, part[later], side="left")])
        later_rows.append(rows[later])
    rows, first = np.concatenate(later_rows), np.concatenate(first_rows)
    keep = np.argsort(rows)
    return rows[keep], first[keep]


def _flag_reasons(detector, X, scores: np.ndarray, threshold: float) -> list[str]:
    """Why each of these flagged rows is garbage: its score above the threshold and, from the
    detector, in words, what set the score."""
    why = detector.why(X) if len(scores) else []
    return [
        f"score {s:.4g} above the threshold {threshold:.4g}" + (f": {w}" if w else "")
        for s, w in zip(scores, why, strict=True)
    ]


def _in_parts(array: np.ndarray, size: int = 1 << 20) -> Callable[[], Iterator[np.ndarray]]:
    return lambda: (array[i : i + size] for i in range(0, len(array), size))


def _from_file(file, size: int = 1 << 20) -> Callable[[], Iterator[np.ndarray]]:
    """Reads the uint64 values written to ``file``, from its start, ``size`` at a time."""

    def read() -> Iterator[np.ndarray]:
        file.seek(0)
        while len(part := np.fromfile(file, dtype=np.uint64, count=size)):
            yield part

    return read


class _ImageJob(_Job):
    def __init__(self, source: Path, label_column: str | None):
        if label_column is not None:
            raise ParameterError("--label-column is for tables; an image folder has no columns")
        self.source, self.label_column = source, None

    def read(self) -> None:
        from vaekit.images import IMAGE_SUFFIXES

        files = sorted(
            p
            for p in self.source.rglob("*")
            if p.is_file()
            and p.suffix.lower() in IMAGE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(self.source).parts)
        )
        if not files:
            raise DataError(
                f"{self.source}: holds no image files ({', '.join(IMAGE_SUFFIXES)}); check the path"
            )
        self.files = files
        self.n_rows = len(files)
        data = load_images_flat(files, self.source)
        self.images = data.images
        opened = {Path(f) for f in data.files}
        self.reasons = [
            "" if f in opened else data.reasons.get(str(f), "does not open as an image") for f in files
        ]
        self.scored = np.array([i for i, f in enumerate(files) if f in opened], dtype=np.int64)
        self.ids = [str(files[i].relative_to(self.source)) for i in self.scored]

    def features(self) -> np.ndarray:
        return self.images

    def write(self, out: Path, detector, copy: bool) -> CleanResult:
        ranks = self._ranks()
        garbage = np.array([bool(r) for r in self.reasons])
        score = np.full(self.n_rows, np.nan)
        rank = np.zeros(self.n_rows, dtype=np.int64)
        score[self.scored], rank[self.scored] = self.scores, ranks
        why = iter(
            _flag_reasons(detector, self.images[self.flagged], self.scores[self.flagged], self.threshold)
        )
        for j, i in enumerate(self.scored):
            if self.flagged[j]:
                garbage[i] = True
                self.reasons[i] = next(why)
        self.garbage = garbage
        table = pd.DataFrame(
            {
                "file": [str(f.relative_to(self.source)) for f in self.files],
                "garbage": garbage.astype(int),
                "score": score,
                "rank": rank,
                "reason": self.reasons,
            }
        )
        outputs = {"clean": out / "clean.csv", "garbage": out / "garbage.csv", "scores": out / "scores.csv"}
        for name, rows in (
            ("clean", table[~garbage][["file"]]),
            ("garbage", table[garbage]),
            ("scores", table),
        ):
            with atomic_path(outputs[name]) as tmp:
                rows.to_csv(tmp, index=False)
        if copy:
            for i, file in enumerate(self.files):
                target = out / ("garbage" if garbage[i] else "clean") / file.relative_to(self.source)
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(target) as tmp:
                    shutil.copy2(file, tmp)
            outputs["clean_copies"], outputs["garbage_copies"] = out / "clean", out / "garbage"
        return self._result(garbage, outputs, 0, 0)

    def report(self, path: Path, detector, result: CleanResult, seconds: float) -> None:

        scored = set(self.scored.tolist())
        unparseable = [
            (str(f.relative_to(self.source)), r)
            for i, (f, r) in enumerate(zip(self.files, self.reasons, strict=True))
            if r and i not in scored
        ]
        self._write_report(
            path,
            detector,
            result,
            seconds,
            kind="images",
            duplicates_dropped=False,
            row_ids=self.ids,
            table=None,
            shares=None,
            share_columns=[],
            unparseable=unparseable,
            duplicates=[],
            latent=_latent(detector, self.images),
            why=self._why_shown(detector, self.images),
            images=self.images,
            reconstructions=_reconstructions(detector, self.images),
            labels=None,
            dropped_columns={},
        )


@dataclass
class _Images:
    images: np.ndarray
    files: list[str]
    reasons: dict[str, str]


def load_images_flat(files: list[Path], where: Path) -> _Images:
    """Open every file; the ones that do not open are listed with the reason instead of raising.
    Images are brought to the most common size, shrunk (aspect kept) to at most 64x64 pixels."""
    from collections import Counter

    from PIL import Image

    from vaekit.images import GREY_MODES, _pixels

    opened, names, reasons = [], [], {}
    for file in files:
        try:
            with Image.open(file) as image:
                image.load()
                opened.append(image.copy())
            names.append(str(file))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            reasons[str(file)] = f"does not open as an image ({type(exc).__name__}: {first})"
    if not opened:
        raise DataError(f"{where}: none of its {len(files)} image files can be read")
    grey = all(image.mode in GREY_MODES for image in opened)
    (w, h), _ = Counter(image.size for image in opened).most_common(1)[0]
    shrink = min(1.0, (MAX_IMAGE_PIXELS / (w * h)) ** 0.5)
    size = (max(8, round(w * shrink)), max(8, round(h * shrink)))
    images = np.stack([_pixels(image, grey, size) for image in opened])
    return _Images(images, names, reasons)


def _describe(detector) -> str:
    name = type(detector).__name__
    if hasattr(detector, "module_") and hasattr(detector, "steps_"):
        views = " and ".join(getattr(detector, "views_", {}))
        views = f", {views} classifier{'s' if ' and ' in views else ''}" if views else ""
        if getattr(detector, "garbage_", None) is not None:
            views += ", a garbage classifier"
        return f"{name} ({detector.module_.n_members} autoencoders{views}, {detector.steps_} training steps)"
    return name


def _latent(detector, X) -> np.ndarray | None:
    encode = getattr(detector, "encode", None)
    return None if encode is None else encode(X)


def _history(detector) -> dict[str, list[float]]:
    return dict(getattr(detector, "history_", {}) or {})


def _reconstructions(detector, images: np.ndarray) -> np.ndarray | None:
    reconstruct = getattr(detector, "reconstruct", None)
    return None if reconstruct is None else np.clip(reconstruct(images), 0, 1)
