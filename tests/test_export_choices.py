"""The export choices (ranges, formats, time zones, defaults) and every copy of them that must agree."""

from __future__ import annotations

import json
import os
from pathlib import Path
import shutil
import subprocess

import pytest
import yaml

from custom_components.homelab_metrics.coordinator import ExportChoice
from custom_components.homelab_metrics.export.choices import (
    DEFAULT_FORMAT,
    DEFAULT_RANGE,
    DEFAULT_TIME_ZONE,
    FORMATS,
    RANGE_SPANS,
    ExportFormat,
    ExportRange,
    ExportTimeZone,
)
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.select import SELECTS

ROOT = Path(__file__).parents[1] / "custom_components" / "homelab_metrics"
CARD = ROOT / "frontend" / "homelab-metrics-export-card.js"

RANGES = [r.value for r in ExportRange]


def test_ranges_are_the_designed_ones() -> None:
    """DESIGN.md's table: 24h of polls, 7 and 30 days of hours, 12 months (365 days) of days."""
    day = 86_400
    assert {r.value: (s.tier, s.seconds) for r, s in RANGE_SPANS.items()} == {
        "24h": (Tier.RAW, day),
        "7d": (Tier.HOURLY, 7 * day),
        "30d": (Tier.HOURLY, 30 * day),
        "12m": (Tier.DAILY, 365 * day),
    }
    assert list(RANGE_SPANS) == list(ExportRange)


def test_formats_and_time_zones() -> None:
    assert FORMATS[ExportFormat.CSV].content_type == "text/csv; charset=utf-8"
    assert FORMATS[ExportFormat.JSON].content_type == "application/json; charset=utf-8"
    assert {f.value: FORMATS[f].extension for f in ExportFormat} == {
        "csv": "csv",
        "json": "json",
    }
    assert [tz.value for tz in ExportTimeZone] == ["utc", "local"]
    assert (DEFAULT_RANGE, DEFAULT_FORMAT, DEFAULT_TIME_ZONE) == ("24h", "csv", "utc")


def test_services_yaml_agrees() -> None:
    """The action's selectors offer exactly the choices, in order, with the same defaults."""
    fields = yaml.safe_load((ROOT / "services.yaml").read_text())["export"]["fields"]
    for field, choices, default in (
        ("range", ExportRange, DEFAULT_RANGE),
        ("format", ExportFormat, DEFAULT_FORMAT),
        ("tz", ExportTimeZone, DEFAULT_TIME_ZONE),
    ):
        assert fields[field]["selector"]["select"]["options"] == [
            c.value for c in choices
        ], field
        assert fields[field]["default"] == default, field


def test_selects_and_button_agree() -> None:
    """The selects offer the choices; the button starts with the defaults."""
    options = {description.key: description.options for description in SELECTS}
    assert options == {
        "export_range": RANGES,
        "export_format": [f.value for f in ExportFormat],
    }
    choice = ExportChoice()
    assert (choice.range, choice.format) == (DEFAULT_RANGE, DEFAULT_FORMAT)


def test_every_choice_is_translated() -> None:
    en = json.loads((ROOT / "translations" / "en.json").read_text())
    for key, choices in (
        ("export_range", ExportRange),
        ("export_format", ExportFormat),
        ("export_tz", ExportTimeZone),
    ):
        assert list(en["selector"][key]["options"]) == [c.value for c in choices]
    for key, choices in (
        ("export_range", ExportRange),
        ("export_format", ExportFormat),
    ):
        assert list(en["entity"]["select"][key]["state"]) == [c.value for c in choices]


def _card_constants() -> dict[str, object]:
    """RANGES, FORMATS and DEFAULT_RANGE as the card module exports them, read by Node."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("HOMELAB_METRICS_REQUIRE_E2E") == "1":
            pytest.fail("node is needed to read the card's constants")
        pytest.skip("node is not installed: the card's constants cannot be read")
    script = (
        "const m = await import(process.argv[1]);"
        "console.log(JSON.stringify("
        "{ranges: m.RANGES, formats: m.FORMATS, defaultRange: m.DEFAULT_RANGE}));"
    )
    result = subprocess.run(
        [node, "--input-type=module", "-e", script, CARD.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    constants: dict[str, object] = json.loads(result.stdout)
    return constants


def test_card_agrees() -> None:
    """The card offers the same ranges (with the same lengths), formats and default range."""
    card = _card_constants()
    assert [(r["value"], r["seconds"]) for r in card["ranges"]] == [
        (r.value, RANGE_SPANS[r].seconds) for r in ExportRange
    ]
    assert card["formats"] == [f.value for f in ExportFormat]
    assert card["defaultRange"] == DEFAULT_RANGE
