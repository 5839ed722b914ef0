"""opsmesh query-analyzer."""
