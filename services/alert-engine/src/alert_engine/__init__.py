"""opsmesh alert-engine."""
