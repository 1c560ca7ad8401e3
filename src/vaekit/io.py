"""Data in and out: read CSV, Parquet, NPY and NPZ into a table, check it, write results atomically.

Every error names the file (or the array), the column and the row, and says how to fix it.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import gzip
import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from io import TextIOWrapper
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from vaekit.errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".npy", ".npz")
DELIMITED = (".csv", ".tsv", ".txt")  # text tables, read as CSV (the delimiter sniffed), gzipped or not
OUTPUT_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".npy", ".npz")  # a .txt name says too little


def _suffix(path: Path) -> str:
    """A file's type by its name: ".csv" for every :data:`DELIMITED` name (gzipped too)."""
    if path.name.lower().removesuffix(".gz").endswith(DELIMITED):
        return ".csv"
    return path.suffix.lower()


def gzipped(path: str | os.PathLike) -> bool:
    """Whether a file is named as gzipped (``data.csv.gz``): read and written through gzip."""
    return Path(path).name.lower().endswith(".gz")


@contextlib.contextmanager
def open_bytes(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """``path`` opened to read its bytes, decompressed when it is named ``.gz``; a damaged or
    truncated gzip file is a DataError naming it."""
    try:
        with (gzip.open if gzipped(path) else open)(path, "rb") as f:
            yield f
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise DataError(
            f"{path}: is a damaged or truncated gzip file ({type(exc).__name__}: {exc}); "
            "copy or download it again, or give it uncompressed"
        ) from None


@contextlib.contextmanager
def open_output(path: Path, compress: bool, encoding: str | None = None) -> Iterator[IO]:
    """A (temporary) output file opened to write bytes, or text in ``encoding`` (lines as
    given), through gzip when ``compress``: without a name or a time in the gzip header, so
    that the same content gives the same file."""
    with open(path, "wb") as raw, contextlib.ExitStack() as stack:
        f: IO = raw
        if compress:  # level 6, as the gzip program: 9 is much slower for little
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
            f = stack.enter_context(gz)
        if encoding is not None:
            f = stack.enter_context(TextIOWrapper(f, encoding=encoding, errors="replace", newline=""))
        yield f


def uncompressed_size(path: str | os.PathLike, sample: int = 1 << 20) -> int:
    """A file's size once decompressed: its size on disk, times the ratio of its first ``sample``
    bytes for a gzipped one (gzip's own record of the size wraps at 4 GiB)."""
    size = os.path.getsize(path)
    if not gzipped(path):
        return size
    with open(path, "rb") as f:
        head = f.read(sample)
    try:
        inflated = len(zlib.decompressobj(wbits=31).decompress(head))
    except zlib.error:
        return size  # not gzip after all: its reader says so
    return int(size * max(inflated / max(len(head), 1), 1.0))


def csv_separator(path: str | os.PathLike) -> str:
    """The delimiter vaekit writes in a text table named ``path``: a tab in a .tsv file, else a comma."""
    return "\t" if Path(path).name.lower().removesuffix(".gz").endswith(".tsv") else ","


# numbers as written where the decimal mark is a comma (1,5; 1.234,5, with dots between
# thousands: GROUPED_NUMBER), and with a point (1.5; 2.5e-3)
GROUPED_NUMBER = r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?"
COMMA_NUMBER = re.compile(rf"{GROUPED_NUMBER}|[+-]?\d*,\d+")
POINT_NUMBER = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")

# numbers as spreadsheets and reports format them: a currency sign before or after ($1,234.50;
# 12,50 €), a percent sign or a unit after (12.5%; 3.5 kg; 20 GB), thousands grouped by commas
# (by points where the decimal mark is a comma), spaces or apostrophes (1 234 567; 1'234.50), a
# minus as a sign or as parentheses around the number (accounting's (45.00)); see formatted_numbers
CURRENCY = "$€£¥₹₩₽₺₪฿¢"
UNIT = r"[A-Za-zµ°]{1,5}"  # a unit written after a number: kg, GB, ms, EUR, °C
SEPARATORS = " \u00a0\u202f'\u2019"  # between thousands besides the comma or point: spaces, apostrophes


def _formatted_pattern(decimal: str) -> str:
    group = re.escape("," if decimal == "." else ".")
    point = re.escape(decimal)
    # thousands grouped by one separator throughout, or none
    separators = (group, "[ \u00a0\u202f]", "['\u2019]")
    whole = "|".join(rf"\d{{1,3}}(?:{sep}\d{{3}})+" for sep in separators) + r"|\d+"
    exponent = r"(?:[eE][+-]?\d+)?" if decimal == "." else ""
    body = rf"(?:{whole})(?:{point}\d+)?{exponent}|{point}\d+"
    sign = r"[+\-\u2212]"  # a minus sign too
    return (
        rf"^(?P<open>\()?\s*(?P<sign>{sign})?\s*(?P<before>[{CURRENCY}])?\s*(?P<sign2>{sign})?\s*"
        rf"(?P<body>{body})\s*(?P<after>[{CURRENCY}%]|{UNIT})?\s*(?P<close>\))?$"
    )


FORMATTED = {decimal: _formatted_pattern(decimal) for decimal in ".,"}


def formatted_numbers(values: pd.Series, decimal: str = ".") -> tuple[pd.Series, pd.Series]:
    """Strings of numbers as spreadsheets format them (see ``CURRENCY`` and ``UNIT``: $1,234.50,
    12.5%, (45.00), 3.5 kg; with ``decimal=","`` 1.234,5 and 12,50 €) written plainly (1234.50,
    12.5, -45.00, 3.5, 1234.5, 12.50), as ``pd.to_numeric`` reads them, the other strings as they
    are; and each one's unit: its currency sign, percent sign or unit (lower case), "" for none,
    None for a string that is not such a number. A percent is the number before its sign."""
    parts = values.astype("string").str.strip().str.extract(FORMATTED[decimal])
    present = parts.notna()
    signs = present["sign"].astype(int) + present["sign2"].astype(int)
    brackets = present["open"] | present["close"]
    valid = present["body"] & (present["open"] == present["close"]) & (signs <= 1)
    valid &= ~(brackets & (signs > 0)) & ~(present["before"] & present["after"])
    unit = parts["before"].fillna(parts["after"].str.lower()).fillna("").astype(object).where(valid, None)
    if not valid.any():
        return values, unit
    grouping = "," if decimal == "." else "."
    body = parts["body"].where(valid).str.replace(f"[{re.escape(SEPARATORS + grouping)}]", "", regex=True)
    negative = brackets | parts["sign"].isin(["-", "\u2212"]) | parts["sign2"].isin(["-", "\u2212"])
    plain = negative.map({True: "-", False: ""}) + body.str.replace(",", ".", regex=False)
    return values.where(~valid.to_numpy(), plain.to_numpy(dtype=object)), unit


def column_unit(units: pd.Series | collections.Counter) -> str:
    """The unit of a column of :func:`formatted_numbers` (their units, or how many of each): the
    most common one, "" when none has one."""
    counts = units if isinstance(units, collections.Counter) else collections.Counter(units.dropna())
    named = collections.Counter({unit: n for unit, n in counts.items() if unit})  # not None nor ""
    return named.most_common(1)[0][0] if named else ""


ENCODING_SAMPLE = 1 << 22  # bytes at the start of a file that tell its encoding (sniff_encoding)


def sniff_encoding(sample: bytes) -> str:
    """ "utf-8", or "cp1252" for text whose letters beyond ASCII are single bytes, as Windows
    programs write it (Excel's "CSV (Comma delimited)": é is the byte E9): when at least two lines
    of ``sample`` (a file's first bytes) are not UTF-8 and none holds a UTF-8 letter beyond ASCII.
    One such line alone is taken for a damaged line of a UTF-8 file."""
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    not_utf8, lines = 0, sample.splitlines()
    for line in lines[:-1] or lines:  # the last may be cut
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            return "utf-8"  # a letter beyond ASCII as UTF-8 writes it
        except UnicodeDecodeError:
            not_utf8 += 1
    return "cp1252" if not_utf8 >= 2 else "utf-8"


def sniff_dialect(header: str, encoding: str = "utf-8") -> type[csv.Dialect]:
    """The CSV dialect of a file, sniffed from its header line: a comma, semicolon, tab or bar
    between fields (a comma when the line does not tell), quotes inside quoted fields doubled;
    its ``encoding`` attribute is the file's text encoding (see :func:`sniff_encoding`)."""
    try:
        dialect = csv.Sniffer().sniff(header, delimiters=",;\t|")
    except csv.Error:
        dialect = type("excel", (csv.excel,), {})  # the shared csv.excel keeps no file's encoding
    # a quote inside a quoted field is doubled (RFC 4180, as Excel and pandas write it); the
    # sniffer says so only when its sample holds a doubled quote, which a header rarely does,
    # and read "12"" screen" as 12" screen" and could not write a field with a quote
    dialect.doublequote = True
    dialect.encoding = encoding
    return dialect


def trailing_delimiter(header: list[str], records: list[str], dialect: type[csv.Dialect]) -> bool:
    """Whether a CSV file's data lines end with a delimiter that its header line does not: most
    of its first ``records`` (text, after the header's ``fields``) have one field more than the
    header, the last one empty, as some programs write every data line. pandas reads such a
    file with ``index_col=False``; otherwise it takes the first column for the index and shifts
    the names onto the wrong columns."""
    counted = extra = 0
    for row in csv.reader((r for r in records if r.strip()), dialect):
        counted += 1
        extra += len(row) == len(header) + 1 and row[-1] == ""
    return counted > 0 and extra > counted / 2


def csv_options(path: str | os.PathLike, lines: int = 200) -> dict:
    """pandas ``read_csv`` options for a CSV file, from its first ``lines`` lines: the delimiter
    sniffed from the header line (a comma, semicolon, tab or bar), and, when it is not a comma and
    more of the cells are numbers written with a decimal comma (1,5; 1.234,5) than with a point,
    ``decimal=","`` and ``thousands="."`` (a file as written where the decimal mark is a comma);
    ``encoding="cp1252"`` for a file so written (:func:`sniff_encoding`); the delimiter and
    ``skiprows=1`` for a file that begins with Excel's line ``sep=;``; ``index_col=False`` for a
    file whose data lines end with a delimiter (:func:`trailing_delimiter`)."""
    path = Path(path)
    try:
        with open_bytes(path) as f:
            sample = f.read(ENCODING_SAMPLE)
    except (OSError, DataError):
        return {}  # not readable: read_csv says so
    encoding = sniff_encoding(sample)
    options = {} if encoding == "utf-8" else {"encoding": encoding}
    text = sample.decode("utf-8-sig" if encoding == "utf-8" else encoding, errors="replace")
    head = text.splitlines()[:lines]
    hint = re.fullmatch(r'"?sep=(.)"?', head[0]) if head else None
    if hint:  # Excel's first line naming the delimiter
        options |= {"sep": hint.group(1), "skiprows": 1}
        head = head[1:]
    if not head:
        return options
    dialect = sniff_dialect(head[0])
    if hint:
        dialect.delimiter = hint.group(1)
    delimiter = dialect.delimiter
    with contextlib.suppress(csv.Error):  # a file csv cannot read: read_csv says what is wrong
        if trailing_delimiter(next(csv.reader(head[:1], dialect)), head[1:-1] or head[1:], dialect):
            options["index_col"] = False
    if delimiter == ",":
        return options
    options["sep"] = delimiter
    cells = [cell.strip().strip('"') for line in head[1:] for cell in line.split(delimiter)]
    comma = sum(1 for cell in cells if COMMA_NUMBER.fullmatch(cell))
    point = sum(1 for cell in cells if POINT_NUMBER.fullmatch(cell))
    return options | ({"decimal": ",", "thousands": "."} if comma > point else {})


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a data file into a DataFrame, whatever its format.

    CSV (with a header line; commas, semicolons, tabs or bars between fields, decimal commas
    read as such: :func:`csv_options`), Parquet, NPY (a 1-D or 2-D array) and NPZ (the key ``X``, or the
    only array in the file). Array columns are named ``x0, x1, ...``.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a CSV, Parquet, NPY or NPZ file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; give a file with a header and rows of data")
    suffix = _suffix(path)
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, **csv_options(path))
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix == ".npy":
            frame = _array_frame(np.load(path, allow_pickle=False), path)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                frame = _array_frame(archive[npz_data_key(archive, path)], path)
        else:
            raise DataError(
                f"{path}: unknown file type {suffix!r}; vaekit reads " + ", ".join(TABLE_SUFFIXES)
            )
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; give a file with a header and rows of data") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot be parsed as {suffix[1:].upper()}: {_first_line(exc)}") from None
    except Exception as exc:  # pyarrow, numpy and zipfile errors for corrupt files
        raise DataError(
            f"{path}: cannot be read as {suffix[1:].upper()} ({type(exc).__name__}: "
            f"{_first_line(exc)}); is the file complete and of that type?"
        ) from None
    if frame.shape[0] == 0:
        raise DataError(f"{path}: has a header but no rows of data; add rows below the header line")
    if frame.shape[1] == 0:
        raise DataError(f"{path}: has no columns; give a table with at least one column of numbers")
    return frame


def npz_data_key(archive, path: Path) -> str:
    """The key of the data in an NPZ archive: ``X``, or its only array."""
    keys = list(archive.keys())
    if "X" in keys:
        return "X"
    if len(keys) == 1:
        return keys[0]
    raise DataError(
        f"{path}: holds the arrays {keys} and none is named 'X'; save the data under the key 'X' "
        "(and labels, if any, under 'y')"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _array_frame(array: np.ndarray, path: Path) -> pd.DataFrame:
    if array.dtype == object:
        raise DataError(f"{path}: holds Python objects; save a numeric array")
    if array.ndim == 1:
        array = array[:, None]
    elif array.ndim > 2:
        array = array.reshape(array.shape[0], -1)
    elif array.ndim == 0:
        raise DataError(f"{path}: holds a single number, not a table")
    return pd.DataFrame(array, columns=[f"x{j}" for j in range(array.shape[1])])


def _row_place(row: int, source: str) -> str:
    place = f"row {row + 1}"
    if _suffix(Path(source)) == ".csv":
        place += f" (line {row + 2} of the file)"
    return place


def row_number(index: pd.Index | None, position: int) -> int:
    """The row a message names: the frame's integer label (a batch read from the middle of a file
    is labelled by its rows' places in the file), else the position."""
    if isinstance(index, pd.RangeIndex):
        return int(index[position])
    return position


def as_matrix(data: pd.DataFrame | np.ndarray, source: str = "the data") -> np.ndarray:
    """Check that ``data`` is a non-empty table of finite numbers and return it as float32.

    The error for text, NaN or infinity names the first offending column and row.
    """
    if isinstance(data, pd.DataFrame):
        frame = data
    else:
        array = np.asarray(data)
        if array.ndim == 1:
            raise DataError(
                f"{source}: expected a 2-D table (rows x columns) but got a 1-D array of "
                f"{array.shape[0]} values; use X.reshape(-1, 1) for one column or "
                "X.reshape(1, -1) for one row"
            )
        if array.ndim != 2:
            raise DataError(f"{source}: expected a 2-D table but got shape {array.shape}")
        if array.dtype.kind in "biuf":
            return _check_finite(array.astype(np.float32, copy=False), source, None)
        frame = pd.DataFrame(array)
    if frame.shape[0] == 0:
        raise DataError(f"{source}: has no rows of data")
    if frame.shape[1] == 0:
        raise DataError(f"{source}: has no columns")
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "biuf":
            continue
        if column.dtype.kind == "M" or column.dtype.kind == "m":
            raise DataError(
                f"{source}: column {name!r} holds dates or times; vaekit's numeric models take "
                "numbers only for now: convert it or drop the column"
            )
        numbers = pd.to_numeric(column, errors="coerce")
        bad = numbers.isna() & column.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: column {name!r}, {_row_place(row_number(frame.index, row), source)}: "
                f"{column.iloc[row]!r} is "
                f"not a number ({int(bad.sum())} such value(s) in that column); fix those values "
                "or drop the column"
            )
    matrix = frame.to_numpy(dtype=np.float32, na_value=np.nan)
    return _check_finite(matrix, source, list(frame.columns), frame.index)


def _check_finite(
    matrix: np.ndarray, source: str, columns: list | None, index: pd.Index | None = None
) -> np.ndarray:
    if matrix.shape[0] == 0:
        raise DataError(f"{source}: has no rows of data")
    if matrix.shape[1] == 0:
        raise DataError(f"{source}: has no columns")
    finite = np.isfinite(matrix)
    if not finite.all():
        rows, cols = np.nonzero(~finite)
        row, col = int(rows[0]), int(cols[0])
        name = repr(columns[col]) if columns is not None else str(col)
        what = "missing (NaN)" if np.isnan(matrix[row, col]) else "infinite"
        raise DataError(
            f"{source}: column {name}, {_row_place(row_number(index, row), source)} is {what} "
            f"({len(rows)} non-finite value(s) in all); fill or drop those rows (the tabular "
            "preprocessing that handles missing values is not in this version)"
        )
    return matrix


@contextlib.contextmanager
def errors_naming(path: str | os.PathLike) -> Iterator[None]:
    """The library calls the data it is given X; in errors about a file, name the file."""
    try:
        yield
    except DataError as exc:
        message = str(exc)
        if message.startswith("X"):
            raise DataError(f"{path}{message[1:]}") from None
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    An interrupted write leaves nothing under the final name (only a ``.tmp`` file, removed
    on errors that Python sees).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    set_default_mode(tmp_path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def set_default_mode(path: Path) -> None:
    """Give a temporary file or folder (created private) the mode a plain open() would give."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def check_output_path(path: str | os.PathLike) -> str:
    """Check that ``path`` can name an output table (a file of a known type); return its type."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give an output file name, e.g. {path / 'out.csv'}")
    suffix = _suffix(path)
    named = path.name.lower().removesuffix(".gz")
    if suffix not in OUTPUT_SUFFIXES or named.endswith(".txt"):
        shown = ".txt" if named.endswith(".txt") else suffix
        raise DataError(f"{path}: unknown output type {shown!r}; use one of " + ", ".join(OUTPUT_SUFFIXES))
    return suffix


def write_table(data: pd.DataFrame | np.ndarray, path: str | os.PathLike) -> Path:
    """Write a table as CSV, Parquet, NPY or NPZ (chosen by the file's extension), atomically."""
    path = Path(path)
    suffix = check_output_path(path)
    frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(np.asarray(data))
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)  # a copy: the caller's stays as it was
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            # the compression is chosen here: pandas would infer it from the temporary name
            compression = "gzip" if path.name.lower().endswith(".gz") else None
            frame.to_csv(tmp, index=False, compression=compression, sep=csv_separator(path))
        elif suffix in (".parquet", ".pq"):
            frame.to_parquet(tmp, index=False)
        elif suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, frame.to_numpy())
        else:
            with open(tmp, "wb") as fh:
                np.savez(fh, X=frame.to_numpy())
    return path
