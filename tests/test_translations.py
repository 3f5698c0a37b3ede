"""Translations: complete, and the same in strings.json and translations/en.json."""

from __future__ import annotations

import json
from pathlib import Path
import re

import yaml

from custom_components.homelab_metrics.binary_sensor import ONLINE
from custom_components.homelab_metrics.sensor import SENSORS

ROOT = Path(__file__).parents[1] / "custom_components" / "homelab_metrics"


def test_strings_equal_english() -> None:
    """A custom integration has no build step: strings.json is kept identical to en.json."""
    strings = json.loads((ROOT / "strings.json").read_text())
    assert strings == json.loads((ROOT / "translations" / "en.json").read_text())
    assert "[%key:" not in (ROOT / "strings.json").read_text()


def test_every_entity_and_field_is_translated() -> None:
    en = json.loads((ROOT / "translations" / "en.json").read_text())
    for description in SENSORS:
        assert en["entity"]["sensor"][description.translation_key]["name"]
    services = yaml.safe_load((ROOT / "services.yaml").read_text())
    for field in services["export"]["fields"]:
        assert en["services"]["export"]["fields"][field]["name"]
    source = "\n".join(p.read_text() for p in ROOT.glob("*.py"))
    for key in set(re.findall(r'ExportError\(\s*"([a-z_]+)"', source)):
        assert en["exceptions"][key]["message"], key


def test_every_entity_has_an_icon() -> None:
    """icon-translations: an icon in icons.json, or a device class that brings its own."""
    icons = json.loads((ROOT / "icons.json").read_text())["entity"]
    en = json.loads((ROOT / "translations" / "en.json").read_text())["entity"]
    for platform, description in [
        *(("sensor", d) for d in SENSORS),
        ("binary_sensor", ONLINE),
    ]:
        key = description.translation_key
        assert en[platform][key]["name"], key
        assert key in icons[platform] or description.device_class is not None, key
    for platform, keys in icons.items():
        assert set(keys) <= set(en[platform]), platform
