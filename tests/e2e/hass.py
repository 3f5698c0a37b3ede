"""A real Home Assistant in a subprocess, onboarded through its API, for end-to-end tests and benchmarks.

    async with RealHomeAssistant(tmp_path) as hass:
        await hass.add_server("node_exporter", "127.0.0.1", 9100, "Live")
        await hass.ws({"type": "lovelace/config/save", "config": {...}})

Importable without pytest; uses only aiohttp and the repository's .venv.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
import itertools
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import Any, Self

import aiohttp

from .agents import REPO, free_port

CONFIGURATION = """\
homeassistant:
  name: Homelab test
  time_zone: {time_zone}
  unit_system: metric
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  country: NL
  currency: EUR

http:
  server_host: 127.0.0.1
  server_port: {port}

frontend:
{extra}
logger:
  default: warning
  logs:
    custom_components.homelab_metrics: debug
"""
USERNAME = "owner"
PASSWORD = "homelab-metrics-e2e"


@dataclass
class RealHomeAssistant:
    """`hass -c <config>` with this integration linked in, an owner account and a token."""

    config: Path
    time_zone: str = "UTC"
    extra_config: str = ""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    refresh_token: str = ""
    expires_in: int = 1800
    session: aiohttp.ClientSession | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        """Base URL of Home Assistant."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_id(self) -> str:
        """OAuth client id of the (test) frontend."""
        return f"{self.url}/"

    def write_config(self) -> None:
        """configuration.yaml, and custom_components/homelab_metrics linked to the repository."""
        self.config.mkdir(parents=True, exist_ok=True)
        (self.config / "configuration.yaml").write_text(
            CONFIGURATION.format(
                time_zone=self.time_zone, port=self.port, extra=self.extra_config
            )
        )
        components = self.config / "custom_components"
        components.mkdir(exist_ok=True)
        link = components / "homelab_metrics"
        if not link.exists():
            link.symlink_to(REPO / "custom_components" / "homelab_metrics")

    async def __aenter__(self) -> Self:
        """Start, wait for the API, onboard, log in."""
        self.write_config()
        log = (self.config / "hass.out").open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("hass")),
                "-c",
                str(self.config),
                "--skip-pip",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.session = aiohttp.ClientSession()
        try:
            await self._wait_ready()
            await self._onboard()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop Home Assistant and wait for it."""
        if self.session is not None:
            await self.session.close()
            self.session = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)
        self.process = None

    def log(self) -> str:
        """What Home Assistant printed (for failure messages)."""
        path = self.config / "hass.out"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""

    async def _wait_ready(self, timeout: float = 180) -> None:
        assert self.session is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Home Assistant exited:\n{self.log()}")
            try:
                async with self.session.get(f"{self.url}/api/onboarding") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        raise TimeoutError(
            f"Home Assistant did not start within {timeout} s:\n{self.log()}"
        )

    async def _onboard(self) -> None:
        assert self.session is not None
        async with self.session.post(
            f"{self.url}/api/onboarding/users",
            json={
                "client_id": self.client_id,
                "name": "Owner",
                "username": USERNAME,
                "password": PASSWORD,
                "language": "en",
            },
        ) as response:
            response.raise_for_status()
            code = (await response.json())["auth_code"]
        await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.client_id,
            }
        )
        for step, body in (
            ("core_config", {}),
            ("analytics", {}),
            (
                "integration",
                {
                    "client_id": self.client_id,
                    "redirect_uri": f"{self.url}/?auth_callback=1",
                },
            ),
        ):
            await self.rest("POST", f"/api/onboarding/{step}", body)

    async def _token(self, form: dict[str, str]) -> None:
        assert self.session is not None
        async with self.session.post(f"{self.url}/auth/token", data=form) as response:
            response.raise_for_status()
            tokens = await response.json()
        self.token = tokens["access_token"]
        self.refresh_token = tokens.get("refresh_token", self.refresh_token)
        self.expires_in = tokens["expires_in"]

    async def rest(self, method: str, path: str, body: Any = None) -> Any:
        """Call the REST API with the owner's token; the decoded JSON answer."""
        assert self.session is not None
        async with self.session.request(
            method,
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}: {text}")
            return json.loads(text) if text else None

    async def ws(self, message: dict[str, Any]) -> Any:
        """One websocket command; its result."""
        assert self.session is not None
        async with self.session.ws_connect(f"{self.url}/api/websocket") as socket:
            await socket.receive_json()
            await socket.send_json({"type": "auth", "access_token": self.token})
            assert (await socket.receive_json())["type"] == "auth_ok"
            await socket.send_json({"id": next(self._ids), **message})
            reply = await socket.receive_json()
        if not reply.get("success"):
            raise RuntimeError(f"{message['type']}: {reply}")
        return reply.get("result")

    async def add_server(
        self, agent: str, host: str, port: int, name: str
    ) -> dict[str, Any]:
        """Add a server through the config flow, as the UI does."""
        flow = await self.rest(
            "POST", "/api/config/config_entries/flow", {"handler": "homelab_metrics"}
        )
        result = await self.rest(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {
                "agent": agent,
                "host": host,
                "port": port,
                "ssl": False,
                "verify_ssl": True,
                "name": name,
            },
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"config flow did not create the entry: {result}")
        return dict(result["result"])

    def browser_tokens(self) -> str:
        """The frontend's `hassTokens` localStorage value for the owner."""
        return json.dumps(
            {
                "access_token": self.token,
                "refresh_token": self.refresh_token,
                "expires_in": self.expires_in,
                "token_type": "Bearer",
                "clientId": self.client_id,
                "hassUrl": self.url,
                "expires": int(time.time() * 1000) + self.expires_in * 1000,
            }
        )
