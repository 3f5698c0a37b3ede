"""Agents played from the captured payloads: on Home Assistant's aioclient_mock, or a hung server.

`mock_node_exporter` / `mock_glances` register the fixtures under tests/fixtures/ for one base URL
(`AgentConfig.base_url`, e.g. "http://192.168.1.10:9100"); `mock_unauthorized` and
`mock_unreachable` make every path of that URL fail the way a real agent would. Call
`aioclient_mock.clear_requests()` before registering a new state (mocks match first-registered first).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
import json
from pathlib import Path
import re
from typing import Any

import aiohttp
from pytest_homeassistant_custom_component.test_util.aiohttp import (
    AiohttpClientMocker,
)

from custom_components.homelab_metrics.agents.glances import INFO_PLUGINS, PLUGINS

FIXTURES = Path(__file__).parent / "fixtures"
NODE_EXPORTER_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What node_exporter 1.5 sends with /metrics."""


def node_exporter_payload(name: str = "metrics_1.txt") -> str:
    """A payload from tests/fixtures/node_exporter."""
    return (FIXTURES / "node_exporter" / name).read_text()


def glances_payload(round_: str, plugin: str) -> Any:
    """A plugin's JSON from tests/fixtures/glances/<round_>, else from that version's first round.

    Rounds: "v4" and "v4_second" (Glances 4.5.8), "v3" and "v3_second" (Glances 3.3.1), captured
    a few seconds apart with traffic in between, so network rates are not zero.
    """
    path = FIXTURES / "glances" / round_ / f"{plugin}.json"
    if not path.exists():
        path = FIXTURES / "glances" / round_.split("_")[0] / f"{plugin}.json"
    return json.loads(path.read_text())


def glances_has(version: int, plugin: str) -> bool:
    """Whether the captured Glances of that API version has the plugin (3.3.1 has no version)."""
    return (FIXTURES / "glances" / f"v{version}" / f"{plugin}.json").exists()


UNKNOWN_PLUGIN = {"detail": "Unknown plugin"}
"""What Glances answers, with HTTP 400, for a plugin it does not have or has disabled."""


def mock_node_exporter(
    aioclient_mock: AiohttpClientMocker,
    base_url: str,
    *,
    payload_name: str = "metrics_1.txt",
    status: int = 200,
    content_type: str = NODE_EXPORTER_CONTENT_TYPE,
) -> None:
    """Answer GET {base_url}/metrics with a captured scrape."""
    aioclient_mock.get(
        f"{base_url}/metrics",
        status=status,
        text=node_exporter_payload(payload_name),
        headers={"Content-Type": content_type},
    )


def mock_glances(
    aioclient_mock: AiohttpClientMocker,
    base_url: str,
    *,
    version: int = 4,
    round_: str | None = None,
    first_cpu: bool = False,
    web_ui: bool = False,
    overrides: Mapping[str, tuple[int, Any]] | None = None,
) -> None:
    """Answer /api/<version>/<plugin> with captured payloads and 404 on the other version's paths.

    Every plugin a poll asks for is answered, and what Glances says about itself (system,
    version or help; 400 for a plugin the captured version lacks). first_cpu serves the all-zero
    cpu Glances sends right after it starts (the client asks again after CPU_RETRY_DELAY and gets
    the same); web_ui answers / with a page (404 otherwise, as with --disable-webui); overrides
    maps a plugin to (status, JSON body), e.g. {"fs": (400, {"detail": "Unknown plugin"})}.
    """
    round_ = round_ or f"v{version}"
    for plugin, (status, body) in (overrides or {}).items():
        aioclient_mock.get(
            f"{base_url}/api/{version}/{plugin}", status=status, json=body
        )
    other = 3 if version == 4 else 4
    about = {name for names in INFO_PLUGINS.values() for name in names}
    for plugin in (*PLUGINS, *sorted(about)):
        aioclient_mock.get(
            f"{base_url}/api/{other}/{plugin}", status=404, json={"detail": "Not Found"}
        )
    for plugin in PLUGINS:
        body = (
            json.loads((FIXTURES / "glances" / "cpu_first.json").read_text())
            if plugin == "cpu" and first_cpu
            else glances_payload(round_, plugin)
        )
        aioclient_mock.get(f"{base_url}/api/{version}/{plugin}", json=body)
    for plugin in sorted(about):
        if glances_has(version, plugin):
            aioclient_mock.get(
                f"{base_url}/api/{version}/{plugin}",
                json=glances_payload(round_, plugin),
            )
        else:
            aioclient_mock.get(
                f"{base_url}/api/{version}/{plugin}", status=400, json=UNKNOWN_PLUGIN
            )
    if web_ui:
        aioclient_mock.get(
            f"{base_url}/",
            text="<html><head><title>Glances</title></head></html>",
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
    else:
        aioclient_mock.get(f"{base_url}/", status=404, json={"detail": "Not Found"})


def _everything_under(base_url: str) -> re.Pattern[str]:
    """A pattern for every URL of one agent."""
    return re.compile("^" + re.escape(base_url) + "/")


def mock_unauthorized(aioclient_mock: AiohttpClientMocker, base_url: str) -> None:
    """Every path answers 401 with a Basic challenge, as both agents do with auth on."""
    aioclient_mock.get(
        _everything_under(base_url),
        status=401,
        text="Unauthorized",
        headers={"WWW-Authenticate": 'Basic realm="agent"'},
    )


def mock_unreachable(
    aioclient_mock: AiohttpClientMocker,
    base_url: str,
    exc: BaseException | None = None,
) -> None:
    """Every request fails before an answer: connection refused, or exc (e.g. TimeoutError())."""
    aioclient_mock.get(
        _everything_under(base_url),
        exc=exc if exc is not None else aiohttp.ClientConnectionError("refused"),
    )


@asynccontextmanager
async def hung_agent() -> AsyncIterator[int]:
    """A server on 127.0.0.1 that accepts connections and never answers; yields its port."""
    release = asyncio.Event()

    async def hang(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        release.set()
        server.close()
        await server.wait_closed()
