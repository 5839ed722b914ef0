"""Development tools: the mesh supervisor, a webhook sink and demo traffic (used by
``opsmesh up`` and by the end-to-end tests)."""
