"""HEAD on the export view: GET's status and headers, and no rows read (the card's check)."""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from unittest.mock import MagicMock, patch

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.homelab_metrics.history_manager import get_history

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
    """The history store's query, still working, with its calls recorded."""
    store = get_history(hass).store
    assert store is not None
    with patch.object(
        store, "async_query", MagicMock(side_effect=store.async_query)
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
