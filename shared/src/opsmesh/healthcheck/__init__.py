"""``opsmesh health-check``: the production health check of the whole mesh, from outside.

Every check is a probe with a bound (``probes``); the verdict and the table are pure
(``report``). The command (``opsmesh.cli.health_check``) runs the probes concurrently,
prints the table or JSON and exits non-zero when any check failed."""
