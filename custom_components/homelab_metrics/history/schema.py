"""The history database's tables and the migrations that bring any older file up to date.

Each migration step is frozen once released: version 1 creates the columns of the metrics that
existed then, and a metric added to METRICS later gets its own step (`add_metric`), so a new file
and an upgraded one end with the same columns. `PRAGMA user_version` records the version.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import sqlite3

from . import text
from .metrics import METRICS

type Migration = Callable[[sqlite3.Connection], None]

STATS = ("avg", "min", "max", "n")
"""Per-metric columns of the aggregate tables; `n` counts the samples that had the metric."""

AGGREGATE_TABLES = ("hourly", "daily")
TABLES = ("raw", *AGGREGATE_TABLES)

_V1_KEYS = (
    "cpu_percent",
    "memory_percent",
    "disk_percent",
    "load_1m",
    "network_rx_bytes_per_second",
    "network_tx_bytes_per_second",
    "temperature_celsius",
)
"""The metrics of schema version 1; never edit this list, add a migration step instead."""


def _aggregate_column_defs(keys: Sequence[str]) -> str:
    return ", ".join(
        f"{key}_{stat} {'INTEGER NOT NULL DEFAULT 0' if stat == 'n' else 'REAL'}"
        for key in keys
        for stat in STATS
    )


def _create_v1(conn: sqlite3.Connection) -> None:
    """Version 1: raw, hourly and daily tiers, and the marks of buckets still to roll up."""
    raw_cols = ", ".join(f"{key} REAL" for key in _V1_KEYS)
    agg_cols = _aggregate_column_defs(_V1_KEYS)
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS raw (server_id TEXT NOT NULL, ts INTEGER NOT NULL, "
        f"{raw_cols}, PRIMARY KEY (server_id, ts)) WITHOUT ROWID"
    )
    for table in AGGREGATE_TABLES:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (server_id TEXT NOT NULL, "
            f"ts INTEGER NOT NULL, {agg_cols}, samples INTEGER NOT NULL, "
            "PRIMARY KEY (server_id, ts)) WITHOUT ROWID"
        )
    # A mark means: this bucket's source rows changed since it was last rolled up.
    conn.execute(
        "CREATE TABLE IF NOT EXISTS dirty_hours (server_id TEXT NOT NULL, "
        "ts INTEGER NOT NULL, PRIMARY KEY (server_id, ts)) WITHOUT ROWID"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS dirty_days (server_id TEXT NOT NULL, "
        "ts INTEGER NOT NULL, end_ts INTEGER NOT NULL, "
        "PRIMARY KEY (server_id, ts)) WITHOUT ROWID"
    )


def _add_lines_v2(conn: sqlite3.Connection) -> None:
    """Version 2: each row's values as exports write them (history/text.py), in `line`."""
    for table in TABLES:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN line TEXT NOT NULL DEFAULT ''")
    write_lines(conn, _V1_KEYS)


def line_functions(conn: sqlite3.Connection, keys: Sequence[str]) -> None:
    """Give SQL on conn `raw_line(...)` and `aggregate_line(...)`: the line of `keys`' values.

    raw_line takes a raw row's values, aggregate_line avg, min and max per key, then samples.
    """
    conn.create_function(
        "raw_line", len(keys), text.raw_writer(keys), deterministic=True
    )
    conn.create_function(
        "aggregate_line",
        3 * len(keys) + 1,
        text.aggregate_writer(keys),
        deterministic=True,
    )


def write_lines(conn: sqlite3.Connection, keys: Sequence[str]) -> None:
    """Write the line of every row of every tier anew, from the columns of `keys`."""
    line_functions(conn, keys)
    conn.execute(f"UPDATE raw SET line = raw_line({', '.join(keys)})")
    for table in AGGREGATE_TABLES:
        conn.execute(f"UPDATE {table} SET line = {aggregate_line(keys)}")


def aggregate_line(keys: Sequence[str]) -> str:
    """The SQL call that gives an aggregate row's line from its columns (see line_functions)."""
    shown = [f"{key}_{stat}" for key in keys for stat in STATS[:3]]
    return f"aggregate_line({', '.join(shown)}, samples)"


def add_metric(key: str, keys: Sequence[str]) -> Migration:
    """A migration step that adds one metric's columns to every tier (old rows read as missing).

    `keys` are the metrics the tables have after the step, in METRICS order: every row's line is
    written anew with an empty place for the new metric.
    """

    def step(conn: sqlite3.Connection) -> None:
        conn.execute(f"ALTER TABLE raw ADD COLUMN {key} REAL")
        for table in AGGREGATE_TABLES:
            for stat in STATS:
                kind = "INTEGER NOT NULL DEFAULT 0" if stat == "n" else "REAL"
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {key}_{stat} {kind}")
        write_lines(conn, keys)

    return step


MIGRATIONS: list[Migration] = [_create_v1, _add_lines_v2]
"""MIGRATIONS[n] takes a file from user_version n to n + 1.

Adding a metric: append it to METRICS and append `add_metric("<key>", <every key after it>)` here.
"""

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNewError(Exception):
    """The file was written by a newer version of the integration: sound, but not ours to change.

    Not a DatabaseError, so nothing takes it for damage.
    """

    def __init__(self, found: int, supported: int) -> None:
        """The file's schema version and the newest this code knows."""
        super().__init__(f"schema version {found} is newer than {supported}")
        self.found = found
        self.supported = supported


def migrate(conn: sqlite3.Connection) -> int:
    """Run the missing migration steps, each in its own transaction; returns the version found."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    target = len(MIGRATIONS)
    if found > target:
        raise SchemaTooNewError(found, target)
    for version in range(found, target):
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](conn)
            conn.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return found


def check_columns(conn: sqlite3.Connection) -> None:
    """Fail loudly when the tables lack a column of METRICS (a migration step is missing)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(raw)")}
    missing = [m.key for m in METRICS if m.key not in present]
    if missing:
        # Not a DatabaseError: the file is fine, the code is wrong, so it must not be moved aside.
        raise RuntimeError(
            f"history schema lacks columns {missing}: add a migration step"
        )
