"""Importing Prometheus nodes' past: raw then hourly, through the store's tiers, resumable, never twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
import logging
import sqlite3
from typing import Any
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from custom_components.homelab_metrics.agents.prometheus import (
    FieldStats,
    HourBucket,
    ImportChunk,
)
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history.store import HistoryStore
from custom_components.homelab_metrics.history_import import STORAGE_KEY
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import (
    NOW,
    async_add_prometheus,
    async_next_poll,
    make_prometheus_entry,
    node_options,
)

HOUR = 3600
DAY = 86400
UNTIL = NOW
"""When the nodes were added: their past before it is imported."""
OLDEST = UNTIL - 10 * DAY
"""The oldest hour the Prometheus server holds of each node."""
RAW_ROWS = 7 * DAY // 60
"""Raw samples of 7 days at the 60 s scan interval."""


class Past:
    """What the Prometheus server holds of each node: 10 days, answered chunk by chunk."""

    def __init__(self, client: MagicMock) -> None:
        """Answer the client's oldest and import calls."""
        self.requests: list[tuple[str, ImportChunk]] = []
        self.fail: dict[int, Exception] = {}
        """Request number → the error it raises (once)."""
        self.hold_at: int | None = None
        self.held = asyncio.Event()
        self.raised = asyncio.Event()
        """Set when a request raised its error from `fail`."""
        client.async_oldest.side_effect = self.oldest
        client.async_import_chunk.side_effect = self.chunk

    async def oldest(self, instance: str, now: int, max_days: int = 90) -> int | None:
        return OLDEST if instance != "10.0.0.2:9100" or not self.beta_empty else None

    beta_empty = False

    async def chunk(
        self,
        instance: str,
        chunk: ImportChunk,
        *,
        step: int,
        window: int,
        fields: Sequence[str],
    ) -> list[Sample] | list[HourBucket]:
        number = len(self.requests)
        if number == self.hold_at:
            self.held.set()
            await (
                asyncio.Event().wait()
            )  # until the entry unloads and cancels the import
        if (error := self.fail.pop(number, None)) is not None:
            self.raised.set()
            raise error
        self.requests.append((instance, chunk))
        assert step == 60 and window == 60 and "cpu_percent" in fields
        if chunk.tier == "raw":
            return [
                Sample(timestamp=ts, cpu_percent=float(ts % 97), memory_percent=40.0)
                for ts in range(chunk.start, chunk.end, step)
            ]
        return [
            HourBucket(
                timestamp=hour,
                samples=60,
                fields={
                    "cpu_percent": FieldStats(avg=20.0, min=5.0, max=90.0, count=60)
                },
            )
            for hour in range(chunk.start, chunk.end, HOUR)
        ]


def _entry(*nodes: str) -> MockConfigEntry:
    """A Prometheus server's entry whose nodes (alpha, beta) were added at UNTIL with an import."""
    chosen = [
        (instance, name, name)
        for instance, name in (("10.0.0.1:9100", "alpha"), ("10.0.0.2:9100", "beta"))
        if name in nodes
    ]
    others = ["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:9100"]
    options = node_options(
        *chosen,
        import_history=True,
        ignored=[i for i in others if i not in {c[0] for c in chosen}],
    )
    for node in options["nodes"].values():
        node["import_until"] = UNTIL
    return make_prometheus_entry(options)


async def _rows(
    hass: HomeAssistant, server_id: str, tier: Tier
) -> list[tuple[Any, ...]]:
    store = get_history(hass).store
    assert store is not None
    return [
        row
        async for batch in store.async_query(
            server_id, tier, 0, NOW + DAY, now=NOW + 60
        )
        for row in batch
    ]


async def test_a_nodes_past_raw_then_hourly(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """7 days of raw samples before the node was added, then hourly buckets back to its oldest data."""
    caplog.set_level(logging.INFO)
    past = Past(mock_prometheus)
    entry = await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    tiers = [chunk.tier for _, chunk in past.requests]
    assert tiers == ["raw"] * 14 + ["hourly"] * 2  # 12 h and 48 h per request
    raw = await _rows(hass, "alpha", Tier.RAW)
    imported = [row for row in raw if row[0] < UNTIL]
    assert len(imported) == RAW_ROWS
    assert imported[0][0] == UNTIL - 7 * DAY and imported[-1][0] == UNTIL - 60
    # The live polls begin where the import ends: nothing overlaps.
    assert [row[0] for row in raw if row[0] >= UNTIL] == [NOW + 30]
    hours = await _rows(hass, "alpha", Tier.HOURLY)
    old = [row for row in hours if row[0] < UNTIL - 7 * DAY]
    assert len(old) == 3 * 24 and old[0][0] == OLDEST
    assert old[0][1:4] == (20.0, 5.0, 90.0)
    state = hass.states.get("sensor.192_168_1_5_9090_history_import")
    assert state is not None and state.state == "100.0"
    assert (
        "Importing the history of 1 node(s) from 192.168.1.5:9090: 16 requests"
        in caplog.text
    )
    steps = [r.message for r in caplog.records if " %" in r.message]
    assert [m.split(": ")[1].split(" ")[0] for m in steps] == [
        str(10 * n) for n in range(1, 11)
    ]
    assert "History import from 192.168.1.5:9090 finished" in caplog.text
    assert entry.runtime_data.importer is not None


async def test_imported_hours_and_raw_samples_roll_up_into_days(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """The store's rollup makes the days of both, as it does for polled samples."""
    Past(mock_prometheus)
    await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    store = get_history(hass).store
    assert store is not None
    await store.async_rollup(NOW + 60)
    days = await _rows(hass, "alpha", Tier.DAILY)
    assert len(days) >= 10
    oldest_day = days[0]
    assert oldest_day[1] == pytest.approx(20.0)  # a day of imported hours
    raw_day = next(row for row in days if UNTIL - 3 * DAY <= row[0] < UNTIL - 2 * DAY)
    assert raw_day[-1] == 24 * 60  # a day of imported raw samples, one per minute


async def test_an_interrupted_import_resumes_without_duplicates(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Unloaded after 5 requests, then started again: the rest is asked for, nothing twice."""
    past = Past(mock_prometheus)
    past.hold_at = 5
    entry = await async_add_prometheus(hass, freezer, _entry("alpha"))
    await past.held.wait()
    state = hass.states.get("sensor.192_168_1_5_9090_history_import")
    assert state is not None and float(state.state) == pytest.approx(
        100 * 5 / 16, abs=0.1
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    record = hass_storage[STORAGE_KEY]["data"]["alpha"]
    assert record == {"until": UNTIL, "next": UNTIL - 5 * 12 * HOUR, "done": False}

    past.hold_at = None
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    chunks = [chunk for _, chunk in past.requests]
    assert len(chunks) == 16
    assert chunks[5].end == UNTIL - 5 * 12 * HOUR  # resumed where the progress said
    assert len(
        [row for row in await _rows(hass, "alpha", Tier.RAW) if row[0] < UNTIL]
    ) == (RAW_ROWS)
    assert hass_storage[STORAGE_KEY]["data"]["alpha"]["done"] is True

    # Done is done: another start asks for nothing.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(past.requests) == 16


async def test_progress_lost_means_rows_written_again_not_twice(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Without its progress (a crash before it was saved), the import runs again: same rows."""
    past = Past(mock_prometheus)
    entry = await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    before = (
        await _rows(hass, "alpha", Tier.RAW),
        await _rows(hass, "alpha", Tier.HOURLY),
    )
    del hass_storage[STORAGE_KEY]
    hass.data.pop("homelab_metrics_imports")
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(past.requests) == 32
    after = (
        await _rows(hass, "alpha", Tier.RAW),
        await _rows(hass, "alpha", Tier.HOURLY),
    )
    assert [row[0] for row in after[0] if row[0] < UNTIL] == [
        row[0] for row in before[0] if row[0] < UNTIL
    ]
    assert after[1] == before[1]


async def test_the_import_waits_for_the_server(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Unreachable mid-import: the import waits for the next poll that reaches the server."""
    past = Past(mock_prometheus)
    past.fail = {3: CannotConnect("refused")}
    await async_add_prometheus(hass, freezer, _entry("alpha"))
    # The import runs in the background: wait until the server has failed it.
    await asyncio.wait_for(past.raised.wait(), 10)
    await hass.async_block_till_done()
    assert len(past.requests) == 3
    await async_next_poll(hass, freezer)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(past.requests) == 16


async def test_a_chunk_the_server_refuses_is_skipped_with_a_warning(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request refused (too many points, a query timeout) is named in the log; the rest goes on."""
    past = Past(mock_prometheus)
    past.fail = {15: InvalidResponse("query timed out")}
    await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert len(past.requests) == 15
    assert "History import of alpha from 192.168.1.5:9090 skips" in caplog.text
    assert "query timed out" in caplog.text
    hours = await _rows(hass, "alpha", Tier.HOURLY)
    assert len([row for row in hours if row[0] < UNTIL - 7 * DAY]) == 48


async def test_refused_credentials_stop_the_import(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    hass_storage: dict[str, Any],
) -> None:
    """401 during the import: it stops, says so, and keeps its progress for the next start."""
    past = Past(mock_prometheus)
    past.fail = {4: InvalidAuth("401")}
    await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "stopped: the server refused the credentials" in caplog.text
    assert hass_storage[STORAGE_KEY]["data"]["alpha"]["next"] == UNTIL - 4 * 12 * HOUR


async def test_nodes_one_after_the_other_and_one_without_data(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """Two nodes are imported in turn; one the server holds nothing of asks for no chunk."""
    past = Past(mock_prometheus)
    past.beta_empty = True
    await async_add_prometheus(hass, freezer, _entry("alpha", "beta"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert {instance for instance, _ in past.requests} == {"10.0.0.1:9100"}
    assert [
        row for row in await _rows(hass, "beta", Tier.HOURLY) if row[0] < UNTIL
    ] == []


async def test_a_removed_node_forgets_its_import(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
) -> None:
    """Deleting the entry drops its nodes' progress with their history."""
    Past(mock_prometheus)
    entry = await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "alpha" in hass_storage[STORAGE_KEY]["data"]
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert "alpha" not in hass_storage[STORAGE_KEY]["data"]


async def test_a_node_whose_oldest_data_cannot_be_found_waits(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    hass_storage: dict[str, Any],
) -> None:
    """The first question refused: that node is left for the next start, the others go on."""
    past = Past(mock_prometheus)
    oldest = past.oldest

    async def refuse_beta(instance: str, now: int, max_days: int = 90) -> int | None:
        if instance == "10.0.0.2:9100":
            raise InvalidResponse("bad_data")
        return await oldest(instance, now, max_days)

    mock_prometheus.async_oldest.side_effect = refuse_beta
    await async_add_prometheus(hass, freezer, _entry("alpha", "beta"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "History import of beta from 192.168.1.5:9090 waits" in caplog.text
    assert len(past.requests) == 16
    assert "beta" not in hass_storage[STORAGE_KEY]["data"]


async def test_a_history_that_cannot_be_written_stops_the_import(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    hass_storage: dict[str, Any],
) -> None:
    """A full disk (say): the import stops and says so, to resume at the next start."""
    past = Past(mock_prometheus)

    async def full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(HistoryStore, "async_import_raw", full)
    await async_add_prometheus(hass, freezer, _entry("alpha"))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "stopped: the history database could not be written" in caplog.text
    assert len(past.requests) == 1
    assert "alpha" not in hass_storage.get(STORAGE_KEY, {}).get("data", {})
