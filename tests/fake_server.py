"""A throwaway HTTP server on 127.0.0.1 that plays an agent, and a probe of event-loop steps."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
import time

from aiohttp import web


def basic_auth(username: str, password: str) -> str:
    """The Authorization header an agent expects for these credentials (UTF-8, as the client sends)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@asynccontextmanager
async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[int]:
    """Answer every GET with handler; yields the port."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@dataclass
class LoopSteps:
    """What a probe saw: the longest time between two of its turns on the event loop."""

    longest: float = 0.0
    """Seconds of wall time; bounds the longest step anything else took on the loop meanwhile,
    and includes whatever the machine did instead (other processes, other threads)."""
    longest_cpu: float = 0.0
    """Seconds of the loop thread's CPU time: the work done on the loop between two turns."""


@asynccontextmanager
async def probe_loop_steps() -> AsyncIterator[LoopSteps]:
    """A task that yields to the loop over and over while the block runs, timing each turn."""
    loop = asyncio.get_running_loop()
    steps = LoopSteps()
    done = asyncio.Event()

    async def probe() -> None:
        last, last_cpu = loop.time(), time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0)
            now, now_cpu = loop.time(), time.thread_time()
            steps.longest = max(steps.longest, now - last)
            steps.longest_cpu = max(steps.longest_cpu, now_cpu - last_cpu)
            last, last_cpu = now, now_cpu

    task = asyncio.create_task(probe())
    await asyncio.sleep(0)
    try:
        yield steps
    finally:
        done.set()
        await task
