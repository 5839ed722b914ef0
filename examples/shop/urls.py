"""The shop's URLs (their patterns are the ``route`` label of its request metrics)."""

from __future__ import annotations

from django.urls import path

from examples.shop import views

urlpatterns = [
    path("customers/", views.customers),
    path("customers/<int:pk>/orders/", views.customer_orders),
    path("checkout/<int:cart>/", views.checkout),
    path("boom/", views.boom),
]
