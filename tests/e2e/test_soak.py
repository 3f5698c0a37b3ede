"""A short soak through a real Home Assistant (benchmarks/soak.py is the long one).

Four servers on fake agents and the three hostile ones (a drip that never ends, 4 MiB of
adversarial labels, a flapper) poll every 10 s for a minute while four clients export without
pause. Every poll a well-behaved server answered must be in the history, no export may fail, and
the hostile servers must not keep the others from polling.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from .load import HOSTILE, LoadPlan, LoadRun

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

INTERVAL = 10
WINDOW = 60


async def test_soak_nothing_lost_no_export_failed(tmp_path: Path) -> None:
    """Polls answered = samples stored, every export completes, hostile servers harm no one."""
    plan = LoadPlan(servers=4, interval=INTERVAL, history_servers=2)
    run = LoadRun(plan, tmp_path / "config")
    async with run:
        await run.arm()
        window = await run.measure(WINDOW, clients=4, export_servers=2, warmup=15)
    accounts = {account.name: account for account in run.account(window)}
    summary = {
        name: (a.polls, a.answered, a.stored, a.ha_ok, a.ha_failed)
        for name, a in accounts.items()
    }

    good = [a for a in accounts.values() if a.name not in HOSTILE.values()]
    assert len(good) == 4
    for account in good:
        # Nothing lost: every answered poll is a raw row of that server.
        assert account.missing == 0, summary
        answered = window.fleet_end[account.name].served_between(
            window.start, window.end
        )
        # Not kept from polling: a poll at least every 2.5 intervals, and most of them.
        gaps = [b - a for a, b in pairwise(answered)]
        assert max(gaps, default=0) < 2.5 * INTERVAL, (account.name, gaps)
        assert account.answered >= 0.6 * WINDOW / INTERVAL, summary
        assert account.ha_failed == 0, summary

    drip = accounts[HOSTILE["drip"]]
    assert drip.answered == 0 and drip.ha_failed >= 1, summary
    # The integration's 10 s timeout ends a drip that would go on for ever.
    cut = window.fleet_end[drip.name].drip_seconds
    assert cut and max(cut) < 15, cut
    flap = accounts[HOSTILE["flap"]]
    assert flap.ha_failed >= 1 and flap.missing == 0, summary
    # 4 MiB of escaped label lines is more than a scrape may hold: each poll is refused, quickly.
    labels = accounts[HOSTILE["labels"]]
    assert labels.answered >= 1 and labels.stored == 0, summary
    assert labels.ha_failed == labels.answered, summary

    failures = {
        name: dict(stats.reasons)
        for name, stats in window.exports.items()
        if stats.failed
    }
    assert not failures
    assert not window.exports_cut
    assert all(stats.completed > 0 for stats in window.exports.values()), {
        name: stats.completed for name, stats in window.exports.items()
    }
