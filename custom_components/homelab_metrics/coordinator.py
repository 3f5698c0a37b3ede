"""Polling: one coordinator per config entry, for one server's agent or a Prometheus server's nodes.

An entry holds servers: the one server its agent runs on, or every chosen node of a Prometheus
server. Each server has its own `server_id`, device, history and export choice; entities, the
export button, the action and the views all see a `Server`, whichever coordinator feeds it.

Why one module of about 600 lines: both coordinators share the Server, its naming, the outage
log lines and the history write; entities, button, action and views import only this module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
from typing import TYPE_CHECKING, Any
import zlib

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_TOKEN,
    CONF_URL,
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
    AgentError,
    AgentInfo,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
    Sample,
)
from .agents.glances import GlancesClient
from .agents.node_exporter import NodeExporterClient
from .agents.prometheus import (
    Node,
    PrometheusClient,
    PrometheusConfig,
    ServerInfo,
    suggest_rate_window,
)
from .const import (
    CONF_AGENT,
    CONF_IMPORT_UNTIL,
    CONF_NODES,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    AgentKind,
)
from .export.choices import DEFAULT_FORMAT, DEFAULT_RANGE, ExportFormat, ExportRange
from .history_manager import get_history

if TYPE_CHECKING:
    from .history_import import HistoryImporter

_LOGGER = logging.getLogger(__name__)

SECOND_READING_DELAY = 5
"""Seconds after a first poll without rates before reading again, so rates exist at once."""
DISCOVERY_INTERVAL = 3600
"""Seconds between two discoveries of a Prometheus server's nodes (new nodes, OS, versions)."""


@dataclass(kw_only=True, slots=True)
class ExportChoice:
    """Range and format the server's export button uses (set by its two selects)."""

    range: ExportRange = DEFAULT_RANGE
    format: ExportFormat = DEFAULT_FORMAT


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerConfig:
    """A server as its entry stores it: known whether or not the entry is loaded."""

    server_id: str
    """The slug fixed when the server was added; it names its device, history and files."""
    name: str
    """The name it was added with (the device may have been renamed since)."""
    instance: str | None = None
    """A Prometheus node's `instance` label; None for a server polled through its own agent."""
    import_until: int | None = None
    """A node whose past before this time is imported from Prometheus; None for no import."""


def configured_servers(entry: ConfigEntry) -> dict[str, ServerConfig]:
    """The servers of an entry by server id: its one server, or a Prometheus server's nodes."""
    if entry.data.get(CONF_AGENT) != AgentKind.PROMETHEUS:
        if (server_id := entry.data.get(CONF_SERVER_ID)) is None:
            return {}  # an ignored discovery or a broken entry: no server
        return {server_id: ServerConfig(server_id=server_id, name=entry.title)}
    servers: dict[str, ServerConfig] = {}
    for instance, node in entry.options.get(CONF_NODES, {}).items():
        servers[node[CONF_SERVER_ID]] = ServerConfig(
            server_id=node[CONF_SERVER_ID],
            name=node["name"],
            instance=instance,
            import_until=node.get(CONF_IMPORT_UNTIL),
        )
    return servers


@dataclass(kw_only=True, eq=False)
class Server:
    """One server of a loaded entry, as its entities, export button and the views see it."""

    config: ServerConfig
    coordinator: HomelabCoordinator | PrometheusCoordinator
    export_choice: ExportChoice = field(default_factory=ExportChoice)

    @property
    def server_id(self) -> str:
        """The server's fixed id."""
        return self.config.server_id

    @property
    def sample(self) -> Sample | None:
        """The server's figures from the last successful poll; None when it had none."""
        return self.coordinator.sample_of(self.config)

    @property
    def online(self) -> bool:
        """Whether the last poll reached the server (for a node: Prometheus' last scrape did)."""
        return self.coordinator.last_update_success and self.sample is not None

    def device_info(self) -> DeviceInfo:
        """The server's device as the coordinator knows it."""
        return self.coordinator.device_info_of(self.config)


@dataclass(kw_only=True, slots=True)
class HomelabData:
    """What a loaded entry keeps at runtime."""

    coordinator: HomelabCoordinator | PrometheusCoordinator
    servers: dict[str, Server]
    """By server id: the entry's one server, or a Prometheus server's chosen nodes."""
    importer: HistoryImporter | None = None
    """A Prometheus server's import of its nodes' past, when a node was added with one."""


type HomelabConfigEntry = ConfigEntry[HomelabData]

AGENT_NAMES: dict[AgentKind, str] = {
    AgentKind.NODE_EXPORTER: "node_exporter",
    AgentKind.GLANCES: "Glances",
    AgentKind.PROMETHEUS: "Prometheus",
}
"""How the agents write their own names (product names, not translated)."""

_CLIENTS: dict[AgentKind, type[NodeExporterClient | GlancesClient]] = {
    AgentKind.NODE_EXPORTER: NodeExporterClient,
    AgentKind.GLANCES: GlancesClient,
}


def server_name(hass: HomeAssistant, entry: ConfigEntry, server_id: str) -> str:
    """A server's name as the user sees it: its device's, renamed or not, else the name it was added with.

    The device is where users rename a server; the entry keeps the name it was added with.
    Everything that names a server to the user should call it this.
    """
    config = configured_servers(entry).get(server_id)
    added_as = config.name if config is not None else entry.title
    device = entry_device(hass, entry, server_id)
    if device is None:
        return added_as
    return device.name_by_user or device.name or added_as


def entry_device(
    hass: HomeAssistant, entry: ConfigEntry, identifier: str
) -> dr.DeviceEntry | None:
    """A device of the entry by its identifier (a server id, or a Prometheus server's entry id).

    Looking a device up by identifier alone is deprecated since 2026 (identifiers are unique
    per entry only) and its replacement does not exist in 2025.4; the entry's devices work in both.
    """
    wanted = (DOMAIN, identifier)
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(
                dr.async_get(hass), entry.entry_id
            )
            if wanted in device.identifiers
        ),
        None,
    )


def _now() -> float:
    """Home Assistant's clock in epoch seconds: sample times and rate intervals come from it."""
    return dt_util.utcnow().timestamp()


def _scan_interval(entry: ConfigEntry) -> timedelta:
    return timedelta(
        seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL)
    )


def first_wait(interval: timedelta, server_id: str) -> timedelta:
    """The wait before a server's first poll on its interval: a share of it fixed by the server id.

    Core's coordinator schedules each poll a whole number of seconds (plus a fraction of its
    own) after the previous one ended, so servers set up in the same second (Home Assistant
    starting) would poll in the same second of every interval for ever, queued on the event
    loop behind each other. Waiting this share once spreads them over the interval: at least a
    second, at most the whole interval.
    """
    share = zlib.crc32(server_id.encode()) / 2**32
    return max(interval * share, timedelta(seconds=1))


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


def async_create_prometheus_client(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> PrometheusClient:
    """A client for the Prometheus server of a config entry's data, on the shared session.

    ValueError for a URL or credentials the client cannot use (the flow checked them).
    """
    verify_ssl = bool(data.get(CONF_VERIFY_SSL, True))
    return PrometheusClient(
        async_get_clientsession(hass, verify_ssl=verify_ssl),
        PrometheusConfig(
            url=data[CONF_URL],
            username=data.get(CONF_USERNAME),
            password=data.get(CONF_PASSWORD),
            token=data.get(CONF_TOKEN),
            verify_ssl=verify_ssl,
        ),
        clock=_now,
    )


def _update_failed(
    err: AgentError, prefix: str = ""
) -> UpdateFailed | ConfigEntryAuthFailed:
    """Home Assistant's error for an agent's, translated (prefix "prometheus_": the server's)."""
    if isinstance(err, InvalidAuth):
        return ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key=f"{prefix}invalid_auth"
        )
    if isinstance(err, CannotConnect):
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key=f"{prefix}cannot_connect",
            translation_placeholders={"error": str(err) or type(err).__name__},
        )
    return UpdateFailed(
        translation_domain=DOMAIN,
        translation_key=f"{prefix}invalid_response",
        translation_placeholders={"error": str(err)},
    )


def _lacks_rates(sample: Sample) -> bool:
    """Whether a poll lacks the figures that need a previous poll."""
    return (
        sample.cpu_percent is None
        or sample.network_rx_bytes_per_second is None
        or sample.network_tx_bytes_per_second is None
    )


class _Recorder:
    """Keeps polls in the history; a failing store never stops polling, and says so once."""

    def __init__(self, hass: HomeAssistant, what: str) -> None:
        self._hass = hass
        self._what = what
        self._failing = False

    async def async_record(self, polls: list[tuple[str, Sample]]) -> None:
        """Write one poll of each server in one transaction."""
        if not polls or (store := get_history(self._hass).store) is None:
            return
        try:
            await store.async_add_each(polls)
        except Exception:
            if not self._failing:
                _LOGGER.exception("Could not record a sample of %s", self._what)
            self._failing = True
        else:
            if self._failing:
                _LOGGER.info("Recording samples of %s works again", self._what)
            self._failing = False


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
            update_interval=_scan_interval(entry),
        )
        self.scan_interval = _scan_interval(entry)
        """The entry's interval (update_interval is shorter once, see `first_wait`)."""
        self._first_wait_pending = False
        self.client = client
        self.server_id: str = entry.data[CONF_SERVER_ID]
        self.agent = AgentKind(entry.data[CONF_AGENT])
        self._recorder = _Recorder(hass, self.server_id)
        self._cancel_second_reading: Callable[[], None] | None = None
        self._device_info_from: AgentInfo | None = None

    def sample_of(self, server: ServerConfig) -> Sample | None:
        """The entry's one server's latest sample."""
        return self.data

    def device_info_of(self, server: ServerConfig) -> DeviceInfo:
        """The server's device (the entry has only this one)."""
        return self.device_info()

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
        device = entry_device(self.hass, self.config_entry, self.server_id)
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
        else:
            self._wait_once()

    async def _async_second_reading(self, _: datetime) -> None:
        """Poll once more; the server's first wait (`first_wait`) then counts from this poll."""
        self._cancel_second_reading = None
        # Only now: a first wait shorter than SECOND_READING_DELAY would poll before this.
        self.update_interval = first_wait(self.scan_interval, self.server_id)
        await self.async_refresh()
        # Scheduled by that refresh; the poll it schedules goes back to the scan interval.
        self._first_wait_pending = True

    def _wait_once(self) -> None:
        """The next poll comes after the server's first wait; the one after it, an interval later."""
        self.update_interval = first_wait(self.scan_interval, self.server_id)
        self._first_wait_pending = True

    async def async_shutdown(self) -> None:
        """Cancel a pending second reading too (entry unloaded, Home Assistant stopping)."""
        if self._cancel_second_reading is not None:
            self._cancel_second_reading()
            self._cancel_second_reading = None
        await super().async_shutdown()

    async def _async_update_data(self) -> Sample:
        """Fetch one sample; agent errors become Home Assistant's."""
        if self._first_wait_pending:
            # The poll after the first wait: the next one comes a whole interval later.
            self._first_wait_pending = False
            self.update_interval = self.scan_interval
        try:
            sample = await self.client.async_fetch()
        except AgentError as err:
            raise _update_failed(err) from err
        self._async_update_device()
        await self._recorder.async_record([(self.server_id, sample)])
        return sample


class PrometheusCoordinator(DataUpdateCoordinator[dict[str, Sample | None]]):
    """Polls a Prometheus server for every chosen node at once and records each node's sample.

    The data is a Sample per instance the server answered for; None for a node whose last
    scrape failed (`up == 0`). A chosen node missing from it is no longer scraped. When the
    server cannot be reached, the poll fails as a whole: every node is unavailable, and Home
    Assistant's coordinator logs that once, and the recovery once.
    """

    config_entry: HomelabConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: HomelabConfigEntry,
        client: PrometheusClient,
    ) -> None:
        """Set up the poller with the entry's scan interval."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=_scan_interval(entry),
        )
        self.client = client
        self.server_info: ServerInfo | None = None
        """What the connection test at setup learnt (the server's version)."""
        self.nodes: dict[str, Node] = {}
        """Every node the last discovery found, chosen or not, by instance."""
        self._discovered_at: float | None = None
        self._discovery_listeners: list[Callable[[], None]] = []
        self._device_info_from: dict[str, Node] = {}
        self._recorder = _Recorder(hass, entry.title)

    @property
    def chosen(self) -> dict[str, ServerConfig]:
        """The chosen nodes by instance."""
        return {
            config.instance: config
            for config in configured_servers(self.config_entry).values()
            if config.instance is not None
        }

    @property
    def rate_window(self) -> int:
        """Seconds of the rates' window: the scan interval, but at least four scrapes of any node."""
        chosen = self.chosen
        intervals = [
            node.scrape_interval
            for instance, node in self.nodes.items()
            if instance in chosen and node.scrape_interval is not None
        ]
        scan = int(_scan_interval(self.config_entry).total_seconds())
        return suggest_rate_window(scan, max(intervals) if intervals else None)

    def async_add_discovery_listener(
        self, listener: Callable[[], None]
    ) -> Callable[[], None]:
        """Call listener after each discovery of the nodes; returns its removal."""
        self._discovery_listeners.append(listener)
        return lambda: self._discovery_listeners.remove(listener)

    def sample_of(self, server: ServerConfig) -> Sample | None:
        """The node's latest sample; None while it is down or no longer scraped."""
        return (self.data or {}).get(server.instance or "")

    def hub_device_info(self) -> DeviceInfo:
        """The Prometheus server the nodes are read through (their `via_device`)."""
        entry = self.config_entry
        version = self.server_info.version if self.server_info else None
        return DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            sw_version=f"Prometheus {version}" if version else None,
            configuration_url=entry.data[CONF_URL],
        )

    def device_info_of(self, server: ServerConfig) -> DeviceInfo:
        """A node's device as its node_exporter describes it, through the Prometheus server.

        As a direct node_exporter's: the OS as the model, the instance as the model id (where
        the node is scraped), node_exporter and its version as the software.
        """
        node = self.nodes.get(server.instance or "")
        version = node.version if node else None
        return DeviceInfo(
            identifiers={(DOMAIN, server.server_id)},
            name=server.name,
            model=node.os if node else None,
            model_id=server.instance,
            sw_version=f"node_exporter {version}" if version else "node_exporter",
            via_device=(DOMAIN, self.config_entry.entry_id),
        )

    async def _async_update_data(self) -> dict[str, Sample | None]:
        """Discover the nodes when due, then poll every chosen node at once."""
        try:
            if self.server_info is None:
                self.server_info = await self.client.async_test()
            if (
                self._discovered_at is None
                or _now() - self._discovered_at >= DISCOVERY_INTERVAL
            ):
                await self._async_discover()
            # After discovery, which may have added nodes.
            chosen = self.chosen
            polled = await self.client.async_poll(self.rate_window, instances=chosen)
        except AgentError as err:
            raise _update_failed(err, "prometheus_") from err
        await self._recorder.async_record(
            [
                (config.server_id, sample)
                for instance, config in chosen.items()
                if (sample := polled.get(instance)) is not None
            ]
        )
        return polled

    async def _async_discover(self) -> None:
        """Learn the nodes (new ones, host names, OS, versions, scrape intervals)."""
        try:
            nodes = await self.client.async_discover()
        except InvalidResponse as err:
            # Polling works without it (a fleet past the node cap, say): try again next time.
            _LOGGER.warning("Could not list the nodes of %s: %s", self.name, err)
            self._discovered_at = _now()
            return
        self._discovered_at = _now()
        self.nodes = {node.instance: node for node in nodes}
        self._async_update_devices()
        for listener in list(self._discovery_listeners):
            listener()

    def _async_update_devices(self) -> None:
        """Show what discovery now says about each node (upgraded, another OS) on its device."""
        registry = dr.async_get(self.hass)
        for instance, config in self.chosen.items():
            node = self.nodes.get(instance)
            if node is None or self._device_info_from.get(instance) == node:
                continue
            self._device_info_from[instance] = node
            device = entry_device(self.hass, self.config_entry, config.server_id)
            if device is None:
                continue  # the platforms create it after the first poll
            info = self.device_info_of(config)
            registry.async_update_device(
                device.id,
                model=info.get("model"),
                sw_version=info.get("sw_version"),
            )
