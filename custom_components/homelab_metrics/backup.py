"""Backup platform: the history file is consistent while Home Assistant copies it."""

from __future__ import annotations

from homeassistant.core import HomeAssistant

from .history_manager import HISTORY


async def async_pre_backup(hass: HomeAssistant) -> None:
    """Checkpoint the WAL into the main file and hold writes; samples wait in memory."""
    if (history := hass.data.get(HISTORY)) is not None:
        await history.async_pause_writes()


async def async_post_backup(hass: HomeAssistant) -> None:
    """Write the samples that arrived during the backup and go on."""
    if (history := hass.data.get(HISTORY)) is not None:
        await history.async_resume_writes()
