"""Applications that use the producer SDK as a web team would (``examples/shop``)."""
