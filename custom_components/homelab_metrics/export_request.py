"""The export request layer: one request, however it arrives (view, action, button).

A request is checked and resolved into an ExportPlan, which is then streamed, counted, saved or
turned into data points, always from the history store and always ending in translated errors.

Why one module of about 400 lines: the three ways in (view, action, button) must check and
resolve a request identically, and keeping the checks, the plan and its uses together is what
keeps them from drifting apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator
import contextlib
from dataclasses import dataclass
from datetime import tzinfo
from http import HTTPStatus
import os
from pathlib import Path
import sqlite3
from tempfile import mkstemp
from typing import Any, BinaryIO
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from homeassistant.components.http.auth import async_sign_path
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from .const import DOMAIN, EXPORT_DIR, SIGNED_URL_VALIDITY
from .coordinator import configured_servers, server_name
from .export.choices import (
    CUSTOM_RANGE,
    DEFAULT_FORMAT,
    DEFAULT_RANGE,
    DEFAULT_TIME_ZONE,
    ExportFormat,
    ExportRange,
    ExportTimeZone,
)
from .export.writers import (
    ExportMeta,
    ExportWriter,
    JsonExportWriter,
    make_writer,
    safe_filename,
)
from .history.metrics import Tier
from .history.ranges import InvalidWindow, Window, parse_timestamp, resolve
from .history.store import HistoryStore, StoreClosedError
from .history_manager import get_history

EXPORT_URL = "/api/homelab_metrics/servers/{server_id}/export"

MAX_DATA_POINTS = 10_000
"""Data points a response may carry: about 2.3 MB of JSON of raw polls. Larger exports are files."""
MAX_QUOTED = 64
"""Characters of a bad start or end quoted back in an error (an ISO 8601 time is shorter)."""


class ExportError(ServiceValidationError):
    """A request that cannot be exported; the view answers `status`, the service raises it as is."""

    def __init__(
        self, key: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, **placeholders: str
    ) -> None:
        """Translated by key; placeholders fill the message."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders,
        )
        self.status = status


@dataclass(frozen=True, kw_only=True)
class ExportPlan:
    """What will be exported, resolved from a request's parameters."""

    server_id: str
    server_name: str
    range_label: str
    """An ExportRange's value, or CUSTOM_RANGE for a start/end window."""
    window: Window
    fmt: ExportFormat
    tz: ExportTimeZone
    """As requested; time_zone is the zone it stands for."""
    time_zone: tzinfo
    time_zone_name: str
    filename: str
    now: int
    custom: tuple[str, str] | None = None
    """The request's own start/end text, kept so the signed path repeats it exactly."""

    @property
    def tier(self) -> Tier:
        """History tier the rows come from."""
        return self.window.tier

    @property
    def path(self) -> str:
        """The view's path and query for exactly this export."""
        query: dict[str, str] = {"format": self.fmt, "tz": self.tz}
        if self.custom is None:
            query = {"range": self.range_label, **query}
        else:
            query.update(start=self.custom[0], end=self.custom[1])
        return f"{EXPORT_URL.format(server_id=self.server_id)}?{urlencode(query)}"

    def _meta(self) -> ExportMeta:
        return ExportMeta(
            server_id=self.server_id,
            server_name=self.server_name,
            range=None if self.custom else self.range_label,
            tier=self.tier,
            resolution=self.window.resolution,
            timezone=self.time_zone,
            timezone_name=self.time_zone_name,
            exported_at=self.now,
        )

    def writer(self) -> ExportWriter:
        """A fresh streaming writer for this export."""
        return make_writer(self.fmt, self.tier, self._meta())

    def json_writer(self) -> JsonExportWriter:
        """The JSON writer of this export, whatever its format (data points are JSON's)."""
        return JsonExportWriter(self.tier, self._meta())


@callback
def server_entry(hass: HomeAssistant, server_id: str) -> ConfigEntry | None:
    """The config entry of the server with this id (its own, or its Prometheus server's), if any."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if server_id in configured_servers(entry):
            return entry
    return None


@callback
def prepare_export(
    hass: HomeAssistant,
    server_id: str,
    *,
    range_: str | None = None,
    fmt: str = DEFAULT_FORMAT,
    tz: str = DEFAULT_TIME_ZONE,
    start: str | None = None,
    end: str | None = None,
) -> ExportPlan:
    """Check a request and resolve its window; ExportError says what is wrong."""
    entry = server_entry(hass, server_id)
    if entry is None:
        raise ExportError("unknown_server", HTTPStatus.NOT_FOUND, server=server_id)
    if get_history(hass).store is None:
        raise ExportError("history_closed", HTTPStatus.SERVICE_UNAVAILABLE)
    if fmt not in ExportFormat:
        raise ExportError("invalid_format", format=fmt, choices=", ".join(ExportFormat))
    if tz not in ExportTimeZone:
        raise ExportError("invalid_tz", tz=tz, choices=", ".join(ExportTimeZone))
    time_zone: tzinfo = ZoneInfo("UTC")
    time_zone_name = "UTC"
    if tz == ExportTimeZone.LOCAL:
        time_zone, time_zone_name = (
            dt_util.get_default_time_zone(),
            hass.config.time_zone,
        )
    now = int(dt_util.utcnow().timestamp())
    custom: tuple[str, str] | None = None
    try:
        if start is not None or end is not None:
            if start is None or end is None:
                raise ExportError("window_partial")
            custom = (start, end)
            # A time without an offset (the UI's date-time picker gives one) is local time.
            local = dt_util.get_default_time_zone()
            first = _parse_bound(start, local, "window_start_not_iso")
            last = _parse_bound(end, local, "window_end_not_iso")
            if first >= last:
                raise ExportError("window_start_after_end", start=start, end=end)
            window = resolve(None, now=now, start=first, end=last)
            range_label = CUSTOM_RANGE
        else:
            range_label = range_ or DEFAULT_RANGE
            if range_label not in ExportRange:
                raise ExportError(
                    "invalid_range", range=range_label, choices=", ".join(ExportRange)
                )
            # 12 months are whole local days, like the daily buckets they read.
            window = resolve(
                ExportRange(range_label), now=now, tz=dt_util.get_default_time_zone()
            )
    except InvalidWindow as err:
        # The checks above leave the history nothing to refuse; its reasons are English
        # sentences, so a refusal they did not foresee is told without one.
        raise ExportError("window_invalid") from err
    filename = safe_filename(
        server_id,
        range_label,
        dt_util.utc_from_timestamp(now).astimezone(time_zone).date(),
        ExportFormat(fmt),
    )
    return ExportPlan(
        server_id=server_id,
        server_name=server_name(hass, entry, server_id),
        range_label=range_label,
        window=window,
        fmt=ExportFormat(fmt),
        tz=ExportTimeZone(tz),
        time_zone=time_zone,
        time_zone_name=time_zone_name,
        filename=filename,
        now=now,
        custom=custom,
    )


def _parse_bound(text: str, tz: tzinfo, key: str) -> int:
    """Epoch seconds of a window's start or end; ExportError `key` quoting the text otherwise."""
    try:
        return parse_timestamp(text, tz)
    except InvalidWindow as err:
        shown = text if len(text) <= MAX_QUOTED else f"{text[:MAX_QUOTED]}…"
        raise ExportError(key, value=shown) from err


def _open_store(hass: HomeAssistant) -> HistoryStore:
    """The history store; ExportError while no server has it open."""
    if (store := get_history(hass).store) is None:
        raise ExportError("history_closed", HTTPStatus.SERVICE_UNAVAILABLE)
    return store


@contextlib.contextmanager
def _reading_history() -> Iterator[None]:
    """Failures of the store while it is read, as translated errors."""
    try:
        yield
    except StoreClosedError as err:
        # The last server unloaded while the export was read.
        raise ExportError("history_closed", HTTPStatus.SERVICE_UNAVAILABLE) from err
    except sqlite3.Error as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="history_failed",
            translation_placeholders={"error": str(err) or type(err).__name__},
        ) from err


async def async_iter_export(
    hass: HomeAssistant, plan: ExportPlan, writer: ExportWriter
) -> AsyncGenerator[bytes]:
    """The export's bytes, chunk by chunk: read and formatted on the history's reader thread."""
    chunks = _open_store(hass).async_export(
        plan.server_id,
        plan.tier,
        plan.window.start,
        plan.window.end,
        writer,
        now=plan.now,
    )
    with _reading_history():
        async for chunk in chunks:
            yield chunk


async def async_count_rows(hass: HomeAssistant, plan: ExportPlan) -> int:
    """Rows the export holds, counted in SQL (nothing is read or formatted)."""
    store = _open_store(hass)
    with _reading_history():
        return await store.async_count(
            plan.server_id, plan.tier, plan.window.start, plan.window.end, now=plan.now
        )


async def async_data_points(
    hass: HomeAssistant, plan: ExportPlan, *, limit: int = MAX_DATA_POINTS
) -> list[dict[str, Any]]:
    """The export's rows as the JSON file's data points; ExportError past `limit` of them.

    The rows are counted in SQL first, so an export too large for a response is refused before
    any of it is read. The points are made on the history's reader thread.
    """
    rows = await async_count_rows(hass, plan)
    if rows > limit:
        raise _too_many_data_points(rows, limit)
    window = plan.window
    batches = _open_store(hass).async_read(
        plan.server_id,
        plan.tier,
        window.start,
        window.end,
        plan.json_writer().data_points,
        now=plan.now,
    )
    points: list[dict[str, Any]] = []
    with _reading_history():
        async for batch in batches:
            points += batch
            # Polls of a window that reaches into the future may arrive after the count.
            if len(points) > limit:
                raise _too_many_data_points(len(points), limit)
    return points


def _too_many_data_points(rows: int, limit: int) -> ExportError:
    return ExportError("too_many_data_points", rows=str(rows), limit=str(limit))


@dataclass(frozen=True, kw_only=True, slots=True)
class SavedExport:
    """Where a saved export went and how many rows it holds."""

    path: Path
    rows: int


async def async_save(hass: HomeAssistant, plan: ExportPlan) -> SavedExport:
    """Write the export into the exports folder, whole or not at all.

    Each call streams into a temporary file of its own in that folder (off the event loop) and
    renames it onto the target once complete, so saves of the same export at once never mix:
    the last one to finish is the file. On any failure, cancellation included, the temporary
    file is removed and an earlier file of that name stays as it was; a failing disk becomes a
    translated HomeAssistantError.
    """
    folder = Path(hass.config.path(EXPORT_DIR))
    target = folder / plan.filename
    try:
        handle, temporary = await hass.async_add_executor_job(
            _create_temporary, folder, plan.filename
        )
    except OSError as err:
        raise _save_failed(folder, plan.filename, err) from err
    writer = plan.writer()
    try:
        async with contextlib.aclosing(async_iter_export(hass, plan, writer)) as chunks:
            async for chunk in chunks:
                await hass.async_add_executor_job(handle.write, chunk)
        await hass.async_add_executor_job(_commit, handle, temporary, target)
    except BaseException as err:
        # Shielded: the clean-up runs to its end even if this task is cancelled while it waits.
        await asyncio.shield(hass.async_add_executor_job(_discard, handle, temporary))
        if isinstance(err, OSError):
            raise _save_failed(folder, plan.filename, err) from err
        raise
    return SavedExport(path=target, rows=writer.rows)


def _create_temporary(folder: Path, filename: str) -> tuple[BinaryIO, Path]:
    """A new, empty file only this save writes to (hidden, so a listing shows finished files)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = mkstemp(dir=folder, prefix=f".{filename}.", suffix=".part")
    return os.fdopen(fd, "wb"), Path(name)


def _commit(handle: BinaryIO, temporary: Path, target: Path) -> None:
    """Put the complete file in place of the target, in one step."""
    with handle:
        handle.flush()
        # On disk before the name points at it: a power cut leaves the old file or the new one.
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def _discard(handle: BinaryIO, temporary: Path) -> None:
    """Close and delete a temporary file that will not become the export."""
    with contextlib.suppress(OSError):
        # Closing flushes what is buffered, which fails again on a full disk.
        handle.close()
    temporary.unlink(missing_ok=True)


def _save_failed(folder: Path, filename: str, err: OSError) -> HomeAssistantError:
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="save_failed",
        translation_placeholders={
            "filename": filename,
            "folder": str(folder),
            "error": err.strerror or str(err) or type(err).__name__,
        },
    )


def signed_path(hass: HomeAssistant, plan: ExportPlan) -> str:
    """The plan's download link, valid for an hour: a path, relative to whatever address is in use.

    The frontend and the Companion app resolve it against the address the user reached Home
    Assistant by (localhost, a LAN name, a reverse proxy, Nabu Casa), so it works from each.
    """
    return async_sign_path(hass, plan.path, SIGNED_URL_VALIDITY)


def absolute_url(hass: HomeAssistant, path: str) -> str | None:
    """The path on the URL the user configured, the external one first; None without one.

    Read from the configuration rather than through `get_url`: that falls back to an address
    it guesses (the first interface's IP), which fails for anyone who reaches Home Assistant
    another way, and its `allow_ip=False`, which skips the guess, also refuses a configured URL
    that is an IP address. The external URL comes first because it also works away from home.
    Nabu Casa's address is not used: the relative path already works through it.
    """
    configured = hass.config.external_url or hass.config.internal_url
    if not configured:
        return None
    return configured.rstrip("/") + path
