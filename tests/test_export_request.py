"""The export request layer: what a save leaves behind when it does not finish, store failures, windows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
import sqlite3
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics import export_request
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.export_request import async_save, prepare_export
from custom_components.homelab_metrics.history.ranges import InvalidWindow
from custom_components.homelab_metrics.history.store import StoreClosedError
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import english_exception


async def test_save_cancelled_midway_leaves_the_folder_as_it_was(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A save cancelled while it streams removes its temporary file; an earlier file stays."""
    exports = Path(hass.config.path("homelab_metrics", "exports"))
    exports.mkdir(parents=True)
    plan = prepare_export(hass, "nas")
    earlier = exports / plan.filename
    earlier.write_bytes(b"an earlier export")
    store = get_history(hass).store
    assert store is not None
    streaming = asyncio.Event()

    async def export_that_stalls(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        yield b"timestamp,cpu_percent\r\n"
        streaming.set()
        await asyncio.Event().wait()
        yield b""  # never reached

    with patch.object(store, "async_export", export_that_stalls):
        save = asyncio.create_task(async_save(hass, plan))
        await streaming.wait()
        save.cancel()
        with pytest.raises(asyncio.CancelledError):
            await save
    assert [p.name for p in exports.iterdir()] == [earlier.name]
    assert earlier.read_bytes() == b"an earlier export"


async def test_save_when_the_history_closes_midway(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The store closing under a save: the translated history_closed error, and no file."""
    exports = Path(hass.config.path("homelab_metrics", "exports"))
    plan = prepare_export(hass, "nas")
    store = get_history(hass).store
    assert store is not None

    async def export_then_closed(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        yield b"timestamp,cpu_percent\r\n"
        raise StoreClosedError("history store is not open")

    with (
        patch.object(store, "async_export", export_then_closed),
        pytest.raises(ServiceValidationError) as err,
    ):
        await async_save(hass, plan)
    assert err.value.translation_key == "history_closed"
    assert list(exports.iterdir()) == []


@pytest.mark.parametrize("data", [{}, {"include_data": True}, {"save": True}])
async def test_a_failing_database_is_a_translated_error(
    hass: HomeAssistant, init_integration: MockConfigEntry, data: dict[str, bool]
) -> None:
    """SQLite failing while an export is read ends in history_failed, whatever the action does."""
    store = get_history(hass).store
    assert store is not None
    failure = sqlite3.OperationalError("disk I/O error")

    async def failing_read(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise failure
        yield b""  # an async generator, as the store's reads are

    (device,) = dr.async_entries_for_config_entry(
        dr.async_get(hass), init_integration.entry_id
    )
    with (
        patch.object(store, "async_count", side_effect=failure),
        patch.object(store, "async_read", failing_read),
        patch.object(store, "async_export", failing_read),
        pytest.raises(HomeAssistantError) as err,
    ):
        await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": device.id, **data},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "history_failed"
    assert str(err.value) == "The history database could not be read: disk I/O error"


async def test_a_window_the_history_refuses_unforeseen(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A refusal the request's own checks did not foresee is translated, without the history's English."""
    with (
        patch.object(
            export_request,
            "resolve",
            side_effect=InvalidWindow("give a range or a start and end"),
        ),
        pytest.raises(ServiceValidationError) as err,
    ):
        prepare_export(hass, "nas", range_="7d")
    assert err.value.translation_key == "window_invalid"
    assert err.value.translation_placeholders == {}
    assert str(err.value) == english_exception("window_invalid", {})
