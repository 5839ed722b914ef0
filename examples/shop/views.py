"""The shop's pages, each built to show one thing the mesh finds:

- ``customers/``: the classic N+1 — one query for a page of customers, then one per
  customer for their order count (``customer.orders.count()``);
- ``customers/<id>/orders/``: a customer's latest orders, a query that misses an index
  (``shop_order.customer_id`` has none, so each is a scan of the orders);
- ``checkout/<cart>/``: the price computation is CPU-bound, the function a profile names;
- ``boom/``: fails on demand (the error rate).

The probes ``/health/live`` and ``/health/ready`` are answered by the SDK's middleware.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from examples.shop import telemetry
from examples.shop.models import Customer, Order

PAGE_SIZE = 20
CHECKOUT_ROUNDS = 1_000_000  # a few hundred ms of CPU: slow enough to be profiled


def customers(request: HttpRequest) -> JsonResponse:
    page = max(int(request.GET.get("page", "1") or 1), 1)
    listed = [
        # The N+1: one COUNT per customer, where an annotate(Count("orders")) would be one.
        {"id": customer.pk, "name": customer.name, "orders": customer.orders.count()}
        for customer in Customer.objects.order_by("id")[(page - 1) * PAGE_SIZE :][:PAGE_SIZE]
    ]
    return JsonResponse({"page": page, "customers": listed})


def customer_orders(request: HttpRequest, pk: int) -> JsonResponse:
    latest = Order.objects.filter(customer_id=pk).order_by("-placed_at")[:10]
    return JsonResponse(
        {
            "customer": pk,
            "orders": [
                {"id": o.pk, "total": str(o.total), "placed_at": o.placed_at.isoformat()}
                for o in latest
            ],
        }
    )


def checkout_totals(cart: int, rounds: int = CHECKOUT_ROUNDS) -> int:
    """The checkout's price computation: pure CPU, so a profile finds it running."""
    total = 0
    for i in range(rounds):
        total = (total + i * cart) % 1_000_003
    return total


def checkout(request: HttpRequest, cart: int) -> JsonResponse:
    total = checkout_totals(cart)
    telemetry.checkout_done()
    return JsonResponse({"cart": cart, "total": total})


def boom(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("failed on demand")
