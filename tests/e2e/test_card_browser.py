"""The export card in headless Chromium, on a real Home Assistant polling a real node_exporter."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
import json
from pathlib import Path
import re
import shutil
from typing import Any

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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
RAW_HEADER = "timestamp,cpu_percent,memory_percent,disk_percent,load_1m,network_rx_bytes_per_second,network_tx_bytes_per_second,temperature_celsius"
DASHBOARD_URL = "homelab-test"
DASHBOARD = {
    "views": [
        {
            "title": "Servers",
            "path": "servers",
            "cards": [
                {"type": f"custom:{CARD}", "title": "Any server", "range": "30d"},
                {"type": f"custom:{CARD}", "server": "ghost", "title": "Ghost server"},
                # Last, so nothing but the background lies under its open menu.
                {"type": f"custom:{CARD}", "server": "live", "title": "Live server"},
            ],
        }
    ]
}

# The card's background and whether the page scrolls sideways, read inside its shadow root.
# The card picker's entry, and the visual editor driven as the card editor dialog drives it.
EDITOR_JS = """async () => {
  const Card = customElements.get("homelab-metrics-export-card");
  const editor = Card.getConfigElement();
  editor.hass = document.querySelector("home-assistant").hass;
  editor.setConfig({ type: "custom:homelab-metrics-export-card", ...Card.getStubConfig() });
  document.body.appendChild(editor);
  // The editor renders again once the server list arrives: query the select after that.
  const serverSelect = () => editor.shadowRoot.querySelector("select[name=server]");
  for (let i = 0; i < 100 && serverSelect().options.length < 2; i++) {
    await new Promise((done) => setTimeout(done, 50));
  }
  const select = serverSelect();
  const changed = new Promise((done) =>
    editor.addEventListener("config-changed", (e) => done(e.detail.config), { once: true }),
  );
  select.value = "live";
  select.dispatchEvent(new Event("change"));
  const config = await changed;
  editor.remove();
  return {
    picker: window.customCards.filter((c) => c.type === "homelab-metrics-export-card"),
    options: [...select.options].map((o) => o.value),
    config,
  };
}"""

PAGE_ERRORS: list[str] = []
"""Uncaught exceptions in the pages, checked for the card's at the end."""

CARD_LAYOUT_JS = """el => {
  const card = el.shadowRoot.querySelector("ha-card, .card");
  const [r, g, b] = getComputedStyle(card).backgroundColor.match(/\\d+/g).map(Number);
  return {
    luminance: (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255,
    pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
    cardOverflow: card.scrollWidth - card.clientWidth,
  };
}"""


def _require_browser() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed: apt-get install chromium")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright not installed: run scripts/setup")


async def _download(page: Any, card: Any, fmt: str) -> Path:
    """Open the card's Export menu, pick a format, return the downloaded file."""
    await card.locator("button.open").click()
    async with page.expect_download(timeout=30_000) as info:
        await card.locator(f"[data-format={fmt}]").click()
    download = await info.value
    assert await download.failure() is None
    target = ARTIFACTS / download.suggested_filename
    await download.save_as(target)
    return target


async def _open_dashboard(
    browser: Any, hass: RealHomeAssistant, *, dark: bool
) -> tuple[Any, Any]:
    """A logged-in page on the test dashboard, in the light or dark mode of the default theme."""
    context = await browser.new_context(
        accept_downloads=True,
        color_scheme="dark" if dark else "light",
        viewport=DESKTOP,
    )
    await context.add_init_script(hass.browser_init_script(dark=dark))
    page = await context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{error}\n{error.stack}"))
    await page.goto(f"{hass.url}/{DASHBOARD_URL}/servers")
    return context, page


async def _shoot_both_widths(page: Any, card: Any, name: str) -> dict[str, float]:
    """Screenshots at desktop and phone width; the layout figures at phone width."""
    from playwright.async_api import expect

    await card.screenshot(path=ARTIFACTS / f"{name}.png")
    await page.set_viewport_size(PHONE)
    # Home Assistant lays the dashboard out again for the narrow screen: wait until it has.
    await card.evaluate(
        "el => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    await expect(card).to_be_visible()
    await card.screenshot(path=ARTIFACTS / f"{name}-phone.png")
    box = await card.bounding_box()
    layout: dict[str, float] = await card.evaluate(CARD_LAYOUT_JS)
    await page.set_viewport_size(DESKTOP)
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    return layout


async def test_card_downloads_and_shows_errors(tmp_path: Path) -> None:
    """Choose a range, download CSV and JSON, see why a card is disabled and why an export fails."""
    require("node_exporter")
    _require_browser()
    from playwright.async_api import async_playwright, expect

    ARTIFACTS.mkdir(exist_ok=True)
    PAGE_ERRORS.clear()
    agent = RealAgent("node_exporter").start()
    try:
        async with RealHomeAssistant(tmp_path / "config") as hass:
            entry = await hass.add_server_via_flow(
                "node_exporter", agent.host, agent.port, "Live"
            )
            await hass.add_dashboard(DASHBOARD_URL, "Homelab Metrics")
            await hass.set_dashboard(DASHBOARD, url_path=DASHBOARD_URL)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=BROWSER_ARGS
                )
                try:
                    # Dark first: a screenshot and the theme check, then a fresh light page.
                    context, page = await _open_dashboard(browser, hass, dark=True)
                    live = page.locator(CARD).filter(has_text="Live server")
                    await expect(live.locator("button.open")).to_be_enabled(
                        timeout=30_000
                    )
                    dark = await _shoot_both_widths(page, live, "card-dark")
                    await context.close()

                    context, page = await _open_dashboard(browser, hass, dark=False)
                    live = page.locator(CARD).filter(has_text="Live server")
                    await expect(live.locator("button.open")).to_be_enabled(
                        timeout=30_000
                    )
                    light = await _shoot_both_widths(page, live, "card-light")
                    assert dark["luminance"] < 0.3, dark
                    assert light["luminance"] > 0.7, light
                    for layout in (dark, light):
                        assert layout["pageOverflow"] <= 0, layout
                        assert layout["cardOverflow"] <= 0, layout

                    # The range is chosen on the card; the menu closes on Escape and outside.
                    await live.locator('button.range[data-range="24h"]').click()
                    await expect(
                        live.locator('button.range[data-range="24h"]')
                    ).to_have_attribute("aria-pressed", "true")
                    await live.locator("button.open").click()
                    await expect(live.locator(".menu")).to_be_visible()
                    await page.screenshot(
                        path=ARTIFACTS / "card-menu.png",
                        clip=await _around(live, below=90),
                    )
                    await page.keyboard.press("Escape")
                    await expect(live.locator(".menu")).to_have_count(0)
                    await live.locator("button.open").click()
                    await expect(live.locator(".menu")).to_be_visible()
                    await page.mouse.click(5, DESKTOP["height"] - 5)
                    await expect(live.locator(".menu")).to_have_count(0)

                    # CSV of the last 24 hours: the raw header and the polls so far.
                    csv_file = await _download(page, live, "csv")
                    today = datetime.now(UTC).date().isoformat()
                    assert csv_file.name == f"live-metrics-24h-{today}.csv"
                    rows = list(csv.reader(csv_file.read_text().splitlines()))
                    assert ",".join(rows[0]) == RAW_HEADER
                    assert len(rows) >= 2
                    assert 0 < float(rows[1][2]) <= 100  # memory_percent of a real poll

                    # JSON of the last 7 days: hourly buckets, the current hour included.
                    await live.locator('button.range[data-range="7d"]').click()
                    json_file = await _download(page, live, "json")
                    assert re.fullmatch(
                        r"live-metrics-7d-\d{4}-\d{2}-\d{2}\.json", json_file.name
                    )
                    document = json.loads(json_file.read_text())
                    assert document["server_id"] == "live"
                    assert document["tier"] == "hourly"
                    assert document["data_points"]
                    assert document["data_points"][-1]["samples"] >= 1

                    # Without a configured server the card offers the integration's servers.
                    picker = page.locator(CARD).filter(has_text="Any server")
                    select = picker.locator("select")
                    await expect(select).to_have_value("live")
                    await expect(select.locator("option")).to_have_text(["Live"])
                    await expect(
                        picker.locator('button.range[data-range="30d"]')
                    ).to_have_attribute("aria-pressed", "true")
                    aggregate = await _download(page, picker, "csv")
                    header = aggregate.read_text().splitlines()[0].split(",")
                    assert aggregate.name.startswith("live-metrics-30d-")
                    assert header[:4] == ["timestamp", "cpu_avg", "cpu_min", "cpu_max"]
                    assert header[-1] == "samples"

                    # A card naming a server that does not exist explains, disabled.
                    ghost = page.locator(CARD).filter(has_text="Ghost server")
                    await expect(ghost.locator(".note")).to_have_text(
                        'There is no Homelab Metrics server with the id "ghost".'
                    )
                    await expect(ghost.locator("button.open")).to_be_disabled()
                    await page.screenshot(
                        path=ARTIFACTS / "dashboard.png", full_page=True
                    )

                    # The visual editor lists the servers and reports a change.
                    edited = await page.evaluate(EDITOR_JS)
                    assert edited["options"] == ["", "live"]
                    assert edited["config"] == {
                        "type": f"custom:{CARD}",
                        "range": "24h",
                        "server": "live",
                    }
                    assert [c["preview"] for c in edited["picker"]] == [True]

                    # A failing export: the server was deleted behind the card's back.
                    await hass.remove_entry(entry["entry_id"])
                    await live.locator("button.open").click()
                    await live.locator("[data-format=csv]").click()
                    error = live.locator(".error")
                    await expect(error).to_contain_text(
                        'no Homelab Metrics server with the id "live"'
                    )
                    await expect(live.locator("button.open")).not_to_have_text(
                        re.compile("Preparing")
                    )
                    await live.screenshot(path=ARTIFACTS / "card-error.png")
                    await context.close()
                    ours = [e for e in PAGE_ERRORS if CARD in e]
                    assert not ours, ours
                finally:
                    await browser.close()
    finally:
        agent.stop()


async def _around(card: Any, *, below: float) -> dict[str, float]:
    """A clip rectangle holding the card and what opens below it (the menu)."""
    box = await card.bounding_box()
    assert box is not None
    margin = 8
    return {
        "x": max(box["x"] - margin, 0),
        "y": max(box["y"] - margin, 0),
        "width": box["width"] + 2 * margin,
        "height": box["height"] + below + margin,
    }
