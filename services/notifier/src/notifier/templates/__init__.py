"""Default templates, one set per channel (Jinja2, rendered in the bounded sandbox)."""
