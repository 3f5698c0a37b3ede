"""Write a Home Assistant config folder with Homelab Metrics and one server already added.

Used by scripts/develop: the server entry is written into Home Assistant's own storage the way the
config flow would store it, so the first start shows live entities without clicking through the UI.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
import json
from pathlib import Path
import sys
import uuid

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.hass import write_http_settings  # noqa: E402

CONFIGURATION = """\
# Written by scripts/develop; edit freely, it is not overwritten.
# The parts of default_config this needs, without the ones that want extra packages or hardware.
frontend:
config:
history:
logbook:
recorder:
diagnostics:
repairs:
backup:
system_health:

http:
  server_host: 127.0.0.1
  server_port: {port}

logger:
  default: info
  logs:
    custom_components.homelab_metrics: debug
"""


def write_config(
    config: Path, *, agent: str, host: str, port: int, name: str, http_port: int
) -> None:
    """Create the folder, link the integration, and add the server unless one with that host:port exists."""
    config.mkdir(parents=True, exist_ok=True)
    (config / "custom_components").mkdir(exist_ok=True)
    link = config / "custom_components" / "homelab_metrics"
    if not link.exists():
        link.symlink_to(REPO / "custom_components" / "homelab_metrics")
    yaml = config / "configuration.yaml"
    if not yaml.exists():
        yaml.write_text(CONFIGURATION.format(port=http_port))
        # Without it, Home Assistant 2026.10+ puts the YAML's HTTP settings on trial and restarts.
        write_http_settings(config, "127.0.0.1", http_port)

    storage = config / ".storage"
    storage.mkdir(exist_ok=True)
    path = storage / "core.config_entries"
    document = (
        json.loads(path.read_text())
        if path.exists()
        else {
            "version": 1,
            "minor_version": 5,
            "key": "core.config_entries",
            "data": {"entries": []},
        }
    )
    entries = document["data"]["entries"]
    unique_id = f"{host}:{port}"
    ours = [
        e
        for e in entries
        if e["domain"] == "homelab_metrics" and e["unique_id"] == unique_id
    ]
    if ours:
        ours[0]["data"]["port"] = port
    else:
        now = datetime.now(UTC).isoformat()
        entries.append(
            {
                "created_at": now,
                "modified_at": now,
                "data": {
                    "agent": agent,
                    "server_id": "local_" + agent,
                    "host": host,
                    "port": port,
                    "ssl": False,
                    "verify_ssl": True,
                },
                "disabled_by": None,
                "discovery_keys": {},
                "domain": "homelab_metrics",
                "entry_id": uuid.uuid4().hex,
                "minor_version": 1,
                "options": {"scan_interval": 10},
                "pref_disable_new_entities": False,
                "pref_disable_polling": False,
                "source": "user",
                "subentries": [],
                "title": name,
                "unique_id": unique_id,
                "version": 1,
            }
        )
    path.write_text(json.dumps(document, indent=2))


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument(
        "--agent", default="glances", choices=["glances", "node_exporter"]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="This machine")
    parser.add_argument("--http-port", type=int, default=8123)
    args = parser.parse_args()
    write_config(
        args.config,
        agent=args.agent,
        host=args.host,
        port=args.port,
        name=args.name,
        http_port=args.http_port,
    )


if __name__ == "__main__":
    main()
