"""opsmesh's development package: what runs the mesh on a developer's machine and in the
tests, never in a production image.

``infra`` starts real Kafka, PostgreSQL and Redis; ``tools`` holds the mesh supervisor,
the webhook sink and the demo traffic; ``testing`` the in-memory twins of the shared
library's ports; ``cli`` adds ``opsmesh up`` and ``opsmesh demo-traffic`` to the
``opsmesh`` command. No service and not the runtime ``opsmesh`` package import it
(``tests/contract/test_dev_package.py``).
"""
