"""opsmesh notifier."""
