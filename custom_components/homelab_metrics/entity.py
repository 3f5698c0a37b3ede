"""Base entity of a homelab server's device, and the adding of entities as the servers report them."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import callback
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .agents.base import Sample
from .coordinator import (
    HomelabConfigEntry,
    HomelabCoordinator,
    PrometheusCoordinator,
    Server,
)

type Candidates = Iterable[tuple[str, Callable[[], Entity]]]
"""(key, factory) of each entity a server's sample calls for; the key is unique per server."""


class HomelabEntity(CoordinatorEntity[HomelabCoordinator | PrometheusCoordinator]):
    """An entity of one server; its unique id is the fixed server id and the description key."""

    _attr_has_entity_name = True

    def __init__(self, server: Server, description: EntityDescription) -> None:
        """Attach the entity to its server's device."""
        super().__init__(server.coordinator)
        self.server = server
        self.entity_description = description
        self._attr_unique_id = f"{server.server_id}_{description.key}"
        self._attr_device_info = server.device_info()

    @property
    def available(self) -> bool:
        """Unavailable while the poll fails, or (a Prometheus node) while its server has no figures."""
        return self.server.online


@callback
def async_add_as_they_appear(
    entry: HomelabConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    candidates: Callable[[Server, Sample], Candidates],
) -> None:
    """Add each server's entities once a poll calls for them, at setup or at any later poll, once.

    A metric can appear on a running server (lm-sensors installed, a Glances plugin enabled,
    apt's textfile collector set up), and so can a mount point or an interface. An entity whose
    part goes away stays, unavailable, so its history and automations keep their entity. A
    Prometheus node that is down at setup gets its entities when it first answers.
    """
    data = entry.runtime_data
    added: set[tuple[str, str]] = set()

    @callback
    def async_add_new() -> None:
        new: list[Entity] = []
        for server in data.servers.values():
            if (sample := server.sample) is None:
                continue
            for key, factory in candidates(server, sample):
                if (server.server_id, key) not in added:
                    added.add((server.server_id, key))
                    new.append(factory())
        if new:
            async_add_entities(new)

    async_add_new()
    entry.async_on_unload(data.coordinator.async_add_listener(async_add_new))
