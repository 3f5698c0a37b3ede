"""One thread that owns one SQLite connection: every job runs there, in the order it was handed in.

A one-thread `ThreadPoolExecutor` gives the order, skips a job whose caller was cancelled before it
started, and ends its thread on shutdown. What it adds here: the connection lives and dies on that
thread, a database error is logged once per run of errors (and its recovery once), and a job
nobody waits for still has its failure logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
import logging
import sqlite3

_LOGGER = logging.getLogger(__name__)

type Job[T] = Callable[[sqlite3.Connection], T]


class StoreClosedError(RuntimeError):
    """The store was used before it was opened or after it was closed."""


class Worker:
    """Runs jobs on the connection of its own thread; created idle, started once, closed once."""

    def __init__(self, name: str) -> None:
        """A worker whose thread will carry `name`."""
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._ended = False
        self._failing = False

    @property
    def started(self) -> bool:
        """Whether the thread was ever started."""
        return self._executor is not None

    @property
    def closed(self) -> bool:
        """Whether no job can be run: closed, or never started."""
        return self._ended or self._executor is None

    async def async_start[T](
        self, connect: Callable[[], tuple[sqlite3.Connection, T]]
    ) -> T:
        """Start the thread and open the connection on it; returns what `connect` reports besides."""
        if self._ended:
            raise StoreClosedError("a closed history store cannot be opened again")
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=self._name
        )
        try:
            conn, info = await asyncio.get_running_loop().run_in_executor(
                self._executor, connect
            )
        except BaseException:
            await self.async_close()
            raise
        self._conn = conn
        return info

    async def async_run[T](self, job: Job[T]) -> T:
        """Run job(connection) on the thread and wait for it without blocking the loop."""
        return await self.start(job)

    def start[T](self, job: Job[T]) -> asyncio.Future[T]:
        """Queue job(connection) and return its outcome to await; cancelling it skips a job not started."""
        if self.closed:
            raise StoreClosedError("history store is not open")
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._run, job, True)

    def post(self, job: Job[object]) -> None:
        """Queue a job nobody waits for; it runs in order with the others, a failure is logged."""
        if self.closed:
            raise StoreClosedError("history store is not open")
        assert self._executor is not None
        # Nobody reads the outcome: _run has logged a failure already.
        self._executor.submit(self._run, job, False)

    def _run[T](self, job: Job[T], caller: bool) -> T:
        """The only code that touches the connection (on the worker thread)."""
        if self._conn is None:
            raise StoreClosedError("history store is not open")
        try:
            result = job(self._conn)
        except BaseException as err:
            if not caller:
                _LOGGER.error("History database task failed: %s", err)
            elif isinstance(err, sqlite3.DatabaseError) and not self._failing:
                _LOGGER.warning("History database error: %s", err)
                self._failing = True
            raise
        if self._failing:
            _LOGGER.info("History database works again")
            self._failing = False
        return result

    async def async_close(self, last: Job[None] | None = None) -> None:
        """Run what is queued, then `last`, close the connection and end the thread (idempotent)."""
        if self._ended:
            return
        self._ended = True
        if (executor := self._executor) is None:
            return
        done = asyncio.get_running_loop().run_in_executor(executor, self._finish, last)
        try:
            # Shielded: a cancelled caller must not make the worker skip closing the file.
            await asyncio.shield(done)
        finally:
            # The thread ends after the last job; a cancelled caller does not wait for that.
            executor.shutdown(wait=done.done())

    def _finish(self, last: Job[None] | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if last is not None:
                last(conn)
        finally:
            conn.close()
