"""What an export can be asked for: its ranges, formats, time zones and defaults (no Home Assistant).

This is the one list. services.yaml, the export selects, the button's default choice and the
dashboard card's RANGES and FORMATS repeat it, and tests check that they agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..history.metrics import Tier

DAY = 86_400


class ExportRange(StrEnum):
    """The ranges a user can pick."""

    LAST_24_HOURS = "24h"
    LAST_7_DAYS = "7d"
    LAST_30_DAYS = "30d"
    LAST_12_MONTHS = "12m"


@dataclass(frozen=True, kw_only=True, slots=True)
class RangeSpan:
    """The tier a range reads and how far back it reaches."""

    tier: Tier
    seconds: int


RANGE_SPANS: Final[dict[ExportRange, RangeSpan]] = {
    ExportRange.LAST_24_HOURS: RangeSpan(tier=Tier.RAW, seconds=DAY),
    ExportRange.LAST_7_DAYS: RangeSpan(tier=Tier.HOURLY, seconds=7 * DAY),
    ExportRange.LAST_30_DAYS: RangeSpan(tier=Tier.HOURLY, seconds=30 * DAY),
    # Twelve months are 365 days, leap year or not, so the length never depends on the date.
    ExportRange.LAST_12_MONTHS: RangeSpan(tier=Tier.DAILY, seconds=365 * DAY),
}

CUSTOM_RANGE: Final = "custom"
"""How a start/end window is named where a range would be (file name, responses)."""


class ExportFormat(StrEnum):
    """The file formats an export can have."""

    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, kw_only=True, slots=True)
class Format:
    """How a format's file is served and named."""

    content_type: str
    extension: str


FORMATS: Final[dict[ExportFormat, Format]] = {
    ExportFormat.CSV: Format(content_type="text/csv; charset=utf-8", extension="csv"),
    ExportFormat.JSON: Format(
        content_type="application/json; charset=utf-8", extension="json"
    ),
}


class ExportTimeZone(StrEnum):
    """The time zone of a file's timestamps: UTC, or Home Assistant's."""

    UTC = "utc"
    LOCAL = "local"


DEFAULT_RANGE: Final = ExportRange.LAST_24_HOURS
DEFAULT_FORMAT: Final = ExportFormat.CSV
DEFAULT_TIME_ZONE: Final = ExportTimeZone.UTC
