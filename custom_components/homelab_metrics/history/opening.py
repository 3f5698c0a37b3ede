"""Opening the history file: settings, a health check, the schema, and recovery from damage.

A damaged file (not a database, or failing SQLite's quick check) is moved aside and a new one
started, so polling goes on; locks, permissions and a missing folder are errors, not damage.
A sound file written by a newer version of the integration is refused before anything writes to
it (not even the journal mode), so that version finds it as it left it.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
import logging
from pathlib import Path
import sqlite3

from .schema import (
    SCHEMA_VERSION,
    SchemaTooNewError,
    check_columns,
    line_functions,
    migrate,
)
from .sql import KEYS

_LOGGER = logging.getLogger(__name__)

JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""A big catch-up rollup can grow the WAL a lot; SQLite gives the space back down to this."""


class _QuickCheckError(sqlite3.DatabaseError):
    """PRAGMA quick_check found damage."""


def _is_corruption(err: sqlite3.DatabaseError) -> bool:
    """Damage we recover from by starting afresh; locks and permissions are not that."""
    if isinstance(err, _QuickCheckError):
        return True
    code = getattr(err, "sqlite_errorcode", None)
    # SQLITE_CORRUPT and SQLITE_NOTADB, whatever the extended code.
    return code is not None and code & 0xFF in (11, 26)


def _quick_check(conn: sqlite3.Connection) -> None:
    """Raise _QuickCheckError unless SQLite finds the file sound."""
    if (result := conn.execute("PRAGMA quick_check").fetchone()[0]) != "ok":
        raise _QuickCheckError(f"quick_check: {result}")


def _check_version(path: Path) -> None:
    """Raise SchemaTooNewError for a newer version's file, reading it without changing a byte."""
    if not path.is_file():
        return
    sides = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    created = [side for side in sides if not side.exists()]
    # Read-only, so SQLite neither converts the journal nor checkpoints a WAL into the file.
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()
        # A reader of a WAL file leaves an empty WAL and an index behind: take back ours.
        for side in created:
            with suppress(OSError):
                if side.name.endswith("-shm") or not side.stat().st_size:
                    side.unlink()
    if found > SCHEMA_VERSION:
        raise SchemaTooNewError(found, SCHEMA_VERSION)


def _connect(path: Path) -> sqlite3.Connection:
    _check_version(path)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
        _quick_check(conn)
        migrate(conn)
        check_columns(conn)
        # For the rollup, which writes the line of each bucket it computes.
        line_functions(conn, KEYS)
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """A connection to the file at path, brought up to date; and where a damaged file was moved.

    Raises SchemaTooNewError, leaving the file alone, when a newer version wrote it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _connect(path), None
    except sqlite3.DatabaseError as err:
        if not _is_corruption(err):
            raise
        moved = _move_aside(path, err)
        return _connect(path), moved


def _move_aside(path: Path, err: sqlite3.DatabaseError) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    _LOGGER.error(
        "History database %s is unreadable (%s); moved to %s and started afresh",
        path,
        err,
        moved,
    )
    path.replace(moved)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(moved.with_name(moved.name + suffix))
    return moved
