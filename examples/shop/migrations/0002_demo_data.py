"""The shop's data: 2,000 customers with 100 orders each (200,000 orders), ANALYZEd so
the planner's estimates are real — enough that a scan for one customer's orders costs
milliseconds and an index on ``customer_id`` would cut it to a few pages."""

from __future__ import annotations

from django.db import migrations

DEMO_DATA = """
INSERT INTO shop_customer (id, name)
SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
INSERT INTO shop_order (id, customer_id, total, placed_at)
SELECT g, 1 + (g * 7919) % 2000, (g % 1000) / 10.0, now() - g * interval '1 minute'
FROM generate_series(1, 200000) g;
SELECT setval(pg_get_serial_sequence('shop_customer', 'id'), 2000);
SELECT setval(pg_get_serial_sequence('shop_order', 'id'), 200000);
ANALYZE shop_customer, shop_order;
"""


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RunSQL(DEMO_DATA, "TRUNCATE shop_order, shop_customer;"),
    ]
