"""The agents' bounded GET: basic authentication as both aiohttp versions of Home Assistant accept it."""

from __future__ import annotations

import base64
import warnings

import aiohttp
from aiohttp import web
import pytest

from custom_components.homelab_metrics.agents.base import AgentConfig
from custom_components.homelab_metrics.agents.http import async_get

from .fake_server import serve


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("username", "password", "sent"),
    [
        ("prom", "secret", b"prom:secret"),
        # UTF-8, as node_exporter reads it; aiohttp's BasicAuth (latin-1) could not encode the euro sign.
        ("prom", "pässwort €", "prom:pässwort €".encode()),
        ("prom", None, b"prom:"),
        (None, None, None),
    ],
    ids=["ascii", "utf-8", "no-password", "no-user"],
)
async def test_basic_auth_header(
    username: str | None, password: str | None, sent: bytes | None
) -> None:
    """Credentials in the Authorization header (none without a user), the caller's headers kept, nothing deprecated."""
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(text="ok")

    async with serve(handler) as port, aiohttp.ClientSession() as session:
        config = AgentConfig(
            host="127.0.0.1", port=port, username=username, password=password
        )
        with warnings.catch_warnings():
            # aiohttp 3.14 (Home Assistant 2026.10) deprecates BasicAuth and auth=.
            warnings.simplefilter("error", DeprecationWarning)
            reply = await async_get(
                session, config, "/metrics", headers={"Accept": "text/plain"}
            )
    assert reply.status == 200
    if sent is None:
        assert "Authorization" not in seen[0].headers
    else:
        expected = "Basic " + base64.b64encode(sent).decode("ascii")
        assert seen[0].headers["Authorization"] == expected
    assert seen[0].headers["Accept"] == "text/plain"
