"""Base entity of a homelab server's device."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SSL
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .agents.base import AgentConfig
from .const import DOMAIN, AgentKind
from .coordinator import HomelabCoordinator

_AGENT_NAMES = {AgentKind.NODE_EXPORTER: "node_exporter", AgentKind.GLANCES: "Glances"}


class HomelabEntity(CoordinatorEntity[HomelabCoordinator]):
    """An entity of one server; its unique id is the fixed server id and the description key."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: HomelabCoordinator, description: EntityDescription
    ) -> None:
        """Attach the entity to its server's device."""
        super().__init__(coordinator)
        self.entity_description = description
        entry = coordinator.config_entry
        self._attr_unique_id = f"{coordinator.server_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, coordinator.server_id)},
            name=entry.title,
            model=_AGENT_NAMES[coordinator.agent],
            configuration_url=AgentConfig(
                host=entry.data[CONF_HOST],
                port=entry.data[CONF_PORT],
                ssl=bool(entry.data.get(CONF_SSL)),
            ).base_url,
        )
