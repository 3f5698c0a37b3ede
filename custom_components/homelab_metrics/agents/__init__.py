"""Clients for the agents a homelab server runs (no Home Assistant imports)."""
