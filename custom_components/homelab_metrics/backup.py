"""Backup platform: the history file is consistent while Home Assistant copies it."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from . import HISTORY


async def async_pre_backup(hass: HomeAssistant) -> None:
    """Checkpoint the WAL into the main file and hold writes; samples wait in memory."""
    if (holder := hass.data.get(HISTORY)) is not None and holder.store is not None:
        await holder.store.async_pause_writes()


async def async_post_backup(hass: HomeAssistant) -> None:
    """Write the samples that arrived during the backup and go on."""
    if (holder := hass.data.get(HISTORY)) is not None and holder.store is not None:
        await holder.store.async_resume_writes()
