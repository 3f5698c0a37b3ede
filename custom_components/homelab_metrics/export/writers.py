"""CSV and JSON writers that turn history rows into bytes chunk by chunk (memory stays flat).

Stored rows arrive as text SQLite wrote (their stored line behind the timestamp, see
history/text.py); rows of values are written the same way here. Either way the writer only turns
the line's separators into the format's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
import json
from math import isfinite
import re
from typing import Any, Protocol

from ..history.metrics import Tier, columns_for
from ..history.queries import LineFormat
from ..history.text import SEPARATORS, tier_whole, tier_writer
from .choices import FORMATS, ExportFormat

type Row = tuple[Any, ...]
"""One history row in `columns_for(tier)` order: epoch seconds, then the values."""


def _whole(value: float) -> int:
    """A finite number as a whole-number column writes it, read back."""
    return round(value)


def _decimal(value: float) -> float:
    """A finite number as a three-decimal column writes it, read back."""
    # round() rounds the stored binary value as format() does; + 0.0 turns -0.0 into 0.0 like "z".
    return round(value, 3) + 0.0


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


def offset_span(tz: tzinfo, start: int, end: int) -> tuple[int, str, int]:
    """The UTC offset at `start` in seconds, as isoformat spells it, and until when it holds.

    The offset holds up to the returned second (at most `end`). Searched a day at a time, then to
    the second, so like _Clock this takes no zone to change its offset twice within a day.
    """
    first = datetime.fromtimestamp(start, tz)
    offset = first.utcoffset()
    if offset is None:
        return 0, "", end
    suffix = first.isoformat()[19:]
    day = start
    while day < end:
        last = min(day + 86_400, end) - 1
        if datetime.fromtimestamp(last, tz).utcoffset() != offset:
            low, high = day, last
            while low < high:
                middle = (low + high) // 2
                if datetime.fromtimestamp(middle, tz).utcoffset() == offset:
                    low = middle + 1
                else:
                    high = middle
            return int(offset.total_seconds()), suffix, low
        day = last + 1
    return int(offset.total_seconds()), suffix, end


class ExportWriter(Protocol):
    """Turns rows into the bytes of one file: start(), write() per batch, finish()."""

    @property
    def rows(self) -> int:
        """Rows written so far."""
        ...

    def start(self) -> bytes:
        """Bytes before the first row."""
        ...

    def line_format(self, start: int, end: int) -> LineFormat:
        """How SQL writes stored rows from `start` on."""
        ...

    def write_lines(self, text: bytes, rows: int) -> bytes:
        """Bytes of rows SQL wrote as `line_format` said."""
        ...

    def write(self, rows: Sequence[Row]) -> bytes:
        """Bytes of some rows (empty when there are none)."""
        ...

    def finish(self) -> bytes:
        """Bytes after the last row."""
        ...


class _Writer:
    """What both writers share: a row is `before`, its timestamp, `middle`, its line, `after`.

    The line (history/text.py) is the row's values as the file writes them, with a separator
    character before each value after the first; `write_lines` turns the separators into the
    format's own. Stored rows come with their line and timestamp written by SQL; rows of values
    (buckets computed on the fly, and synchronous callers) get theirs here, the same way.
    """

    _before: str
    """Before a row's timestamp (for JSON also the comma after the row before)."""
    _middle: str
    """Between the timestamp (with its UTC offset) and the line."""
    _after: str
    """After the line."""

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        self.columns = columns_for(tier)
        self.meta = meta
        self._rows = 0
        self.timestamp = _Clock(meta.timezone)
        """ISO 8601 text of epoch seconds, with the export's offset."""
        self._line = tier_writer(tier)

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._rows

    def line_format(self, start: int, end: int) -> LineFormat:
        """How SQL writes stored rows from `start` on, while the time zone's offset holds."""
        offset, suffix, until = offset_span(self.meta.timezone, start, end)
        return LineFormat(
            before=self._before,
            offset=offset,
            middle=suffix + self._middle,
            after=self._after,
            until=until,
        )

    def write(self, rows: Sequence[Row]) -> bytes:
        """Bytes of rows of values; a row of the wrong width is a ValueError."""
        timestamp, line = self.timestamp, self._line
        before, middle, after = self._before, self._middle, self._after
        made = "".join(
            [
                f"{before}{timestamp(row[0])}{middle}{line(*row[1:])}{after}"
                for row in rows
            ]
        )
        return self.write_lines(made.encode(), len(rows))

    def write_lines(self, text: bytes, rows: int) -> bytes:
        """Bytes of rows SQL wrote as `line_format` said (also what `write` makes)."""
        raise NotImplementedError


_CSV_TABLE = bytes.maketrans(
    (" " + SEPARATORS).encode(), ("T" + "," * len(SEPARATORS)).encode()
)
"""SQLite's space between date and time becomes ISO's "T"; every separator a comma."""
_SPACE_TO_T = bytes.maketrans(b" ", b"T")


class CsvExportWriter(_Writer):
    """A header row, then one line per row; missing values are empty cells."""

    _before = ""
    _middle = ","
    _after = "\r\n"

    def start(self) -> bytes:
        """The header row."""
        return (",".join(self.columns) + "\r\n").encode()

    def write_lines(self, text: bytes, rows: int) -> bytes:
        """CSV lines: each separator becomes a comma (missing values are empty already)."""
        self._rows += rows
        return text.translate(_CSV_TABLE)

    def finish(self) -> bytes:
        """Nothing follows the last line."""
        return b""


class JsonExportWriter(_Writer):
    """One JSON object: the export's metadata, then `data_points`, streamed item by item."""

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        """The keys each separator becomes."""
        super().__init__(tier, meta)
        keys = [json.dumps(c) for c in self.columns]
        self._before = ",{" + keys[0] + ':"'
        self._middle = '",' + keys[1] + ":"
        self._after = "}"
        self._keys = [
            (separator.encode(), f",{key}:".encode())
            for separator, key in zip(SEPARATORS, keys[2:], strict=False)
        ]
        self._readers = tuple(
            _whole if whole else _decimal for whole in tier_whole(tier)
        )

    def write_lines(self, text: bytes, rows: int) -> bytes:
        """Data points: each separator becomes the next key, an empty value null."""
        text = text.translate(_SPACE_TO_T)
        for separator, key in self._keys:
            text = text.replace(separator, key)
        # A value is missing where a key is followed by the next key or the item's end.
        text = text.replace(b'":,', b'":null,').replace(b'":}', b'":null}')
        if not self._rows:
            # The first item has no item before it to be separated from.
            text = text[1:]
        self._rows += rows
        return text

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

    def finish(self) -> bytes:
        """Close data_points and the object."""
        return b"]}\n"


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
