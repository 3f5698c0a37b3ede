"""The Export metrics button's notification in headless Chromium: its link downloads the file.

A link inside Home Assistant's frontend is not followed as a plain web page would follow it: a
click on a link to the page's own origin without a target is routed inside the app, as if to a
dashboard. This test clicks the notification's link as a user does, with an external URL configured that
does not answer, and expects the file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import re
import shutil
from typing import Any

import pytest

from .agents import RealAgent, require
from .hass import RealHomeAssistant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]
RAW_HEADER = b"timestamp,cpu_percent,memory_percent,disk_percent,load_1m,"


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed: apt-get install chromium")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright not installed: run scripts/setup")


async def test_notification_link_downloads_in_a_real_browser(tmp_path: Path) -> None:
    """Press the button, open the notifications, click the link: the browser saves the export."""
    require("node_exporter")
    _require_browser()
    from playwright.async_api import async_playwright, expect

    agent = RealAgent("node_exporter").start()
    try:
        async with RealHomeAssistant(tmp_path / "config") as hass:
            await hass.add_server_via_flow(
                "node_exporter", agent.host, agent.port, "Live"
            )
            # A configured address that does not answer: the notification must not use it.
            await hass.ws(
                {
                    "type": "config/core/update",
                    "external_url": "https://unreachable.invalid",
                }
            )
            await hass.rest(
                "POST",
                "/api/services/button/press",
                {"entity_id": "button.live_export_metrics"},
            )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=BROWSER_ARGS
                )
                try:
                    context = await browser.new_context(accept_downloads=True)
                    await context.add_init_script(hass.browser_init_script())
                    downloads: asyncio.Queue[Any] = asyncio.Queue()
                    # The link may open a new tab for the download: listen on every page.
                    context.on(
                        "page", lambda page: page.on("download", downloads.put_nowait)
                    )
                    page = await context.new_page()
                    page.on("download", downloads.put_nowait)
                    # Home Assistant listens on 127.0.0.1 alone, not on the address it
                    # guesses for itself (its network interface's).
                    await page.goto(f"{hass.url}/lovelace/0")
                    await page.locator("ha-sidebar .notifications").click()
                    link = page.get_by_role(
                        "link", name=re.compile(r"^live-metrics-24h-.*\.csv$")
                    )
                    await expect(link).to_be_visible(timeout=30_000)
                    await link.click()
                    download = await asyncio.wait_for(downloads.get(), 30)
                    assert await download.failure() is None
                    assert download.suggested_filename.startswith("live-metrics-24h-")
                    assert download.url.startswith(f"{hass.url}/api/")
                    saved = tmp_path / download.suggested_filename
                    await download.save_as(saved)
                    assert saved.read_bytes().startswith(RAW_HEADER)
                finally:
                    await browser.close()
    finally:
        agent.stop()
