"""The export request layer on its own: what a save leaves behind when it does not finish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics.export_request import async_save, prepare_export
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import NOW


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

    async def query_that_stalls(*args: Any, **kwargs: Any) -> AsyncIterator[list[Any]]:
        yield [(NOW, *[1.0] * 7)]
        streaming.set()
        await asyncio.Event().wait()
        yield []  # never reached

    with patch.object(store, "async_query", query_that_stalls):
        save = asyncio.create_task(async_save(hass, plan))
        await streaming.wait()
        save.cancel()
        with pytest.raises(asyncio.CancelledError):
            await save
    assert [p.name for p in exports.iterdir()] == [earlier.name]
    assert earlier.read_bytes() == b"an earlier export"
