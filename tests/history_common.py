"""What the history store tests share: time constants and a query that joins its batches."""

from __future__ import annotations

from typing import Any

from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import HistoryStore

HOUR = 3600
DAY = 86400
T0 = 1_764_000_000  # 2025-11-24T16:00:00Z, hour-aligned

type Row = tuple[Any, ...]


async def rows(
    store: HistoryStore,
    tier: Tier,
    start: int,
    end: int,
    server: str = "a",
    **kw: Any,
) -> list[Row]:
    """Every row a query yields, batches joined."""
    return [
        r
        async for batch in store.async_query(server, tier, start, end, **kw)
        for r in batch
    ]
