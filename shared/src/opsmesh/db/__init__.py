"""PostgreSQL access: a connection pool and versioned migrations."""

from opsmesh.db.migrations import Migration, MigrationError, apply_migrations, load_migrations
from opsmesh.db.pool import open_pool

__all__ = ["Migration", "MigrationError", "apply_migrations", "load_migrations", "open_pool"]
