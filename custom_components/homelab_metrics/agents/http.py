"""One bounded HTTP GET against an agent, with its failures mapped to the agent errors."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
import time

import aiohttp

from .base import (
    MAX_PAYLOAD_BYTES,
    AgentConfig,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    """What an agent answered."""

    status: int
    content_type: str
    body: bytes


async def async_get(
    session: aiohttp.ClientSession,
    config: AgentConfig,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Reply:
    """GET base_url + path; 401/403 → InvalidAuth, network and time-outs → CannotConnect."""
    if config.username:
        # By hand: aiohttp 3.14 deprecates BasicAuth and auth=, and 3.11 lacks encode_basic_auth.
        # UTF-8, as node_exporter compares the password's bytes (BasicAuth's latin-1 failed on "€").
        credentials = f"{config.username}:{config.password or ''}".encode()
        basic = base64.b64encode(credentials).decode("ascii")
        headers = {**(headers or {}), "Authorization": f"Basic {basic}"}
    try:
        async with asyncio.timeout(config.timeout):
            async with session.get(
                config.base_url + path,
                headers=headers,
                ssl=config.verify_ssl,
                allow_redirects=False,
            ) as response:
                if response.status in (401, 403):
                    raise InvalidAuth(f"{path}: HTTP {response.status}")
                body = await _read_capped(response, max_bytes)
                return Reply(
                    status=response.status,
                    content_type=response.headers.get("Content-Type", ""),
                    body=body,
                )
    except TimeoutError as err:
        raise CannotConnect(f"no answer within {config.timeout:g} s") from err
    except aiohttp.ClientError as err:
        raise CannotConnect(str(err) or type(err).__name__) from err


async def _read_capped(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, refusing one larger than max_bytes without reading it all."""
    declared = response.headers.get("Content-Length", "")
    # With gzip this is the compressed size: a lower bound, so still a safe early refusal.
    if declared.isdigit() and int(declared) > max_bytes:
        raise InvalidResponse(f"payload of {declared} bytes is too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > max_bytes:
            raise InvalidResponse(f"payload larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class HttpAgentClient:
    """What every client shares: Home Assistant's session, the agent's address, a clock."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: AgentConfig,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Bind the client to Home Assistant's session and the agent's address."""
        self._session = session
        self._config = config
        self._clock = clock

    async def _async_get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> Reply:
        """GET a path of this agent."""
        return await async_get(self._session, self._config, path, headers=headers)
