"""Delivery bookkeeping: the durable log and the short-lived in-flight claim."""
