"""scripts/develop's loop: Home Assistant restarted when it asks to be, every stop said aloud."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import subprocess

DEVELOP = Path(__file__).parents[1] / "scripts" / "develop"


def _run_hass(tmp_path: Path, stand_in: str) -> subprocess.Popen[str]:
    """Source scripts/develop and run its loop on a stand-in for hass, in its own process group."""
    script = tmp_path / "hass"
    script.write_text(stand_in)
    return subprocess.Popen(
        ["bash", "-c", f'source "{DEVELOP}"; run_hass bash "{script}"'],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_restarts_on_exit_code_100_and_says_when_it_stops(tmp_path: Path) -> None:
    """Exit code 100 (the UI's Restart) starts it again; any other code ends the loop with it."""
    process = _run_hass(
        tmp_path,
        # Twice a restart, then a crash.
        'echo run >> runs; [ "$(wc -l < runs)" -le 2 ] && exit 100; exit 3\n',
    )
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 3
    assert (tmp_path / "runs").read_text() == "run\n" * 3
    assert output.splitlines() == [
        "scripts/develop: Home Assistant asked to be restarted; starting it again",
        "scripts/develop: Home Assistant asked to be restarted; starting it again",
        "scripts/develop: Home Assistant stopped (exit code 3)",
    ]


def test_a_clean_stop_is_said_too(tmp_path: Path) -> None:
    """Stopping from the UI (exit code 0) ends the loop with a line, not silently."""
    process = _run_hass(tmp_path, "exit 0\n")
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert output.splitlines() == [
        "scripts/develop: Home Assistant stopped (exit code 0)"
    ]


def test_ctrl_c_stops_without_a_restart(tmp_path: Path) -> None:
    """Ctrl+C reaches the whole process group: hass shuts down, and the loop does not restart it.

    The stand-in answers Ctrl+C with 100, the worst case: a restart must still not follow.
    """
    process = _run_hass(
        tmp_path,
        # The trap ends its sleep itself, whether or not SIGINT already did.
        "trap 'kill $pid 2>/dev/null; echo run >> runs; exit 100' INT\n"
        "sleep 60 & pid=$!\necho ready\nwait $pid\n",
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 130
    assert (tmp_path / "runs").read_text() == "run\n"
    assert output.splitlines() == [
        "scripts/develop: Home Assistant stopped after Ctrl+C (exit code 100)"
    ]
