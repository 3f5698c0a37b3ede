"""Translations: complete, and the same in strings.json and translations/en.json."""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from custom_components.homelab_metrics.binary_sensor import ONLINE
from custom_components.homelab_metrics.sensor import SENSORS

ROOT = Path(__file__).parents[1] / "custom_components" / "homelab_metrics"
TRANSLATIONS = ROOT / "translations"
# The languages the integration promises (README); any other file in translations/ is
# checked the same way.
SHIPPED = ("de", "fr", "nl", "es")
LANGUAGES = sorted(
    set(SHIPPED) | {path.stem for path in TRANSLATIONS.glob("*.json")} - {"en"}
)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _load(language: str) -> dict[str, Any]:
    return json.loads((TRANSLATIONS / f"{language}.json").read_text(encoding="utf-8"))


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every leaf by its dotted key, in the file's order."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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


def test_every_translation_file_is_valid_json() -> None:
    """A file Home Assistant cannot parse leaves that language without any of our texts."""
    broken = []
    for path in sorted(TRANSLATIONS.iterdir()):
        try:
            tree = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            broken.append(f"{path.name}: {err}")
        else:
            if not isinstance(tree, dict):
                broken.append(f"{path.name}: not a JSON object")
    assert not broken, "\n".join(broken)
    assert {path.name for path in TRANSLATIONS.iterdir()} >= {
        f"{language}.json" for language in ("en", *SHIPPED)
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_has_exactly_the_keys_of_english(language: str) -> None:
    """A key English lacks is never shown; a key the language lacks shows English or a raw key."""
    english = _flatten(_load("en"))
    keys = _flatten(_load(language))
    missing = sorted(english.keys() - keys.keys())
    extra = sorted(keys.keys() - english.keys())
    assert not missing and not extra, (
        f"{language}.json: missing {missing}, extra {extra}"
    )
    assert list(keys) == list(english), f"{language}.json: keys not in en.json's order"


@pytest.mark.parametrize("language", LANGUAGES)
def test_language_keeps_every_placeholder(language: str) -> None:
    """The code fills English's {placeholders}: another name stays raw or raises KeyError."""
    english = _flatten(_load("en"))
    differ = [
        f"{key}: {sorted(set(PLACEHOLDER.findall(text)))} instead of "
        f"{sorted(set(PLACEHOLDER.findall(english[key])))}"
        for key, text in _flatten(_load(language)).items()
        if key in english
        and set(PLACEHOLDER.findall(text)) != set(PLACEHOLDER.findall(english[key]))
    ]
    assert not differ, f"{language}.json: " + "; ".join(differ)


@pytest.mark.parametrize("language", ["en", *LANGUAGES])
def test_every_text_is_written_out(language: str) -> None:
    """No empty text, no core-style [%key:...] reference (a custom integration has no build step
    to resolve it), and no apostrophe right before a brace: the frontend reads the texts as ICU
    messages, where '{ starts a quoted literal and the placeholder would be shown raw."""
    flat = _flatten(_load(language))
    bad = [
        key
        for key, text in flat.items()
        if not isinstance(text, str)
        or not text.strip()
        or "[%key:" in text
        or re.search(r"'[{}]", text)
    ]
    assert not bad, f"{language}.json: {bad}"
