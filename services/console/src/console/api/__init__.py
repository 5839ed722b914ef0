"""HTTP handlers, one module per resource; they read ``request.app[SERVICES]``."""
