"""Parse cost of a node_exporter payload: the targeted scanner against prometheus_client's full parser.

Usage: .venv/bin/python benchmarks/parse.py [--runs 50]

"scanner" is parse_metrics + build_sample, everything a poll does with the text; "full parse"
only turns the text into prometheus_client's metric families, before any arithmetic.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
import statistics
import time

import _path
from prometheus_client.parser import text_string_to_metric_families

from custom_components.homelab_metrics.agents.node_exporter import (
    build_sample,
    parse_metrics,
)

PAYLOADS = {
    "captured (Debian 1.5.0, small VM)": _path.REPO
    / "tests/fixtures/node_exporter/metrics_1.txt",
    "upstream e2e fixture": _path.REPO.parent
    / "shared/fixtures/node_exporter_upstream_e2e_output.txt",
}


def median_ms(func: Callable[[], object], runs: int) -> float:
    """Median wall time of func() in milliseconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    """Print one row per payload."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    print(
        f"{'payload':36} {'kB':>6} {'samples':>8} {'full parse ms':>14}"
        f" {'scanner ms':>11} {'speed-up':>9}"
    )
    for name, path in PAYLOADS.items():
        if not Path(path).exists():
            print(f"{name:36} missing: {path}")
            continue
        text = Path(path).read_text()
        samples = sum(
            len(family.samples) for family in text_string_to_metric_families(text)
        )

        def full(text: str = text) -> object:
            return list(text_string_to_metric_families(text))

        def scan(text: str = text) -> object:
            return build_sample(parse_metrics(text), None, timestamp=0)

        full_ms, scan_ms = median_ms(full, args.runs), median_ms(scan, args.runs)
        print(
            f"{name:36} {len(text.encode()) / 1000:6.1f} {samples:8d} {full_ms:14.2f}"
            f" {scan_ms:11.3f} {full_ms / scan_ms:8.0f}x"
        )


if __name__ == "__main__":
    main()
