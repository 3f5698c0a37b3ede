"""Base entity of a homelab server's device, and the adding of entities as the server reports them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .agents.base import Sample
from .coordinator import HomelabConfigEntry, HomelabCoordinator

type Candidates = Iterable[tuple[str, Callable[[], Entity]]]
"""(key, factory) of each entity the server's sample calls for; the key is unique per server."""


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


@callback
def async_add_as_they_appear(
    entry: HomelabConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    candidates: Callable[[Sample], Candidates],
) -> None:
    """Add each entity once a poll calls for it, at setup or at any later poll, and only once.

    A metric can appear on a running server (lm-sensors installed, a Glances plugin enabled,
    apt's textfile collector set up), and so can a mount point or an interface. An entity whose
    part goes away stays, unavailable, so its history and automations keep their entity.
    """
    coordinator = entry.runtime_data.coordinator
    added: set[str] = set()

    @callback
    def async_add_new() -> None:
        new: list[Entity] = []
        for key, factory in candidates(coordinator.data):
            if key not in added:
                added.add(key)
                new.append(factory())
        if new:
            async_add_entities(new)

    async_add_new()
    entry.async_on_unload(coordinator.async_add_listener(async_add_new))
