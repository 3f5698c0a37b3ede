"""Start and stop real agents on a free 127.0.0.1 port (used by the live tests and scripts).

Importable without pytest: `require()` raises pytest's skip only when pytest is running.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

REPO = Path(__file__).resolve().parents[2]
NODE_EXPORTER = (
    shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
)
GLANCES = str(REPO / ".venv-glances" / "bin" / "glances")
INSTALL_HINT = {
    "node_exporter": f"{NODE_EXPORTER} not installed: apt-get install prometheus-node-exporter",
    "glances": f"{GLANCES} not installed: run scripts/setup (it creates .venv-glances)",
}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def available(kind: str) -> bool:
    """Whether the agent's binary is here."""
    return os.access(NODE_EXPORTER if kind == "node_exporter" else GLANCES, os.X_OK)


def require(kind: str) -> None:
    """Skip the calling test, saying what to install, when the agent is missing."""
    if not available(kind):
        import pytest

        pytest.skip(INSTALL_HINT[kind])


@dataclass
class RealAgent:
    """A node_exporter or Glances process on 127.0.0.1:port."""

    kind: str
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the agent."""
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        """How the agent is started."""
        if self.kind == "node_exporter":
            return [NODE_EXPORTER, f"--web.listen-address={self.host}:{self.port}"]
        return [
            GLANCES,
            "-w",
            "--disable-webui",
            "--bind",
            self.host,
            "--port",
            str(self.port),
        ]

    def start(self, timeout: float = 30) -> RealAgent:
        """Start (again, on the same port) and wait until it answers."""
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        probe = "/metrics" if self.kind == "node_exporter" else "/api/4/status"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + probe, timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"{self.kind} did not answer on {self.url} within {timeout} s"
        )

    def stop(self) -> None:
        """Stop the process and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, path: str) -> bytes:
        """The agent's own answer to a path (to compare figures)."""
        with urllib.request.urlopen(self.url + path, timeout=5) as response:
            return bytes(response.read())
