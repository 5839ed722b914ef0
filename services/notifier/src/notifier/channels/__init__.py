"""Delivery channels: one module per protocol, each behind the ``Channel`` protocol."""
