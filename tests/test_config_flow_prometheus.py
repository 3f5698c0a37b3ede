"""Config flow of a Prometheus server: every step and error branch, reconfigure, reauth, options."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.homelab_metrics.agents.base import (
    CannotConnect,
    InvalidAuth,
    InvalidResponse,
)
from custom_components.homelab_metrics.const import DOMAIN
from custom_components.homelab_metrics.history.metrics import Tier
from custom_components.homelab_metrics.history_manager import get_history

from .conftest import (
    NODES,
    NOW,
    async_next_poll,
    find_server_device,
    make_entry,
    make_prometheus_entry,
)
from .test_config_flow import (  # noqa: F401 - the autouse check of every result's texts
    EN,
    _default,
    _every_result_is_translated,
    _fields,
)

URL_INPUT = {"url": " http://192.168.1.5:9090/ ", "security": {"verify_ssl": True}}


async def _start(hass: HomeAssistant) -> str:
    """A flow at the Prometheus server's form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "prometheus"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "prometheus"
    return result["flow_id"]


async def test_prometheus_adds_every_node_by_default(
    hass: HomeAssistant, mock_prometheus: MagicMock, freezer: FrozenDateTimeFactory
) -> None:
    """URL, then the nodes (all ticked): one entry, a server id and name per node, an import each."""
    freezer.move_to(datetime.fromtimestamp(NOW, UTC))
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "nodes"
    assert result["description_placeholders"] == {"count": "3", "down": "1"}
    nodes_field = next(f for f in _fields(result) if f["name"] == "nodes")
    assert nodes_field["selector"]["select"]["options"] == [
        {"value": "10.0.0.1:9100", "label": "alpha (10.0.0.1:9100 · node)"},
        {"value": "10.0.0.2:9100", "label": "beta (10.0.0.2:9100 · node)"},
        {"value": "10.0.0.3:9100", "label": "⚠ 10.0.0.3:9100 (10.0.0.3:9100 · node)"},
    ]
    assert _default(result, "nodes") == [n.instance for n in NODES]
    assert _default(result, "add_new_nodes") is True
    assert _default(result, "import_history") is True

    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "nodes": [n.instance for n in NODES],
            "add_new_nodes": True,
            "import_history": True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "192.168.1.5:9090"
    assert result["data"] == {
        "agent": "prometheus",
        "url": "http://192.168.1.5:9090",
        "verify_ssl": True,
    }
    assert result["options"] == {
        "scan_interval": 60,
        "add_new_nodes": True,
        "import_history": True,
        "nodes": {
            "10.0.0.1:9100": {
                "server_id": "alpha",
                "name": "alpha",
                "import_until": NOW,
            },
            "10.0.0.2:9100": {"server_id": "beta", "name": "beta", "import_until": NOW},
            "10.0.0.3:9100": {
                "server_id": "10_0_0_3_9100",
                "name": "10.0.0.3:9100",
                "import_until": NOW,
            },
        },
        "ignored": [],
    }
    assert result["result"].unique_id == "http://192.168.1.5:9090"
    mock_prometheus.async_test.assert_awaited()
    await hass.async_block_till_done()


async def test_prometheus_nodes_left_out_are_not_offered_again(
    hass: HomeAssistant, mock_prometheus: MagicMock
) -> None:
    """Unticked nodes are remembered as left out; without the import, no node has one."""
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {"nodes": ["10.0.0.2:9100"], "add_new_nodes": False, "import_history": False},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["options"]["nodes"] == {
        "10.0.0.2:9100": {"server_id": "beta", "name": "beta"}
    }
    assert result["options"]["ignored"] == ["10.0.0.1:9100", "10.0.0.3:9100"]
    assert result["options"]["add_new_nodes"] is False
    await hass.async_block_till_done()


async def test_prometheus_with_a_token_and_a_path(
    hass: HomeAssistant, mock_prometheus: MagicMock
) -> None:
    """A path prefix stays in the URL (and the title); the token is stored, the empty login is not."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            "url": "https://Metrics.Example.org/prometheus/",
            "security": {"verify_ssl": False, "username": "", "token": "s3cret"},
        },
    )
    assert result["step_id"] == "nodes"
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {"nodes": ["10.0.0.1:9100"], "add_new_nodes": True, "import_history": False},
    )
    assert result["title"] == "Metrics.Example.org/prometheus"
    assert result["data"] == {
        "agent": "prometheus",
        "url": "https://Metrics.Example.org/prometheus",
        "verify_ssl": False,
        "token": "s3cret",
    }
    assert result["result"].unique_id == "https://metrics.example.org:443/prometheus"
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("user_input", "field", "error"),
    [
        ({"url": "192.168.1.5:9090"}, "url", "invalid_url"),
        ({"url": "ftp://192.168.1.5"}, "url", "invalid_url"),
        ({"url": "http://user:pw@192.168.1.5:9090"}, "url", "invalid_url"),
        ({"url": "http://192.168.1.5:9090/?x=1"}, "url", "invalid_url"),
        (
            {
                "url": "http://192.168.1.5:9090",
                "security": {"verify_ssl": True, "username": "u", "token": "t"},
            },
            "base",
            "token_and_login",
        ),
    ],
)
async def test_prometheus_refuses_unusable_settings(
    hass: HomeAssistant,
    mock_prometheus: MagicMock,
    user_input: dict[str, object],
    field: str,
    error: str,
) -> None:
    """A URL the client cannot use, or a login and a token, is an error before any request."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    assert _default(result, "url") == user_input["url"]
    mock_prometheus.async_test.assert_not_awaited()


@pytest.mark.parametrize(
    ("side_effect", "error"),
    [
        (CannotConnect("refused"), "prometheus_cannot_connect"),
        (InvalidAuth("401"), "invalid_auth"),
        (InvalidResponse("HTML"), "not_prometheus"),
        (RuntimeError("bug"), "unknown"),
    ],
)
async def test_prometheus_connection_errors_then_recovers(
    hass: HomeAssistant, mock_prometheus: MagicMock, side_effect: Exception, error: str
) -> None:
    """Each failure of the connection test is its own error; fixed, the flow goes on."""
    flow_id = await _start(hass)
    mock_prometheus.async_test.side_effect = side_effect
    result = await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    assert result["errors"] == {"base": error}
    assert EN["config"]["error"][error]
    mock_prometheus.async_test.side_effect = None
    result = await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    assert result["step_id"] == "nodes"


async def test_prometheus_without_nodes_and_without_a_choice(
    hass: HomeAssistant, mock_prometheus: MagicMock
) -> None:
    """A server without node_exporter targets is an error; so is choosing no node."""
    flow_id = await _start(hass)
    mock_prometheus.async_discover.return_value = []
    result = await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    assert result["errors"] == {"base": "no_nodes"}
    mock_prometheus.async_discover.return_value = list(NODES)
    result = await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"nodes": [], "add_new_nodes": True, "import_history": True}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"nodes": "no_node_chosen"}
    assert _default(result, "nodes") == []


async def test_prometheus_already_added_is_a_form_error(
    hass: HomeAssistant, mock_prometheus: MagicMock
) -> None:
    """The same server (scheme, host in any case, port, path) cannot be added twice."""
    make_prometheus_entry().add_to_hass(hass)
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"url": "http://192.168.1.5:9090", "security": {"verify_ssl": True}}
    )
    assert result["errors"] == {"base": "already_configured"}
    assert result["description_placeholders"] == {"server": "192.168.1.5:9090"}
    mock_prometheus.async_test.assert_not_awaited()


async def test_node_server_ids_avoid_those_in_use(
    hass: HomeAssistant, mock_prometheus: MagicMock, mock_client: MagicMock
) -> None:
    """A node named like an existing server gets the next free id.

    The existing server's entry is set up with the integration (since 2026.10 as well), so its
    agent is the mock one.
    """
    make_entry(server_id="alpha", host="10.9.9.9").add_to_hass(hass)
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, URL_INPUT)
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {"nodes": ["10.0.0.1:9100"], "add_new_nodes": True, "import_history": False},
    )
    assert result["options"]["nodes"]["10.0.0.1:9100"]["server_id"] == "alpha_2"
    await hass.async_block_till_done()


async def test_prometheus_form_layout(hass: HomeAssistant) -> None:
    """URL, then a collapsed section with the TLS check, a login and a token."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, {"url": "x"})
    fields = _fields(result)
    assert [field["name"] for field in fields] == ["url", "security"]
    assert fields[1]["expanded"] is False
    assert [field["name"] for field in fields[1]["schema"]] == [
        "verify_ssl",
        "username",
        "password",
        "token",
    ]


async def test_reconfigure_prometheus(
    hass: HomeAssistant, init_prometheus: MockConfigEntry, mock_prometheus: MagicMock
) -> None:
    """A new URL and a token are tested, then stored; the nodes stay; the section opens for them."""
    entry = init_prometheus
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure_prometheus"
    assert _default(result, "url") == "http://192.168.1.5:9090"
    assert (
        next(f for f in _fields(result) if f["name"] == "security")["expanded"] is False
    )
    new = {
        "url": "https://prom.lan/prom",
        "security": {"verify_ssl": True, "token": "abc"},
    }
    mock_prometheus.async_test.side_effect = CannotConnect("down")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], new)
    assert result["errors"] == {"base": "prometheus_cannot_connect"}
    assert next(f for f in _fields(result) if f["name"] == "security")["expanded"]
    mock_prometheus.async_test.side_effect = None
    result = await hass.config_entries.flow.async_configure(result["flow_id"], new)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data == {
        "agent": "prometheus",
        "url": "https://prom.lan/prom",
        "verify_ssl": True,
        "token": "abc",
    }
    assert entry.unique_id == "https://prom.lan:443/prom"
    assert set(entry.options["nodes"]) == {"10.0.0.1:9100", "10.0.0.2:9100"}


async def test_reconfigure_prometheus_onto_another_entry(
    hass: HomeAssistant, init_prometheus: MockConfigEntry, mock_prometheus: MagicMock
) -> None:
    """Another entry's server is refused on the form; so is an unusable URL."""
    make_prometheus_entry(url="http://10.1.1.1:9090").add_to_hass(hass)
    result = await init_prometheus.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": "http://10.1.1.1:9090"}
    )
    assert result["errors"] == {"base": "already_configured"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"url": "10.1.1.1"}
    )
    assert result["errors"] == {"url": "invalid_url"}
    assert init_prometheus.data["url"] == "http://192.168.1.5:9090"


async def test_reauth_prometheus(
    hass: HomeAssistant, init_prometheus: MockConfigEntry, mock_prometheus: MagicMock
) -> None:
    """A refused login asks again; a token replaces the login; both at once are refused."""
    entry = init_prometheus
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, "username": "old", "password": "old"}
    )
    await hass.async_block_till_done()
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_prometheus"
    assert result["description_placeholders"] == {"name": "192.168.1.5:9090"}
    mock_prometheus.async_test.side_effect = InvalidAuth("401")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"username": "admin", "password": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"username": "admin", "token": "t"}
    )
    assert result["errors"] == {"base": "token_and_login"}
    mock_prometheus.async_test.side_effect = None
    # The form shows the stored username: a user who switches to a token clears it.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"username": "", "token": "t"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.data == {
        "agent": "prometheus",
        "url": "http://192.168.1.5:9090",
        "verify_ssl": True,
        "token": "t",
    }


async def test_options_add_and_remove_nodes(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    mock_prometheus: MagicMock,
    device_registry: dr.DeviceRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A ticked node is added with an import; an unticked one loses its device and history."""
    entry = init_prometheus
    await async_next_poll(hass, freezer)
    store = get_history(hass).store
    assert store is not None
    assert await store.async_count("beta", Tier.RAW, 0, NOW + 3600) == 2
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "nodes"
    assert _default(result, "nodes") == ["10.0.0.1:9100", "10.0.0.2:9100"]
    assert _default(result, "scan_interval") == 60
    labels = [
        option["label"]
        for option in next(f for f in _fields(result) if f["name"] == "nodes")[
            "selector"
        ]["select"]["options"]
    ]
    assert labels[2] == "⚠ 10.0.0.3:9100 (10.0.0.3:9100 · node)"

    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "scan_interval": 30,
            "nodes": ["10.0.0.1:9100", "10.0.0.3:9100"],
            "add_new_nodes": False,
            "import_history": True,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    options = entry.options
    assert options["scan_interval"] == 30
    assert options["add_new_nodes"] is False
    assert set(options["nodes"]) == {"10.0.0.1:9100", "10.0.0.3:9100"}
    assert "import_until" not in options["nodes"]["10.0.0.1:9100"]
    assert options["nodes"]["10.0.0.3:9100"]["import_until"] > NOW
    assert options["ignored"] == ["10.0.0.2:9100"]
    assert find_server_device(hass, "beta") is None
    store = get_history(hass).store
    assert store is not None
    assert await store.async_count("beta", Tier.RAW, 0, NOW + 3600) == 0
    assert await store.async_count("alpha", Tier.RAW, 0, NOW + 3600) == 2
    assert entry.runtime_data.coordinator.update_interval.total_seconds() == 30


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        (
            {"scan_interval": 5, "nodes": ["10.0.0.1:9100"]},
            {"scan_interval": "scan_interval_range"},
        ),
        ({"scan_interval": 60, "nodes": []}, {"nodes": "no_node_chosen"}),
    ],
)
async def test_options_errors_keep_the_input(
    hass: HomeAssistant,
    init_prometheus: MockConfigEntry,
    user_input: dict[str, object],
    errors: dict[str, str],
) -> None:
    """A scan interval out of range, or no node: an error on its field, the input kept."""
    result = await hass.config_entries.options.async_init(init_prometheus.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {**user_input, "add_new_nodes": True, "import_history": False},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert _default(result, "nodes") == user_input["nodes"]


async def test_options_of_an_entry_that_did_not_load(
    hass: HomeAssistant, mock_prometheus: MagicMock
) -> None:
    """Without a discovery (the server was down at start), the list holds the chosen nodes."""
    mock_prometheus.async_test.side_effect = CannotConnect("down")
    entry = make_prometheus_entry()
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    options = next(f for f in _fields(result) if f["name"] == "nodes")["selector"][
        "select"
    ]["options"]
    assert options == [
        {"value": "10.0.0.1:9100", "label": "alpha (10.0.0.1:9100)"},
        {"value": "10.0.0.2:9100", "label": "beta (10.0.0.2:9100)"},
    ]
