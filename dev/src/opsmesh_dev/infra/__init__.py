"""Real Kafka, PostgreSQL and Redis on free loopback ports, started and stopped by the project.

One module serves the pytest session fixtures and ``opsmesh up``. Environment variables
point both at existing infrastructure instead: ``OPSMESH_KAFKA_BOOTSTRAP``,
``OPSMESH_PG_DSN``, ``OPSMESH_REDIS_URL``.
"""

from opsmesh_dev.infra.process import InfrastructureUnavailable
from opsmesh_dev.infra.stack import Endpoints, LocalStack

__all__ = ["Endpoints", "InfrastructureUnavailable", "LocalStack"]
