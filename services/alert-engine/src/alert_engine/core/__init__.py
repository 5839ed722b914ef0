"""alert-engine's pure core: rules, evaluation, grouping, notify decisions.

No I/O; time is passed in."""
