"""Config flow: add a server, reconfigure it, re-authenticate, and set its scan interval."""

from __future__ import annotations

from collections.abc import Mapping
import ipaddress
import logging
import re
from typing import Any

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
    CONF_USERNAME,
    CONF_VERIFY_SSL,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
from homeassistant.util import slugify
import voluptuous as vol

from .agents.base import AgentInfo, CannotConnect, InvalidAuth, InvalidResponse
from .const import (
    CONF_AGENT,
    CONF_SCAN_INTERVAL,
    CONF_SERVER_ID,
    DEFAULT_PORTS,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    MAX_SCAN_INTERVAL,
    MIN_SCAN_INTERVAL,
    AgentKind,
)
from .coordinator import async_create_client, server_name

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
_CONNECTION_KEYS = (
    CONF_HOST,
    CONF_PORT,
    CONF_SSL,
    CONF_VERIFY_SSL,
    CONF_USERNAME,
    CONF_PASSWORD,
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
        base = slugify(name) or "server"
        taken = {
            entry.data.get(CONF_SERVER_ID) for entry in self._async_current_entries()
        }
        candidate, n = base, 2
        while candidate in taken:
            candidate, n = f"{base}_{n}", n + 1
        return candidate

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

    async def async_step_user(
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
                error = self._duplicate(unique_id, placeholders)
                if error is None:
                    error = await self._async_try_connect(agent, data)
                # Another flow may have added the server while this one connected.
                if error is None:
                    error = self._duplicate(unique_id, placeholders)
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
                        options=[kind.value for kind in AgentKind],
                        translation_key=CONF_AGENT,
                        mode=selector.SelectSelectorMode.LIST,
                    )
                ),
                **_connection_schema(defaults),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders or None,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change where the agent listens or how to log in; the server id stays."""
        entry = self._get_reconfigure_entry()
        agent = AgentKind(entry.data[CONF_AGENT])
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            user_input = _flatten(user_input)
            if (host := _host(str(user_input[CONF_HOST]))) is None:
                errors[CONF_HOST] = "invalid_host"
            else:
                data = _normalise(agent, {**user_input, CONF_HOST: host})
                unique_id = _unique_id(data)
                error = self._duplicate(
                    unique_id, placeholders, entry_id=entry.entry_id
                )
                if error is None:
                    error = await self._async_try_connect(agent, data)
                if error is None:
                    error = self._duplicate(
                        unique_id, placeholders, entry_id=entry.entry_id
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

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for new credentials and check them."""
        entry = self._get_reauth_entry()
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
            description_placeholders={"name": server_name(self.hass, entry)},
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


def _kept(entry: ConfigEntry) -> dict[str, Any]:
    """What a reconfigure or reauth never changes."""
    return {
        key: value for key, value in entry.data.items() if key not in _CONNECTION_KEYS
    }


class HomelabOptionsFlow(OptionsFlow):
    """Scan interval of one server."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and store the scan interval.

        The range is checked here rather than by the selector: the selector's own refusal
        reaches the user as voluptuous' untranslated "Value 5.0 is too small".
        """
        errors: dict[str, str] = {}
        current = self.config_entry.options.get(
            CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL
        )
        if user_input is not None:
            seconds = user_input[CONF_SCAN_INTERVAL]
            if MIN_SCAN_INTERVAL <= seconds <= MAX_SCAN_INTERVAL and seconds == int(
                seconds
            ):
                return self.async_create_entry(data={CONF_SCAN_INTERVAL: int(seconds)})
            errors[CONF_SCAN_INTERVAL] = "scan_interval_range"
            current = seconds
        return self.async_show_form(
            step_id="init",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_SCAN_INTERVAL, default=current
                    ): selector.NumberSelector(
                        selector.NumberSelectorConfig(
                            step=1,
                            unit_of_measurement="s",
                            mode=selector.NumberSelectorMode.BOX,
                        )
                    )
                }
            ),
            errors=errors,
        )
