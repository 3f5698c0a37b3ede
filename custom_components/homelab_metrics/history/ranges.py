"""Export ranges: which tier and window a range (or a custom start/end) reads, and retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum

from .metrics import Tier

DAY = 86_400

RETENTION_SECONDS: dict[Tier, int] = {
    Tier.RAW: 7 * DAY,
    Tier.HOURLY: 90 * DAY,
    Tier.DAILY: 400 * DAY,
}
"""How long each tier keeps its rows; the store prunes by it and custom windows choose by it."""

RESOLUTION: dict[Tier, str] = {Tier.RAW: "raw", Tier.HOURLY: "1h", Tier.DAILY: "1d"}


class ExportRange(StrEnum):
    """The ranges a user can pick."""

    LAST_24_HOURS = "24h"
    LAST_7_DAYS = "7d"
    LAST_30_DAYS = "30d"
    LAST_12_MONTHS = "12m"


_RANGES: dict[ExportRange, tuple[Tier, int]] = {
    ExportRange.LAST_24_HOURS: (Tier.RAW, DAY),
    ExportRange.LAST_7_DAYS: (Tier.HOURLY, 7 * DAY),
    ExportRange.LAST_30_DAYS: (Tier.HOURLY, 30 * DAY),
    ExportRange.LAST_12_MONTHS: (Tier.DAILY, 365 * DAY),
}


class InvalidWindow(ValueError):
    """A start/end pair that cannot be exported."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    """Rows of `tier` with start <= timestamp < end (epoch seconds)."""

    tier: Tier
    start: int
    end: int

    @property
    def resolution(self) -> str:
        """The resolution as exports name it: raw, 1h or 1d."""
        return RESOLUTION[self.tier]


def resolve(
    range_: ExportRange | None,
    *,
    now: int,
    start: int | None = None,
    end: int | None = None,
) -> Window:
    """The window of a range ending now (included), or the finest tier that holds a custom window.

    A range's window starts at the bucket holding now - length, so a 7-day export shows 7 full days
    of hours plus the current one.
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
    tier, length = _RANGES[ExportRange(range_)]
    first = now - length
    if tier is Tier.HOURLY:
        first -= first % 3600
    return Window(tier=tier, start=first, end=now + 1)


def parse_timestamp(text: str, default_tz: tzinfo) -> int:
    """Epoch seconds of an ISO 8601 time; one without an offset is in default_tz."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidWindow(f"{text!r} is not an ISO 8601 date and time") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    return int(moment.timestamp())
