"""Tumbling-window rollups of metric samples: the pure core, no I/O, injected time."""
