"""The homelab_metrics.export action: its response, the saved file, the data points, its errors."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from http import HTTPStatus
import json
import os
from pathlib import Path
import tempfile
from typing import Any
from unittest.mock import patch

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    ServiceValidationError,
    Unauthorized,
)
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.homelab_metrics import export_request
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import (
    EXPORT_NOW,
    FULL_SAMPLE,
    NOW,
    PROMETHEUS_ENTRY_ID,
    async_add_prometheus,
    english_exception,
    find_server_device,
    make_prometheus_entry,
    node_options,
    server_device,
)


def _device_id(hass: HomeAssistant) -> str:
    """The device id of the server "nas", as the action's device picker gives it."""
    return server_device(hass, "nas").id


async def test_service_response_and_saved_file(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    hass_admin_user: MockUser,
) -> None:
    """An administrator gets a working signed link and a saved file equal to the download."""
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass), "range": "7d", "format": "csv", "save": True},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_admin_user.id),
    )
    assert response["server_id"] == "nas"
    assert response["server_name"] == "NAS"
    assert response["tier"] == "hourly"
    assert response["format"] == "csv"
    assert response["filename"] == "nas-metrics-7d-2025-11-24.csv"
    assert response["rows"] == 3 * 24 + 1
    saved = Path(response["path"])
    assert saved == Path(
        hass.config.path("homelab_metrics", "exports", response["filename"])
    )
    client = await hass_client_no_auth()
    download = await client.get(response["url"])
    assert download.status == HTTPStatus.OK
    assert await download.read() == saved.read_bytes()


async def test_service_concurrent_saves_of_one_file(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Two saves to the same file name at once both succeed; the file is one of them, whole."""

    def custom(hours: int) -> dict[str, str]:
        return {
            "server": _device_id(hass),
            "start": datetime.fromtimestamp(NOW - hours * 3600, UTC).isoformat(),
            "end": datetime.fromtimestamp(NOW, UTC).isoformat(),
            "save": True,
        }

    responses = await asyncio.gather(
        *(
            hass.services.async_call(
                DOMAIN, "export", custom(hours), blocking=True, return_response=True
            )
            for hours in (1, 3)
        )
    )
    assert [r["rows"] for r in responses] == [12, 36]
    assert responses[0]["path"] == responses[1]["path"]
    client = await hass_client_no_auth()
    downloads = [await (await client.get(r["url"])).read() for r in responses]
    assert [d.count(b"\r\n") - 1 for d in downloads] == [12, 36]
    saved = Path(responses[0]["path"])
    assert saved.read_bytes() in downloads
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
async def test_service_save_on_a_full_disk(
    hass: HomeAssistant, export_history: MockConfigEntry
) -> None:
    """A disk that fills up during the save: a translated error, no partial file, the old file kept."""
    exports = Path(hass.config.path("homelab_metrics", "exports"))
    exports.mkdir(parents=True)
    earlier = exports / "nas-metrics-24h-2025-11-24.csv"
    earlier.write_bytes(b"an earlier export")

    def full_disk(*args: Any, **kwargs: Any) -> tuple[int, str]:
        """A temporary file as asked, whose writes go to a device that is always full."""
        fd, name = tempfile.mkstemp(*args, **kwargs)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, fd)
        os.close(full)
        return fd, name

    with (
        patch.object(export_request, "mkstemp", full_disk),
        pytest.raises(HomeAssistantError) as err,
    ):
        await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": _device_id(hass), "save": True},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "save_failed"
    assert err.value.translation_placeholders["filename"] == earlier.name
    assert "No space left on device" in str(err.value)
    assert [p.name for p in exports.iterdir()] == [earlier.name]
    assert earlier.read_bytes() == b"an earlier export"


@pytest.mark.usefixtures("export_history")
async def test_service_save_refused_to_other_users(
    hass: HomeAssistant, hass_read_only_user: MockUser
) -> None:
    """Writing into the configuration folder is for administrators; others may still export."""
    exports = Path(hass.config.path("homelab_metrics", "exports"))
    for user_id in (hass_read_only_user.id, "no-such-user"):
        with pytest.raises(Unauthorized):
            await hass.services.async_call(
                DOMAIN,
                "export",
                {"server": _device_id(hass), "save": True},
                blocking=True,
                return_response=True,
                context=Context(user_id=user_id),
            )
    assert not exports.exists()
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass)},
        blocking=True,
        return_response=True,
        context=Context(user_id=hass_read_only_user.id),
    )
    assert response["rows"] == 86400 // 300 + 1


async def test_service_include_data(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """include_data returns the points, usable in templates, equal to those of the JSON file."""
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {
            "server": _device_id(hass),
            "range": "7d",
            "format": "json",
            "include_data": True,
        },
        blocking=True,
        return_response=True,
    )
    points = response["data_points"]
    assert len(points) == response["rows"] == 3 * 24 + 1
    assert (
        max(p["cpu_max"] for p in points) == 12.5
    )  # the live poll; stored samples reach 6
    assert "path" not in response
    client = await hass_client_no_auth()
    download = await client.get(response["url"])
    assert json.loads(await download.text())["data_points"] == points


async def test_service_include_data_is_capped(
    hass: HomeAssistant, export_history: MockConfigEntry
) -> None:
    """Up to 10,000 points come in the response; past that, a translated error points elsewhere."""
    store = get_history(hass).store
    assert store is not None
    # A poll every 10 seconds for the 30 hours before now: 10,800 raw rows.
    first = EXPORT_NOW - 30 * 3600
    await store.async_add_many(
        "nas",
        [replace(FULL_SAMPLE, timestamp=ts) for ts in range(first, EXPORT_NOW, 10)],
    )

    def window(start: int) -> dict[str, str]:
        return {
            "start": datetime.fromtimestamp(start, UTC).isoformat(),
            "end": datetime.fromtimestamp(EXPORT_NOW, UTC).isoformat(),
        }

    call = {"server": _device_id(hass), "include_data": True}
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "export", call | window(first), blocking=True, return_response=True
        )
    assert err.value.translation_key == "too_many_data_points"
    assert err.value.translation_placeholders == {"rows": "10800", "limit": "10000"}
    assert "save" in str(err.value)
    assert "url" in str(err.value)

    response = await hass.services.async_call(
        DOMAIN,
        "export",
        call | window(EXPORT_NOW - 10_000 * 10),
        blocking=True,
        return_response=True,
    )
    assert len(response["data_points"]) == response["rows"] == 10_000


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        ({}, 86400 // 300 + 1),
        ({"range": "7d", "format": "json"}, 3 * 24 + 1),
        # Three days and the day holding now, which is not rolled up yet.
        ({"range": "12m"}, 4),
    ],
)
async def test_service_rows_without_save(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    data: dict[str, str],
    rows: int,
) -> None:
    """Without save or data, the rows are counted in SQL, not read and formatted to count them."""
    store = get_history(hass).store
    assert store is not None
    unread = AssertionError("rows read only to count them")
    with (
        patch.object(store, "async_read", side_effect=unread),
        patch.object(store, "async_export", side_effect=unread),
    ):
        response = await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": _device_id(hass), **data},
            blocking=True,
            return_response=True,
        )
    assert response["range"] == data.get("range", "24h")
    assert response["rows"] == rows
    assert set(response) == {
        "server_id",
        "server_name",
        "range",
        "tier",
        "format",
        "filename",
        "rows",
        "url",
    }


WINDOW = {"start": "2025-11-24T10:00:00", "end": "2025-11-24T09:00:00"}
"""A custom window whose start comes after its end."""


@pytest.mark.parametrize(
    ("data", "key", "placeholders"),
    [
        (
            {"range": "1y"},
            "invalid_range",
            {"range": "1y", "choices": "24h, 7d, 30d, 12m"},
        ),
        (
            {"format": "xml"},
            "invalid_format",
            {"format": "xml", "choices": "csv, json"},
        ),
        ({"tz": "mars"}, "invalid_tz", {"tz": "mars", "choices": "utc, local"}),
        (WINDOW, "window_start_after_end", WINDOW),
        (
            {"start": WINDOW["start"], "end": WINDOW["start"]},
            "window_start_after_end",
            {"start": WINDOW["start"], "end": WINDOW["start"]},
        ),
        ({"start": WINDOW["start"]}, "window_partial", {}),
        ({"end": WINDOW["end"]}, "window_partial", {}),
        (
            {"start": "yesterday", "end": WINDOW["end"]},
            "window_start_not_iso",
            {"value": "yesterday"},
        ),
        (
            {"start": WINDOW["start"], "end": "2025-13-01"},
            "window_end_not_iso",
            {"value": "2025-13-01"},
        ),
        (
            {"start": "9" * 100, "end": WINDOW["end"]},
            "window_start_not_iso",
            {"value": "9" * 64 + "…"},
        ),
    ],
)
async def test_service_errors(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    data: dict[str, str],
    key: str,
    placeholders: dict[str, str],
) -> None:
    """Bad input raises a validation error of its own key, every word of it from the translations."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": _device_id(hass), **data},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == key
    assert err.value.translation_placeholders == placeholders
    assert str(err.value) == english_exception(key, placeholders)


@pytest.mark.parametrize(
    "server",
    [
        "nas",
        "button.nas_export_metrics",
        "sensor.nas_cpu_usage",
        "binary_sensor.nas_online",
        "select.nas_export_format",
    ],
)
async def test_service_server_by_entity_or_server_id(
    hass: HomeAssistant, export_history: MockConfigEntry, server: str
) -> None:
    """Any entity of the server, or its server_id, names the server as its device does."""
    response = await hass.services.async_call(
        DOMAIN, "export", {"server": server}, blocking=True, return_response=True
    )
    by_device = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass)},
        blocking=True,
        return_response=True,
    )
    assert response["server_id"] == by_device["server_id"] == "nas"
    assert response["rows"] == by_device["rows"]


async def test_service_server_errors(
    hass: HomeAssistant, export_history: MockConfigEntry
) -> None:
    """What is not one of our servers is refused, saying what it is."""
    other_entry = MockConfigEntry(domain="other")
    other_entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other_entry.entry_id,
        identifiers={("other", "x")},
        name="Printer",
    )
    # Named by Home Assistant: newer releases take the device's name into the entity id.
    toner = (
        er.async_get(hass)
        .async_get_or_create(
            "sensor", "other", "toner", config_entry=other_entry, device_id=device.id
        )
        .entity_id
    )
    hass.states.async_set("sensor.kitchen_temperature", "21")
    cases = {
        "nope": ("server_not_found", {"server": "nope"}),
        "sensor.no_such_thing": (
            "server_not_found",
            {"server": "sensor.no_such_thing"},
        ),
        device.id: ("not_our_device", {"device": "Printer"}),
        toner: ("not_our_entity", {"entity": toner}),
        "sensor.kitchen_temperature": (
            "not_our_entity",
            {"entity": "sensor.kitchen_temperature"},
        ),
    }
    for server, (key, placeholders) in cases.items():
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN,
                "export",
                {"server": server},
                blocking=True,
                return_response=True,
            )
        assert err.value.translation_key == key, server
        assert err.value.translation_placeholders == placeholders, server
        assert str(err.value), server


async def test_service_url_is_relative_without_a_configured_url(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """No URL configured: the link is the signed path alone, which works from any address.

    Home Assistant guesses an address for itself (its first interface's IP); a link built on
    it fails for a user who reaches Home Assistant any other way, so none is given.
    """
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass)},
        blocking=True,
        return_response=True,
    )
    url = URL(response["url"])
    assert not url.is_absolute()
    assert url.path == "/api/homelab_metrics/servers/nas/export"
    assert "authSig" in url.query
    assert "absolute_url" not in response
    client = await hass_client_no_auth()
    assert (await client.get(response["url"])).status == HTTPStatus.OK


@pytest.mark.parametrize(
    ("configured", "base"),
    [
        (
            {"internal_url": "http://homeassistant.lan:8123/"},
            "http://homeassistant.lan:8123",
        ),
        ({"external_url": "https://ha.example.org"}, "https://ha.example.org"),
        (
            {
                "internal_url": "http://192.168.1.5:8123",
                "external_url": "https://ha.example.org",
            },
            "https://ha.example.org",
        ),
    ],
)
async def test_service_absolute_url_from_the_configured_url(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    configured: dict[str, str],
    base: str,
) -> None:
    """A URL the user configured gives absolute_url, the external one first; url stays relative."""
    await hass.config.async_update(**configured)
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass)},
        blocking=True,
        return_response=True,
    )
    assert response["url"].startswith("/api/homelab_metrics/servers/nas/export?")
    assert response["absolute_url"] == base + response["url"]
    client = await hass_client_no_auth()
    assert (await client.get(response["url"])).status == HTTPStatus.OK


async def test_service_follows_a_renamed_server(
    hass: HomeAssistant, export_history: MockConfigEntry
) -> None:
    """The response names the server as its device is called now, a name the user gave first."""
    registry = dr.async_get(hass)
    device_id = _device_id(hass)
    registry.async_update_device(device_id, name="Storage box")
    call = {"server": device_id, "include_data": True, "format": "json"}
    response = await hass.services.async_call(
        DOMAIN, "export", call, blocking=True, return_response=True
    )
    assert response["server_name"] == "Storage box"
    registry.async_update_device(device_id, name_by_user="Cellar NAS")
    response = await hass.services.async_call(
        DOMAIN, "export", call, blocking=True, return_response=True
    )
    assert response["server_name"] == "Cellar NAS"
    # The id, and so the file's name, stay as they were.
    assert response["server_id"] == "nas"
    assert response["filename"].startswith("nas-metrics-")


async def test_export_of_a_prometheus_node(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A node is named by its server id, its device or any of its entities; its file is its own."""
    beta = find_server_device(hass, "beta")
    assert beta is not None
    for server, expected in (
        ("alpha", "alpha"),
        (beta.id, "beta"),
        ("sensor.beta_cpu_usage", "beta"),
        ("button.alpha_export_metrics", "alpha"),
    ):
        response = await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": server, "format": "json", "include_data": True},
            blocking=True,
            return_response=True,
        )
        assert response["server_id"] == expected, server
        assert response["server_name"] == expected
        assert response["filename"] == f"{expected}-metrics-24h-2025-11-24.json"
        assert response["rows"] == 1  # the poll at setup
    client = await hass_client_no_auth()
    download = await client.get(response["url"])
    assert download.status == HTTPStatus.OK
    assert json.loads(await download.text())["server_id"] == "alpha"


@pytest.mark.parametrize(
    "server", ["hub_device", "sensor.192_168_1_5_9090_history_import"]
)
async def test_the_prometheus_server_itself_is_no_server(
    hass: HomeAssistant,
    mock_prometheus: Any,
    freezer: Any,
    device_registry: dr.DeviceRegistry,
    server: str,
) -> None:
    """Its device, or its import sensor, is refused with a message that says to choose a node."""
    options = node_options(("10.0.0.1:9100", "alpha", "alpha"))
    options["nodes"]["10.0.0.1:9100"]["import_until"] = NOW
    await async_add_prometheus(hass, freezer, make_prometheus_entry(options))
    hub = find_server_device(hass, PROMETHEUS_ENTRY_ID)
    assert hub is not None
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": hub.id if server == "hub_device" else server},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "not_a_server"
    assert str(err.value) == english_exception(
        "not_a_server", {"device": "192.168.1.5:9090"}
    )
