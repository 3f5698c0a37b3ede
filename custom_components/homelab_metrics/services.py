"""The homelab_metrics.export action: a signed link, the file on disk, or the data itself."""

from __future__ import annotations

from typing import Any

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
    valid_entity_id,
)
from homeassistant.exceptions import Unauthorized
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
import voluptuous as vol

from .const import CONF_SERVER_ID, DOMAIN
from .export.choices import DEFAULT_FORMAT, DEFAULT_TIME_ZONE
from .export_request import (
    ExportError,
    absolute_url,
    async_count_rows,
    async_data_points,
    async_save,
    prepare_export,
    server_entry,
    signed_path,
)

SERVICE_EXPORT = "export"
ATTR_SERVER = "server"

EXPORT_SCHEMA = vol.Schema(
    {
        vol.Required(ATTR_SERVER): cv.string,
        vol.Optional("range"): cv.string,
        vol.Optional("format", default=DEFAULT_FORMAT.value): cv.string,
        vol.Optional("start"): cv.string,
        vol.Optional("end"): cv.string,
        vol.Optional("tz", default=DEFAULT_TIME_ZONE.value): cv.string,
        vol.Optional("save", default=False): cv.boolean,
        vol.Optional("include_data", default=False): cv.boolean,
    }
)


@callback
def _server_id_of(hass: HomeAssistant, server: str) -> str:
    """The server id behind the action's `server`: a device id, an entity id or a server id.

    Tried in this order: device ids are random hex, entity ids hold a dot and server ids are
    slugs without one, so one text cannot mean two servers.
    """
    if (device := dr.async_get(hass).async_get(server)) is not None:
        for domain, identifier in device.identifiers:
            if domain == DOMAIN:
                return identifier
        raise ExportError(
            "not_our_device", device=device.name_by_user or device.name or server
        )
    if valid_entity_id(server):
        entity = er.async_get(hass).async_get(server)
        if entity is not None and entity.platform == DOMAIN:
            entry = hass.config_entries.async_get_entry(entity.config_entry_id or "")
            if entry is not None:
                return str(entry.data[CONF_SERVER_ID])
        elif entity is not None or hass.states.get(server) is not None:
            raise ExportError("not_our_entity", entity=server)
    elif server_entry(hass, server) is not None:
        return server
    raise ExportError("server_not_found", server=server)


async def async_handle_export(call: ServiceCall) -> ServiceResponse:
    """Prepare an export of one server and answer with its link (and file, and data)."""
    hass = call.hass
    data = call.data
    if data["save"] and call.context.user_id:
        user = await hass.auth.async_get_user(call.context.user_id)
        if user is None or not user.is_admin:
            raise Unauthorized(context=call.context)
    plan = prepare_export(
        hass,
        _server_id_of(hass, data[ATTR_SERVER]),
        range_=data.get("range"),
        fmt=data["format"],
        tz=data["tz"],
        start=data.get("start"),
        end=data.get("end"),
    )
    url = signed_path(hass, plan)
    response: dict[str, Any] = {
        "server_id": plan.server_id,
        "server_name": plan.server_name,
        "range": plan.range_label,
        "tier": plan.tier.value,
        "format": plan.fmt.value,
        "filename": plan.filename,
        "url": url,
    }
    if (absolute := absolute_url(hass, url)) is not None:
        response["absolute_url"] = absolute
    if data["include_data"]:
        # First: an export too large for a response is refused before a file is written.
        response["data_points"] = await async_data_points(hass, plan)
        response["rows"] = len(response["data_points"])
    if data["save"]:
        saved = await async_save(hass, plan)
        response["rows"] = saved.rows
        response["path"] = str(saved.path)
    if "rows" not in response:
        response["rows"] = await async_count_rows(hass, plan)
    return response


def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions (once, not per server)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_EXPORT,
        async_handle_export,
        schema=EXPORT_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
