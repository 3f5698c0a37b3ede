"""HTTP views: the server list and the streamed export download."""

from __future__ import annotations

from contextlib import aclosing
import logging
from typing import Any

from aiohttp import hdrs, web
from homeassistant.components.http.const import KEY_HASS_USER
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import CONF_AGENT, CONF_SERVER_ID, DOMAIN
from .coordinator import HomelabConfigEntry, server_name
from .export.choices import DEFAULT_FORMAT, DEFAULT_TIME_ZONE, FORMATS
from .export.writers import content_disposition
from .export_request import (
    EXPORT_URL,
    ExportError,
    ExportPlan,
    async_iter_export,
    prepare_export,
)
from .history_manager import get_history

_LOGGER = logging.getLogger(__name__)


class ServersView(HomeAssistantView):
    """GET the integration's servers, for the dashboard card."""

    url = "/api/homelab_metrics/servers"
    name = "api:homelab_metrics:servers"

    async def get(self, request: web.Request) -> web.Response:
        """List every server with its agent, state and newest sample; its host for administrators."""
        hass = request.app[KEY_HASS]
        admin: bool = request[KEY_HASS_USER].is_admin
        store = get_history(hass).store
        entries: list[HomelabConfigEntry] = hass.config_entries.async_entries(DOMAIN)
        servers: list[dict[str, Any]] = []
        for entry in entries:
            server_id = entry.data[CONF_SERVER_ID]
            runtime = getattr(entry, "runtime_data", None)
            server: dict[str, Any] = {
                "server_id": server_id,
                "name": server_name(hass, entry),
                "agent": entry.data[CONF_AGENT],
            }
            if admin:
                # Where a server is reached is part of its configuration, which only admins see.
                server["host"] = entry.data[CONF_HOST]
            server["online"] = bool(runtime and runtime.coordinator.last_update_success)
            server["last_sample"] = (
                None if store is None else await store.async_latest_ts(server_id)
            )
            servers.append(server)
        return self.json(servers)


class ExportView(HomeAssistantView):
    """GET one server's history as a CSV or JSON file, streamed as it is read."""

    url = EXPORT_URL
    name = "api:homelab_metrics:export"

    async def get(self, request: web.Request, server_id: str) -> web.StreamResponse:
        """Validate the query, then stream the file."""
        hass: HomeAssistant = request.app[KEY_HASS]
        try:
            plan = _plan(hass, request, server_id)
        except ExportError as err:
            return self.json(_refusal(err), err.status)
        writer = plan.writer()
        response = web.StreamResponse(headers=_file_headers(plan))
        await response.prepare(request)
        try:
            async with aclosing(async_iter_export(hass, plan, writer)) as chunks:
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            # A browser that cancels a download hangs up mid-stream.
            _LOGGER.debug("Export of %s ended early: the client went away", server_id)
        return response

    async def head(self, request: web.Request, server_id: str) -> web.StreamResponse:
        """Answer as get() would, status and headers, without reading or formatting a row.

        The card checks an export this way before it hands the signed link to the browser, so
        one click formats the file once.
        """
        try:
            plan = _plan(request.app[KEY_HASS], request, server_id)
        except ExportError as err:
            return self.json(_refusal(err), err.status)
        return web.StreamResponse(headers=_file_headers(plan))


def _plan(hass: HomeAssistant, request: web.Request, server_id: str) -> ExportPlan:
    """The export a request's query asks for; ExportError says what is wrong with it."""
    query = request.query
    return prepare_export(
        hass,
        server_id,
        range_=query.get("range"),
        fmt=query.get("format", DEFAULT_FORMAT),
        tz=query.get("tz", DEFAULT_TIME_ZONE),
        start=query.get("start"),
        end=query.get("end"),
    )


def _refusal(err: ExportError) -> dict[str, Any]:
    """The JSON body of a refused export: the English message, and what a client translates it from.

    With the key and placeholders, a client finds the message in the integration's
    translations (exceptions.<key>.message) in its user's language.
    """
    return {
        "message": str(err),
        "translation_key": err.translation_key,
        "translation_placeholders": err.translation_placeholders or {},
    }


def _file_headers(plan: ExportPlan) -> dict[str, str]:
    """Headers of the file download (GET) and of its check (HEAD)."""
    return {
        hdrs.CONTENT_TYPE: FORMATS[plan.fmt].content_type,
        hdrs.CONTENT_DISPOSITION: content_disposition(plan.filename),
        hdrs.CACHE_CONTROL: "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def async_register_views(hass: HomeAssistant) -> None:
    """Make both views available (authenticated: bearer token or signed path)."""
    hass.http.register_view(ServersView())
    hass.http.register_view(ExportView())
