"""Customers and their orders."""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=100)


class Order(models.Model):
    # db_index=False: the index a ForeignKey gets by default is missing on purpose, so
    # "the orders of a customer" scans the table, the query query-analyzer advises on.
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    total = models.DecimalField(max_digits=10, decimal_places=2)
    placed_at = models.DateTimeField()
