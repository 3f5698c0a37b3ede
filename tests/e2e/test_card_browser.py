"""The export card in headless Chromium, on a real Home Assistant polling real node_exporters."""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
import json
from pathlib import Path
import re
import shutil
import time
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
EDITOR = f"{CARD}-editor"
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
                # Makes the page taller than a phone's screen, so the last card can sit at its
                # bottom edge.
                {
                    "type": "markdown",
                    "content": "## Homelab\n\n"
                    + "\n\n".join(f"- Rack unit {unit}: spare" for unit in range(1, 9)),
                },
                {"type": f"custom:{CARD}", "title": "Any server", "range": "30d"},
                {"type": f"custom:{CARD}", "server": "ghost"},
                {"type": f"custom:{CARD}", "server": "backup"},
                # Last, so at phone width it can sit at the bottom of the screen.
                {"type": f"custom:{CARD}", "server": "live"},
            ],
        }
    ]
}
STATUS = r"(just now|\d+ minutes? ago)"

PAGE_ERRORS: list[str] = []
"""Uncaught exceptions in the pages, checked for the card's at the end."""

# The card's background and whether the page scrolls sideways, read inside its shadow root.
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


class Requests:
    """The page's requests to the integration's API, as (method, path and query)."""

    def __init__(self) -> None:
        """Nothing seen yet."""
        self.seen: list[tuple[str, str]] = []

    def __call__(self, request: Any) -> None:
        """Playwright's request event."""
        if "/api/homelab_metrics/" in request.url:
            path = request.url.split("/api/homelab_metrics/", 1)[1]
            self.seen.append((request.method, path))

    def lists(self) -> list[tuple[str, str]]:
        """The requests for the server list."""
        return [(m, p) for m, p in self.seen if p == "servers"]

    def exports(self) -> list[tuple[str, str]]:
        """The requests for an export."""
        return [(m, p) for m, p in self.seen if p.startswith("servers/")]


def _card(page: Any, title: str) -> Any:
    """The export card with this title."""
    return page.locator(CARD).filter(
        has=page.locator("h2", has_text=re.compile(f"^{re.escape(title)}$"))
    )


async def _download(page: Any, card: Any, fmt: str, requests: Requests) -> Path:
    """Open the card's Export menu, pick a format, return the downloaded file.

    One click, one export: a HEAD check with the session's token, then the browser's GET of the
    signed link (the download), and no other request for the file.
    """
    await card.locator("button.open").click()
    requests.seen.clear()
    async with page.expect_download(timeout=30_000) as info:
        await card.locator(f"[data-format={fmt}]").click()
    download = await info.value
    assert await download.failure() is None
    # The page's own requests (a download is not among them): the HEAD check alone.
    exports = requests.exports()
    assert [method for method, _ in exports] == ["HEAD"], exports
    assert "authSig=" not in exports[0][1]
    # The browser downloads the same path and query, signed.
    assert download.url.startswith(
        f"{page.url.split(f'/{DASHBOARD_URL}')[0]}/api/homelab_metrics/{exports[0][1]}&authSig="
    )
    target = ARTIFACTS / download.suggested_filename
    await download.save_as(target)
    return target


async def _open_dashboard(
    browser: Any,
    hass: RealHomeAssistant,
    *,
    dark: bool,
    language: str | None = None,
    path: str = f"/{DASHBOARD_URL}/servers",
) -> tuple[Any, Any, Requests]:
    """A logged-in page on the test dashboard, in the light or dark mode of the default theme."""
    context = await browser.new_context(
        accept_downloads=True,
        color_scheme="dark" if dark else "light",
        viewport=DESKTOP,
    )
    await context.add_init_script(hass.browser_init_script(dark=dark))
    if language is not None:
        # As the profile's language picker stores it.
        await context.add_init_script(
            f"localStorage.setItem('selectedLanguage', {json.dumps(json.dumps(language))});"
        )
    page = await context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.append(f"{error}\n{error.stack}"))
    requests = Requests()
    context.on("request", requests)
    await page.goto(f"{hass.url}{path}")
    return context, page, requests


async def _settle(card: Any) -> None:
    """Two frames: Home Assistant lays the dashboard out again after a resize."""
    await card.evaluate(
        "el => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )


async def _shoot_both_widths(page: Any, card: Any, name: str) -> dict[str, float]:
    """Screenshots at desktop and phone width; the layout figures at phone width."""
    from playwright.async_api import expect

    await card.screenshot(path=ARTIFACTS / f"{name}.png")
    await page.set_viewport_size(PHONE)
    await _settle(card)
    await expect(card).to_be_visible()
    await card.screenshot(path=ARTIFACTS / f"{name}-phone.png")
    box = await card.bounding_box()
    layout: dict[str, float] = await card.evaluate(CARD_LAYOUT_JS)
    await page.set_viewport_size(DESKTOP)
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    return layout


async def _menu_in_view(
    page: Any, card: Any
) -> tuple[dict[str, float], dict[str, float]]:
    """Open the Export menu; it lies wholly inside the viewport. Its box and the button's."""
    from playwright.async_api import expect

    await card.locator("button.open").click()
    menu = card.locator(".menu")
    await expect(menu).to_be_visible()
    viewport = page.viewport_size
    box = await menu.bounding_box()
    button = await card.locator("button.open").bounding_box()
    assert box is not None and button is not None
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (
        box,
        viewport,
    )
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], (
        box,
        viewport,
    )
    return box, button


async def _wait_offline(hass: RealHomeAssistant, server_id: str) -> None:
    """Poll the server now (its agent is stopped) and wait until the list says it is offline."""
    states = await hass.rest("GET", "/api/states")
    entity_id = next(
        s["entity_id"]
        for s in states
        if s["entity_id"].startswith(f"binary_sensor.{server_id}")
    )
    await hass.rest(
        "POST",
        "/api/services/homeassistant/update_entity",
        {"entity_id": entity_id},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        servers = await hass.rest("GET", "/api/homelab_metrics/servers")
        if not next(s for s in servers if s["server_id"] == server_id)["online"]:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{server_id} still online: {servers}")


async def test_card_in_a_real_browser(tmp_path: Path) -> None:
    """States, themes, languages, downloads, the menu at phone width, the editor, a removed server."""
    require("node_exporter")
    _require_browser()
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    PAGE_ERRORS.clear()
    live_agent = RealAgent("node_exporter").start()
    backup_agent = RealAgent("node_exporter").start()
    try:
        async with RealHomeAssistant(tmp_path / "config") as hass:
            live = await hass.add_server_via_flow(
                "node_exporter", live_agent.host, live_agent.port, "Live"
            )
            await hass.add_server_via_flow(
                "node_exporter", backup_agent.host, backup_agent.port, "Backup"
            )
            # Backup recorded its first poll, then went away.
            backup_agent.stop()
            await _wait_offline(hass, "backup")
            await hass.add_dashboard(DASHBOARD_URL, "Homelab Metrics")
            await hass.set_dashboard(DASHBOARD, url_path=DASHBOARD_URL)
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=BROWSER_ARGS
                )
                try:
                    await _themes_and_language(browser, hass)
                    await _states_menu_downloads(browser, hass)
                    await _editor(browser, hass)
                    await _removed_server(browser, hass, live["entry_id"])
                    ours = [e for e in PAGE_ERRORS if CARD in e]
                    assert not ours, ours
                finally:
                    await browser.close()
    finally:
        live_agent.stop()
        backup_agent.stop()


async def _themes_and_language(browser: Any, hass: RealHomeAssistant) -> None:
    """Dark and light mode at desktop and phone width; German from the user's profile."""
    from playwright.async_api import expect

    context, page, requests = await _open_dashboard(browser, hass, dark=True)
    live = _card(page, "Live")
    await expect(live.locator("button.open")).to_be_enabled(timeout=30_000)
    dark = await _shoot_both_widths(page, live, "card-dark")
    # Four cards on the page, one list for all of them.
    assert len(requests.lists()) == 1, requests.seen
    await context.close()

    context, page, _ = await _open_dashboard(browser, hass, dark=False)
    live = _card(page, "Live")
    await expect(live.locator("button.open")).to_be_enabled(timeout=30_000)
    light = await _shoot_both_widths(page, live, "card-light")
    assert dark["luminance"] < 0.3, dark
    assert light["luminance"] > 0.7, light
    for layout in (dark, light):
        assert layout["pageOverflow"] <= 0, layout
        assert layout["cardOverflow"] <= 0, layout
    await context.close()

    context, page, _ = await _open_dashboard(browser, hass, dark=False, language="de")
    live = _card(page, "Live")
    await expect(live.locator("button.open")).to_have_text(
        "Exportieren ▾", timeout=30_000
    )
    await expect(live.locator(".status")).to_have_text(
        re.compile(r"^Online · letzte Messung (gerade eben|vor \d+ Minuten?)$")
    )
    await expect(live.locator('button.range[data-range="7d"]')).to_have_text("7 T")
    await expect(live.locator('button.range[data-range="7d"]')).to_have_attribute(
        "title", "Letzte 7 Tage"
    )
    ghost = _card(page, "ghost")
    await expect(ghost.locator(".note")).to_have_text(
        "Den Server „ghost“ gibt es nicht mehr: Bearbeite die Karte, um einen anderen zu wählen."
    )
    german = await _shoot_both_widths(page, live, "card-de")
    assert german["cardOverflow"] <= 0, german
    picker = await page.evaluate(
        f"window.customCards.filter(c => c.type === '{CARD}').map(c => ({{...c}}))"
    )
    assert picker == [
        {
            "type": CARD,
            "name": "Homelab Metrics \u2013 Export",
            "description": "Lädt den Messwertverlauf eines Servers als CSV oder JSON herunter.",
            "preview": True,
        }
    ]
    await context.close()


async def _states_menu_downloads(browser: Any, hass: RealHomeAssistant) -> None:
    """Online, offline and unknown servers; the menu on desktop and phone; three downloads."""
    from playwright.async_api import expect

    context, page, requests = await _open_dashboard(browser, hass, dark=False)
    live = _card(page, "Live")
    await expect(live.locator("button.open")).to_be_enabled(timeout=30_000)
    # The default title is the server's name; the state line says it is polled.
    await expect(live.locator(".status")).to_have_text(
        re.compile(f"^Online · last sample {STATUS}$")
    )
    await expect(live.locator(".dot.online")).to_have_count(1)

    # Offline, with the sample it sent before it went away: still exportable.
    backup = _card(page, "Backup")
    await expect(backup.locator(".status")).to_have_text(
        re.compile(f"^Offline · last sample {STATUS}$")
    )
    await expect(backup.locator(".dot.offline")).to_have_count(1)
    await expect(backup.locator("button.open")).to_be_enabled()
    await expect(backup.locator(".note")).to_have_count(0)
    await backup.screenshot(path=ARTIFACTS / "card-offline.png")

    # A card naming a server that does not exist says how to fix it, disabled.
    ghost = _card(page, "ghost")
    await expect(ghost.locator(".note")).to_have_text(
        "The server “ghost” no longer exists: edit the card to choose another."
    )
    await expect(ghost.locator("button.open")).to_be_disabled()
    await expect(ghost.locator(".status")).to_have_count(0)
    await ghost.screenshot(path=ARTIFACTS / "card-deleted.png")
    await page.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

    # The range is chosen on the card; the menu opens in view and closes on Escape and outside.
    await live.locator('button.range[data-range="24h"]').click()
    await expect(live.locator('button.range[data-range="24h"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    await _menu_in_view(page, live)
    await page.screenshot(path=ARTIFACTS / "card-menu.png", clip=await _around(live))
    await page.keyboard.press("Escape")
    await expect(live.locator(".menu")).to_have_count(0)
    await expect(live.locator("button.open")).to_be_focused()
    await live.locator("button.open").click()
    await expect(live.locator(".menu")).to_be_visible()
    await page.mouse.click(5, DESKTOP["height"] - 5)
    await expect(live.locator(".menu")).to_have_count(0)

    # CSV of the last 24 hours: the raw header and the polls so far.
    csv_file = await _download(page, live, "csv", requests)
    today = datetime.now(UTC).date().isoformat()
    assert csv_file.name == f"live-metrics-24h-{today}.csv"
    rows = list(csv.reader(csv_file.read_text().splitlines()))
    assert ",".join(rows[0]) == RAW_HEADER
    assert len(rows) >= 2
    assert 0 < float(rows[1][2]) <= 100  # memory_percent of a real poll

    # JSON of the last 7 days: hourly buckets, the current hour included.
    await live.locator('button.range[data-range="7d"]').click()
    json_file = await _download(page, live, "json", requests)
    assert re.fullmatch(r"live-metrics-7d-\d{4}-\d{2}-\d{2}\.json", json_file.name)
    document = json.loads(json_file.read_text())
    assert document["server_id"] == "live"
    assert document["tier"] == "hourly"
    assert document["data_points"]
    assert document["data_points"][-1]["samples"] >= 1

    # Without a configured server the card offers the integration's servers.
    picker = _card(page, "Any server")
    select = picker.locator("select")
    await expect(select).to_have_value("live")
    await expect(select.locator("option")).to_have_text(["Live", "Backup (offline)"])
    await expect(picker.locator('button.range[data-range="30d"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(picker.locator(".status")).to_have_text(re.compile("^Online"))
    await select.select_option("backup")
    await expect(picker.locator(".status")).to_have_text(re.compile("^Offline"))
    await select.select_option("live")
    aggregate = await _download(page, picker, "csv", requests)
    header = aggregate.read_text().splitlines()[0].split(",")
    assert aggregate.name.startswith("live-metrics-30d-")
    assert header[:4] == ["timestamp", "cpu_avg", "cpu_min", "cpu_max"]
    assert header[-1] == "samples"

    # At phone width with the card at the bottom of the screen, the menu opens upward, in view.
    await page.set_viewport_size(PHONE)
    await _settle(live)
    await live.evaluate("el => el.scrollIntoView({block: 'end'})")
    await _settle(live)
    button = await live.locator("button.open").bounding_box()
    assert button is not None
    assert button["y"] + button["height"] > PHONE["height"] - 100, button
    menu, button = await _menu_in_view(page, live)
    assert menu["y"] + menu["height"] <= button["y"], (menu, button)
    await page.screenshot(path=ARTIFACTS / "card-menu-phone.png")
    await page.keyboard.press("Escape")
    await page.set_viewport_size(DESKTOP)
    await context.close()


async def _editor(browser: Any, hass: RealHomeAssistant) -> None:
    """The dashboard's own card editor: Home Assistant's form, one server list, a saved change."""
    from playwright.async_api import expect

    context, page, requests = await _open_dashboard(
        browser, hass, dark=False, path=f"/{DASHBOARD_URL}/servers?edit=1"
    )
    picker = _card(page, "Any server")
    await expect(picker.locator("select")).to_have_value("live", timeout=30_000)
    requests.seen.clear()
    await (
        page.locator("hui-card-options")
        .filter(has=picker)
        .locator("ha-button, mwc-button")
        .filter(has_text="Edit")
        .click()
    )
    dialog = page.locator("hui-dialog-edit-card")
    editor = dialog.locator(EDITOR)
    form = editor.locator("ha-form")
    await expect(form).to_be_visible(timeout=30_000)
    # Labels from the card's table; no native select left.
    await expect(form).to_contain_text("Default range")
    await expect(form).to_contain_text("Leave empty to choose the server on the card.")
    await expect(editor.locator("select")).to_have_count(0)

    # Choose the offline server from the form's dropdown.
    await form.locator("ha-select").first.click()
    # Its items: mwc-list-item up to frontend 2025, ha-dropdown-item in 2026's.
    options = form.locator("ha-select").first.locator("mwc-list-item, ha-dropdown-item")
    await expect(options).to_have_text(["Live", "Backup (offline)"])
    await options.filter(has_text="Backup").click()
    preview = dialog.locator(CARD)
    await expect(preview.locator(".status")).to_have_text(re.compile("^Offline"))

    # Type a title key by key, as a person does: the preview follows each key.
    # The text field: ha-textfield up to frontend 2025, ha-input in 2026's.
    title = form.locator("ha-textfield input, ha-input input")
    await title.fill("")
    await expect(preview.locator("h2")).to_have_text("Backup")
    await title.press_sequentially("Backup files", delay=30)
    await expect(preview.locator("h2")).to_have_text("Backup files")
    await page.screenshot(path=ARTIFACTS / "editor.png")
    await page.set_viewport_size(PHONE)
    await _settle(form)
    await page.screenshot(path=ARTIFACTS / "editor-phone.png")
    await page.set_viewport_size(DESKTOP)
    # The whole edit asked for the server list at most once (the page's cards already had it).
    assert len(requests.lists()) <= 1, requests.seen

    await dialog.locator("ha-button, mwc-button").filter(has_text="Save").click()
    await expect(editor).to_have_count(0)
    saved = await hass.ws({"type": "lovelace/config", "url_path": DASHBOARD_URL})
    cards = saved["views"][0]["cards"]
    assert {
        "type": f"custom:{CARD}",
        "range": "30d",
        "server": "backup",
        "title": "Backup files",
    } in cards, cards
    await context.close()


async def _removed_server(browser: Any, hass: RealHomeAssistant, entry_id: str) -> None:
    """A server removed behind the card's back: the export is refused, the card says what to do."""
    from playwright.async_api import expect

    context, page, requests = await _open_dashboard(browser, hass, dark=False)
    live = _card(page, "Live")
    await expect(live.locator("button.open")).to_be_enabled(timeout=30_000)
    await hass.remove_entry(entry_id)
    requests.seen.clear()
    await live.locator("button.open").click()
    await live.locator("[data-format=csv]").click()
    await expect(live.locator(".note")).to_have_text(
        "The server “Live” no longer exists: edit the card to choose another."
    )
    await expect(live.locator("button.open")).to_be_disabled()
    await expect(live.locator(".error")).to_have_count(0)
    # HEAD was refused, and no file was asked for.
    assert [m for m, _ in requests.exports()] == ["HEAD"], requests.seen
    await live.screenshot(path=ARTIFACTS / "card-removed.png")
    await context.close()


async def _around(card: Any) -> dict[str, float]:
    """A clip rectangle holding the card and its open menu, above or below it."""
    box = await card.bounding_box()
    menu = await card.locator(".menu").bounding_box()
    assert box is not None and menu is not None
    margin = 8
    top = min(box["y"], menu["y"]) - margin
    bottom = max(box["y"] + box["height"], menu["y"] + menu["height"]) + margin
    return {
        "x": max(box["x"] - margin, 0),
        "y": max(top, 0),
        "width": box["width"] + 2 * margin,
        "height": bottom - max(top, 0),
    }
