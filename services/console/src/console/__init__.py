"""opsmesh console: the on-call engineer's pages over the other services' REST APIs."""
