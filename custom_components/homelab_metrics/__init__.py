"""Homelab Metrics: homelab servers polled through node_exporter or Glances."""
