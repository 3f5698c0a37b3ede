"""Base entity of a homelab server's device."""

from __future__ import annotations

from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import HomelabCoordinator


class HomelabEntity(CoordinatorEntity[HomelabCoordinator]):
    """An entity of one server; its unique id is the fixed server id and the description key."""

    _attr_has_entity_name = True

    def __init__(
        self, coordinator: HomelabCoordinator, description: EntityDescription
    ) -> None:
        """Attach the entity to its server's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.server_id}_{description.key}"
        self._attr_device_info = coordinator.device_info()
