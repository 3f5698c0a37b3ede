"""Tiered metric history in SQLite (no Home Assistant imports)."""
