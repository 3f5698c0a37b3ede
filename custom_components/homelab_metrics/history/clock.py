"""Polls stamped far ahead of the time that really passed: a wall clock that jumped, held back.

Retention counts back from each server's newest stored sample (see rollup.py), so one poll stamped
two years ahead, once stored, would let the next rollup prune every tier. The guard compares each
poll's timestamp with the newest one it accepted for that server plus the time that really passed
since, on a clock that setting the wall clock does not move (CLOCK_BOOTTIME, which also counts
time suspended). A poll more than TOLERANCE ahead of that is held back, and logged once per server.
When the clock comes back, the held polls are dropped. When it stays ahead by the same amount for
SETTLE of real time, the jump is taken as a correction (an NTP step after boot, a resumed virtual
machine) and the held polls are written, so a correct clock loses nothing.

Limits, honestly: the reference lives in memory, so the first poll after Home Assistant starts is
believed (nothing but the wall clock spans a restart, and a clock that is wrong at start cannot be
told from a long downtime); so is a jump that lasts longer than SETTLE. From then on retention
counts back from the new time, as Home Assistant's own recorder does. Polls stamped behind (a
clock that went back) are stored: they cannot move retention forward, and a rollup on a clock
that is behind deletes nothing, because retention never counts from later than the rollup's time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
import logging
import time

from ..agents.base import Sample
from .ranges import DAY, HOUR

_LOGGER = logging.getLogger(__name__)

TOLERANCE = 10 * 60
"""Seconds a poll may be stamped ahead of the real time since the previous one (slow polls, NTP)."""

SETTLE = HOUR
"""Real seconds a clock must stay at the same jump ahead before it is taken as right."""

HELD_MAX = 720
"""Polls held per server meanwhile: twice what the shortest scan interval (10 s) gives in SETTLE."""

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def boottime() -> float:
    """Seconds on a clock that wall-clock changes do not move, counting suspend where possible."""
    if _BOOTTIME is None:
        return time.monotonic()
    return time.clock_gettime(_BOOTTIME)


@dataclass(slots=True)
class _Server:
    """What the guard knows of one server's polls."""

    stamp: int
    """Newest timestamp accepted."""
    at: float
    """Real (boottime) seconds when it was accepted."""
    held: deque[Sample] = field(default_factory=lambda: deque(maxlen=HELD_MAX))
    ahead: float = 0.0
    """How far ahead the held polls are stamped."""
    since: float = 0.0
    """Real seconds when the first held poll came."""
    warned: bool = False


class ClockGuard:
    """Decides, poll by poll and per server, which samples may be written now."""

    def __init__(self, monotonic: Callable[[], float] = boottime) -> None:
        """Measure real time with `monotonic` (seconds)."""
        self._monotonic = monotonic
        self._servers: dict[str, _Server] = {}

    def admit(self, server_id: str, sample: Sample) -> list[Sample]:
        """The samples to write for this poll: itself; none while held back; or all held at once."""
        now = self._monotonic()
        server = self._servers.get(server_id)
        if server is None:
            self._servers[server_id] = _Server(stamp=sample.timestamp, at=now)
            return [sample]
        ahead = sample.timestamp - (server.stamp + (now - server.at))
        if ahead <= TOLERANCE:
            if server.held:
                _LOGGER.info(
                    "The clock is back for %s: %s polls stamped ahead were not recorded",
                    server_id,
                    len(server.held),
                )
                server.held.clear()
            if sample.timestamp > server.stamp:
                server.stamp, server.at = sample.timestamp, now
            return [sample]
        if not server.held or abs(ahead - server.ahead) > TOLERANCE:
            # A jump, or another jump while held: start waiting for this clock afresh.
            server.held.clear()
            server.ahead, server.since = ahead, now
            self._warn(server_id, server, ahead)
        server.held.append(sample)
        if now - server.since < SETTLE:
            return []
        _LOGGER.warning(
            "The clock stayed %s ahead for %s for an hour: taken as the right time, "
            "%s held polls recorded",
            _duration(ahead),
            server_id,
            len(server.held),
        )
        admitted = list(server.held)
        server.held.clear()
        server.stamp, server.at = sample.timestamp, now
        return admitted

    def forget(self, server_id: str) -> None:
        """Drop what is known of a server (it was removed); its held polls go with it."""
        self._servers.pop(server_id, None)

    @staticmethod
    def _warn(server_id: str, server: _Server, ahead: float) -> None:
        level = logging.DEBUG if server.warned else logging.WARNING
        server.warned = True
        _LOGGER.log(
            level,
            "A poll of %s is stamped %s ahead of the time that really passed since the "
            "previous one (did the clock jump?): not recorded until the clock is back, "
            "or has kept that time for an hour",
            server_id,
            _duration(ahead),
        )


def _duration(seconds: float) -> str:
    """A rough human duration for logs: 3 min, 5 h, 730 d."""
    for unit, size in (("d", DAY), ("h", HOUR), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
