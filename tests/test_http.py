"""The views: the server list and the streamed export download."""

from __future__ import annotations

from collections.abc import Iterator
import csv
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import io
import json
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.http.auth import async_sign_path
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history.metrics import (
    AGGREGATE_COLUMNS,
    RAW_COLUMNS,
)
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import (
    EXPORT_HISTORY_START,
    EXPORT_NOW,
    FULL_SAMPLE,
    NOW,
    async_next_poll,
    english_exception,
    fleet_poll,
    make_entry,
)


@pytest.mark.usefixtures("export_history")
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
    assert stamps[0] >= datetime.fromtimestamp(EXPORT_NOW - 86400, UTC)
    assert stamps[-1] == datetime.fromtimestamp(EXPORT_NOW, UTC)  # the poll at setup
    assert len(rows) - 1 == 86400 // 300 + 1
    first_ts = int(stamps[0].timestamp())
    assert float(rows[1][1]) == float(first_ts % 7)
    assert rows[1][7] == ""  # temperature missing → empty cell


@pytest.mark.usefixtures("export_history")
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


@pytest.mark.usefixtures("export_history")
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
        == (EXPORT_NOW - EXPORT_HISTORY_START) // 300 + 1
    )


@pytest.mark.usefixtures("export_history")
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
    ("query", "key", "placeholders"),
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
        (
            {"start": "2025-11-24T10:00:00+00:00", "end": "2025-11-24T09:00:00+00:00"},
            "window_start_after_end",
            {"start": "2025-11-24T10:00:00+00:00", "end": "2025-11-24T09:00:00+00:00"},
        ),
        ({"start": "2025-11-24T10:00:00+00:00"}, "window_partial", {}),
        (
            {"start": "yesterday", "end": "today"},
            "window_start_not_iso",
            {"value": "yesterday"},
        ),
    ],
)
@pytest.mark.usefixtures("export_history")
async def test_view_bad_parameters(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    query: dict[str, str],
    key: str,
    placeholders: dict[str, str],
) -> None:
    """Bad parameters answer 400: the English message, and its key and placeholders to translate it."""
    client = await hass_client()
    response = await client.get("/api/homelab_metrics/servers/nas/export", params=query)
    assert response.status == HTTPStatus.BAD_REQUEST
    assert await response.json() == {
        "message": english_exception(key, placeholders),
        "translation_key": key,
        "translation_placeholders": placeholders,
    }


@pytest.mark.parametrize(
    "path",
    [
        "/api/homelab_metrics/servers/unknown/export",
        "/api/homelab_metrics/servers/..%2Fnas/export",
        "/api/homelab_metrics/servers/nas%2F..%2Fnas/export",
        "/api/homelab_metrics/servers/%2e%2e/export",
    ],
)
@pytest.mark.usefixtures("export_history")
async def test_view_unknown_server(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, path: str
) -> None:
    """Unknown ids are 404; path tricks are refused (Home Assistant's own filter answers 400 first)."""
    client = await hass_client()
    response = await client.get(path)
    assert response.status in (HTTPStatus.NOT_FOUND, HTTPStatus.BAD_REQUEST)
    assert not (await response.text()).startswith("timestamp")


@pytest.mark.usefixtures("export_history")
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


@pytest.mark.usefixtures("export_history")
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


@pytest.mark.usefixtures("export_history")
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
    store = get_history(hass).store
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


@pytest.mark.usefixtures("export_history")
async def test_servers_view(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, hass_admin_user: MockUser
) -> None:
    """The card's server list; an administrator also sees where each server is."""
    assert hass_admin_user.is_admin
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
            "last_sample": EXPORT_NOW,
        }
    ]


@pytest.mark.usefixtures("export_history")
async def test_servers_view_hides_hosts_from_other_users(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_read_only_user: MockUser,
    hass_read_only_access_token: str,
) -> None:
    """A user who is not an administrator gets the list without the servers' addresses."""
    assert not hass_read_only_user.is_admin
    client = await hass_client(hass_read_only_access_token)
    response = await client.get("/api/homelab_metrics/servers")
    assert response.status == HTTPStatus.OK
    assert await response.json() == [
        {
            "server_id": "nas",
            "name": "NAS",
            "agent": "node_exporter",
            "online": True,
            "last_sample": EXPORT_NOW,
        }
    ]


async def test_views_leave_the_history_closed_without_servers(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """With no server loaded, the views answer without opening the history file."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    assert get_history(hass).store is None
    client = await hass_client()
    response = await client.get("/api/homelab_metrics/servers")
    assert response.status == HTTPStatus.OK
    assert [server["last_sample"] for server in await response.json()] == [None]
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export?range=24h&format=csv"
    )
    assert response.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert "no Homelab Metrics server is set up" in (await response.json())["message"]
    assert get_history(hass).store is None


# HEAD on the export view: GET's status and headers, and no rows read (the card's check).

EXPORT = "/api/homelab_metrics/servers/{server}/export"
# init_integration freezes the clock: list it (or query_spy) before hass_client in a test's
# arguments, so the client's token is issued at the frozen time, not in its future.
FILE_HEADERS = (
    "Content-Type",
    "Content-Disposition",
    "Cache-Control",
    "X-Content-Type-Options",
)


@pytest.fixture
def query_spy(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> Iterator[MagicMock]:
    """The history store's export, still working, with its calls recorded."""
    store = get_history(hass).store
    assert store is not None
    with patch.object(
        store, "async_export", MagicMock(side_effect=store.async_export)
    ) as spy:
        yield spy


@pytest.mark.parametrize(
    ("query", "content_type"),
    [
        ({"range": "24h", "format": "csv"}, "text/csv"),
        ({"range": "7d", "format": "json", "tz": "local"}, "application/json"),
        (
            {"start": "2025-11-24T10:00:00+00:00", "end": "2025-11-24T16:00:00+00:00"},
            "text/csv",
        ),
    ],
)
async def test_head_answers_get_headers_without_reading_rows(
    query_spy: MagicMock,
    hass_client: ClientSessionGenerator,
    query: dict[str, str],
    content_type: str,
) -> None:
    """200 with the file's headers, no body, and the store is not asked for a row."""
    client = await hass_client()
    url = EXPORT.format(server="nas")

    head = await client.head(url, params=query)
    assert head.status == HTTPStatus.OK
    assert await head.read() == b""
    query_spy.assert_not_called()

    get = await client.get(url, params=query)
    assert get.status == HTTPStatus.OK
    assert await get.read()
    query_spy.assert_called_once()
    for name in FILE_HEADERS:
        assert head.headers.get(name) == get.headers.get(name), name
    assert head.headers["Content-Type"].startswith(content_type)
    assert head.headers["Content-Disposition"].startswith("attachment; filename=")


@pytest.mark.parametrize(
    ("server", "query", "status"),
    [
        ("nas", {"range": "1y"}, HTTPStatus.BAD_REQUEST),
        ("nas", {"range": "24h", "format": "xml"}, HTTPStatus.BAD_REQUEST),
        ("nas", {"tz": "mars"}, HTTPStatus.BAD_REQUEST),
        ("nas", {"start": "2025-11-24T10:00:00+00:00"}, HTTPStatus.BAD_REQUEST),
        ("gone", {"range": "24h"}, HTTPStatus.NOT_FOUND),
    ],
)
async def test_head_refuses_as_get_does(
    query_spy: MagicMock,
    hass_client: ClientSessionGenerator,
    server: str,
    query: dict[str, str],
    status: HTTPStatus,
) -> None:
    """The same error status and JSON message (as far as HEAD shows it: type and length)."""
    client = await hass_client()
    url = EXPORT.format(server=server)
    head = await client.head(url, params=query)
    get = await client.get(url, params=query)
    assert head.status == get.status == status
    message = await get.read()
    assert b'"message"' in message
    assert head.headers["Content-Type"] == get.headers["Content-Type"]
    # The length of the same (compressed) message: the body a HEAD answer leaves out.
    for name in ("Content-Length", "Content-Encoding"):
        assert head.headers.get(name) == get.headers.get(name), name
    assert await head.read() == b""
    query_spy.assert_not_called()


async def test_head_with_the_history_closed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """With no server loaded the history is closed: 503, as GET answers."""
    assert await hass.config_entries.async_unload(init_integration.entry_id)
    client = await hass_client()
    url = EXPORT.format(server="nas")
    head = await client.head(url, params={"range": "24h"})
    get = await client.get(url, params={"range": "24h"})
    assert head.status == get.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert "message" in await get.json()
    assert head.headers["Content-Length"] == get.headers["Content-Length"]


async def test_head_needs_auth(
    init_integration: MockConfigEntry, hass_client_no_auth: ClientSessionGenerator
) -> None:
    """Without a token: 401, before anything is checked."""
    client = await hass_client_no_auth()
    head = await client.head(EXPORT.format(server="nas"), params={"range": "24h"})
    assert head.status == HTTPStatus.UNAUTHORIZED


@pytest.mark.usefixtures("export_history")
async def test_a_renamed_server_in_the_list_and_the_file(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    """The server list and the JSON file name the server as the user renamed its device."""
    registry = dr.async_get(hass)
    (device,) = dr.async_entries_for_config_entry(
        registry, hass.config_entries.async_entries(DOMAIN)[0].entry_id
    )
    registry.async_update_device(device.id, name_by_user="Cellar NAS")
    client = await hass_client()
    servers = await (await client.get("/api/homelab_metrics/servers")).json()
    assert [s["name"] for s in servers] == ["Cellar NAS"]
    response = await client.get(
        "/api/homelab_metrics/servers/nas/export", params={"format": "json"}
    )
    document = json.loads(await response.text())
    assert (document["server_id"], document["server_name"]) == ("nas", "Cellar NAS")
    assert "nas-metrics-24h-" in response.headers["Content-Disposition"]


async def test_a_server_without_a_device_is_named_by_its_entry(
    hass: HomeAssistant,
    export_history: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """A server not set up yet has no device: the list calls it by its entry's title."""
    make_entry(host="192.168.1.11", server_id="backup", title="Backup").add_to_hass(
        hass
    )
    client = await hass_client()
    servers = await (await client.get("/api/homelab_metrics/servers")).json()
    assert {s["server_id"]: s["name"] for s in servers} == {
        "nas": "NAS",
        "backup": "Backup",
    }


@pytest.mark.usefixtures("init_prometheus")
async def test_servers_view_lists_each_node(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    hass_client: ClientSessionGenerator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Each chosen node is a server: agent "prometheus", its instance as host, online or not."""

    async def beta_down(window: int, instances: object = None, **_: object) -> object:
        now = int(datetime.now(UTC).timestamp())
        return {**fleet_poll(now), "10.0.0.2:9100": None}

    mock_prometheus.async_poll.side_effect = beta_down
    await async_next_poll(hass, freezer)
    client = await hass_client()
    response = await client.get("/api/homelab_metrics/servers")
    assert await response.json() == [
        {
            "server_id": "alpha",
            "name": "alpha",
            "agent": "prometheus",
            "host": "10.0.0.1:9100",
            "online": True,
            "last_sample": NOW + 91,
        },
        {
            "server_id": "beta",
            "name": "beta",
            "agent": "prometheus",
            "host": "10.0.0.2:9100",
            "online": False,
            "last_sample": NOW + 30,
        },
    ]
    response = await client.get(
        "/api/homelab_metrics/servers/beta/export", params={"range": "24h"}
    )
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="beta-metrics-24h-2025-11-24.csv"'
    )
    rows = list(csv.reader(io.StringIO(await response.text())))
    assert [row[1] for row in rows[1:]] == ["80.000"]
