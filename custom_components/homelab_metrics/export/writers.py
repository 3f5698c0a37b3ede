"""CSV and JSON writers that turn history rows into bytes chunk by chunk (memory stays flat)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
import json
from math import isfinite
import re
from typing import Any, Protocol

from ..history.metrics import METRICS, Tier, columns_for
from .choices import FORMATS, ExportFormat

type Row = tuple[Any, ...]
"""One history row in `columns_for(tier)` order: epoch seconds, then the values."""


_INTEGER_COLUMNS = frozenset(
    {
        "samples",
        *(
            column
            for m in METRICS
            if m.key.endswith("_bytes_per_second")
            for column in (m.key, *(f"{m.prefix}_{s}" for s in ("avg", "min", "max")))
        ),
    }
)
"""Byte rates and sample counts are whole numbers; everything else keeps three decimals."""

# "z" turns a value that rounds to -0 into 0; "f" never switches to scientific notation.
_INTEGER_SPEC = "z.0f"
_DECIMAL_SPEC = "z.3f"
_PRINTF = {_INTEGER_SPEC: "%.0f", _DECIMAL_SPEC: "%.3f"}
"""The same numbers in printf style, without "z" (the writers mend "-0" themselves)."""


def _whole(value: float) -> int:
    """A finite number as `_INTEGER_SPEC` writes it, read back."""
    return round(value)


def _decimal(value: float) -> float:
    """A finite number as `_DECIMAL_SPEC` writes it, read back."""
    # round() rounds the stored binary value as format() does; + 0.0 turns -0.0 into 0.0 like "z".
    return round(value, 3) + 0.0


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet run a cell as a formula (OWASP CSV injection)."""

_EPOCH_DATE = date(1970, 1, 1)
_CLOCK_TIMES = tuple(f"T{h:02}:{m:02}:" for h in range(24) for m in range(60))
_CLOCK_SECONDS = tuple(f"{s:02}" for s in range(60))


class _Clock:
    """ISO 8601 text of epoch seconds in a time zone, as `datetime.isoformat` writes it, faster.

    Rows come in time order, so the offset of the current UTC day and the text of the current
    local date are kept and reused. A day is only reused when its first and last second have
    the same offset (no time zone changes its offset twice within a day); the day of a change,
    and anything that is not a whole second, goes through datetime.
    """

    __slots__ = ("_date", "_day", "_end", "_offset", "_start", "_suffix", "_tz")

    def __init__(self, tz: tzinfo) -> None:
        """Nothing is known about any day yet."""
        self._tz = tz
        self._start = self._end = 0
        self._offset: int | None = None
        self._suffix = ""
        self._day: int | None = None
        self._date = ""

    def __call__(self, ts: int) -> str:
        """The time as `datetime.fromtimestamp(ts, tz).isoformat()` would give it."""
        if type(ts) is not int:
            return datetime.fromtimestamp(ts, self._tz).isoformat()
        if not self._start <= ts < self._end:
            self._enter_day(ts)
        if self._offset is None:
            return datetime.fromtimestamp(ts, self._tz).isoformat()
        day, seconds = divmod(ts + self._offset, 86_400)
        if day != self._day:
            self._day = day
            self._date = (_EPOCH_DATE + timedelta(days=day)).isoformat()
        minute, second = divmod(seconds, 60)
        return (
            f"{self._date}{_CLOCK_TIMES[minute]}{_CLOCK_SECONDS[second]}{self._suffix}"
        )

    def _enter_day(self, ts: int) -> None:
        """Learn the offset of the UTC day holding ts, or that it changes that day."""
        self._start = ts - ts % 86_400
        self._end = self._start + 86_400
        first = datetime.fromtimestamp(self._start, self._tz)
        offset = first.utcoffset()
        if (
            offset is None
            or offset.microseconds
            or offset != datetime.fromtimestamp(self._end - 1, self._tz).utcoffset()
        ):
            self._offset = None
            return
        self._offset = int(offset.total_seconds())
        # isoformat's own spelling of the offset: "+01:00", "+05:45", "+00:00".
        self._suffix = first.isoformat()[19:]


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportMeta:
    """What the JSON header says about an export, and how its timestamps are written."""

    server_id: str
    server_name: str
    range: str | None
    """"24h", "7d", "30d", "12m", or None for a custom window."""
    tier: Tier
    resolution: str
    timezone: tzinfo
    """Time zone of every timestamp in the file."""
    timezone_name: str
    """How the JSON header names it: "UTC" or the IANA name."""
    exported_at: int
    """Epoch seconds."""


def neutralise(text: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(_FORMULA_START) else text


class ExportWriter(Protocol):
    """Turns rows into the bytes of one file: start(), write() per batch, finish()."""

    @property
    def rows(self) -> int:
        """Rows written so far."""
        ...

    def start(self) -> bytes:
        """Bytes before the first row."""
        ...

    def write(self, rows: Sequence[Row]) -> bytes:
        """Bytes of some rows (empty when there are none)."""
        ...

    def finish(self) -> bytes:
        """Bytes after the last row."""
        ...


class _Writer:
    """Row formatting both writers share.

    Rows go through a printf-style template, one call per row (the fastest way CPython formats
    many numbers). The template writes a value that is not finite as `inf` or `nan` and a value
    that rounds to zero from below as `-0.000`; the text is mended afterwards, which costs a
    search of the text when neither occurs. A row the template cannot take at all (a missing
    value, text, the wrong number of values) is written value by value.
    """

    _missing: str
    """How a missing value is written."""
    _before: str
    """What precedes every value: a comma in CSV, a colon in JSON."""
    _after: str
    """What can follow a value."""
    _separator: str
    """What goes between two rows."""

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        self.columns = columns_for(tier)
        self.meta = meta
        self._rows = 0
        self.timestamp = _Clock(meta.timezone)
        """ISO 8601 text of epoch seconds, with the export's offset."""
        self._specs = tuple(
            _INTEGER_SPEC if column in _INTEGER_COLUMNS else _DECIMAL_SPEC
            for column in self.columns[1:]
        )
        self._template = ""
        before, after = re.escape(self._before), re.escape(self._after)
        self._non_finite = re.compile(f"{before}(?:-?inf|nan)")
        self._negative_zero = re.compile(f"{before}-(0(?:\\.0+)?)(?=[{after}])")

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._rows

    def _format(self, rows: Sequence[Row]) -> str:
        """The rows as text: through the template in one pass, or row by row if one fails it."""
        template, timestamp = self._template, self.timestamp
        self._rows += len(rows)
        try:
            texts = [template % (timestamp(row[0]), *row[1:]) for row in rows]
        except (TypeError, ValueError, OverflowError):
            return self._separator.join([self._one(row) for row in rows])
        return self._mend(self._separator.join(texts))

    def _one(self, row: Row) -> str:
        try:
            text = self._template % (self.timestamp(row[0]), *row[1:])
        except (TypeError, ValueError, OverflowError):
            return self._slow(row)
        return self._mend(text)

    def _mend(self, text: str) -> str:
        """Template output as `format` with the "z" option writes it, missing for non-finite."""
        if "inf" in text or "nan" in text:
            text = self._non_finite.sub(self._before + self._missing, text)
        if self._before + "-0" in text:
            text = self._negative_zero.sub(self._before + r"\1", text)
        return text

    def _slow(self, row: Row) -> str:
        """A row the template cannot take."""
        raise NotImplementedError

    def _fields(self, row: Row) -> list[str]:
        """Each value of a row as text, for rows the one-call template cannot take."""
        if len(row) != len(self.columns):
            raise ValueError(
                f"a row of {len(row)} values for {len(self.columns)} columns"
            )
        fields: list[str] = []
        for value, spec in zip(row[1:], self._specs, strict=True):
            if isinstance(value, str):
                fields.append(self._text(value))
                continue
            try:
                fields.append(format(value, spec) if isfinite(value) else self._missing)
            except (TypeError, ValueError, OverflowError):
                # None, or something that is not a number: nothing we can write as one.
                fields.append(self._missing)
        return fields

    def _text(self, value: str) -> str:
        """A text value as the format writes it."""
        raise NotImplementedError


def _fast(row: Row, width: int) -> bool:
    """Whether every value is a finite number, so a row's data point is made without checks."""
    if len(row) != width:
        return False
    try:
        # Any None or text raises; any NaN or infinity makes the sum non-finite. The timestamp,
        # a whole number, changes neither.
        return isfinite(sum(row))
    except (TypeError, OverflowError):
        return False


class CsvExportWriter(_Writer):
    """A header row, then one line per row; missing values are empty cells."""

    _missing = ""
    _before = ","
    _after = ",\r"
    _separator = ""

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        """Prepare the line template once."""
        super().__init__(tier, meta)
        self._template = "%s," + ",".join(_PRINTF[s] for s in self._specs) + "\r\n"
        self._slow_line = ",".join(["{}"] * len(self.columns)) + "\r\n"

    def start(self) -> bytes:
        """The header row."""
        return (",".join(self.columns) + "\r\n").encode()

    def write(self, rows: Sequence[Row]) -> bytes:
        """CSV lines of the rows."""
        return self._format(rows).encode()

    def _slow(self, row: Row) -> str:
        # Timestamps are ISO text starting with a digit, so they never need neutralising.
        return self._slow_line.format(self.timestamp(row[0]), *self._fields(row))

    def _text(self, value: str) -> str:
        """Neutralised, and quoted when it holds a separator, a quote or a line break."""
        value = neutralise(value)
        if any(c in value for c in ',"\r\n'):
            return '"' + value.replace('"', '""') + '"'
        return value

    def finish(self) -> bytes:
        """Nothing follows the last line."""
        return b""


class JsonExportWriter(_Writer):
    """One JSON object: the export's metadata, then `data_points`, streamed item by item."""

    _missing = "null"
    _before = ":"
    _after = ",}"
    _separator = ","

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        """Prepare the item template (keys quoted once)."""
        super().__init__(tier, meta)
        keys = [json.dumps(c) for c in self.columns]
        literal = [k.replace("%", "%%") for k in keys]
        self._template = (
            "{"
            + ",".join(
                [
                    f'{literal[0]}:"%s"',
                    *(
                        f"{k}:{_PRINTF[s]}"
                        for k, s in zip(literal[1:], self._specs, strict=True)
                    ),
                ]
            )
            + "}"
        )
        self._slow_item = (
            "{{"
            + ",".join(
                [f'{_brace(keys[0])}:"{{}}"', *(f"{_brace(k)}:{{}}" for k in keys[1:])]
            )
            + "}}"
        )
        self._readers = tuple(
            _whole if spec == _INTEGER_SPEC else _decimal for spec in self._specs
        )

    def data_points(self, rows: Iterable[Row]) -> list[dict[str, Any]]:
        """The rows as the data points JSON reads back from this writer's file, without the text.

        Same keys, timestamps and numbers as `write` (three decimals; whole numbers for byte rates
        and sample counts; null for what is missing), so a response that carries them says what
        the file says.
        """
        columns, timestamp, width = self.columns, self.timestamp, len(self.columns)
        readers = self._readers
        points: list[dict[str, Any]] = []
        for row in rows:
            if _fast(row, width):
                values = [read(v) for read, v in zip(readers, row[1:], strict=True)]
            else:
                values = self._values(row)
            points.append(dict(zip(columns, (timestamp(row[0]), *values), strict=True)))
        return points

    def _values(self, row: Row) -> list[Any]:
        """Each value of a row as JSON reads it back, for rows the fast path cannot take."""
        if len(row) != len(self.columns):
            raise ValueError(
                f"a row of {len(row)} values for {len(self.columns)} columns"
            )
        values: list[Any] = []
        for value, read in zip(row[1:], self._readers, strict=True):
            if isinstance(value, str):
                values.append(value)
                continue
            try:
                values.append(read(value) if isfinite(value) else None)
            except (TypeError, ValueError, OverflowError):
                values.append(None)
        return values

    def start(self) -> bytes:
        """The metadata and the opening of data_points."""
        meta = self.meta
        head = {
            "server_id": meta.server_id,
            "server_name": meta.server_name,
            "range": meta.range,
            "tier": meta.tier.value,
            "resolution": meta.resolution,
            "timezone": meta.timezone_name,
            "exported_at": self.timestamp(meta.exported_at),
        }
        text = json.dumps(head, ensure_ascii=False)[:-1] + ',"data_points":['
        try:
            return text.encode()
        except UnicodeEncodeError:
            # A lone surrogate in a name cannot be UTF-8; JSON can still escape it.
            return (json.dumps(head)[:-1] + ',"data_points":[').encode()

    def write(self, rows: Sequence[Row]) -> bytes:
        """Data points of the rows, comma-separated from the ones before."""
        if not rows:
            return b""
        before = self._rows
        text = self._format(rows)
        return ("," + text if before else text).encode()

    def _slow(self, row: Row) -> str:
        return self._slow_item.format(self.timestamp(row[0]), *self._fields(row))

    def _text(self, value: str) -> str:
        """A JSON string (ASCII, so any text encodes)."""
        return json.dumps(value)

    def finish(self) -> bytes:
        """Close data_points and the object."""
        return b"]}\n"


def _brace(text: str) -> str:
    """Text placed literally in a str.format template."""
    return text.replace("{", "{{").replace("}", "}}")


def make_writer(fmt: ExportFormat, tier: Tier, meta: ExportMeta) -> ExportWriter:
    """The writer of a format."""
    if fmt == ExportFormat.CSV:
        return CsvExportWriter(tier, meta)
    if fmt == ExportFormat.JSON:
        return JsonExportWriter(tier, meta)
    raise ValueError(f"unknown export format {fmt!r}")


def iter_export(
    writer: ExportWriter, batches: Iterable[Sequence[Row]]
) -> Iterator[bytes]:
    """A whole file from batches of rows, for synchronous callers."""
    yield writer.start()
    for batch in batches:
        if chunk := writer.write(batch):
            yield chunk
    yield writer.finish()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME_PART = 100


def _clean(text: str) -> str:
    """Only characters no header, shell or file system misreads; no leading dot or hyphen."""
    # A leading dot hides a file; a leading hyphen reads as an option to command-line tools.
    return _UNSAFE.sub("_", text).lstrip(".-")[:_MAX_NAME_PART]


def safe_filename(
    server_id: str, range_label: str, day: date, fmt: ExportFormat
) -> str:
    """`{server_id}-metrics-{range}-{YYYY-MM-DD}.{ext}` with nothing a header or a path could misread."""
    extension = FORMATS[fmt].extension
    server = _clean(server_id) or "server"
    label = _clean(range_label) or "custom"
    return f"{server}-metrics-{label}-{day.isoformat()}.{extension}"


def content_disposition(filename: str) -> str:
    """An attachment header; quotes, line breaks and non-ASCII never reach it."""
    # Names from safe_filename pass unchanged; anything else is cleaned the same way.
    name = _UNSAFE.sub("_", filename).lstrip(".-")[:255] or "export"
    return f'attachment; filename="{name}"'
