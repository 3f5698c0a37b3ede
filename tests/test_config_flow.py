"""Config flow: every step and every error branch."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import MagicMock

from homeassistant.config_entries import SOURCE_USER, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import config_validation as cv, device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics.agents.base import (
    AgentInfo,
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.const import (
    CONF_SCAN_INTERVAL,
    DOMAIN,
    MAX_SCAN_INTERVAL,
    MIN_SCAN_INTERVAL,
)

from .conftest import FULL_SAMPLE, make_entry, server_device

try:  # How the frontend receives a form: probatio since Home Assistant 2026.10.
    from probatio import to_field_list as serialize_schema
except ImportError:
    from voluptuous_serialize import convert as serialize_schema

INTEGRATION = Path(__file__).parents[1] / "custom_components" / "homelab_metrics"
EN = json.loads((INTEGRATION / "translations" / "en.json").read_text())

USER_INPUT = {
    "name": "Media box",
    "agent": "glances",
    "host": " 10.0.0.5 ",
    "security": {"ssl": False, "verify_ssl": True},
}


def _assert_translated(section: str, result: ConfigFlowResult) -> None:
    """Every abort reason, every error a form shows, and every field's label has an English text."""
    if result["type"] is FlowResultType.ABORT:
        assert result["reason"] in EN[section]["abort"], result["reason"]
    if result["type"] is FlowResultType.MENU:
        step = EN[section]["step"][result["step_id"]]
        for option in result["menu_options"]:
            assert step["menu_options"][option], option
    if result["type"] is FlowResultType.FORM:
        for key in (result.get("errors") or {}).values():
            assert key in EN[section]["error"], key
        step = EN[section]["step"][result["step_id"]]
        for field in _fields(result):
            if field.get("type") == "expandable":
                texts = step["sections"][field["name"]]
                assert texts["name"], field["name"]
                for inner in field["schema"]:
                    assert texts["data"][inner["name"]], inner["name"]
            else:
                assert step["data"][field["name"]], field["name"]


@pytest.fixture(autouse=True)
def _every_result_is_translated(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Walk every result each test reaches through the translations, as the frontend would.

    A reason without a text reaches the user as its raw key ("already_in_progress").
    """

    def checked(
        section: str,
        call: Callable[..., Coroutine[Any, Any, ConfigFlowResult]],
    ) -> Callable[..., Coroutine[Any, Any, ConfigFlowResult]]:
        async def wrapper(*args: Any, **kwargs: Any) -> ConfigFlowResult:
            result = await call(*args, **kwargs)
            _assert_translated(section, result)
            return result

        return wrapper

    for section, manager in (
        ("config", hass.config_entries.flow),
        ("options", hass.config_entries.options),
    ):
        for name in ("async_init", "async_configure"):
            monkeypatch.setattr(manager, name, checked(section, getattr(manager, name)))


def test_every_reason_and_error_in_the_code_is_translated() -> None:
    """The literal abort reasons and error keys of config_flow.py all have texts."""
    source = (INTEGRATION / "config_flow.py").read_text()
    reasons = set(re.findall(r'reason="([a-z_]+)"', source))
    errors = set(re.findall(r'errors\[[^\]]+\] = "([a-z_]+)"', source))
    errors |= set(re.findall(r'return "([a-z_]+)"', source))
    assert reasons
    assert errors
    assert reasons <= set(EN["config"]["abort"]), reasons - set(EN["config"]["abort"])
    assert errors <= set(EN["config"]["error"]) | set(EN["options"].get("error", {}))


PLAIN = {"ssl": False, "verify_ssl": True}
"""The security section as the form sends it for an agent on plain HTTP without a login."""


async def _start(hass: HomeAssistant, choice: str = "agent") -> str:
    """A flow past the menu, at the form of `choice` (an agent, or a Prometheus server)."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["agent", "prometheus"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": choice}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == choice
    assert result["errors"] == {}
    return result["flow_id"]


async def test_user_creates_entry_with_default_port(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """Port left empty → the agent's default; name → title and a fixed server id."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Media box"
    assert result["data"] == {
        "agent": "glances",
        "server_id": "media_box",
        "host": "10.0.0.5",
        "port": 61208,
        "ssl": False,
        "verify_ssl": True,
    }
    assert result["options"] == {CONF_SCAN_INTERVAL: 60}
    assert result["result"].unique_id == "10.0.0.5:61208"
    mock_client.async_fetch.assert_awaited()


async def test_user_without_name_takes_the_agents_host_name(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """An empty name is the host name the agent reports, not the address typed in."""
    mock_client.info = AgentInfo(hostname=" media-box ", agent_version="4.5.8")
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, "host": "127.0.0.1", "name": "  "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "media-box"
    assert result["data"]["server_id"] == "media_box"


async def test_user_with_credentials_and_no_name(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """Credentials are kept; without a name, and no host name from the agent, the host names it."""
    mock_client.info = AgentInfo()
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "agent": "node_exporter",
            "host": "pve.lan",
            "port": 9200,
            "security": {
                "ssl": True,
                "verify_ssl": False,
                "username": "prom",
                "password": "secret",
            },
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "pve.lan"
    assert result["data"]["server_id"] == "pve_lan"
    assert result["data"]["port"] == 9200
    assert result["data"]["username"] == "prom"
    assert result["data"]["password"] == "secret"


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (CannotConnect("refused"), "cannot_connect"),
        (InvalidAuth("401"), "invalid_auth"),
        (InvalidResponse("html"), "invalid_response"),
        (RuntimeError("boom"), "unknown"),
    ],
)
async def test_user_errors_then_recovers(
    hass: HomeAssistant, mock_client: MagicMock, error: Exception, key: str
) -> None:
    """Each failure shows its error on the form; fixing it creates the entry."""
    flow_id = await _start(hass)
    mock_client.async_fetch.side_effect = error
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": key}

    mock_client.async_fetch.side_effect = None
    mock_client.async_fetch.return_value = FULL_SAMPLE
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["host"] == "10.0.0.5"


async def test_user_already_configured_is_a_form_error(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """The same host and port cannot be added twice: the form says so and keeps the input."""
    make_entry("glances", host="10.0.0.5", port=61208, title="Old box").add_to_hass(
        hass
    )
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, "host": "10.0.0.5"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "already_configured"}
    assert result["description_placeholders"] == {"server": "Old box"}
    assert _default(result, "host") == "10.0.0.5"
    assert _default(result, "name") == "Media box"
    mock_client.async_fetch.assert_not_awaited()

    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, "host": "10.0.0.6"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "10.0.0.6:61208"


async def test_failed_attempt_does_not_block_a_new_flow(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """A failed attempt, a page refresh, a retry with the same host and port: the retry adds it.

    The failed flow stays open in the background; it must not hold the host and port.
    """
    stale = await _start(hass)
    mock_client.async_fetch.side_effect = CannotConnect("refused")
    result = await hass.config_entries.flow.async_configure(stale, USER_INPUT)
    assert result["errors"] == {"base": "cannot_connect"}

    mock_client.async_fetch.side_effect = None
    fresh = await _start(hass)
    result = await hass.config_entries.flow.async_configure(fresh, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == "10.0.0.5:61208"

    # The old tab submitted again: the server now exists, said on its form.
    result = await hass.config_entries.flow.async_configure(stale, USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "already_configured"}


async def test_server_added_while_connecting_is_a_form_error(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """Two flows for one server connecting at once: the second to finish says it exists."""
    first = await _start(hass)
    second = await _start(hass)
    in_second: list[bool] = []

    async def fetch() -> Any:
        if not in_second:
            in_second.append(True)
            result = await hass.config_entries.flow.async_configure(first, USER_INPUT)
            assert result["type"] is FlowResultType.CREATE_ENTRY
        return FULL_SAMPLE

    mock_client.async_fetch.side_effect = fetch
    result = await hass.config_entries.flow.async_configure(second, USER_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "already_configured"}
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_server_id_unique(hass: HomeAssistant, mock_client: MagicMock) -> None:
    """Two servers with the same name get different server ids."""
    make_entry(server_id="media_box", host="10.0.0.9").add_to_hass(hass)
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["data"]["server_id"] == "media_box_2"


async def test_reconfigure(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """Host and port change; agent and server id stay; the entry reloads with them."""
    entry = init_integration
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"

    mock_client.async_fetch.side_effect = CannotConnect("down")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "192.168.1.11", "port": 9101, "security": PLAIN},
    )
    assert result["errors"] == {"base": "cannot_connect"}

    mock_client.async_fetch.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "192.168.1.11", "port": 9101, "security": PLAIN},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data["host"] == "192.168.1.11"
    assert entry.data["port"] == 9101
    assert entry.data["server_id"] == "nas"
    assert entry.data["agent"] == "node_exporter"
    assert entry.unique_id == "192.168.1.11:9101"


async def test_reconfigure_to_other_server_is_a_form_error(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """Reconfiguring onto a host and port another entry has is refused on the form."""
    make_entry(
        host="10.9.9.9", port=9100, server_id="other", title="Other"
    ).add_to_hass(hass)
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"host": "10.9.9.9", "port": 9100, "security": PLAIN},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "already_configured"}
    assert result["description_placeholders"] == {"server": "Other"}
    assert _default(result, "host") == "10.9.9.9"
    assert init_integration.data["host"] == "192.168.1.10"


async def test_reauth(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """New credentials are checked, then stored."""
    entry = init_integration
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"

    mock_client.async_fetch.side_effect = InvalidAuth("401")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"username": "admin", "password": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}

    mock_client.async_fetch.side_effect = None
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"username": "admin", "password": "right"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data["username"] == "admin"
    assert entry.data["password"] == "right"
    assert entry.data["host"] == "192.168.1.10"


async def test_reauth_names_the_server_as_renamed(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The re-authentication form calls the server by its device's name, renamed or not."""
    device = server_device(hass, "nas")
    device_registry.async_update_device(device.id, name_by_user="Storage")
    result = await init_integration.start_reauth_flow(hass)
    assert result["description_placeholders"] == {"name": "Storage"}


async def test_options_flow(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """The scan interval is stored, bounded, and the coordinator uses it after the reload."""
    entry = init_integration
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 15}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {CONF_SCAN_INTERVAL: 15}
    assert entry.runtime_data.coordinator.scan_interval.total_seconds() == 15


@pytest.mark.parametrize("seconds", [5, 9.5, 3601, 30.5])
async def test_options_flow_says_the_allowed_range(
    hass: HomeAssistant, init_integration: MockConfigEntry, seconds: float
) -> None:
    """Out of range (or a fraction) is an error on the field that says the range, input kept."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: seconds}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_SCAN_INTERVAL: "scan_interval_range"}
    assert _default(result, CONF_SCAN_INTERVAL) == seconds
    text = EN["options"]["error"]["scan_interval_range"]
    assert f"between {MIN_SCAN_INTERVAL} and {MAX_SCAN_INTERVAL} seconds" in text

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_SCAN_INTERVAL: 3600}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_SCAN_INTERVAL: 3600}
    await hass.async_block_till_done()


async def test_user_form_layout(hass: HomeAssistant) -> None:
    """Name first; HTTPS, certificate check and credentials in a collapsed section."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "agent"}
    )
    fields = _fields(result)
    assert [field["name"] for field in fields] == [
        "name",
        "agent",
        "host",
        "port",
        "security",
    ]
    security = fields[-1]
    assert security["type"] == "expandable"
    assert security["expanded"] is False
    assert [field["name"] for field in security["schema"]] == [
        "ssl",
        "verify_ssl",
        "username",
        "password",
    ]
    texts = EN["config"]["step"]["agent"]["sections"]["security"]
    assert "HTTPS only" in texts["data"]["verify_ssl"]


@pytest.mark.parametrize(
    ("data", "expanded"),
    [
        ({}, False),
        ({"ssl": True, "verify_ssl": False}, True),
        ({"username": "prom", "password": "secret"}, True),
    ],
)
async def test_reconfigure_opens_the_section_in_use(
    hass: HomeAssistant,
    mock_client: MagicMock,
    data: dict[str, Any],
    expanded: bool,
) -> None:
    """Reconfigure shows the security section open when the server uses HTTPS or a login."""
    entry = make_entry(**data)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    security = _fields(result)[-1]
    assert security["expanded"] is expanded
    assert _default(result, "security", "ssl") is data.get("ssl", False)
    assert _default(result, "security", "username") == data.get("username")


async def test_user_error_keeps_the_security_section(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """A failed attempt shows the form again with what was typed in the section, and open."""
    flow_id = await _start(hass)
    mock_client.async_fetch.side_effect = InvalidAuth("401")
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            **USER_INPUT,
            "security": {"ssl": True, "verify_ssl": True, "username": "prom"},
        },
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert _fields(result)[-1]["expanded"] is True
    assert _default(result, "security", "ssl") is True
    assert _default(result, "security", "username") == "prom"
    assert _default(result, "name") == "Media box"


def _fields(result: ConfigFlowResult) -> list[dict[str, Any]]:
    """The form's fields as the frontend receives them."""
    fields: list[dict[str, Any]] = serialize_schema(
        result["data_schema"], custom_serializer=cv.custom_serializer
    )
    return fields


def _default(result: ConfigFlowResult, *path: str) -> Any:
    """The value a form shows in one of its fields; a field in a section is (section, field)."""
    fields = _fields(result)
    for name in path[:-1]:
        fields = next(field for field in fields if field["name"] == name)["schema"]
    field = next(field for field in fields if field["name"] == path[-1])
    return field.get("default")


INVALID_HOSTS = [
    "http://10.0.0.5",
    "https://nas.lan",
    "nas.lan/metrics",
    "10.0.0.5/",
    "nas.lan?x=1",
    "nas.lan#top",
    "prom@nas.lan",
    "nas lan",
    "nas\t.lan",
    "10.0.0.5:9100",
    "fe80::1::2",
    "[::1",
    "::1]",
    "[nas.lan]",
    "fe80::1%eth0",
    "-nas.lan",
    "nas-.lan",
    "nas..lan",
    f"{'a' * 64}.lan",
    "999.1.1.1",
    "10.0.0",
    "büro.lan",
    "   ",
]


@pytest.mark.parametrize("host", INVALID_HOSTS)
async def test_user_refuses_invalid_host(
    hass: HomeAssistant, mock_client: MagicMock, host: str
) -> None:
    """A scheme, path, query, user, port or anything but an address or a name is refused, input kept."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, "host": host}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "agent"
    assert result["errors"] == {"host": "invalid_host"}
    assert _default(result, "host") == host
    assert _default(result, "name") == "Media box"
    mock_client.async_fetch.assert_not_awaited()

    result = await hass.config_entries.flow.async_configure(flow_id, USER_INPUT)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["host"] == "10.0.0.5"


@pytest.mark.parametrize(
    ("host", "stored"),
    [
        ("10.0.0.5", "10.0.0.5"),
        ("nas.lan", "nas.lan"),
        ("NAS.Lan.", "NAS.Lan."),
        ("pve", "pve"),
        ("docker_host", "docker_host"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        (" [2001:DB8:0::5] ", "2001:db8::5"),
        ("fd00::10", "fd00::10"),
    ],
)
async def test_user_accepts_addresses_and_names(
    hass: HomeAssistant, mock_client: MagicMock, host: str, stored: str
) -> None:
    """IPv4, IPv6 with or without brackets (stored without) and host names are accepted."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, "host": host}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["host"] == stored
    assert result["result"].unique_id == f"{stored.lower()}:61208"


async def test_user_ipv6_with_and_without_brackets_is_one_server(
    hass: HomeAssistant, mock_client: MagicMock
) -> None:
    """The same IPv6 address written another way is already configured."""
    make_entry("glances", host="2001:db8::5", port=61208).add_to_hass(hass)
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**USER_INPUT, "host": "[2001:DB8:0:0::5]"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "already_configured"}


@pytest.mark.parametrize("host", ["http://192.168.1.11", "192.168.1.11/x", "[::1"])
async def test_reconfigure_refuses_invalid_host(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    mock_client: MagicMock,
    host: str,
) -> None:
    """Reconfigure refuses the same hosts, keeps the input, and changes nothing until fixed."""
    mock_client.async_fetch.reset_mock()
    result = await init_integration.start_reconfigure_flow(hass)
    user_input = {"host": host, "port": 9101, "security": PLAIN}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {"host": "invalid_host"}
    assert _default(result, "host") == host
    assert _default(result, "port") == 9101
    mock_client.async_fetch.assert_not_awaited()
    assert init_integration.data["host"] == "192.168.1.10"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**user_input, "host": "[fd00::11]"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert init_integration.data["host"] == "fd00::11"
    assert init_integration.unique_id == "fd00::11:9101"


async def test_reconfigure_same_address_new_settings(
    hass: HomeAssistant, init_integration: MockConfigEntry, mock_client: MagicMock
) -> None:
    """Keeping host and port is not "already configured" against the entry itself."""
    result = await init_integration.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "host": "192.168.1.10",
            "port": 9100,
            "security": {
                "ssl": True,
                "verify_ssl": False,
                "username": "prom",
                "password": "secret",
            },
        },
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert init_integration.unique_id == "192.168.1.10:9100"
    assert init_integration.data["ssl"] is True
    assert init_integration.data["username"] == "prom"
    assert init_integration.data["server_id"] == "nas"
