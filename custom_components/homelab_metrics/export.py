"""CSV and JSON writers that turn history rows into bytes chunk by chunk (memory stays flat)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
import json
from math import isfinite
import re
from typing import Any, Protocol

from .history.metrics import METRICS, Tier, columns_for


@dataclass(frozen=True, kw_only=True, slots=True)
class Format:
    """A file format an export can have."""

    content_type: str
    extension: str


FORMATS: dict[str, Format] = {
    "csv": Format(content_type="text/csv; charset=utf-8", extension="csv"),
    "json": Format(content_type="application/json; charset=utf-8", extension="json"),
}

_BYTE_RATES = frozenset(
    col
    for m in METRICS
    if m.key.endswith("_bytes_per_second")
    for col in (m.key, *(f"{m.prefix}_{s}" for s in ("avg", "min", "max")))
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportMeta:
    """What the JSON header says about an export, and how its timestamps are written."""

    server_id: str
    server_name: str
    range: str | None
    tier: Tier
    resolution: str
    timezone: tzinfo
    timezone_name: str
    exported_at: int


def neutralise(text: str) -> str:
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + text if text.startswith(_FORMULA_START) else text


class ExportWriter(Protocol):
    """Turns rows into the bytes of one file."""

    rows: int

    def start(self) -> bytes:
        """Bytes before the first row."""

    def write(self, rows: Iterable[tuple[Any, ...]]) -> bytes:
        """Bytes of some rows."""

    def finish(self) -> bytes:
        """Bytes after the last row."""


class _Writer:
    """Shared row formatting of both writers."""

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        self.columns = columns_for(tier)
        self.meta = meta
        self.rows = 0
        self._integer = tuple(
            c in _BYTE_RATES or c == "samples" for c in self.columns[1:]
        )

    def timestamp(self, ts: int) -> str:
        """ISO 8601 with the export's offset."""
        return datetime.fromtimestamp(ts, self.meta.timezone).isoformat()

    def values(self, row: tuple[Any, ...]) -> list[int | float | None]:
        """The row's values after the timestamp, rounded for the file."""
        out: list[int | float | None] = []
        append = out.append
        for value, integer in zip(row[1:], self._integer, strict=True):
            if value is None or not isfinite(value):
                append(None)
            elif integer:
                append(round(value))
            else:
                append(round(value, 3))
        return out


def _text(value: float | None, missing: str) -> str:
    """A number as CSV/JSON text: plain digits, no trailing ".0"."""
    if value is None:
        return missing
    text = repr(value)
    return text.removesuffix(".0")


class CsvExportWriter(_Writer):
    """A header row, then one line per row; missing values are empty cells."""

    def start(self) -> bytes:
        """The header row."""
        return (",".join(self.columns) + "\r\n").encode()

    def write(self, rows: Iterable[tuple[Any, ...]]) -> bytes:
        """CSV lines of the rows (only numbers and timestamps: nothing to quote)."""
        lines = [
            neutralise(self.timestamp(row[0]))
            + ","
            + ",".join([_text(v, "") for v in self.values(row)])
            for row in rows
        ]
        self.rows += len(lines)
        return ("\r\n".join(lines) + "\r\n").encode() if lines else b""

    def finish(self) -> bytes:
        """Nothing follows the last line."""
        return b""


class JsonExportWriter(_Writer):
    """One JSON object: the export's metadata, then `data_points`, streamed item by item."""

    def __init__(self, tier: Tier, meta: ExportMeta) -> None:
        """Prepare the quoted keys once."""
        super().__init__(tier, meta)
        self._keys = tuple(json.dumps(c) + ":" for c in self.columns[1:])

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
        return (
            json.dumps(head, ensure_ascii=False)[:-1] + ', "data_points": ['
        ).encode()

    def write(self, rows: Iterable[tuple[Any, ...]]) -> bytes:
        """Data points of the rows, comma-separated from the ones before."""
        keys = self._keys
        items = [
            '{"timestamp":"'
            + self.timestamp(row[0])
            + '",'
            + ",".join(
                [
                    k + _text(v, "null")
                    for k, v in zip(keys, self.values(row), strict=True)
                ]
            )
            + "}"
            for row in rows
        ]
        if not items:
            return b""
        text = ",".join(items)
        if self.rows:
            text = "," + text
        self.rows += len(items)
        return text.encode()

    def finish(self) -> bytes:
        """Close data_points and the object."""
        return b"]}\n"


def make_writer(fmt: str, tier: Tier, meta: ExportMeta) -> ExportWriter:
    """The writer of a format ("csv" or "json")."""
    return (CsvExportWriter if fmt == "csv" else JsonExportWriter)(tier, meta)


def iter_export(
    writer: ExportWriter, batches: Iterable[Iterable[tuple[Any, ...]]]
) -> Iterable[bytes]:
    """A whole file from batches of rows, for synchronous callers."""
    yield writer.start()
    for batch in batches:
        if chunk := writer.write(batch):
            yield chunk
    yield writer.finish()


async def aiter_export(
    writer: ExportWriter, batches: AsyncIterable[Iterable[tuple[Any, ...]]]
) -> AsyncIterator[bytes]:
    """A whole file from an async stream of row batches (the store's query)."""
    yield writer.start()
    async for batch in batches:
        if chunk := writer.write(batch):
            yield chunk
    yield writer.finish()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(server_id: str, range_label: str, day: date, fmt: str) -> str:
    """`{server_id}-metrics-{range}-{YYYY-MM-DD}.{ext}` with nothing a header or a path could misread."""
    stem = _UNSAFE.sub(
        "_", f"{server_id}-metrics-{range_label}-{day.isoformat()}"
    ).lstrip(".")
    return f"{stem[:150]}.{FORMATS[fmt].extension}"


def content_disposition(filename: str) -> str:
    """An attachment header for a name made by safe_filename (quotes and line breaks cannot pass)."""
    return f'attachment; filename="{_UNSAFE.sub("_", filename)}"'
