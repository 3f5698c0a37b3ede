"""The export card in headless Chromium, on a real Home Assistant polling a real node_exporter."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
import json
from pathlib import Path
import re
import shutil

import pytest

from .agents import REPO, RealAgent, require
from .hass import RealHomeAssistant

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("socket_enabled")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / ".e2e-artifacts"
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CARD = "homelab-metrics-export-card"
RAW_HEADER = "timestamp,cpu_percent,memory_percent,disk_percent,load_1m,network_rx_bytes_per_second,network_tx_bytes_per_second,temperature_celsius"


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed: apt-get install chromium")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright not installed: run scripts/setup")


async def _download(page, fmt: str) -> Path:
    """Open the Export menu, pick a format, return the downloaded file."""
    await page.locator(f"{CARD} button.open").click()
    async with page.expect_download(timeout=30_000) as info:
        await page.locator(f"{CARD} [data-format={fmt}]").click()
    download = await info.value
    target = ARTIFACTS / download.suggested_filename
    await download.save_as(target)
    return target


async def test_card_downloads_and_shows_errors(tmp_path: Path) -> None:
    """Choose a range, download CSV and JSON, then see the error of a failing export."""
    require("node_exporter")
    _require_browser()
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    agent = RealAgent("node_exporter").start()
    try:
        async with RealHomeAssistant(tmp_path / "config") as hass:
            entry = await hass.add_server(
                "node_exporter", agent.host, agent.port, "Live"
            )
            await hass.ws(
                {
                    "type": "lovelace/config/save",
                    "config": {
                        "views": [
                            {
                                "title": "Servers",
                                "path": "servers",
                                "cards": [
                                    {
                                        "type": f"custom:{CARD}",
                                        "server": "live",
                                        "title": "Live server",
                                    }
                                ],
                            }
                        ]
                    },
                }
            )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=BROWSER_ARGS
                )
                try:
                    for scheme in ("dark", "light"):
                        context = await browser.new_context(
                            accept_downloads=True,
                            color_scheme=scheme,
                            viewport={"width": 1280, "height": 800},
                        )
                        await context.add_init_script(
                            f"localStorage.setItem('hassTokens', {json.dumps(hass.browser_tokens())});"
                        )
                        page = await context.new_page()
                        await page.goto(f"{hass.url}/lovelace/servers")
                        card = page.locator(CARD)
                        try:
                            await expect(card.locator("button.open")).to_be_enabled(
                                timeout=20_000
                            )
                        except Exception as err:
                            state = await card.evaluate(
                                "el => el.shadowRoot.innerHTML.slice(-700) + JSON.stringify(el._servers) + Date.now()"
                            )
                            servers = await hass.rest(
                                "GET", "/api/homelab_metrics/servers"
                            )
                            raise AssertionError(
                                f"card disabled: {state}; {servers}"
                            ) from err
                        await card.screenshot(path=ARTIFACTS / f"card-{scheme}.png")
                        await page.set_viewport_size({"width": 360, "height": 740})
                        await card.screenshot(
                            path=ARTIFACTS / f"card-{scheme}-phone.png"
                        )
                        box = await card.bounding_box()
                        assert box is not None and box["width"] <= 360
                        await page.set_viewport_size({"width": 1280, "height": 800})
                        if scheme == "dark":
                            await context.close()
                            continue

                        # CSV of the last 24 hours: the raw header and the polls so far.
                        await card.locator('button.range[data-range="24h"]').click()
                        csv_file = await _download(page, "csv")
                        today = datetime.now(UTC).date().isoformat()
                        assert csv_file.name == f"live-metrics-24h-{today}.csv"
                        rows = list(csv.reader(csv_file.read_text().splitlines()))
                        assert ",".join(rows[0]) == RAW_HEADER
                        assert len(rows) >= 2
                        assert float(rows[1][2]) > 0  # memory_percent of a real poll

                        # JSON of the last 7 days: hourly buckets, the current hour included.
                        await card.locator('button.range[data-range="7d"]').click()
                        json_file = await _download(page, "json")
                        assert re.fullmatch(
                            r"live-metrics-7d-\d{4}-\d{2}-\d{2}\.json", json_file.name
                        )
                        document = json.loads(json_file.read_text())
                        assert document["tier"] == "hourly"
                        assert document["data_points"]
                        assert document["data_points"][-1]["samples"] >= 1

                        # The menu closes on a click outside it.
                        await card.locator("button.open").click()
                        await expect(card.locator(".menu")).to_be_visible()
                        await page.mouse.click(5, 5)
                        await expect(card.locator(".menu")).to_have_count(0)

                        # A failing export: the server was deleted behind the card's back.
                        await hass.rest(
                            "DELETE",
                            f"/api/config/config_entries/entry/{entry['entry_id']}",
                        )
                        await card.locator("button.open").click()
                        await card.locator("[data-format=csv]").click()
                        error = card.locator(".error")
                        await expect(error).to_contain_text(
                            'no Homelab Metrics server with the id "live"'
                        )
                        await card.screenshot(path=ARTIFACTS / "card-error.png")
                        await context.close()
                finally:
                    await browser.close()
    finally:
        agent.stop()
