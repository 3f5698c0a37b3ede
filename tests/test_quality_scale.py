"""quality_scale.yaml records every rule up to platinum, in the shape hassfest checks for core."""

from __future__ import annotations

from pathlib import Path

import yaml

FILE = (
    Path(__file__).parents[1]
    / "custom_components"
    / "homelab_metrics"
    / "quality_scale.yaml"
)

# The rule names of hassfest's quality_scale.py, bronze to platinum (hassfest skips custom
# integrations, so this test is what keeps the file complete).
RULES = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}


def test_every_rule_is_recorded_with_a_reason_where_needed() -> None:
    """Each rule is done, or exempt/todo with a comment saying why; no unknown rule."""
    rules = yaml.safe_load(FILE.read_text())["rules"]
    expected = {rule for tier in RULES.values() for rule in tier}
    assert set(rules) == expected
    for name, value in rules.items():
        if isinstance(value, str):
            assert value == "done", f"{name}: {value} needs a comment"
            continue
        assert set(value) == {"status", "comment"}, name
        assert value["status"] in {"done", "exempt", "todo"}, name
        assert value["comment"].strip(), name
