"""Daily buckets: local calendar days of the store's time zone, 23 or 25 hours on DST days.

A day holds the UTC hours that start within it; in zones with a half-hour offset the hour that
straddles midnight belongs to the day it starts in, so a day's rollup waits for that hour to end.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from .ranges import HOUR


def local_day(ts: int, tz: ZoneInfo) -> tuple[int, int]:
    """Start and end (epoch seconds) of the calendar day in tz holding ts."""
    day = datetime.fromtimestamp(ts, tz).date()
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return int(start.timestamp()), int(end.timestamp())


class LocalDays:
    """The daily bucket of each hourly bucket, in one time zone (one thread's; not thread-safe)."""

    def __init__(self, tz: ZoneInfo) -> None:
        """Days of `tz`."""
        self.tz = tz
        # Consecutive samples fall in the same day: remember the last one.
        self._cache = (0, 0)

    def of_hour(self, hour: int) -> tuple[int, int]:
        """The day an hour (its start) belongs to: the day's start, and the end of its last hour."""
        start, end = self._cache
        if start <= hour < end:
            return start, end
        start, midnight = local_day(hour, self.tz)
        # The first whole-hour boundary at or after the next local midnight.
        end = midnight + (-midnight) % HOUR
        self._cache = (start, end)
        return start, end
