"""Export ranges: which tier and window a range (or a custom start/end) reads, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from math import floor

from ..export.choices import RANGE_SPANS, ExportRange
from .metrics import Tier

HOUR = 3_600
DAY = 86_400

RETENTION_SECONDS: dict[Tier, int] = {
    Tier.RAW: 7 * DAY,
    Tier.HOURLY: 90 * DAY,
    Tier.DAILY: 400 * DAY,
}
"""How long each tier keeps its rows; the store prunes by it and custom windows choose by it."""

RESOLUTION: dict[Tier, str] = {Tier.RAW: "raw", Tier.HOURLY: "1h", Tier.DAILY: "1d"}
"""How exports name a tier's resolution: each poll, one hour, one day."""


_MAX_TIMESTAMP_TEXT = 64
"""Longer than any ISO 8601 time; longer text is refused without being parsed or echoed."""


class InvalidWindow(ValueError):
    """A range or start/end pair that cannot be exported; the message says why."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    """Rows of `tier` with start <= timestamp < end (epoch seconds, the store's query)."""

    tier: Tier
    start: int
    end: int

    @property
    def resolution(self) -> str:
        """The resolution as exports name it: raw, 1h or 1d."""
        return RESOLUTION[self.tier]


def resolve(
    range_: ExportRange | str | None,
    *,
    now: int,
    start: int | None = None,
    end: int | None = None,
    tz: tzinfo = UTC,
) -> Window:
    """The window of a range up to now (included), or the finest tier that holds a custom window.

    A range's window starts at the bucket holding `now - length`, so "7d" holds 7 full days of
    hours plus the hour in progress, and "12m" 365 days plus today. Daily buckets start at local
    midnight: pass the time zone the store's daily buckets follow as `tz`. `end` is `now + 1`
    because the store's query excludes its end and a poll stamped `now` belongs in the file.

    A custom window (`start` and `end`, which win over `range_`) is read exactly as given, from
    the finest tier whose retention still reaches back to `start`; older than every retention,
    it is the daily tier (which holds what is left).
    """
    if start is not None or end is not None:
        if start is None or end is None:
            raise InvalidWindow("give both start and end")
        if start >= end:
            raise InvalidWindow("start must be before end")
        for tier in Tier:
            if start >= now - RETENTION_SECONDS[tier]:
                return Window(tier=tier, start=start, end=end)
        return Window(tier=Tier.DAILY, start=start, end=end)
    if range_ is None:
        raise InvalidWindow("give a range or a start and end")
    try:
        span = RANGE_SPANS[ExportRange(range_)]
    except ValueError as err:
        choices = ", ".join(ExportRange)
        raise InvalidWindow(f"unknown range {range_!r} (one of {choices})") from err
    tier, length = span.tier, span.seconds
    first = now - length
    if tier is Tier.HOURLY:
        first -= first % HOUR
    elif tier is Tier.DAILY:
        first = _day_start(first, tz)
    return Window(tier=tier, start=first, end=now + 1)


def _day_start(ts: int, tz: tzinfo) -> int:
    """Epoch seconds of the local midnight that starts the day holding ts (as the store buckets)."""
    day = datetime.fromtimestamp(ts, tz).date()
    return int(datetime.combine(day, time(0), tz).timestamp())


def parse_timestamp(text: str, tz: tzinfo) -> int:
    """Epoch seconds of an ISO 8601 time; one without an offset (or a date alone) is in `tz`.

    "Z" or an offset wins over `tz`. A local time that a DST change repeats is its first
    occurrence; one that it skips is read with the offset from before the change.
    """
    if not isinstance(text, str) or len(text) > _MAX_TIMESTAMP_TEXT:
        raise InvalidWindow("expected an ISO 8601 date and time")
    # RFC 3339 allows a lower-case "t" and "z", which fromisoformat does not take.
    cleaned = text.strip().upper()
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as err:
        raise InvalidWindow(f"{text!r} is not an ISO 8601 date and time") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return floor(moment.timestamp())
