"""Start and stop real agents on a free 127.0.0.1 port (used by the live tests and scripts).

Importable without pytest: `require()` imports pytest only to skip a test.

Passwords without a prompt:
- Glances reads `--password` from `<user config dir>/glances/<username>.pwd` when that file exists
  (`salt$pbkdf2(pbkdf2(password), salt)`, see `glances/password.py`), else it asks on the terminal.
  `RealAgent` writes that file into a private XDG_CONFIG_HOME and starts Glances with stdin closed,
  so a missing file fails fast instead of hanging.
- node_exporter takes `--web.config.file` with `basic_auth_users: {user: bcrypt hash}`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
import hashlib
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any
import urllib.error
import urllib.request
import uuid

REPO = Path(__file__).resolve().parents[2]
NODE_EXPORTER = (
    shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
)
# scripts/test-newest names the Glances of its chroot: .venv-glances is built for the host's Python.
GLANCES = os.environ.get("HOMELAB_METRICS_GLANCES") or str(
    REPO / ".venv-glances" / "bin" / "glances"
)
APT_INFO = "/usr/share/prometheus-node-exporter-collectors/apt_info.py"
"""Debian's apt textfile collector (prometheus-node-exporter-collectors); it needs python3-apt."""
SYSTEM_PYTHON = "/usr/bin/python3"
"""The interpreter Debian's python3-apt belongs to (apt_info.py's own #! line)."""
INSTALL_HINT = {
    "node_exporter": "prometheus-node-exporter not installed: apt-get install prometheus-node-exporter",
    "glances": f"{GLANCES} not installed: run scripts/setup (it creates .venv-glances)",
    "collectors": "textfile collectors not installed: "
    "apt-get install prometheus-node-exporter-collectors",
}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def available(kind: str) -> bool:
    """Whether the agent's binary (or the collectors' script) is here."""
    if kind == "collectors":
        return os.path.exists(APT_INFO) and os.access(SYSTEM_PYTHON, os.X_OK)
    return os.access(NODE_EXPORTER if kind == "node_exporter" else GLANCES, os.X_OK)


def require(kind: str) -> None:
    """Skip the calling test, saying what to install, when the agent is missing."""
    if not available(kind):
        import pytest

        pytest.skip(INSTALL_HINT[kind])


def glances_password_file(password: str) -> str:
    """The content of a Glances server's password file for this password."""

    def pbkdf2(text: str, salt: str) -> str:
        return hashlib.pbkdf2_hmac(
            "sha256", text.encode(), salt.encode(), 100000, dklen=128
        ).hex()

    salt = uuid.uuid4().hex
    return f"{salt}${pbkdf2(pbkdf2(password, ''), salt)}"


@dataclass
class RealAgent:
    """A node_exporter or Glances process on 127.0.0.1:port, optionally behind basic auth."""

    kind: str
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    username: str | None = None
    password: str | None = None
    web_ui: bool = False
    """Glances: serve the web UI too (started with --disable-webui otherwise)."""
    textfile_dir: str | None = None
    """node_exporter: read *.prom files from this folder (the textfile collector)."""
    process: subprocess.Popen[bytes] | None = None
    _home: str | None = None

    def __post_init__(self) -> None:
        """Glances' default user is "glances"; node_exporter has none."""
        if self.password is not None and self.username is None:
            self.username = "glances" if self.kind == "glances" else "homelab"

    @property
    def url(self) -> str:
        """Base URL of the agent."""
        return f"http://{self.host}:{self.port}"

    def _private_dir(self) -> str:
        """A folder for this agent's password files, removed by stop()."""
        if self._home is None:
            self._home = tempfile.mkdtemp(prefix=f"homelab-{self.kind}-")
        return self._home

    def command(self) -> list[str]:
        """How the agent is started (writing its password file first when it has one)."""
        if self.kind == "node_exporter":
            command = [NODE_EXPORTER, f"--web.listen-address={self.host}:{self.port}"]
            if self.textfile_dir is not None:
                command.append(f"--collector.textfile.directory={self.textfile_dir}")
            if self.password is not None:
                import bcrypt

                hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4))
                config = Path(self._private_dir()) / "web.yml"
                config.write_text(
                    f"basic_auth_users:\n  {self.username}: {hashed.decode()}\n"
                )
                command.append(f"--web.config.file={config}")
            return command
        command = [GLANCES, "-w", "--bind", self.host, "--port", str(self.port)]
        if not self.web_ui:
            command.append("--disable-webui")
        if self.password is not None:
            folder = Path(self._private_dir()) / "glances"
            folder.mkdir(exist_ok=True)
            (folder / f"{self.username}.pwd").write_text(
                glances_password_file(self.password)
            )
            command += ["--password", "-u", str(self.username)]
        return command

    def environment(self) -> dict[str, str]:
        """The process environment: Glances finds its password file through XDG_CONFIG_HOME."""
        env = dict(os.environ)
        if self.kind == "glances" and self.password is not None:
            env["XDG_CONFIG_HOME"] = self._private_dir()
        return env

    def start(self, timeout: float = 30) -> RealAgent:
        """Start (again, on the same port) and wait until it answers."""
        self.process = subprocess.Popen(
            self.command(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        probe = "/metrics" if self.kind == "node_exporter" else "/api/4/status"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise RuntimeError(f"{self.kind} exited with {code}")
            try:
                with urllib.request.urlopen(self.url + probe, timeout=2):
                    return self
            except urllib.error.HTTPError:
                return self  # it answered (401 with auth on): it is up
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(
            f"{self.kind} did not answer on {self.url} within {timeout} s"
        )

    def stop(self) -> None:
        """Stop the process and wait for it; the port stays reserved for start()."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self._home is not None:
            shutil.rmtree(self._home, ignore_errors=True)
            self._home = None

    def restart(self) -> RealAgent:
        """Stop and start again on the same port (counters of node_exporter keep going)."""
        self.stop()
        return self.start()

    def get(self, path: str) -> bytes:
        """The agent's own answer to a path (to compare figures), with its credentials."""
        request = urllib.request.Request(self.url + path)
        if self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode())
            request.add_header("Authorization", f"Basic {token.decode()}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return bytes(response.read())

    def get_json(self, path: str) -> Any:
        """The agent's JSON answer to a path."""
        return json.loads(self.get(path))


@contextmanager
def running(kind: str, **kwargs: Any) -> Iterator[RealAgent]:
    """A started agent, stopped on exit."""
    agent = RealAgent(kind, **kwargs)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def glances_figures(agent: RealAgent) -> dict[str, float]:
    """Glances' own percentages: memory, the root filesystem (as df), and CPU busy."""
    fs = agent.get_json("/api/4/fs")
    root = next((item for item in fs if item.get("mnt_point") == "/"), fs[0])
    return {
        "memory_percent": float(agent.get_json("/api/4/mem")["percent"]),
        "disk_percent": float(root["percent"]),
        "cpu_percent": float(agent.get_json("/api/4/cpu")["total"]),
    }


def proc_memory_percent() -> float:
    """Memory in use as the kernel reports it, the way both agents compute it."""
    info: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0])
    return 100 * (1 - info["MemAvailable"] / info["MemTotal"])


def statvfs_disk_percent(path: str = "/") -> float:
    """A filesystem's Use% as df shows it: used / (used + available to non-root)."""
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    avail = st.f_bavail * st.f_frsize
    return 100 * used / (used + avail)


def apt_info(*, reboot_required: bool = False) -> tuple[str, str]:
    """The real apt_info.py's output, and how /run/reboot-required was made to say so.

    The script reads /run/reboot-required. With reboot_required it runs in a private mount
    namespace whose /run is an empty tmpfs holding that file ("namespace"), so the machine's own
    /run is never touched; where namespaces are not allowed (no root, no user namespaces), the
    script's own output is taken and its node_reboot_required line set to 1 by hand ("by hand").
    Without reboot_required it runs as it is ("as is": the machine's own state).
    """
    script = [SYSTEM_PYTHON, APT_INFO]
    if not reboot_required:
        return subprocess.run(
            script, check=True, capture_output=True, text=True
        ).stdout, "as is"
    inner = "mount -t tmpfs tmpfs /run && : > /run/reboot-required && exec " + " ".join(
        script
    )
    unshare = ["unshare", "--mount"] + (
        [] if os.geteuid() == 0 else ["--map-root-user"]
    )
    done = subprocess.run(
        [*unshare, "sh", "-c", inner], capture_output=True, text=True, check=False
    )
    if done.returncode == 0 and "node_reboot_required 1" in done.stdout:
        return done.stdout, "namespace"
    output = subprocess.run(script, check=True, capture_output=True, text=True).stdout
    return output.replace("node_reboot_required 0", "node_reboot_required 1"), "by hand"


def write_textfile(folder: str, name: str, text: str) -> None:
    """Put a textfile collector's output in place at once (node_exporter may read it any time)."""
    path = Path(folder) / name
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def agent_version(kind: str) -> str:
    """The version the installed agent prints (node_exporter 1.5.0, Glances 4.5.8)."""
    binary = NODE_EXPORTER if kind == "node_exporter" else GLANCES
    first = subprocess.run(
        [binary, "--version"], check=True, capture_output=True, text=True
    ).stdout.splitlines()[0]
    # "node_exporter, version 1.5.0 (branch: …)" / "Glances version:\t4.5.8"
    return first.split("version")[1].strip(" :\t").split()[0]


def os_release_pretty_name() -> str:
    """PRETTY_NAME of /etc/os-release, as node_exporter's node_os_info reports it."""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    raise LookupError("no PRETTY_NAME in /etc/os-release")


def proc_swap_percent() -> float | None:
    """Swap in use as the kernel reports it; None without swap."""
    info: dict[str, int] = {}
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            key, value = line.split(":", 1)
            info[key] = int(value.split()[0])
    if not info["SwapTotal"]:
        return None
    return 100 * (1 - info["SwapFree"] / info["SwapTotal"])
