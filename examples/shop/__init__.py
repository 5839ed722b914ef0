"""The demo shop: a small Django application on PostgreSQL that sends its requests,
queries, health and profiles into the mesh through ``opsmesh_client``.

Its setup with the SDK is three lines: ``opsmesh_client.init(...)`` in ``wsgi.py``, the
SDK's middleware in ``settings.MIDDLEWARE`` (which also installs its database
``execute_wrapper`` on every connection) and a database check for ``/health/ready``
(``telemetry.setup``). Its pages are built to show what the mesh finds (``views``).
``python -m examples.shop serve`` runs it, ``python -m examples.shop load`` requests it.
"""
