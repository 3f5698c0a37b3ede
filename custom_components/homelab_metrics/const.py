"""Constants shared by several modules of the integration."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Final

DOMAIN: Final = "homelab_metrics"

CONF_AGENT: Final = "agent"
CONF_SERVER_ID: Final = "server_id"
CONF_SCAN_INTERVAL: Final = "scan_interval"

CONF_NODES: Final = "nodes"
"""Options of a Prometheus server: its chosen nodes, {instance: {server_id, name[, import_until]}}."""
CONF_IGNORED: Final = "ignored"
"""Options of a Prometheus server: instances the user chose not to add."""
CONF_ADD_NEW: Final = "add_new_nodes"
"""Options of a Prometheus server: add the nodes it starts scraping later without asking."""
CONF_IMPORT: Final = "import_history"
"""Options of a Prometheus server: import the past of nodes added later (the flow asks once)."""
CONF_IMPORT_UNTIL: Final = "import_until"
"""A node's past before this time (epoch seconds, when it was added) is imported."""

DEFAULT_SCAN_INTERVAL: Final = 60
MIN_SCAN_INTERVAL: Final = 10
MAX_SCAN_INTERVAL: Final = 3600

DB_FILENAME: Final = "homelab_metrics.db"
EXPORT_DIR: Final = "homelab_metrics/exports"

SIGNED_URL_VALIDITY: Final = timedelta(hours=1)


class AgentKind(StrEnum):
    """Where a config entry's servers are read: a server's own agent, or a Prometheus server."""

    NODE_EXPORTER = "node_exporter"
    GLANCES = "glances"
    PROMETHEUS = "prometheus"
    """A Prometheus-compatible server: one entry, a server (device) per chosen node."""


DIRECT_AGENTS: Final = (AgentKind.NODE_EXPORTER, AgentKind.GLANCES)
"""Agents polled on the server itself: one entry, one server."""


DEFAULT_PORTS: Final[dict[AgentKind, int]] = {
    AgentKind.NODE_EXPORTER: 9100,
    AgentKind.GLANCES: 61208,
}
