"""The past of Prometheus nodes, imported into the history in the background: resumable, never twice.

A node added with "import its history" gets, before the moment it was added (`import_until`), raw
samples at the scan interval for the last 7 days and hourly buckets for the older hours the
Prometheus server still holds, up to 90 days (`plan_import`). Each request's rows are written in
one transaction through the store's own tiers (raw rows roll up into hours and days as polled ones
do; imported hours make their days), and the rows are keyed by time, so a request done twice
changes nothing.

Progress survives restarts: after a request's rows are committed, the node's progress (the start
of the oldest span done) is kept in Home Assistant's storage (`.storage/homelab_metrics.imports`),
at most every PROGRESS_SAVE_SECONDS, after each node and when the import stops. A restart resumes
from there; what was written after the last save is simply written again.

One entry imports one request at a time, node after node, so the Prometheus server answers one
query of ours at a time besides the polls. The log tells the start, every tenth of the way and
the end; the Prometheus server's device has a "History import" sensor meanwhile. When the server
cannot be reached, the import waits for the next poll that reaches it.

Why one module of about 400 lines: planning, progress storage, the request loop and the
sensor's state are one resumable job; split, its resume logic would be spread over files.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from functools import partial
import logging
import sqlite3
import time
from typing import TypedDict

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util.hass_dict import HassKey

from .agents.base import CannotConnect, InvalidAuth, InvalidResponse, Sample
from .agents.prometheus import (
    HourBucket,
    ImportChunk,
    PrometheusClient,
    plan_import,
    suggest_rate_window,
)
from .const import CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL, DOMAIN
from .coordinator import HomelabConfigEntry, PrometheusCoordinator, configured_servers
from .history.metrics import METRICS
from .history.store import StoreClosedError
from .history_manager import get_history

_LOGGER = logging.getLogger(__name__)

STORAGE_KEY = f"{DOMAIN}.imports"
STORAGE_VERSION = 1
PROGRESS_SAVE_SECONDS = 30
"""Seconds between two saves of the progress while a node is imported."""
HISTORY_FIELDS = tuple(metric.key for metric in METRICS)
"""The fields an hourly bucket is asked for: those the history keeps."""

PROGRESS: HassKey[ImportProgress] = HassKey(f"{DOMAIN}_imports")


class Record(TypedDict):
    """How far one node's import has come."""

    until: int
    """The node's import_until: a record of another import of the same server id is not this one's."""
    next: int
    """Everything from here to `until` is imported."""
    done: bool


class ImportProgress:
    """Each node's import progress by server id, kept in Home Assistant's storage."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing is read until the first use."""
        self._store: Store[dict[str, Record]] = Store(
            hass, STORAGE_VERSION, STORAGE_KEY
        )
        self._records: dict[str, Record] | None = None
        self._lock = asyncio.Lock()

    async def async_get(self, server_id: str, until: int) -> Record | None:
        """The progress of this import of the server, or None when it has not begun."""
        records = await self._async_records()
        record = records.get(server_id)
        return record if record is not None and record["until"] == until else None

    async def async_set(self, server_id: str, record: Record, *, save: bool) -> None:
        """Note a node's progress; write the file now when save is set."""
        (await self._async_records())[server_id] = record
        if save:
            await self.async_save()

    async def async_save(self) -> None:
        """Write every record."""
        async with self._lock:
            await self._store.async_save(dict(await self._async_records()))

    async def async_forget(self, server_ids: Collection[str]) -> None:
        """Drop the progress of removed servers."""
        records = await self._async_records()
        if any(records.pop(server_id, None) is not None for server_id in server_ids):
            await self.async_save()

    async def _async_records(self) -> dict[str, Record]:
        if self._records is None:
            self._records = dict(await self._store.async_load() or {})
        return self._records


@callback
def get_progress(hass: HomeAssistant) -> ImportProgress:
    """The one progress store, created on first use."""
    if (progress := hass.data.get(PROGRESS)) is None:
        progress = hass.data[PROGRESS] = ImportProgress(hass)
    return progress


async def async_forget_imports(
    hass: HomeAssistant, server_ids: Collection[str]
) -> None:
    """Drop the import progress of removed servers."""
    await get_progress(hass).async_forget(server_ids)


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeImport:
    """One node to import: which, from when, at which step, with which rate window."""

    server_id: str
    name: str
    instance: str
    until: int
    step: int
    window: int


class _Stop(Exception):
    """The import cannot go on now (no history, credentials refused); the next setup resumes it."""


class HistoryImporter:
    """Imports the pending nodes of one Prometheus server's entry, one request at a time."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        title: str,
        client: PrometheusClient,
        nodes: list[NodeImport],
        wait_for_server: Callable[[], Awaitable[None]],
    ) -> None:
        """Import `nodes` through `client`; `wait_for_server` resolves once a poll reaches it again."""
        self._hass = hass
        self._title = title
        self._client = client
        self._nodes = nodes
        self._wait_for_server = wait_for_server
        self._listeners: list[CALLBACK_TYPE] = []
        self.total = 0
        """Requests of the whole import (known once every node is planned)."""
        self.done = 0
        """Requests done."""
        self._tenths = 0
        self.running = bool(nodes)

    @property
    def percent(self) -> float:
        """How far the import has come, 0 to 100 (100 with nothing to import)."""
        if not self.running:
            return 100.0
        return 0.0 if not self.total else round(100 * self.done / self.total, 1)

    @callback
    def async_add_listener(self, listener: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call listener whenever the progress moves; returns its removal."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    async def async_run(self) -> None:
        """Import every pending node; on unload the task is cancelled and the progress kept."""
        progress = get_progress(self._hass)
        started = time.monotonic()
        try:
            plans = [
                (node, chunks)
                for node in self._nodes
                if (chunks := await self._async_plan(node)) is not None
            ]
            self.total = sum(len(chunks) for _, chunks in plans)
            self._changed()
            _LOGGER.info(
                "Importing the history of %s node(s) from %s: %s requests",
                len(plans),
                self._title,
                self.total,
            )
            for node, chunks in plans:
                await self._async_import_node(node, chunks, progress)
                await progress.async_save()
        except _Stop as err:
            _LOGGER.warning(
                "History import from %s stopped: %s; it resumes at the next start",
                self._title,
                err,
            )
            return
        finally:
            await progress.async_save()
        self.running = False
        self._changed()
        _LOGGER.info(
            "History import from %s finished in %.0f s",
            self._title,
            time.monotonic() - started,
        )

    async def _async_plan(self, node: NodeImport) -> list[ImportChunk] | None:
        """The requests still to do for a node, newest first; None to leave it for the next start."""
        progress = get_progress(self._hass)
        record = await progress.async_get(node.server_id, node.until)
        if record is not None and record["done"]:
            return []
        try:
            oldest = await self._async_call(
                partial(self._client.async_oldest, node.instance, node.until)
            )
        except InvalidResponse as err:
            _LOGGER.warning(
                "History import of %s from %s waits for the next start: %s",
                node.name,
                self._title,
                err,
            )
            return None
        if oldest is None:
            await progress.async_set(
                node.server_id,
                Record(until=node.until, next=node.until, done=True),
                save=False,
            )
            return []
        chunks = plan_import(now=node.until, step=node.step, oldest=oldest)
        resume = node.until if record is None else record["next"]
        return [
            ImportChunk(tier=chunk.tier, start=chunk.start, end=min(chunk.end, resume))
            for chunk in chunks
            if chunk.start < resume
        ]

    async def _async_import_node(
        self, node: NodeImport, chunks: list[ImportChunk], progress: ImportProgress
    ) -> None:
        """Import a node's requests in order, noting the progress after each one is committed."""
        saved = time.monotonic()
        for chunk in chunks:
            try:
                rows = await self._async_call(
                    partial(
                        self._client.async_import_chunk,
                        node.instance,
                        chunk,
                        step=node.step,
                        window=node.window,
                        fields=HISTORY_FIELDS,
                    )
                )
            except InvalidResponse as err:
                # Retrying would fail the same way and hold up every older hour.
                _LOGGER.warning(
                    "History import of %s from %s skips %s to %s: %s",
                    node.name,
                    self._title,
                    _utc(chunk.start),
                    _utc(chunk.end),
                    err,
                )
                rows = []
            await self._async_write(node.server_id, chunk, rows)
            self.done += 1
            if (tenths := 10 * self.done // self.total) > self._tenths:
                self._tenths = tenths
                _LOGGER.info(
                    "History import from %s: %s %% (%s back to %s)",
                    self._title,
                    10 * tenths,
                    node.name,
                    _utc(chunk.start),
                )
            now = time.monotonic()
            await progress.async_set(
                node.server_id,
                Record(until=node.until, next=chunk.start, done=False),
                save=now - saved >= PROGRESS_SAVE_SECONDS,
            )
            if now - saved >= PROGRESS_SAVE_SECONDS:
                saved = now
            self._changed()
        await progress.async_set(
            node.server_id,
            Record(
                until=node.until,
                next=chunks[-1].start if chunks else node.until,
                done=True,
            ),
            save=False,
        )

    async def _async_write(
        self, server_id: str, chunk: ImportChunk, rows: list[Sample] | list[HourBucket]
    ) -> None:
        """Commit one request's rows; _Stop when the history is closed."""
        store = get_history(self._hass).store
        if store is None:
            raise _Stop("the history database is not open")
        try:
            if chunk.tier == "raw":
                await store.async_import_raw(
                    server_id, [row for row in rows if isinstance(row, Sample)]
                )
            else:
                await store.async_import_hourly(
                    server_id, [row for row in rows if isinstance(row, HourBucket)]
                )
        except StoreClosedError as err:
            raise _Stop("the history database was closed") from err
        except sqlite3.Error as err:
            raise _Stop(f"the history database could not be written ({err})") from err

    async def _async_call[T](self, request: Callable[[], Awaitable[T]]) -> T:
        """A request to the server; while it cannot be reached, wait for a poll that reaches it."""
        while True:
            try:
                result = await request()
            except CannotConnect as err:
                _LOGGER.debug("History import from %s waits: %s", self._title, err)
                await self._wait_for_server()
                continue
            except InvalidAuth as err:
                raise _Stop("the server refused the credentials") from err
            return result


def _utc(ts: int) -> str:
    """A time for the log."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


@callback
def async_start_imports(
    hass: HomeAssistant, entry: HomelabConfigEntry, coordinator: PrometheusCoordinator
) -> HistoryImporter | None:
    """Start importing the entry's nodes that have an import, in a background task of the entry.

    None when no node of the entry was ever added with an import. The task ends with the
    entry (unload, reload, shutdown); the progress is kept for the next start.
    """
    step = int(entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL))
    nodes = []
    for config in configured_servers(entry).values():
        if config.instance is None or config.import_until is None:
            continue
        node = coordinator.nodes.get(config.instance)
        nodes.append(
            NodeImport(
                server_id=config.server_id,
                name=config.name,
                instance=config.instance,
                until=config.import_until,
                step=step,
                window=suggest_rate_window(
                    step, node.scrape_interval if node is not None else None
                ),
            )
        )
    if not nodes:
        return None

    async def wait_for_server() -> None:
        """Until a poll reaches the server again."""
        reached: asyncio.Future[None] = hass.loop.create_future()

        @callback
        def _updated() -> None:
            if coordinator.last_update_success and not reached.done():
                reached.set_result(None)

        remove = coordinator.async_add_listener(_updated)
        try:
            await reached
        finally:
            remove()

    importer = HistoryImporter(
        hass,
        title=entry.title,
        client=coordinator.client,
        nodes=nodes,
        wait_for_server=wait_for_server,
    )
    entry.async_create_background_task(
        hass, importer.async_run(), f"{DOMAIN} history import {entry.title}"
    )
    return importer
