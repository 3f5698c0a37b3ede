"""A real Home Assistant in a subprocess, onboarded through its API, for end-to-end tests and benchmarks.

    async with RealHomeAssistant(tmp_path) as hass:
        await hass.add_server_via_flow("node_exporter", "127.0.0.1", 9100, "Live")
        await hass.add_dashboard("homelab-test", "Test")
        await hass.set_dashboard({"views": [...]}, url_path="homelab-test")
        # a browser logs in with hass.browser_init_script() run before the page loads

Importable without pytest; uses only aiohttp and the repository's .venv. By hand, for a look around:
`.venv/bin/python -m tests.e2e.hass [--node-exporter]` starts one, prints its URL and login, and
stops it on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
import itertools
import json
import os
from pathlib import Path
import subprocess
import sys
import time
from typing import IO, Any, Self

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


def proc_usage(pid: int) -> tuple[int, float]:
    """A process's resident memory (VmRSS, bytes) and CPU time so far (user + system, all threads)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    # Fields after the command name, which is in parentheses and may hold spaces.
    utime, stime = (
        Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[11:13]
    )
    ticks = os.sysconf("SC_CLK_TCK")
    return int(rss.split()[1]) * 1024, (int(utime) + int(stime)) / ticks


def write_http_settings(config: Path, host: str, port: int) -> None:
    """Record the `http:` settings of configuration.yaml as Home Assistant's last working ones.

    2025.4 binds to what configuration.yaml says. Since 2026.10 Home Assistant keeps these settings in
    `.storage/http` instead, and YAML that differs from that store becomes a trial that it reverts, with
    a restart, unless the user confirms it within five minutes. The store in the shape releases before
    2026.10 wrote it (version 1) is what an upgraded installation has: 2026.10 migrates it, finds the
    YAML equal and starts without a trial; 2025.4 reads it only in recovery mode and rewrites it.
    """
    storage = config / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    (storage / "http").write_text(
        json.dumps(
            {
                "version": 1,
                "key": "http",
                "data": {"server_host": [host], "server_port": port},
            }
        )
    )


@dataclass
class RealHomeAssistant:
    """`hass -c <config>` with this integration linked in, an owner account and a token."""

    config: Path
    time_zone: str = "UTC"
    extra_config: str = ""
    components: list[Path] = field(default_factory=list)
    """Extra custom components (folders) linked beside the integration, e.g. a test probe."""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    token: str = ""
    refresh_token: str = ""
    expires_in: int = 1800
    session: aiohttp.ClientSession | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _out: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of Home Assistant."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def client_id(self) -> str:
        """OAuth client id of the (test) frontend."""
        return f"{self.url}/"

    def write_config(self) -> None:
        """configuration.yaml with its HTTP settings, and the integration linked to the repository."""
        self.config.mkdir(parents=True, exist_ok=True)
        (self.config / "configuration.yaml").write_text(
            CONFIGURATION.format(
                time_zone=self.time_zone, port=self.port, extra=self.extra_config
            )
        )
        write_http_settings(self.config, "127.0.0.1", self.port)
        components = self.config / "custom_components"
        components.mkdir(exist_ok=True)
        for source in (
            REPO / "custom_components" / "homelab_metrics",
            *self.components,
        ):
            link = components / source.name
            if not link.exists():
                link.symlink_to(source)

    async def start(self) -> Self:
        """Start, wait for the API, onboard, log in."""
        self.write_config()
        self._out = (self.config / "hass.out").open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("hass")),
                "-c",
                str(self.config),
                "--skip-pip",
                "--log-file",
                str(self.config / "home-assistant.log"),
            ],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.session = aiohttp.ClientSession()
        try:
            await self._wait_ready()
            await self._onboard()
            await self._check_http_settings()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Stop Home Assistant (SIGTERM, then SIGKILL after a minute) and wait for it."""
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
        if self._out is not None:
            self._out.close()
            self._out = None

    async def __aenter__(self) -> Self:
        """Start: see start()."""
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        """Stop: see stop()."""
        await self.stop()

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

    async def _check_http_settings(self) -> None:
        """Fail now, not with a restart in five minutes, if the HTTP settings are on trial (2026.10+)."""
        reply = await self.ws_reply({"type": "http/config"})
        if not reply.get("success"):
            # Before 2026.10 there is no such command, and no trial.
            if reply.get("error", {}).get("code") == "unknown_command":
                return
            raise RuntimeError(f"http/config: {reply}")
        if reply["result"]["pending"] is not None:
            raise RuntimeError(
                "Home Assistant holds the HTTP settings on trial and would restart in"
                f" five minutes: {reply['result']}"
            )

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

    async def ws_reply(self, message: dict[str, Any]) -> dict[str, Any]:
        """One websocket command; the whole reply, failed or not."""
        assert self.session is not None
        async with self.session.ws_connect(f"{self.url}/api/websocket") as socket:
            await socket.receive_json()
            await socket.send_json({"type": "auth", "access_token": self.token})
            assert (await socket.receive_json())["type"] == "auth_ok"
            await socket.send_json({"id": next(self._ids), **message})
            return dict(await socket.receive_json())

    async def ws(self, message: dict[str, Any]) -> Any:
        """One websocket command; its result."""
        reply = await self.ws_reply(message)
        if not reply.get("success"):
            raise RuntimeError(f"{message['type']}: {reply}")
        return reply.get("result")

    async def add_server_via_flow(
        self,
        agent: str,
        host: str,
        port: int,
        name: str,
        *,
        ssl: bool = False,
        verify_ssl: bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> dict[str, Any]:
        """Add a server through the config flow's user step, as the UI does; the created entry."""
        flow = await self.rest(
            "POST", "/api/config/config_entries/flow", {"handler": "homelab_metrics"}
        )
        security: dict[str, Any] = {"ssl": ssl, "verify_ssl": verify_ssl}
        if username is not None:
            security["username"] = username
        if password is not None:
            security["password"] = password
        fields: dict[str, Any] = {
            "name": name,
            "agent": agent,
            "host": host,
            "port": port,
            "security": security,
        }
        result = await self.rest(
            "POST", f"/api/config/config_entries/flow/{flow['flow_id']}", fields
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"config flow did not create the entry: {result}")
        return dict(result["result"])

    # The name the first callers use.
    add_server = add_server_via_flow

    async def set_scan_interval(self, entry_id: str, seconds: int) -> None:
        """Set a server's scan interval through its options flow, as the UI's Configure does."""
        flow = await self.rest(
            "POST", "/api/config/config_entries/options/flow", {"handler": entry_id}
        )
        result = await self.rest(
            "POST",
            f"/api/config/config_entries/options/flow/{flow['flow_id']}",
            {"scan_interval": seconds},
        )
        if result.get("type") != "create_entry":
            raise RuntimeError(f"options flow did not finish: {result}")

    def usage(self) -> tuple[int, float]:
        """Home Assistant's resident memory (bytes) and CPU time so far (s): see proc_usage."""
        assert self.process is not None
        return proc_usage(self.process.pid)

    async def remove_entry(self, entry_id: str) -> None:
        """Delete a config entry, as the UI's Delete does."""
        await self.rest("DELETE", f"/api/config/config_entries/entry/{entry_id}")

    async def add_dashboard(self, url_path: str, title: str) -> None:
        """Create a dashboard at /url_path (it needs a hyphen), as Settings → Dashboards does.

        Tests use one of their own: since 2026.x the default dashboard of a new installation is the
        generated Overview at /home, and /lovelace leads there.
        """
        await self.ws(
            {
                "type": "lovelace/dashboards/create",
                "url_path": url_path,
                "title": title,
                "mode": "storage",
            }
        )

    async def set_dashboard(
        self, config: dict[str, Any], url_path: str | None = None
    ) -> None:
        """Replace a dashboard's config (the default one unless url_path names another)."""
        message: dict[str, Any] = {"type": "lovelace/config/save", "config": config}
        if url_path is not None:
            message["url_path"] = url_path
        await self.ws(message)

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

    def browser_init_script(self, *, dark: bool | None = None) -> str:
        """JavaScript to run before the frontend loads (Playwright's add_init_script): logs in.

        dark=True or False also picks the default theme's dark or light mode, as the profile's
        theme picker does; None follows the browser's colour scheme.
        """
        script = (
            f"localStorage.setItem('hassTokens', {json.dumps(self.browser_tokens())});"
        )
        if dark is not None:
            theme = json.dumps({"theme": "default", "dark": dark})
            script += f"localStorage.setItem('selectedTheme', {json.dumps(theme)});"
        return script


async def _main() -> None:
    """Run one Home Assistant (and a node_exporter) until Ctrl-C, for a look at the card."""
    import argparse
    import tempfile

    from .agents import RealAgent

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument(
        "--node-exporter", action="store_true", help="add a live server"
    )
    parser.add_argument(
        "--config", type=Path, help="config folder (default: a temporary one)"
    )
    args = parser.parse_args()
    config = args.config or Path(tempfile.mkdtemp(prefix="homelab-hass-"))
    agent = RealAgent("node_exporter").start() if args.node_exporter else None
    try:
        async with RealHomeAssistant(config) as hass:
            if agent is not None:
                await hass.add_server_via_flow(
                    "node_exporter", agent.host, agent.port, "Live"
                )
            print(f"{hass.url}  user {USERNAME}  password {PASSWORD}  config {config}")
            await asyncio.Event().wait()
    finally:
        if agent is not None:
            agent.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
