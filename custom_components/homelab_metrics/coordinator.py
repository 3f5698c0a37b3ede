"""One DataUpdateCoordinator per server: poll its agent, keep the sample in the history."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import HassJob, HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .agents.base import (
    AgentClient,
    AgentConfig,
    AgentInfo,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from .agents.glances import GlancesClient
from .agents.node_exporter import NodeExporterClient
from .const import (
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    AgentKind,
)
from .export.choices import DEFAULT_FORMAT, DEFAULT_RANGE, ExportFormat, ExportRange
from .history_manager import get_history

_LOGGER = logging.getLogger(__name__)

SECOND_READING_DELAY = 5
"""Seconds after a first poll without rates before reading again, so rates exist at once."""


@dataclass(kw_only=True, slots=True)
class ExportChoice:
    """Range and format the server's export button uses (set by its two selects)."""

    range: ExportRange = DEFAULT_RANGE
    format: ExportFormat = DEFAULT_FORMAT


@dataclass(kw_only=True, slots=True)
class HomelabData:
    """What a loaded entry keeps at runtime."""

    coordinator: HomelabCoordinator
    export_choice: ExportChoice = field(default_factory=ExportChoice)


type HomelabConfigEntry = ConfigEntry[HomelabData]

AGENT_NAMES: dict[AgentKind, str] = {
    AgentKind.NODE_EXPORTER: "node_exporter",
    AgentKind.GLANCES: "Glances",
}
"""How the agents write their own names (product names, not translated)."""

_CLIENTS: dict[AgentKind, type[NodeExporterClient | GlancesClient]] = {
    AgentKind.NODE_EXPORTER: NodeExporterClient,
    AgentKind.GLANCES: GlancesClient,
}


def server_name(hass: HomeAssistant, entry: ConfigEntry) -> str:
    """The server's name as the user sees it: its device's, renamed or not, else the entry's title.

    The device is where users rename a server; the entry title keeps the name it was added
    with. Everything that names a server to the user should call it this.
    """
    device = _server_device(hass, entry)
    if device is None:
        return entry.title
    return device.name_by_user or device.name or entry.title


def _server_device(hass: HomeAssistant, entry: ConfigEntry) -> dr.DeviceEntry | None:
    """The server's device, found through its entry.

    Looking a device up by identifier alone is deprecated since 2026 (identifiers are unique
    per entry only) and its replacement does not exist in 2025.4; the entry's devices work in both.
    """
    identifier = (DOMAIN, entry.data[CONF_SERVER_ID])
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(
                dr.async_get(hass), entry.entry_id
            )
            if identifier in device.identifiers
        ),
        None,
    )


def _now() -> float:
    """Home Assistant's clock in epoch seconds: sample times and rate intervals come from it."""
    return dt_util.utcnow().timestamp()


def async_create_client(
    hass: HomeAssistant, agent: AgentKind, data: Mapping[str, Any]
) -> AgentClient:
    """A client for the agent described by a config entry's data, on the shared session."""
    config = AgentConfig(
        host=data[CONF_HOST],
        port=int(data[CONF_PORT]),
        ssl=bool(data.get(CONF_SSL, False)),
        verify_ssl=bool(data.get(CONF_VERIFY_SSL, True)),
        username=data.get(CONF_USERNAME),
        password=data.get(CONF_PASSWORD),
    )
    session = async_get_clientsession(hass, verify_ssl=config.verify_ssl)
    return _CLIENTS[agent](session, config, clock=_now)


def _lacks_rates(sample: Sample) -> bool:
    """Whether a poll lacks the figures that need a previous poll."""
    return (
        sample.cpu_percent is None
        or sample.network_rx_bytes_per_second is None
        or sample.network_tx_bytes_per_second is None
    )


class HomelabCoordinator(DataUpdateCoordinator[Sample]):
    """Polls one server's agent and records every sample in the history."""

    config_entry: HomelabConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HomelabConfigEntry,
        client: AgentClient,
    ) -> None:
        """Set up the poller with the entry's scan interval."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=timedelta(
                seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
            ),
        )
        self.client = client
        self.server_id: str = entry.data[CONF_SERVER_ID]
        self.agent = AgentKind(entry.data["agent"])
        self._store_failing = False
        self._cancel_second_reading: Callable[[], None] | None = None
        self._device_info_from: AgentInfo | None = None

    def device_info(self) -> DeviceInfo:
        """The server as its agent describes it; the user's name for it stays theirs.

        The device page shows model, then model id in brackets, then "Firmware": the OS the
        agent reports, the host we poll, and the agent with its version. The only page worth
        a link is a Glances web UI (node_exporter's root page only links to /metrics).
        """
        entry = self.config_entry
        info = self.client.info
        agent = AGENT_NAMES[self.agent]
        return DeviceInfo(
            identifiers={(DOMAIN, self.server_id)},
            name=entry.title,
            model=info.os,
            model_id=entry.data[CONF_HOST],
            sw_version=f"{agent} {info.agent_version}" if info.agent_version else agent,
            configuration_url=AgentConfig(
                host=entry.data[CONF_HOST],
                port=entry.data[CONF_PORT],
                ssl=bool(entry.data.get(CONF_SSL)),
            ).base_url
            if info.web_ui
            else None,
        )

    def _async_update_device(self) -> None:
        """Show what the agent now says about itself (upgraded, web UI turned on) on the device."""
        if self.client.info == self._device_info_from:
            return
        self._device_info_from = self.client.info
        device = _server_device(self.hass, self.config_entry)
        if device is None:
            return  # the platforms create it from device_info() after the first poll
        info = self.device_info()
        dr.async_get(self.hass).async_update_device(
            device.id,
            model=info.get("model"),
            model_id=info.get("model_id"),
            sw_version=info.get("sw_version"),
            configuration_url=info.get("configuration_url"),
        )

    async def async_config_entry_first_refresh(self) -> None:
        """First poll; when it has no rates yet, a second reading a few seconds later.

        CPU and network figures are rates between two of our polls: without the second reading
        they would stay unavailable for a whole scan interval after every start.
        """
        await super().async_config_entry_first_refresh()
        if _lacks_rates(self.data):
            self._cancel_second_reading = async_call_later(
                self.hass,
                SECOND_READING_DELAY,
                HassJob(self._async_second_reading, cancel_on_shutdown=True),
            )

    async def _async_second_reading(self, _: datetime) -> None:
        """Poll once more; the scan interval then counts from this poll."""
        self._cancel_second_reading = None
        await self.async_refresh()

    async def async_shutdown(self) -> None:
        """Cancel a pending second reading too (entry unloaded, Home Assistant stopping)."""
        if self._cancel_second_reading is not None:
            self._cancel_second_reading()
            self._cancel_second_reading = None
        await super().async_shutdown()

    async def _async_update_data(self) -> Sample:
        """Fetch one sample; agent errors become Home Assistant's."""
        try:
            sample = await self.client.async_fetch()
        except InvalidAuth as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except CannotConnect as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"error": str(err) or type(err).__name__},
            ) from err
        except InvalidResponse as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="invalid_response",
                translation_placeholders={"error": str(err)},
            ) from err
        self._async_update_device()
        await self._async_record(sample)
        return sample

    async def _async_record(self, sample: Sample) -> None:
        """Keep the sample in the history; a failing store never stops polling."""
        if (store := get_history(self.hass).store) is None:
            return
        try:
            await store.async_add(self.server_id, sample)
        except Exception:
            if not self._store_failing:
                _LOGGER.exception("Could not record a sample of %s", self.server_id)
            self._store_failing = True
        else:
            if self._store_failing:
                _LOGGER.info("Recording samples of %s works again", self.server_id)
            self._store_failing = False
