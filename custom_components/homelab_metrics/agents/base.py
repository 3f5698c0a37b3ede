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

    async def async_fetch(self) -> Sample:
        """Poll the agent once and return what it reported."""
        ...
