"""Exports without Home Assistant: what can be asked for (choices) and the writers that make the file."""
