"""L3: query results cached under the query's fingerprint and the generations of the
tables it reads, invalidated when those tables are written.

How writes are seen: PostgreSQL triggers (``install_triggers``: one statement-level
``AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE`` trigger per table) call ``pg_notify``
with the table's name, and every instance's ``TableWatcher`` LISTENs and increments that
table's generation in Redis. Chosen over the SDK's query hooks publishing on the Redis
channel because the database sees every write, from every instance, every other program,
psql, migrations and COPY alike, and NOTIFY is transactional: it is delivered at commit
(in commit order) and never for a rolled-back write, where a hook would publish before
the commit (letting a reader cache the old rows again) and for writes that never commit.

Why generations, not deleting tagged keys: a result is stored under
``fingerprint:hash(generations read before the query ran)``. A write that commits while
the query runs bumps a generation, so the possibly old result lands under a key no one
reads again; deleting keys instead would race with that late store. Every instance bumps
on every notification (idempotent in effect: any change of generation is a miss).

While an instance's watcher is not listening (starting, its PostgreSQL connection lost,
or Redis refusing the increment), it cannot know what it missed: its queries bypass the
cache (run and not stored; ``bypassed`` counts them), and when it listens again it bumps
the generation of every table any instance has cached (kept in a Redis set), so nothing
cached before the gap is read after it.

Rows are cached through the namespace's ``Cache`` (so L1, L2, single flight and the lease
apply); they must be encodable by its codec (JSON by default: ``fetch_all`` gives rows
back as tuples). ``psycopg`` (3.2+) and ``redis`` are imported when a watcher or store
is made.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opsmesh_client.cache import query_text
from opsmesh_client.cache.settings import CacheError
from opsmesh_client.cache.sync import Cache

if TYPE_CHECKING:
    import redis

log = logging.getLogger("opsmesh_client.cache")

NOTIFY_CHANNEL = "opsmesh_cache"
_POLL_S = 0.5
_BACKOFF_MAX_S = 5.0


def install_triggers(conn: Any, tables: Iterable[str], channel: str = NOTIFY_CHANNEL) -> None:
    """Make writes to ``tables`` notify ``channel`` at commit (idempotent; run it where
    migrations run, as a role that may create functions and triggers)."""
    from psycopg import sql  # noqa: PLC0415 - optional: only the L3 cache needs psycopg

    conn.execute(
        "CREATE OR REPLACE FUNCTION opsmesh_cache_notify() RETURNS trigger"
        " LANGUAGE plpgsql AS $$ BEGIN"
        " PERFORM pg_notify(TG_ARGV[0], TG_TABLE_NAME); RETURN NULL; END $$"
    )
    for table in tables:
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER opsmesh_cache_notify"
                " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {}"
                " FOR EACH STATEMENT EXECUTE FUNCTION opsmesh_cache_notify({})"
            ).format(sql.Identifier(*table.split(".")), sql.Literal(channel))
        )


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a cached result is valid for: the generations of its tables, and the epoch
    (made anew when Redis lost its data, so counters restarting at 0 cannot meet the
    stamps of results cached before)."""

    epoch: str
    generations: tuple[tuple[str, int], ...]

    def digest(self) -> str:
        return hashlib.sha256(repr((self.epoch, self.generations)).encode()).hexdigest()[:16]


class GenerationKeys:
    """Where the generations live in Redis (shared by the sync and async L3)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._known: set[str] = set()  # tables this process has added to the set

    def _key(self, table: str) -> str:
        return f"{self._prefix}:q:gen:{table}"

    @property
    def _epoch_key(self) -> str:
        return f"{self._prefix}:q:epoch"

    @property
    def _tables_key(self) -> str:
        return f"{self._prefix}:q:tables"

    def _new_tables(self, ordered: list[str]) -> list[str]:
        return [t for t in ordered if t not in self._known]

    @staticmethod
    def _stamp(ordered: list[str], epoch: Any, values: list[Any]) -> Stamp:
        generations = tuple(
            (t, int(v) if v is not None else 0) for t, v in zip(ordered, values, strict=True)
        )
        return Stamp(str(epoch), generations)


def tables_of(sql: str, tables: Iterable[str] | None) -> tuple[str, frozenset[str]]:
    """(normalized statement, tables it reads); ``CacheError`` for a write or no table."""
    normalized = query_text.normalize(sql)
    read = query_text.tables_read(normalized)
    if tables is not None:
        read = frozenset(tables)
    if not read:
        raise CacheError("no table found in the query: give its tables (tables=...)")
    return normalized, read


class Generations(GenerationKeys):
    """Per-table generation counters in Redis, and the set of tables ever cached."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        import redis as redis_module  # noqa: PLC0415 - optional extra

        super().__init__(prefix)
        self._redis = client
        self._errors = (redis_module.RedisError, OSError)

    def read(self, tables: frozenset[str]) -> Stamp | None:
        """The generations of ``tables`` and the epoch; None when Redis failed."""
        ordered = sorted(tables)
        try:
            new = self._new_tables(ordered)
            if new:
                self._redis.sadd(self._tables_key, *new)
                self._known.update(new)
            epoch, *values = self._redis.mget([self._epoch_key, *map(self._key, ordered)])
            if epoch is None:  # a Redis that lost its data: generations start again
                self._redis.set(self._epoch_key, uuid.uuid4().hex, nx=True)
                epoch = self._redis.get(self._epoch_key)
        except self._errors as exc:
            log.warning("query cache: reading generations failed: %s", type(exc).__name__)
            return None
        return self._stamp(ordered, epoch, values)

    def bump(self, tables: Iterable[str]) -> bool:
        pipe = self._redis.pipeline(transaction=False)
        for table in tables:
            pipe.incr(self._key(table))
        try:
            pipe.execute()
        except self._errors as exc:
            log.warning("query cache: bumping generations failed: %s", type(exc).__name__)
            return False
        return True

    def bump_all(self) -> bool:
        try:
            known = [t.decode() for t in self._redis.smembers(self._tables_key)]  # type: ignore[union-attr]
        except self._errors as exc:
            log.warning("query cache: reading the cached tables failed: %s", type(exc).__name__)
            return False
        return self.bump(known) if known else True


class TableWatcher:
    """LISTENs for the triggers' notifications on a thread; ``listening`` is set while
    every committed write is being turned into a generation bump."""

    def __init__(self, dsn: str, generations: Generations, channel: str = NOTIFY_CHANNEL) -> None:
        self._dsn = dsn
        self._generations = generations
        self._channel = channel
        self.listening = threading.Event()
        self.notifications = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opsmesh-cache-l3", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg  # noqa: PLC0415 - optional
        from psycopg import sql  # noqa: PLC0415

        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    # Writes before the LISTEN went unseen: whatever is cached may be old.
                    self._until_done(self._generations.bump_all)
                    backoff = 0.1
                    self._listen(conn)
            except (psycopg.Error, OSError) as exc:
                log.warning("query cache: listening failed: %s", type(exc).__name__)
            self.listening.clear()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _listen(self, conn: Any) -> None:
        self.listening.set()
        while not self._stop.is_set():
            for notify in conn.notifies(timeout=_POLL_S):
                self.notifications += 1
                self._until_done(functools.partial(self._generations.bump, [notify.payload]))

    def _until_done(self, bump: Callable[[], bool]) -> None:
        """Retry a bump until Redis takes it; queries bypass the cache meanwhile."""
        backoff = 0.1
        while not bump():
            self.listening.clear()
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, _BACKOFF_MAX_S)
        self.listening.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=_POLL_S * 4)


class QueryCache:
    """Cached query results in ``namespace`` (declared on ``cache``), watched through
    ``dsn``. ``close`` stops the watcher (the cache and connections are the caller's)."""

    def __init__(
        self,
        cache: Cache,
        redis_client: redis.Redis | str,
        dsn: str,
        *,
        namespace: str = "query",
        channel: str = NOTIFY_CHANNEL,
    ) -> None:
        import redis as redis_module  # noqa: PLC0415 - optional extra

        client = (
            redis_module.Redis.from_url(redis_client)
            if isinstance(redis_client, str)
            else redis_client
        )
        self._owns_client = isinstance(redis_client, str)
        self._client = client
        self.cache = cache
        self.namespace = cache.tiers.namespace(namespace).name
        cache.tiers.l3_namespaces.add(self.namespace)
        self.generations = Generations(client, cache.tiers.prefix)
        self.watcher = TableWatcher(dsn, self.generations, channel)

    @property
    def bypassed(self) -> int:
        """Queries run uncached because this instance could not listen (per namespace:
        query caches sharing one count it together)."""
        return self.cache.tiers.counts[self.namespace].l3_bypassed

    def fetch_all(
        self,
        conn: Any,
        sql: str,
        params: Any = None,
        *,
        tables: Iterable[str] | None = None,
        ttl_s: float | None = None,
    ) -> list[tuple[Any, ...]]:
        """``conn.execute(sql, params).fetchall()``, from the cache when it can answer."""

        def run() -> list[list[Any]]:
            return [list(row) for row in conn.execute(sql, params).fetchall()]

        rows = self.get_or_run(sql, params, run, tables=tables, ttl_s=ttl_s)
        return [tuple(row) for row in rows]

    def get_or_run(
        self,
        sql: str,
        params: Any,
        run: Callable[[], Any],
        *,
        tables: Iterable[str] | None = None,
        ttl_s: float | None = None,
    ) -> Any:
        normalized, read = tables_of(sql, tables)
        if not self.watcher.listening.is_set():
            self.cache.tiers.counts[self.namespace].l3_bypassed += 1
            return run()
        stamp = self.generations.read(read)
        if stamp is None:
            self.cache.tiers.counts[self.namespace].l3_bypassed += 1
            return run()
        key = f"{query_text.fingerprint(normalized, params)}:{stamp.digest()}"
        return self.cache.get_or_set(key, run, namespace=self.namespace, ttl_s=ttl_s)

    def close(self) -> None:
        self.watcher.close()
        if self._owns_client:
            self._client.close()
