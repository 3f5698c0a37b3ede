"""What every agent client shares: the Sample it produces, its settings, its errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DEFAULT_TIMEOUT = 10.0
"""Total seconds one poll may take, connection and body included."""

MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""Largest body we read from an agent; a big node_exporter sends about 350 kB."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Sample:
    """One poll of one server; a field is None when the agent did not give it."""

    timestamp: int
    """Seconds since the epoch (UTC), from the poller's clock."""
    cpu_percent: float | None = None
    memory_percent: float | None = None
    disk_percent: float | None = None
    load_1m: float | None = None
    load_5m: float | None = None
    load_15m: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    disk_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    network_rx_bytes_per_second: float | None = None
    network_tx_bytes_per_second: float | None = None
    temperature_celsius: float | None = None
    boot_time: int | None = None
    """Seconds since the epoch (UTC) when the server booted."""
    swap_percent: float | None = None
    """Swap in use, in percent; None when the server has no swap or the agent does not say."""
    filesystems: tuple[FilesystemUsage, ...] = ()
    """Every real filesystem (no pseudo, overlay or bind mounts), by mount point, "/" first."""
    interfaces: tuple[InterfaceTraffic, ...] = ()
    """Traffic of each physical interface (those the network rates sum)."""
    updates_pending: int | None = None
    """Package updates waiting (node_exporter's apt textfile collector)."""
    reboot_required: bool | None = None
    """Whether the server asks for a reboot (node_exporter's apt textfile collector)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FilesystemUsage:
    """One mounted filesystem as `df` shows it."""

    mountpoint: str
    used_bytes: int
    free_bytes: int
    """Space still available to ordinary users (reserved blocks excluded, as df's Avail)."""
    percent: float
    """df's Use%: used / (used + free)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InterfaceTraffic:
    """Receive and transmit rates of one network interface, from counter deltas."""

    name: str
    rx_bytes_per_second: float | None = None
    tx_bytes_per_second: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentInfo:
    """What an agent tells about itself and its server (device info, the default name)."""

    hostname: str | None = None
    agent_version: str | None = None
    os: str | None = None
    """Operating system as the agent names it, e.g. "Debian GNU/Linux 12 (bookworm)"."""
    web_ui: bool = False
    """Whether the agent serves a page worth linking to (Glances with its web UI on)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentConfig:
    """Where an agent listens and how to talk to it."""

    host: str
    port: int
    ssl: bool = False
    verify_ssl: bool = True
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def base_url(self) -> str:
        """Scheme, host and port, with IPv6 literals bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.ssl else 'http'}://{host}:{self.port}"


class AgentError(Exception):
    """Base class of everything an agent client raises."""


class CannotConnect(AgentError):
    """The agent could not be reached or did not answer in time."""


class InvalidAuth(AgentError):
    """The agent refused our credentials (HTTP 401/403)."""


class InvalidResponse(AgentError):
    """The agent answered, but not with what this kind of agent sends."""


class AgentClient(Protocol):
    """A client for one agent on one server; it may keep state between polls (counters)."""

    info: AgentInfo
    """What the agent told about itself in the last successful poll (empty before it)."""

    async def async_fetch(self) -> Sample:
        """Poll the agent once and return what it reported."""
        ...
