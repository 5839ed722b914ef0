"""The demo application's database: PostgreSQL with HypoPG for query-analyzer to explain
and advise on. ``opsmesh up`` creates it empty; the demo shop (``examples/shop``, a Django
application) creates and fills its tables there with its migrations and queries them.

``SHOP_TABLES`` is the schema of the synthetic demo traffic (``opsmesh_dev.tools.traffic``,
the compose stack's ``demo-traffic``), kept for query-analyzer's integration tests: big
enough (300k orders, 200k customers) that the planner prefers an index when a useful one
exists, and ``ANALYZE``d so its estimates are real. ``orders.customer_id`` has no index on
purpose.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

# The synthetic traffic's name for its database (the ``database`` of its query events)...
DEMO_DATABASE = "shop"
# ...and the database in PostgreSQL: a name of our own, as `opsmesh up` may be pointed at
# an existing server (OPSMESH_PG_DSN), where it re-creates this one and touches no other.
# The demo shop's query events carry this name (Django's database NAME).
DEMO_PG_DATABASE = "opsmesh_demo_shop"

# Building blocks, also used by query-analyzer's integration tests (one schema to keep).
HYPOPG = "CREATE EXTENSION IF NOT EXISTS hypopg;"
SHOP_TABLES = """
CREATE TABLE countries (id int PRIMARY KEY, name text NOT NULL);
INSERT INTO countries SELECT g, 'country-' || g FROM generate_series(1, 50) g;
CREATE TABLE customers (
    id bigint PRIMARY KEY, email text NOT NULL, country_id int NOT NULL, created_at timestamptz
);
INSERT INTO customers
SELECT g, 'user' || g || '@example.com', 1 + g % 50, now() - (g || ' minutes')::interval
FROM generate_series(1, 200000) g;
CREATE INDEX customers_email ON customers (email);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(10, 2) NOT NULL,
    created_at timestamptz NOT NULL
);
INSERT INTO orders
SELECT g, 1 + (g::bigint * 7919) % 200000,
       (ARRAY['paid', 'shipped', 'pending', 'refunded'])[1 + g % 4],
       (g % 1000) / 10.0, now() - (g || ' seconds')::interval
FROM generate_series(1, 300000) g;
"""
ANALYZE = "ANALYZE;"

# What the demo traffic reports as slow (``opsmesh_dev.tools.traffic``): the first has no
# index to use (index advice), the second runs once per order of a page (N+1).
ORDERS_OF_CUSTOMER = "SELECT id, status, total FROM orders WHERE customer_id = {n}"
CUSTOMER_BY_ID = "SELECT id, email FROM customers WHERE id = {n}"


def dsn_for(base_dsn: str, database: str) -> str:
    return psycopg.conninfo.make_conninfo(base_dsn, dbname=database)


def create_demo_database(admin_dsn: str, name: str = DEMO_PG_DATABASE) -> str:
    """Create (or re-create) the demo database with HypoPG, without tables (the shop's
    migrations make its own); returns its DSN."""
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = dsn_for(admin_dsn, name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(HYPOPG)
    return dsn
