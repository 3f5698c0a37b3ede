"""Writes samples through the store forever, printing each timestamp once its write has returned.

Run by test_history_store.py, which kills this process with SIGKILL mid-stream.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.homelab_metrics.agents.base import Sample
from custom_components.homelab_metrics.history.store import HistoryStore


async def main(path: Path) -> None:
    store = HistoryStore(path)
    await store.async_open()
    ts = 1_700_000_000
    while True:
        await store.async_add(
            "crash", Sample(timestamp=ts, cpu_percent=float(ts % 100))
        )
        sys.stdout.write(f"{ts}\n")
        sys.stdout.flush()
        ts += 1


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
