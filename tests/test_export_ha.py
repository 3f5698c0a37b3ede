"""Export through the view, the action and the dashboard button, on history written by the store."""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import io
import json
from pathlib import Path
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history.metrics import (
    AGGREGATE_COLUMNS,
    RAW_COLUMNS,
)

from .conftest import FULL_SAMPLE, NOW

START = NOW - 3 * 86400
"""History begins three days before NOW; NOW + 30 min is "now" during the tests."""
CURRENT = NOW + 1800


@pytest.fixture
async def history(
    hass: HomeAssistant,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
    freezer: FrozenDateTimeFactory,
) -> MockConfigEntry:
    """A server with three days of 5-minute samples, rolled up, and half an hour not yet rolled up."""
    freezer.move_to(datetime.fromtimestamp(CURRENT, UTC))
    mock_client.async_fetch.return_value = replace(FULL_SAMPLE, timestamp=CURRENT)
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = mock_entry.runtime_data.store
    for ts in range(START, CURRENT, 300):
        await store.async_add(
            "nas",
            replace(
                FULL_SAMPLE,
                timestamp=ts,
                cpu_percent=float(ts % 7),
                temperature_celsius=None,
            ),
        )
    await store.async_rollup(CURRENT)
    return mock_entry


async def _get(client, path: str, **query: str):
    return await client.get(path, params=query)


@pytest.mark.usefixtures("history")
async def test_view_csv_24h(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """24h is every raw row of the last day, with the design's header and a safe attachment name."""
    client = await hass_client()
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export",
        params={"range": "24h", "format": "csv"},
    )
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="nas-metrics-24h-2025-11-24.csv"'
    )
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert tuple(rows[0]) == RAW_COLUMNS
    stamps = [datetime.fromisoformat(row[0]) for row in rows[1:]]
    assert stamps[0] >= datetime.fromtimestamp(CURRENT - 86400, UTC)
    assert stamps[-1] == datetime.fromtimestamp(CURRENT, UTC)  # the poll at setup
    assert len(rows) - 1 == 86400 // 300 + 1
    first_ts = int(stamps[0].timestamp())
    assert float(rows[1][1]) == float(first_ts % 7)
    assert rows[1][7] == ""  # temperature missing → empty cell


@pytest.mark.usefixtures("history")
async def test_view_json_7d_hourly_includes_current_hour(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """7d is hourly buckets, the current incomplete hour computed from raw rows."""
    client = await hass_client()
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export",
        params={"range": "7d", "format": "json"},
    )
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    document = json.loads(await response.text())
    assert document["server_id"] == "nas"
    assert document["server_name"] == "NAS"
    assert document["tier"] == "hourly"
    assert document["range"] == "7d"
    points = document["data_points"]
    assert list(points[0]) == list(AGGREGATE_COLUMNS)
    assert len(points) == 3 * 24 + 1
    last = points[-1]
    assert datetime.fromisoformat(last["timestamp"]) == datetime.fromtimestamp(NOW, UTC)
    assert (
        last["samples"] == 7
    )  # NOW .. NOW+1500 every 5 minutes, plus the poll at NOW+1800
    assert points[0]["samples"] == 12
    assert points[0]["temperature_celsius_avg"] is None


@pytest.mark.usefixtures("history")
async def test_view_12m_daily_and_local_tz(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """12m is daily buckets; tz=local writes Home Assistant's offset."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    client = await hass_client()
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export",
        params={"range": "12m", "format": "json", "tz": "local"},
    )
    document = json.loads(await response.text())
    assert document["tier"] == "daily"
    assert document["timezone"] == "Europe/Berlin"
    assert document["data_points"]
    assert all(p["timestamp"].endswith("+01:00") for p in document["data_points"])
    assert (
        sum(p["samples"] for p in document["data_points"])
        == (CURRENT - START) // 300 + 1
    )


@pytest.mark.usefixtures("history")
async def test_view_custom_window_picks_tier(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """A custom window inside raw retention gives raw rows of exactly that window."""
    client = await hass_client()
    start = datetime.fromtimestamp(NOW - 3600, UTC).isoformat()
    end = datetime.fromtimestamp(NOW, UTC).isoformat()
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export", params={"start": start, "end": end}
    )
    assert response.status == HTTPStatus.OK
    assert "nas-metrics-custom-" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert tuple(rows[0]) == RAW_COLUMNS
    assert len(rows) - 1 == 12


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"range": "1y"}, HTTPStatus.BAD_REQUEST),
        ({"format": "xml"}, HTTPStatus.BAD_REQUEST),
        ({"tz": "mars"}, HTTPStatus.BAD_REQUEST),
        (
            {"start": "2025-11-24T10:00:00+00:00", "end": "2025-11-24T09:00:00+00:00"},
            HTTPStatus.BAD_REQUEST,
        ),
        ({"start": "2025-11-24T10:00:00+00:00"}, HTTPStatus.BAD_REQUEST),
        ({"start": "yesterday", "end": "today"}, HTTPStatus.BAD_REQUEST),
    ],
)
@pytest.mark.usefixtures("history")
async def test_view_bad_parameters(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    query: dict[str, str],
    status: HTTPStatus,
) -> None:
    """Bad parameters answer 400 with a JSON message."""
    client = await hass_client()
    response = await client.get("/api/homelab_metrics/servers/nas/export", params=query)
    assert response.status == status
    body = await response.json()
    assert body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/homelab_metrics/servers/unknown/export",
        "/api/homelab_metrics/servers/..%2Fnas/export",
        "/api/homelab_metrics/servers/nas%2F..%2Fnas/export",
        "/api/homelab_metrics/servers/%2e%2e/export",
    ],
)
@pytest.mark.usefixtures("history")
async def test_view_unknown_server(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, path: str
) -> None:
    """Unknown ids are 404; path tricks are refused (Home Assistant's own filter answers 400 first)."""
    client = await hass_client()
    response = await client.get(path)
    assert response.status in (HTTPStatus.NOT_FOUND, HTTPStatus.BAD_REQUEST)
    assert not (await response.text()).startswith("timestamp")


@pytest.mark.usefixtures("history")
async def test_view_needs_auth(
    hass: HomeAssistant, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """Without a token or a signature: 401."""
    client = await hass_client_no_auth()
    for path in (
        "/api/homelab_metrics/servers",
        "/api/homelab_metrics/servers/nas/export",
    ):
        response = await client.get(path)
        assert response.status == HTTPStatus.UNAUTHORIZED


@pytest.mark.usefixtures("history")
async def test_signed_path(
    hass: HomeAssistant,
    hass_client_no_auth: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A signature works for exactly its path and query, until it expires."""
    client = await hass_client_no_auth()
    signed = async_sign_path(
        hass,
        "/api/homelab_metrics/servers/nas/export?range=24h&format=csv",
        timedelta(minutes=5),
    )
    response = await client.get(signed)
    assert response.status == HTTPStatus.OK
    assert (await response.text()).startswith("timestamp,")

    tampered = signed.replace("range=24h", "range=12m")
    assert (await client.get(tampered)).status == HTTPStatus.UNAUTHORIZED
    extra = signed + "&tz=local"
    assert (await client.get(extra)).status == HTTPStatus.UNAUTHORIZED
    other = signed.replace("/servers/nas/", "/servers/other/")
    assert (await client.get(other)).status == HTTPStatus.UNAUTHORIZED

    freezer.tick(timedelta(minutes=6))
    assert (await client.get(signed)).status == HTTPStatus.UNAUTHORIZED


@pytest.mark.usefixtures("history")
async def test_servers_view(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """The card's server list."""
    client = await hass_client()
    response = await client.get("/api/homelab_metrics/servers")
    assert response.status == HTTPStatus.OK
    assert await response.json() == [
        {
            "server_id": "nas",
            "name": "NAS",
            "agent": "node_exporter",
            "host": "192.168.1.10",
            "online": True,
            "last_sample": CURRENT,
        }
    ]


@pytest.mark.usefixtures("history")
async def test_empty_range(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """A window without data: the header row only, or an empty list."""
    client = await hass_client()
    params = {"start": "2025-01-01T00:00:00+00:00", "end": "2025-01-02T00:00:00+00:00"}
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export", params=params
    )
    assert (await response.text()).strip() == ",".join(AGGREGATE_COLUMNS)
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export", params={**params, "format": "json"}
    )
    assert json.loads(await response.text())["data_points"] == []


def _device_id(hass: HomeAssistant) -> str:
    # Per entry: identifiers are unique only within one since 2026.10 (async_get_device raises there).
    registry = dr.async_get(hass)
    devices = [
        device
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if (DOMAIN, "nas") in device.identifiers
    ]
    assert len(devices) == 1
    return devices[0].id


async def test_service_response_and_saved_file(
    hass: HomeAssistant,
    history: MockConfigEntry,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The action answers with a working signed link; the saved file equals the download."""
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass), "range": "7d", "format": "csv", "save": True},
        blocking=True,
        return_response=True,
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
    download = await client.get(URL(response["url"]).raw_path_qs)
    assert download.status == HTTPStatus.OK
    assert await download.read() == saved.read_bytes()


async def test_service_include_data(
    hass: HomeAssistant, history: MockConfigEntry
) -> None:
    """include_data returns the points, usable in templates."""
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass), "range": "7d", "include_data": True},
        blocking=True,
        return_response=True,
    )
    points = response["data_points"]
    assert len(points) == response["rows"] == 3 * 24 + 1
    assert (
        max(p["cpu_max"] for p in points) == 12.5
    )  # the live poll; stored samples reach 6
    assert "path" not in response


async def test_service_rows_without_save(
    hass: HomeAssistant, history: MockConfigEntry
) -> None:
    """Without save or data, the response still counts the rows."""
    response = await hass.services.async_call(
        DOMAIN,
        "export",
        {"server": _device_id(hass)},
        blocking=True,
        return_response=True,
    )
    assert response["range"] == "24h"
    assert response["rows"] == 86400 // 300 + 1
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


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"range": "1y"}, "invalid_range"),
        ({"format": "xml"}, "invalid_format"),
        (
            {"start": "2025-11-24T10:00:00", "end": "2025-11-24T09:00:00"},
            "invalid_window",
        ),
    ],
)
async def test_service_errors(
    hass: HomeAssistant, history: MockConfigEntry, data: dict[str, str], key: str
) -> None:
    """Bad input raises a translated validation error."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "export",
            {"server": _device_id(hass), **data},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == key
    assert str(err.value)


async def test_service_device_errors(
    hass: HomeAssistant, history: MockConfigEntry
) -> None:
    """An unknown device, or one of another integration, is refused by name."""
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "export", {"server": "nope"}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "unknown_device"
    other_entry = MockConfigEntry(domain="other")
    other_entry.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other_entry.entry_id,
        identifiers={("other", "x")},
        name="Printer",
    )
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "export", {"server": device.id}, blocking=True, return_response=True
        )
    assert err.value.translation_key == "not_our_device"
    assert "Printer" in str(err.value)


async def test_button_and_selects(
    hass: HomeAssistant, history: MockConfigEntry
) -> None:
    """The selects choose what the button exports; the notification holds a working link."""
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": "select.nas_export_range", "option": "30d"},
        blocking=True,
    )
    await hass.services.async_call(
        "select",
        "select_option",
        {"entity_id": "select.nas_export_format", "option": "json"},
        blocking=True,
    )
    assert hass.states.get("select.nas_export_range").state == "30d"
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.nas_export_metrics"}, blocking=True
    )
    from homeassistant.components import persistent_notification

    notifications = persistent_notification._async_get_or_create_notifications(hass)
    note = notifications[f"{DOMAIN}_nas_export"]
    assert "[nas-metrics-30d-2025-11-24.json](" in note["message"]
    assert "range=30d" in note["message"]
    assert "authSig=" in note["message"]


async def test_selects_restored_after_restart(
    hass: HomeAssistant, mock_entry: MockConfigEntry, mock_client: MagicMock
) -> None:
    """The export range and format chosen before a restart come back."""
    from homeassistant.core import State
    from pytest_homeassistant_custom_component.common import mock_restore_cache

    mock_restore_cache(
        hass,
        [
            State("select.nas_export_range", "12m"),
            State("select.nas_export_format", "bogus"),
        ],
    )
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    assert hass.states.get("select.nas_export_range").state == "12m"
    assert (
        hass.states.get("select.nas_export_format").state == "csv"
    )  # an unknown option is ignored
    assert mock_entry.runtime_data.export_choice.range == "12m"


@pytest.fixture
def frozen_now(freezer: FrozenDateTimeFactory) -> None:
    """Time stands at NOW from before any token is issued."""
    freezer.move_to(datetime.fromtimestamp(NOW, UTC))


async def test_view_local_time_on_dst_day(
    frozen_now: None,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    mock_entry: MockConfigEntry,
    mock_client: MagicMock,
) -> None:
    """Berlin's 26 October 2025 has 25 hours: local offsets switch from +02:00 to +01:00, UTC stays."""
    await hass.config.async_set_time_zone("Europe/Berlin")
    mock_entry.add_to_hass(hass)
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    store = mock_entry.runtime_data.store
    day_start = int(
        datetime(2025, 10, 25, 22, 0, tzinfo=UTC).timestamp()
    )  # Berlin midnight (+02:00)
    await store.async_add_many(
        "nas",
        [
            replace(FULL_SAMPLE, timestamp=ts)
            for ts in range(day_start, day_start + 25 * 3600, 600)
        ],
    )
    await store.async_rollup(NOW)
    client = await hass_client()
    window = {
        "start": "2025-10-26T00:00:00",
        "end": "2025-10-27T00:00:00",
    }  # local times
    path = "/api/homelab_metrics/servers/nas/export"
    response = await client.get(
        path, params={**window, "format": "json", "tz": "local"}
    )
    assert response.status == HTTPStatus.OK, await response.text()
    local = json.loads(await response.text())
    response = await client.get(path, params={**window, "format": "json"})
    utc = json.loads(await response.text())
    assert local["tier"] == "hourly"  # a month ago: older than the raw tier keeps
    stamps = [p["timestamp"] for p in local["data_points"]]
    assert len(stamps) == 25
    assert stamps[0] == "2025-10-26T00:00:00+02:00"
    assert stamps[2] == "2025-10-26T02:00:00+02:00"
    assert stamps[3] == "2025-10-26T02:00:00+01:00"
    assert stamps[-1] == "2025-10-26T23:00:00+01:00"
    assert utc["data_points"][0]["timestamp"] == "2025-10-25T22:00:00+00:00"
    assert [p["samples"] for p in utc["data_points"]] == [6] * 25
