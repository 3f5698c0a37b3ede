"""The "Export metrics" button of each server."""

from __future__ import annotations

import html
from http import HTTPStatus
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import persistent_notification
from homeassistant.const import STATE_OFF, STATE_UNKNOWN, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    snapshot_platform,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from yarl import URL

from custom_components.homelab_metrics.agents.base import CannotConnect
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.export.choices import ExportFormat, ExportRange

from .conftest import async_next_poll

LINK = re.compile(r'<a href="(?P<url>[^"]+)" target="_blank">(?P<name>[^<]+)</a>')
"""The notification's download link, first in its message.

HTML with a target, not markdown: the frontend routes a click on a same-origin link without a
target inside the app instead of letting the browser download it (see
tests/e2e/test_notification_browser.py).
"""
TRANSLATIONS = Path(__file__).parents[1] / "custom_components" / DOMAIN / "translations"


async def _press(hass: HomeAssistant) -> persistent_notification.Notification:
    """Press the server's export button; the notification it posts."""
    posted: dict[str, persistent_notification.Notification] = {}

    @callback
    def _updated(
        update_type: persistent_notification.UpdateType,
        notifications: dict[str, persistent_notification.Notification],
    ) -> None:
        if update_type is persistent_notification.UpdateType.ADDED:
            posted.update(notifications)

    unsubscribe = persistent_notification.async_register_callback(hass, _updated)
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.nas_export_metrics"}, blocking=True
    )
    unsubscribe()
    return posted[f"{DOMAIN}_nas_export"]


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "mock_client")
async def test_entities(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """One button per server, named by translation."""
    with patch("custom_components.homelab_metrics.PLATFORMS", [Platform.BUTTON]):
        mock_entry.add_to_hass(hass)
        assert await async_setup_component(hass, DOMAIN, {})
        await hass.async_block_till_done()
    await snapshot_platform(hass, entity_registry, snapshot, mock_entry.entry_id)


async def test_press_posts_a_working_link(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Pressing exports the selected range and format; the notification's link downloads that file."""
    choice = export_history.runtime_data.export_choice
    choice.range, choice.format = ExportRange.LAST_30_DAYS, ExportFormat.JSON
    # Even with a URL configured, the link is relative: it opens from wherever the user is.
    await hass.config.async_update(external_url="https://ha.example.org")
    note = await _press(hass)
    link = LINK.match(note["message"])
    assert link is not None
    assert link["name"] == "nas-metrics-30d-2025-11-24.json"
    url = html.unescape(link["url"])
    assert not URL(url).is_absolute()
    client = await hass_client_no_auth()
    download = await client.get(url)
    assert download.status == HTTPStatus.OK
    document = json.loads(await download.text())
    assert (document["range"], document["tier"]) == ("30d", "hourly")


async def test_available_while_the_server_is_down(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The history can be exported while the agent does not answer."""
    mock_client.async_fetch.side_effect = CannotConnect("connection refused")
    await async_next_poll(hass, freezer)
    assert hass.states.get("binary_sensor.nas_online").state == STATE_OFF
    assert hass.states.get("button.nas_export_metrics").state == STATE_UNKNOWN


async def test_press_names_the_server_as_renamed(
    hass: HomeAssistant, export_history: MockConfigEntry
) -> None:
    """The notification calls the server by the name the user gave its device."""
    registry = dr.async_get(hass)
    (device,) = dr.async_entries_for_config_entry(registry, export_history.entry_id)
    registry.async_update_device(device.id, name_by_user="Cellar NAS")
    note = await _press(hass)
    assert note["title"] == "Cellar NAS: metrics export"


@pytest.mark.parametrize("language", ["en", "de", "fr", "nl", "es"])
async def test_press_speaks_the_users_language(
    hass: HomeAssistant, export_history: MockConfigEntry, language: str
) -> None:
    """The notification's words come from the translations of Home Assistant's language.

    A language without a file of its own, or without these strings, is told in English.
    """
    choice = export_history.runtime_data.export_choice
    choice.range, choice.format = ExportRange.LAST_7_DAYS, ExportFormat.JSON
    await hass.config.async_update(language=language)
    note = await _press(hass)

    strings = _translations("en")
    strings.update(_translations(language))
    assert note["title"] == strings["common.export_notification_title"].format(
        server="NAS"
    )
    link = LINK.match(note["message"])
    assert link is not None
    assert note["message"] == (
        f"{link[0]}\n\n"
        + strings["common.export_notification_message"].format(
            range=strings["entity.select.export_range.state.7d"],
            format=strings["entity.select.export_format.state.json"],
        )
    )


def _translations(language: str) -> dict[str, str]:
    """The integration's strings in one language, flat ("common.key"); empty without its file."""
    path = TRANSLATIONS / f"{language}.json"
    if not path.exists():
        return {}
    flat: dict[str, str] = {}

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value

    walk("", json.loads(path.read_text()))
    return flat
