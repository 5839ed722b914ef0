"""One line per framework or driver; each module imports only its own framework.

- ``asgi.OpsmeshMiddleware``: Starlette/FastAPI (any ASGI app; routes from Starlette)
- ``aiohttp.middleware``: aiohttp.web
- ``django.OpsmeshMiddleware``: Django (also hooks every database connection's queries)
- ``psycopg.instrument(conn)``, ``asyncpg.instrument(conn)``,
  ``sqlalchemy.instrument(engine)``: query events from the drivers
"""
