"""The one history store of all servers: its owner, and the only way any module reaches it.

The store is opened by the first server that starts setting up and closed when the last server
using it has unloaded (or when Home Assistant stops). A server counts as a user from the start of
its setup, so an entry still in its first refresh keeps the store open while another server is
unloaded or reloaded. While the store is open, the manager runs its hourly rollup, follows Home
Assistant's time zone and raises a repair issue when a damaged file had to be moved aside.

A file that cannot be used is never a reason to stop polling: one written by a newer version of
the integration is refused without being touched, and one that cannot be opened (permissions, a
full disk, a lock) is reported. The store stays None (servers poll without recording, exports
answer that the history is closed) and a repair issue says why, until the last server unloads;
the next setup tries the file again.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
import logging
from pathlib import Path
import sqlite3

from homeassistant.const import EVENT_CORE_CONFIG_UPDATE, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DB_FILENAME, DOMAIN
from .history.clock import ClockGuard
from .history.schema import SchemaTooNewError
from .history.store import HistoryStore

_LOGGER = logging.getLogger(__name__)

ROLLUP_MINUTE = 1
"""Rollups run a minute past every hour, when the previous hour (and, after midnight, day) is complete."""

HISTORY: HassKey[HistoryManager] = HassKey(f"{DOMAIN}_history")

ISSUE_CORRUPT = "database_corrupt"
ISSUE_TOO_NEW = "database_too_new"
ISSUE_UNAVAILABLE = "database_unavailable"


@callback
def get_history(hass: HomeAssistant) -> HistoryManager:
    """The history manager, created when the integration is set up."""
    return hass.data[HISTORY]


class HistoryManager:
    """Opens, schedules and closes the history store for the servers that use it."""

    def __init__(self, hass: HomeAssistant) -> None:
        """Nothing is open until a server starts setting up."""
        self._hass = hass
        self._store: HistoryStore | None = None
        self._users: set[str] = set()
        self._lock = asyncio.Lock()
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._catch_up: asyncio.Task[None] | None = None
        # The repair issue of a file that could not be used; the next open waits for no users.
        self._refused: str | None = None
        # Outlives the store, so reopening it (a reload) does not make the clock's word law.
        self._guard = ClockGuard()

    @property
    def store(self) -> HistoryStore | None:
        """The open store, or None while no server uses it or the file is refused.

        Nothing is opened on a reader's behalf.
        """
        return self._store

    async def async_acquire(self, user: str) -> HistoryStore | None:
        """Count `user` (a config entry id) as a user and return the store, opening it if needed.

        None when the file cannot be used: the user goes on without recording.
        """
        async with self._lock:
            if self._store is None and self._refused is None:
                await self._async_open()
            self._users.add(user)
            return self._store

    async def async_release(self, user: str) -> None:
        """`user` no longer writes or reads; the last one leaving closes the store."""
        async with self._lock:
            self._users.discard(user)
            if not self._users:
                await self._async_close()

    async def async_remove_server(self, server_id: str) -> None:
        """Delete a server's history, opening the store only for that when no server uses it."""
        async with self._lock:
            if self._store is None and self._refused is None:
                await self._async_open()
            try:
                if self._store is None:
                    _LOGGER.warning(
                        "The history of %s stays in %s, which cannot be used now",
                        server_id,
                        self._hass.config.path(DB_FILENAME),
                    )
                    return
                await self._store.async_remove_server(server_id)
            finally:
                if not self._users:
                    await self._async_close()

    async def async_pause_writes(self) -> None:
        """Hold writes while a backup copies the file (samples wait in memory)."""
        if self._store is not None:
            await self._store.async_pause_writes()

    async def async_resume_writes(self) -> None:
        """Write what waited during the backup and go on."""
        if self._store is not None:
            await self._store.async_resume_writes()

    async def _async_open(self) -> None:
        """Open the file, start the schedules and catch up on rollups missed while stopped.

        A file that cannot be used is left closed, with a repair issue that says why.
        """
        hass = self._hass
        path = Path(hass.config.path(DB_FILENAME))
        store = HistoryStore(path, time_zone=hass.config.time_zone, guard=self._guard)
        try:
            await store.async_open()
        except SchemaTooNewError as err:
            _LOGGER.warning(
                "History database %s was written by a newer version of the integration "
                "(schema %s, this one reads up to %s); it is left as it is and nothing "
                "is recorded",
                path,
                err.found,
                err.supported,
            )
            self._refuse(
                ISSUE_TOO_NEW,
                path=str(path),
                found=str(err.found),
                supported=str(err.supported),
            )
            return
        except (sqlite3.Error, OSError) as err:
            _LOGGER.error(
                "History database %s cannot be opened (%s); nothing is recorded",
                path,
                err,
            )
            self._refuse(ISSUE_UNAVAILABLE, path=str(path), error=str(err))
            return
        for issue in (ISSUE_TOO_NEW, ISSUE_UNAVAILABLE):
            ir.async_delete_issue(hass, DOMAIN, issue)
        if store.recovered_from is not None:
            ir.async_create_issue(
                hass,
                DOMAIN,
                ISSUE_CORRUPT,
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_CORRUPT,
                translation_placeholders={"path": str(store.recovered_from)},
            )

        async def _rollup(now: datetime) -> None:
            await _async_rollup(store, now)

        @callback
        def _time_zone_changed(event: Event) -> None:
            store.set_time_zone(hass.config.time_zone)

        async def _close_on_stop(event: Event) -> None:
            # A once-listener is gone after it fired: it must not be unsubscribed again.
            self._unsubscribe.remove(unsubscribe_stop)
            async with self._lock:
                self._users.clear()
                await self._async_close()

        unsubscribe_stop = hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, _close_on_stop
        )
        self._unsubscribe = [
            async_track_time_change(hass, _rollup, minute=ROLLUP_MINUTE, second=0),
            hass.bus.async_listen(EVENT_CORE_CONFIG_UPDATE, _time_zone_changed),
            unsubscribe_stop,
        ]
        self._store = store
        # Catch up on everything missed while Home Assistant was down, without delaying setup.
        self._catch_up = hass.async_create_background_task(
            _async_rollup(store, dt_util.utcnow()), f"{DOMAIN} catch-up rollup"
        )

    def _refuse(self, issue: str, **placeholders: str) -> None:
        """Go on without a store, and say why in a repair issue."""
        self._refused = issue
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=issue,
            translation_placeholders=placeholders,
        )

    async def _async_close(self) -> None:
        """Stop the schedules and close the database (its thread ends); the lock is held."""
        # The next user tries the file again (the newer version may be gone by then).
        self._refused = None
        if self._store is None:
            return
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        if self._catch_up is not None and not self._catch_up.done():
            self._catch_up.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._catch_up
        self._catch_up = None
        store, self._store = self._store, None
        await store.async_close()


async def _async_rollup(store: HistoryStore, now: datetime) -> None:
    """Roll up complete buckets and prune; a failure waits for the next hour."""
    try:
        await store.async_rollup(int(now.timestamp()))
    except Exception as err:  # noqa: BLE001 - a rollup failing must not end the schedule
        _LOGGER.error("History rollup failed (%s); it is tried again next hour", err)
        _LOGGER.debug("History rollup failure", exc_info=True)
