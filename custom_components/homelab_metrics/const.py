"""Constants shared by several modules of the integration."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Final

DOMAIN: Final = "homelab_metrics"

CONF_AGENT: Final = "agent"
CONF_SERVER_ID: Final = "server_id"
CONF_SCAN_INTERVAL: Final = "scan_interval"

DEFAULT_SCAN_INTERVAL: Final = 60
MIN_SCAN_INTERVAL: Final = 10
MAX_SCAN_INTERVAL: Final = 3600

DB_FILENAME: Final = "homelab_metrics.db"
EXPORT_DIR: Final = "homelab_metrics/exports"

SIGNED_URL_VALIDITY: Final = timedelta(hours=1)


class AgentKind(StrEnum):
    """The agents a server can run."""

    NODE_EXPORTER = "node_exporter"
    GLANCES = "glances"


DEFAULT_PORTS: Final[dict[AgentKind, int]] = {
    AgentKind.NODE_EXPORTER: 9100,
    AgentKind.GLANCES: 61208,
}
