"""Config flow: add a server or a Prometheus server's nodes, reconfigure, re-authenticate, options.

The user step is a menu, as core's flows offer different kinds of connection: a server's own
agent (one entry, one server), or a Prometheus server (one entry, a server per chosen node).

Why one module of about 840 lines: Home Assistant loads one flow handler per domain from
config_flow.py, and both kinds of entry share its steps' schemas, errors and connection tests;
the options flow is the one other class here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
import ipaddress
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import (
    CONF_HOST,
    CONF_NAME,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_SSL,
    CONF_TOKEN,
    CONF_URL,
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import device_registry as dr, selector
import voluptuous as vol

from .agents.base import AgentInfo, CannotConnect, InvalidAuth, InvalidResponse
from .agents.prometheus import Node, split_url
from .const import (
    CONF_ADD_NEW,
    CONF_AGENT,
    CONF_IGNORED,
    CONF_IMPORT,
    CONF_NODES,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    DEFAULT_PORTS,
    DEFAULT_SCAN_INTERVAL,
    DIRECT_AGENTS,
    DOMAIN,
    MAX_SCAN_INTERVAL,
    MIN_SCAN_INTERVAL,
    AgentKind,
)
from .coordinator import (
    async_create_client,
    async_create_prometheus_client,
    entry_device,
    server_name,
)
from .fleet import (
    added_nodes,
    async_forget_servers,
    node_label,
    taken_server_ids,
    unique_server_id,
    with_nodes,
)

_LOGGER = logging.getLogger(__name__)

_PORT_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=1, max=65535, mode=selector.NumberSelectorMode.BOX
    )
)
_TEXT = selector.TextSelector()
_PASSWORD = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
)
_URL = selector.TextSelector(
    selector.TextSelectorConfig(type=selector.TextSelectorType.URL)
)
_CONNECTION_KEYS = (
    CONF_HOST,
    CONF_PORT,
    CONF_SSL,
    CONF_VERIFY_SSL,
    CONF_USERNAME,
    CONF_PASSWORD,
    CONF_URL,
    CONF_TOKEN,
)


SECURITY = "security"
"""The form's collapsed section: HTTPS, certificate check and credentials, rarely needed."""


def _flatten(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """The form's answer with the security section's fields at the top, as entries store them."""
    return {
        **{key: value for key, value in user_input.items() if key != SECURITY},
        **user_input.get(SECURITY, {}),
    }


def _connection_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """Host, port and the security section, prefilled from `defaults` (flat, as stored).

    The section opens by itself when it holds something: HTTPS or credentials in use.
    """

    def opt(key: str) -> vol.Optional:
        value = defaults.get(key)
        return vol.Optional(key) if value is None else vol.Optional(key, default=value)

    in_use = bool(defaults.get(CONF_SSL) or defaults.get(CONF_USERNAME))
    return {
        vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED)): _TEXT,
        opt(CONF_PORT): _PORT_SELECTOR,
        vol.Optional(SECURITY, default={}): section(
            vol.Schema(
                {
                    vol.Required(CONF_SSL, default=defaults.get(CONF_SSL, False)): bool,
                    vol.Required(
                        CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True)
                    ): bool,
                    opt(CONF_USERNAME): _TEXT,
                    opt(CONF_PASSWORD): _PASSWORD,
                }
            ),
            {"collapsed": not in_use},
        ),
    }


_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
"""One label of a host name: RFC 1123, plus the underscore Docker and some DHCP servers hand out."""


def _host(text: str) -> str | None:
    """The host to store (IPv6 without brackets), or None when it is no address or name.

    The host goes into the agent's URL between "//" and ":port": a scheme, path, query, fragment
    or user part would change what is requested, so only an address or a name is accepted.
    """
    host = text.strip()
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        address = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        pass
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            return None  # a "%zone" would need escaping in the URL
        return address.compressed
    name = host.removesuffix(".")
    labels = name.split(".")
    if (
        bracketed
        or not name.isascii()
        or len(name) > 253
        or not all(_LABEL.fullmatch(label) for label in labels)
        # A numeric last label reads as a (malformed) IPv4 address: 999.1.1.1, 10.0.0.
        or labels[-1].isdigit()
    ):
        return None
    return host


def _normalise(agent: AgentKind, user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Connection settings with the agent's default port and no empty credentials."""
    data: dict[str, Any] = {
        CONF_HOST: str(user_input[CONF_HOST]).strip(),
        CONF_PORT: int(user_input.get(CONF_PORT) or DEFAULT_PORTS[agent]),
        CONF_SSL: bool(user_input.get(CONF_SSL, False)),
        CONF_VERIFY_SSL: bool(user_input.get(CONF_VERIFY_SSL, True)),
    }
    for key in (CONF_USERNAME, CONF_PASSWORD):
        if value := user_input.get(key):
            data[key] = value
    return data


class HomelabConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add one server (one config entry, one device) per agent."""

    VERSION = 1

    agent_info = AgentInfo()
    """What the agent told about itself in the last successful connection test."""

    async def _async_try_connect(
        self, agent: AgentKind, data: Mapping[str, Any]
    ) -> str | None:
        """Poll the agent once; the error key for the form, or None when it answered."""
        client = async_create_client(self.hass, agent, data)
        try:
            await client.async_fetch()
        except InvalidAuth:
            return "invalid_auth"
        except CannotConnect:
            return "cannot_connect"
        except InvalidResponse:
            return "invalid_response"
        except Exception:
            _LOGGER.exception(
                "Unexpected error while connecting to %s", data[CONF_HOST]
            )
            return "unknown"
        self.agent_info = client.info
        return None

    def _server_id(self, name: str) -> str:
        """A slug of the name that no other server uses; it never changes afterwards."""
        return unique_server_id(name, taken_server_ids(self.hass))

    def _duplicate(
        self,
        unique_id: str,
        placeholders: dict[str, str],
        *,
        entry_id: str | None = None,
    ) -> str | None:
        """The form error when another server already has this host and port, naming it."""
        for entry in self._async_current_entries(include_ignore=False):
            if entry.unique_id == unique_id and entry.entry_id != entry_id:
                placeholders["server"] = entry.title
                return "already_configured"
        return None

    async def _async_checked(
        self,
        unique_id: str,
        placeholders: dict[str, str],
        test: Callable[[], Awaitable[str | None]],
        *,
        entry_id: str | None = None,
    ) -> str | None:
        """The form error of a duplicate, else of the connection test, else of a duplicate again.

        Another flow may have added the same server while this one was connecting.
        """
        error = self._duplicate(unique_id, placeholders, entry_id=entry_id)
        if error is None:
            error = await test()
        if error is None:
            error = self._duplicate(unique_id, placeholders, entry_id=entry_id)
        return error

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A server through its own agent, or the nodes of a Prometheus server."""
        return self.async_show_menu(
            step_id="user", menu_options=["agent", "prometheus"]
        )

    async def async_step_agent(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the agent and where it listens, then connect once."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            user_input = _flatten(user_input)
            agent = AgentKind(user_input[CONF_AGENT])
            if (host := _host(str(user_input[CONF_HOST]))) is None:
                errors[CONF_HOST] = "invalid_host"
            else:
                data = _normalise(agent, {**user_input, CONF_HOST: host})
                unique_id = _unique_id(data)
                error = await self._async_checked(
                    unique_id,
                    placeholders,
                    lambda: self._async_try_connect(agent, data),
                )
                if error is None:
                    # Only now, once the agent answered: a flow that failed and was left open
                    # must not hold the host and port against a new attempt.
                    await self.async_set_unique_id(unique_id, raise_on_progress=False)
                    name = (
                        str(user_input.get(CONF_NAME) or "").strip()
                        or (self.agent_info.hostname or "").strip()
                        or data[CONF_HOST]
                    )
                    return self.async_create_entry(
                        title=name,
                        data={
                            CONF_AGENT: agent.value,
                            CONF_SERVER_ID: self._server_id(name),
                            **data,
                        },
                        options={CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL},
                    )
                errors["base"] = error

        defaults = user_input or {}
        schema = vol.Schema(
            {
                vol.Optional(
                    CONF_NAME, default=defaults.get(CONF_NAME, vol.UNDEFINED)
                ): _TEXT,
                vol.Required(
                    CONF_AGENT,
                    default=defaults.get(CONF_AGENT, AgentKind.NODE_EXPORTER.value),
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[kind.value for kind in DIRECT_AGENTS],
                        translation_key=CONF_AGENT,
                        mode=selector.SelectSelectorMode.LIST,
                    )
                ),
                **_connection_schema(defaults),
            }
        )
        return self.async_show_form(
            step_id="agent",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders or None,
        )

    # -- A Prometheus server ---------------------------------------------------------------------

    nodes: list[Node]
    """What the Prometheus server scrapes, from the last connection test."""
    connection: dict[str, Any]
    """The Prometheus server's connection settings, once they work."""

    async def _async_try_prometheus(self, data: Mapping[str, Any]) -> str | None:
        """Test the server and list its nodes; the error key for the form, or None."""
        try:
            client = async_create_prometheus_client(self.hass, data)
            await client.async_test()
            self.nodes = await client.async_discover()
        except InvalidAuth:
            return "invalid_auth"
        except CannotConnect:
            return "prometheus_cannot_connect"
        except InvalidResponse:
            return "not_prometheus"
        except Exception:
            _LOGGER.exception("Unexpected error while connecting to %s", data[CONF_URL])
            return "unknown"
        return None

    async def async_step_prometheus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask where the Prometheus server answers and how to log in, then list its nodes."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            user_input = _flatten(user_input)
            data, field, error = _prometheus_data(user_input)
            if error is None:
                unique_id = _prometheus_unique_id(data[CONF_URL])
                error = await self._async_checked(
                    unique_id, placeholders, lambda: self._async_try_prometheus(data)
                )
                if error is None and not self.nodes:
                    error = "no_nodes"
                if error is None:
                    await self.async_set_unique_id(unique_id, raise_on_progress=False)
                    self.connection = data
                    return await self.async_step_nodes()
            errors[field] = error
        return self.async_show_form(
            step_id="prometheus",
            data_schema=vol.Schema(_prometheus_schema(user_input or {})),
            errors=errors,
            description_placeholders=placeholders or None,
        )

    async def async_step_nodes(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the nodes to add (all by default), whether to add later ones, and the import."""
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = set(user_input[CONF_NODES])
            if chosen:
                options: dict[str, Any] = {
                    CONF_SCAN_INTERVAL: DEFAULT_SCAN_INTERVAL,
                    CONF_ADD_NEW: bool(user_input[CONF_ADD_NEW]),
                    CONF_IMPORT: bool(user_input[CONF_IMPORT]),
                }
                added = added_nodes(
                    self.hass,
                    (node for node in self.nodes if node.instance in chosen),
                    import_history=options[CONF_IMPORT],
                )
                left_out = [n.instance for n in self.nodes if n.instance not in chosen]
                return self.async_create_entry(
                    title=_prometheus_title(self.connection[CONF_URL]),
                    data={CONF_AGENT: AgentKind.PROMETHEUS.value, **self.connection},
                    options=with_nodes(options, added, left_out),
                )
            errors[CONF_NODES] = "no_node_chosen"
        defaults = user_input or {}
        return self.async_show_form(
            step_id="nodes",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_NODES,
                        default=defaults.get(
                            CONF_NODES, [node.instance for node in self.nodes]
                        ),
                    ): nodes_selector(
                        {node.instance: node_label(node) for node in self.nodes}
                    ),
                    vol.Required(
                        CONF_ADD_NEW, default=defaults.get(CONF_ADD_NEW, True)
                    ): bool,
                    vol.Required(
                        CONF_IMPORT, default=defaults.get(CONF_IMPORT, True)
                    ): bool,
                }
            ),
            errors=errors,
            description_placeholders={
                "count": str(len(self.nodes)),
                "down": str(sum(not node.up for node in self.nodes)),
            },
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change where the agent listens or how to log in; the server id stays."""
        entry = self._get_reconfigure_entry()
        agent = AgentKind(entry.data[CONF_AGENT])
        if agent is AgentKind.PROMETHEUS:
            return await self.async_step_reconfigure_prometheus()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            user_input = _flatten(user_input)
            if (host := _host(str(user_input[CONF_HOST]))) is None:
                errors[CONF_HOST] = "invalid_host"
            else:
                data = _normalise(agent, {**user_input, CONF_HOST: host})
                unique_id = _unique_id(data)
                error = await self._async_checked(
                    unique_id,
                    placeholders,
                    lambda: self._async_try_connect(agent, data),
                    entry_id=entry.entry_id,
                )
                if error is None:
                    return self._async_update(
                        entry,
                        unique_id=unique_id,
                        data={**_kept(entry), **data},
                        reason="reconfigure_successful",
                    )
                errors["base"] = error
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=vol.Schema(_connection_schema(user_input or entry.data)),
            errors=errors,
            description_placeholders=placeholders or None,
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """The agent refused our credentials during a poll."""
        return await self.async_step_reauth_confirm()

    async def async_step_reconfigure_prometheus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change a Prometheus server's URL or login; the nodes and their history stay."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            user_input = _flatten(user_input)
            data, field, error = _prometheus_data(user_input)
            if error is None:
                unique_id = _prometheus_unique_id(data[CONF_URL])
                error = await self._async_checked(
                    unique_id,
                    placeholders,
                    lambda: self._async_try_prometheus(data),
                    entry_id=entry.entry_id,
                )
                if error is None:
                    return self._async_update(
                        entry,
                        unique_id=unique_id,
                        data={**_kept(entry), **data},
                        reason="reconfigure_successful",
                    )
            errors[field] = error
        return self.async_show_form(
            step_id="reconfigure_prometheus",
            data_schema=vol.Schema(_prometheus_schema(user_input or entry.data)),
            errors=errors,
            description_placeholders=placeholders or None,
        )

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for new credentials and check them."""
        entry = self._get_reauth_entry()
        if entry.data[CONF_AGENT] == AgentKind.PROMETHEUS:
            return await self.async_step_reauth_prometheus()
        errors: dict[str, str] = {}
        if user_input is not None:
            agent = AgentKind(entry.data[CONF_AGENT])
            data = _normalise(
                agent,
                {**entry.data, CONF_USERNAME: None, CONF_PASSWORD: None, **user_input},
            )
            if (error := await self._async_try_connect(agent, data)) is None:
                return self._async_update(
                    entry,
                    unique_id=entry.unique_id,
                    data={**_kept(entry), **data},
                    reason="reauth_successful",
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(
                {
                    vol.Optional(
                        CONF_USERNAME,
                        default=entry.data.get(CONF_USERNAME, vol.UNDEFINED),
                    ): _TEXT,
                    vol.Optional(CONF_PASSWORD): _PASSWORD,
                }
            ),
            description_placeholders={
                "name": server_name(self.hass, entry, entry.data[CONF_SERVER_ID])
            },
            errors=errors,
        )

    async def async_step_reauth_prometheus(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask a Prometheus server's new credentials (a login or a token) and check them."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, field, error = _prometheus_data(
                {
                    **entry.data,
                    CONF_USERNAME: None,
                    CONF_PASSWORD: None,
                    CONF_TOKEN: None,
                    **user_input,
                }
            )
            if error is None:
                error = await self._async_try_prometheus(data)
            if error is None:
                return self._async_update(
                    entry,
                    unique_id=entry.unique_id,
                    data={**_kept(entry), **data},
                    reason="reauth_successful",
                )
            errors[field] = error
        return self.async_show_form(
            step_id="reauth_prometheus",
            data_schema=vol.Schema(
                {
                    vol.Optional(
                        CONF_USERNAME,
                        default=entry.data.get(CONF_USERNAME, vol.UNDEFINED),
                    ): _TEXT,
                    vol.Optional(CONF_PASSWORD): _PASSWORD,
                    vol.Optional(CONF_TOKEN): _PASSWORD,
                }
            ),
            description_placeholders={"name": entry.title},
            errors=errors,
        )

    def _async_update(
        self,
        entry: ConfigEntry,
        *,
        unique_id: str | None,
        data: dict[str, Any],
        reason: str,
    ) -> ConfigFlowResult:
        """Store the new data; the entry's update listener reloads it."""
        self.hass.config_entries.async_update_entry(
            entry, unique_id=unique_id, data=data
        )
        return self.async_abort(reason=reason)

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> HomelabOptionsFlow:
        """Options of a server: its scan interval."""
        return HomelabOptionsFlow()


def _unique_id(data: Mapping[str, Any]) -> str:
    """One server is one host and port, whatever the case of its name."""
    return f"{data[CONF_HOST].lower()}:{data[CONF_PORT]}"


def _prometheus_data(
    user_input: Mapping[str, Any],
) -> tuple[dict[str, Any], str, str | None]:
    """A Prometheus server's connection settings, and the field and key of what is wrong.

    The URL is kept as typed, without a trailing slash; credentials left empty are left out.
    """
    url = str(user_input.get(CONF_URL) or "").strip().rstrip("/")
    data: dict[str, Any] = {
        CONF_URL: url,
        CONF_VERIFY_SSL: bool(user_input.get(CONF_VERIFY_SSL, True)),
    }
    for key in (CONF_USERNAME, CONF_PASSWORD, CONF_TOKEN):
        if value := user_input.get(key):
            data[key] = value
    try:
        split_url(url)
    except ValueError:
        return data, CONF_URL, "invalid_url"
    if data.get(CONF_TOKEN) and data.get(CONF_USERNAME):
        return data, "base", "token_and_login"
    return data, "base", None


def _prometheus_unique_id(url: str) -> str:
    """One Prometheus server is one scheme, host, port and path, whatever the host's case."""
    address, prefix = split_url(url)
    return f"{address.base_url.lower()}{prefix}"


def _prometheus_title(url: str) -> str:
    """The entry's (and the Prometheus server's device's) name: host, port and path as typed."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path.rstrip('/')}"


def _prometheus_schema(defaults: Mapping[str, Any]) -> dict[vol.Marker, Any]:
    """URL and the login section, prefilled from `defaults` (flat, as stored).

    The section opens by itself when it holds something: a login or a token, or no TLS check.
    """

    def opt(key: str) -> vol.Optional:
        value = defaults.get(key)
        return vol.Optional(key) if value is None else vol.Optional(key, default=value)

    in_use = bool(
        defaults.get(CONF_USERNAME)
        or defaults.get(CONF_TOKEN)
        or not defaults.get(CONF_VERIFY_SSL, True)
    )
    return {
        vol.Required(CONF_URL, default=defaults.get(CONF_URL, vol.UNDEFINED)): _URL,
        vol.Optional(SECURITY, default={}): section(
            vol.Schema(
                {
                    vol.Required(
                        CONF_VERIFY_SSL, default=defaults.get(CONF_VERIFY_SSL, True)
                    ): bool,
                    opt(CONF_USERNAME): _TEXT,
                    opt(CONF_PASSWORD): _PASSWORD,
                    opt(CONF_TOKEN): _PASSWORD,
                }
            ),
            {"collapsed": not in_use},
        ),
    }


def nodes_selector(labels: Mapping[str, str]) -> selector.SelectSelector:
    """Checkboxes for nodes, each labelled by `node_label`."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=[
                selector.SelectOptionDict(value=instance, label=label)
                for instance, label in labels.items()
            ],
            multiple=True,
            mode=selector.SelectSelectorMode.LIST,
        )
    )


def _kept(entry: ConfigEntry) -> dict[str, Any]:
    """What a reconfigure or reauth never changes."""
    return {
        key: value for key, value in entry.data.items() if key not in _CONNECTION_KEYS
    }


_SCAN_INTERVAL_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(
        step=1, unit_of_measurement="s", mode=selector.NumberSelectorMode.BOX
    )
)


def _valid_scan_interval(seconds: float) -> bool:
    """Whether a scan interval is a whole number of seconds in the allowed range.

    The range is checked by the flow rather than by the selector: the selector's own refusal
    reaches the user as voluptuous' untranslated "Value 5.0 is too small".
    """
    return MIN_SCAN_INTERVAL <= seconds <= MAX_SCAN_INTERVAL and seconds == int(seconds)


class HomelabOptionsFlow(OptionsFlow):
    """Scan interval of one server; for a Prometheus server, also its nodes."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and store the scan interval."""
        if self.config_entry.data[CONF_AGENT] == AgentKind.PROMETHEUS:
            return await self.async_step_nodes()
        errors: dict[str, str] = {}
        current = self.config_entry.options.get(
            CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL
        )
        if user_input is not None:
            seconds = user_input[CONF_SCAN_INTERVAL]
            if _valid_scan_interval(seconds):
                return self.async_create_entry(data={CONF_SCAN_INTERVAL: int(seconds)})
            errors[CONF_SCAN_INTERVAL] = "scan_interval_range"
            current = seconds
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_SCAN_INTERVAL, default=current
                    ): _SCAN_INTERVAL_SELECTOR
                }
            ),
            errors=errors,
        )

    async def async_step_nodes(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A Prometheus server's scan interval, nodes, new nodes and imports.

        The list holds the chosen nodes and every node the last discovery found. A node added
        here gets an import of its past when that option is on; a node taken out loses its
        device and its history.
        """
        entry = self.config_entry
        options = entry.options
        chosen: dict[str, Any] = options.get(CONF_NODES, {})
        found: dict[str, Node] = {}
        if (runtime := getattr(entry, "runtime_data", None)) is not None:
            found = dict(getattr(runtime.coordinator, "nodes", {}))
        labels = {
            instance: node_label(node) for instance, node in sorted(found.items())
        }
        for instance, node in chosen.items():
            labels.setdefault(instance, f"{node['name']} ({instance})")
        errors: dict[str, str] = {}
        defaults: Mapping[str, Any] = {
            CONF_SCAN_INTERVAL: options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL),
            CONF_NODES: sorted(chosen),
            CONF_ADD_NEW: options.get(CONF_ADD_NEW, True),
            CONF_IMPORT: options.get(CONF_IMPORT, False),
        }
        if user_input is not None:
            defaults = user_input
            wanted = set(user_input[CONF_NODES])
            if not _valid_scan_interval(user_input[CONF_SCAN_INTERVAL]):
                errors[CONF_SCAN_INTERVAL] = "scan_interval_range"
            elif not wanted:
                errors[CONF_NODES] = "no_node_chosen"
            else:
                return await self._async_save_nodes(user_input, wanted, found)
        return self.async_show_form(
            step_id="nodes",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_SCAN_INTERVAL, default=defaults[CONF_SCAN_INTERVAL]
                    ): _SCAN_INTERVAL_SELECTOR,
                    vol.Required(
                        CONF_NODES, default=defaults[CONF_NODES]
                    ): nodes_selector(labels),
                    vol.Required(CONF_ADD_NEW, default=defaults[CONF_ADD_NEW]): bool,
                    vol.Required(CONF_IMPORT, default=defaults[CONF_IMPORT]): bool,
                }
            ),
            errors=errors,
        )

    async def _async_save_nodes(
        self,
        user_input: Mapping[str, Any],
        wanted: set[str],
        found: Mapping[str, Node],
    ) -> ConfigFlowResult:
        """Store the options; the nodes taken out lose their device and history first."""
        entry = self.config_entry
        chosen: dict[str, Any] = entry.options.get(CONF_NODES, {})
        removed = {
            instance: node
            for instance, node in chosen.items()
            if instance not in wanted
        }
        registry = dr.async_get(self.hass)
        for node in removed.values():
            if (
                device := entry_device(self.hass, entry, node[CONF_SERVER_ID])
            ) is not None:
                registry.async_update_device(
                    device.id, remove_config_entry_id=entry.entry_id
                )
        await async_forget_servers(
            self.hass,
            entry,
            [node[CONF_SERVER_ID] for node in removed.values()],
        )
        options: dict[str, Any] = {
            **entry.options,
            CONF_SCAN_INTERVAL: int(user_input[CONF_SCAN_INTERVAL]),
            CONF_ADD_NEW: bool(user_input[CONF_ADD_NEW]),
            CONF_IMPORT: bool(user_input[CONF_IMPORT]),
            CONF_NODES: {
                instance: node
                for instance, node in chosen.items()
                if instance in wanted
            },
        }
        added = added_nodes(
            self.hass,
            (
                node
                for instance, node in found.items()
                if instance in wanted - set(chosen)
            ),
            import_history=options[CONF_IMPORT],
        )
        left_out = (set(found) | set(options.get(CONF_IGNORED, []))) - wanted
        return self.async_create_entry(data=with_nodes(options, added, left_out))
