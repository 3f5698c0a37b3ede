"""The metrics the history keeps and the columns they become; the one list in code."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Tier(StrEnum):
    """History tiers, finest first."""

    RAW = "raw"
    HOURLY = "hourly"
    DAILY = "daily"


@dataclass(frozen=True, kw_only=True, slots=True)
class Metric:
    """A Sample field kept in the history, and the prefix of its aggregate columns."""

    key: str
    """Sample attribute, raw column name and SQL column stem."""
    prefix: str
    """Stem of the `_avg/_min/_max` export columns (HomelabCmd names the first three short)."""


METRICS: tuple[Metric, ...] = (
    Metric(key="cpu_percent", prefix="cpu"),
    Metric(key="memory_percent", prefix="memory"),
    Metric(key="disk_percent", prefix="disk"),
    Metric(key="load_1m", prefix="load_1m"),
    Metric(key="network_rx_bytes_per_second", prefix="network_rx_bytes_per_second"),
    Metric(key="network_tx_bytes_per_second", prefix="network_tx_bytes_per_second"),
    Metric(key="temperature_celsius", prefix="temperature_celsius"),
)

RAW_COLUMNS: tuple[str, ...] = ("timestamp", *(m.key for m in METRICS))
"""Export columns of the raw tier; rows are tuples in this order."""

AGGREGATE_COLUMNS: tuple[str, ...] = (
    "timestamp",
    *(f"{m.prefix}_{stat}" for m in METRICS for stat in ("avg", "min", "max")),
    "samples",
)
"""Export columns of the hourly and daily tiers; rows are tuples in this order."""


def columns_for(tier: Tier) -> tuple[str, ...]:
    """Column names of a tier's rows."""
    return RAW_COLUMNS if tier is Tier.RAW else AGGREGATE_COLUMNS
