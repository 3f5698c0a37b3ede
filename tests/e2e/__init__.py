"""Tests against real agents, a real Home Assistant and a real browser, on loopback."""
