"""Range resolution: which tier and window each range and custom window reads (no Home Assistant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custom_components.homelab_metrics.export.choices import ExportRange
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.ranges import (
    RETENTION_SECONDS,
    InvalidWindow,
    parse_timestamp,
    resolve,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW_DT = datetime(2025, 11, 24, 16, 20, 34, tzinfo=UTC)
NOW = int(NOW_DT.timestamp())
DAY = timedelta(days=1)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def test_retention_is_the_designed_one() -> None:
    """Raw 7 days, hourly 90 days, daily 400 days (DESIGN.md), in one table the store prunes by."""
    assert RETENTION_SECONDS == {
        Tier.RAW: 7 * 24 * 3600,
        Tier.HOURLY: 90 * 24 * 3600,
        Tier.DAILY: 400 * 24 * 3600,
    }


@pytest.mark.parametrize(
    ("range_", "tier", "resolution", "expected_start"),
    [
        ("24h", Tier.RAW, "raw", NOW_DT - DAY),
        # Hourly ranges start at the UTC hour holding now - length.
        ("7d", Tier.HOURLY, "1h", (NOW_DT - 7 * DAY).replace(minute=0, second=0)),
        ("30d", Tier.HOURLY, "1h", (NOW_DT - 30 * DAY).replace(minute=0, second=0)),
        # 12 months are 365 days; the daily bucket holding that moment starts at midnight.
        ("12m", Tier.DAILY, "1d", datetime(2024, 11, 24, tzinfo=UTC)),
    ],
)
def test_range_windows(
    range_: str, tier: Tier, resolution: str, expected_start: datetime
) -> None:
    window = resolve(ExportRange(range_), now=NOW)
    assert window.tier is tier
    assert window.resolution == resolution
    assert window.start == epoch(expected_start)
    # The store's query excludes its end: a poll stamped exactly now is in the file.
    assert window.end == NOW + 1
    # A plain string (as a service call gives it) resolves the same.
    assert resolve(range_, now=NOW) == window


def test_range_holds_every_bucket_of_its_length() -> None:
    """The first bucket of each aggregate range holds now - length; nothing older is read."""
    for range_, length in (("7d", 7), ("30d", 30)):
        window = resolve(range_, now=NOW)
        assert window.start <= NOW - length * 86400 < window.start + 3600
        assert window.start % 3600 == 0
    window = resolve("12m", now=NOW)
    assert window.start <= NOW - 365 * 86400 < window.start + 86400


def test_12m_starts_at_local_midnight_on_a_dst_day() -> None:
    """Daily buckets follow the store's time zone; the 25-hour day starts at +02:00."""
    now = epoch(datetime(2026, 10, 26, 12, 0, tzinfo=UTC))
    window = resolve("12m", now=now, tz=BERLIN)
    first = datetime.fromtimestamp(window.start, BERLIN)
    assert (first.date().isoformat(), first.hour, first.minute) == ("2025-10-26", 0, 0)
    assert first.isoformat() == "2025-10-26T00:00:00+02:00"
    assert window.start == epoch(datetime(2025, 10, 25, 22, 0, tzinfo=UTC))
    # West of UTC the local day starts later than the UTC one.
    new_york = ZoneInfo("America/New_York")
    window = resolve("12m", now=NOW, tz=new_york)
    assert datetime.fromtimestamp(window.start, new_york).isoformat() == (
        "2024-11-24T00:00:00-05:00"
    )


@pytest.mark.parametrize(
    ("age", "tier"),
    [
        (timedelta(hours=1), Tier.RAW),
        (timedelta(days=7), Tier.RAW),
        (timedelta(days=7, seconds=1), Tier.HOURLY),
        (timedelta(days=90), Tier.HOURLY),
        (timedelta(days=90, seconds=1), Tier.DAILY),
        (timedelta(days=400), Tier.DAILY),
        # Older than every tier keeps: still the daily tier, which holds what is left.
        (timedelta(days=400, seconds=1), Tier.DAILY),
        (timedelta(days=4000), Tier.DAILY),
    ],
)
def test_custom_window_picks_finest_tier_holding_it(age: timedelta, tier: Tier) -> None:
    start = epoch(NOW_DT - age)
    end = start + 600
    window = resolve(None, now=NOW, start=start, end=end)
    assert window.tier is tier
    # A custom window is read exactly as given, not widened to buckets.
    assert (window.start, window.end) == (start, end)


def test_custom_window_wins_over_range() -> None:
    start, end = NOW - 3600, NOW
    window = resolve(ExportRange.LAST_12_MONTHS, now=NOW, start=start, end=end)
    assert (window.tier, window.start, window.end) == (Tier.RAW, start, end)


def test_custom_window_in_the_future_is_raw_and_exact() -> None:
    window = resolve(None, now=NOW, start=NOW + 60, end=NOW + 120)
    assert (window.tier, window.start, window.end) == (Tier.RAW, NOW + 60, NOW + 120)


@pytest.mark.parametrize(
    ("range_", "start", "end", "message"),
    [
        (None, NOW, NOW, "before"),
        (None, NOW, NOW - 1, "before"),
        (None, NOW, None, "both"),
        (None, None, NOW, "both"),
        ("24h", None, NOW, "both"),
        (None, None, None, "range"),
        ("1y", None, None, "unknown range"),
        ("", None, None, "unknown range"),
    ],
)
def test_invalid_windows(
    range_: str | None, start: int | None, end: int | None, message: str
) -> None:
    with pytest.raises(InvalidWindow, match=message) as raised:
        resolve(range_, now=NOW, start=start, end=end)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-24T16:00:00Z", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        ("2025-11-24t16:00:00z", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        ("  2025-11-24T16:00:00+00:00 ", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        # An offset wins over the default zone.
        ("2025-11-24T17:00:00+01:00", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        ("2025-11-24T11:00:00-05:00", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        # Without an offset: Berlin time, winter and summer.
        ("2025-11-24T17:00:00", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        ("2025-07-01 12:00", datetime(2025, 7, 1, 10, tzinfo=UTC)),
        # A date alone is local midnight.
        ("2025-11-24", datetime(2025, 11, 23, 23, tzinfo=UTC)),
        # The hour the autumn change repeats: its first occurrence (+02:00).
        ("2025-10-26T02:30:00", datetime(2025, 10, 26, 0, 30, tzinfo=UTC)),
        # The hour the spring change skips: read with the winter offset.
        ("2025-03-30T02:30:00", datetime(2025, 3, 30, 1, 30, tzinfo=UTC)),
        # Fractions of a second fall to the second they are in.
        ("2025-11-24T16:00:00.999Z", datetime(2025, 11, 24, 16, tzinfo=UTC)),
        ("1969-12-31T23:59:59.5Z", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    assert parse_timestamp(text, BERLIN) == epoch(expected)


def test_parse_timestamp_naive_follows_given_zone() -> None:
    text = "2025-11-24T16:00:00"
    assert parse_timestamp(text, UTC) - parse_timestamp(text, BERLIN) == 3600


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "",
        "   ",
        "2025-13-01T00:00:00Z",
        "1764000000",
        "2025-11-24T25:00",
        "2" * 500,
    ],
)
def test_parse_timestamp_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidWindow, match="ISO 8601") as raised:
        parse_timestamp(text, UTC)
    # The message stays short, whatever was sent.
    assert len(str(raised.value)) < 120


def test_parse_timestamp_rejects_non_text() -> None:
    with pytest.raises(InvalidWindow):
        parse_timestamp(1764000000, UTC)  # type: ignore[arg-type]
