"""One bounded HTTP GET against an agent, with its failures mapped to the agent errors.

A body is read up to a byte cap and inflated by us (aiohttp would inflate a gzip bomb of any size
in one step of the event loop) up to the same cap: the first INFLATE_ON_LOOP_BYTES on the loop,
the rest in the loop's default executor, where zlib releases the GIL.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass
import time
import zlib

import aiohttp

from .base import (
    MAX_PAYLOAD_BYTES,
    AgentConfig,
    AgentInfo,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)

INFLATE_ON_LOOP_BYTES = 512 * 1024
"""Bytes of a compressed body inflated on the event loop (about a millisecond); the rest, if any,
is inflated in the executor."""
_ACCEPT_ENCODING = {"Accept-Encoding": "gzip"}
"""What we can inflate; aiohttp would otherwise offer br or zstd when their modules are installed."""


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
                auto_decompress=False,
            ) as response:
                if response.status in (401, 403):
                    raise InvalidAuth(f"{path}: HTTP {response.status}")
                body = await _async_inflate(
                    await _read_capped(response, max_bytes),
                    response.headers.get("Content-Encoding", ""),
                    max_bytes,
                )
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
    # The size as sent (compressed, if it is): the bytes read here, before any inflating.
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


async def _async_inflate(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """The body without its Content-Encoding; InvalidResponse past max_bytes or when unreadable."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 31
    elif encoding == "deflate":
        # RFC 9110 means zlib's format; some servers send raw deflate, which aiohttp accepts too.
        wbits = 15 if body[:1] and body[0] & 0x0F == 8 else -15
    else:
        raise InvalidResponse(f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, INFLATE_ON_LOOP_BYTES)
        if len(out) == INFLATE_ON_LOOP_BYTES:
            # More may follow (a big scrape, or a bomb of zeros): bounded, off the loop.
            out += await async_off_loop(
                inflater.decompress, inflater.unconsumed_tail, max_bytes + 1 - len(out)
            )
    except zlib.error as err:
        raise InvalidResponse(f"body is not valid {encoding}") from err
    if len(out) > max_bytes:
        raise InvalidResponse(f"payload inflates to more than {max_bytes} bytes")
    # A stream cut short gives what it held, as an uncompressed body cut short would.
    return out


async def async_off_loop[*Ts, T](func: Callable[[*Ts], T], *args: *Ts) -> T:
    """func(*args) in the event loop's default executor, for work that may take milliseconds.

    This frees the loop only from work that releases the GIL (zlib does) or runs as Python code
    and short C calls: one long C call (a regex over megabytes, json.loads) holds the GIL, and the
    loop with it, wherever it runs. The agents import nothing from Home Assistant; there, the
    loop's default executor is Home Assistant's.
    """
    return await asyncio.get_running_loop().run_in_executor(None, func, *args)


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
        self.info = AgentInfo()

    async def _async_get(
        self,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        max_bytes: int = MAX_PAYLOAD_BYTES,
    ) -> Reply:
        """GET a path of this agent, offering gzip (see `_async_inflate`)."""
        return await async_get(
            self._session,
            self._config,
            path,
            headers={**_ACCEPT_ENCODING, **(headers or {})},
            max_bytes=max_bytes,
        )
