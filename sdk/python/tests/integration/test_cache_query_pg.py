"""The L3 query cache over a real PostgreSQL and Redis, with two cache instances: a result
one instance loaded answers the other; a write committed by a third connection (no SDK in
it) reaches both through the triggers' NOTIFY; a rolled-back write invalidates nothing;
and an instance that cannot listen runs its queries uncached."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import psycopg
import pytest
import redis

from opsmesh_client.cache import Cache, Namespace, RedisStore
from opsmesh_client.cache.query import QueryCache, install_triggers
from opsmesh_dev.infra.process import free_port, wait_until

pytestmark = pytest.mark.integration

QUERY = Namespace("query", ttl_s=300)
BY_ID = "SELECT name FROM authors WHERE id = %s"
JOINED = "SELECT p.title, a.name FROM posts p JOIN authors a ON a.id = p.author_id WHERE p.id = %s"


class Instance:
    """One application instance: its cache, its L3 and its own database connection."""

    def __init__(self, stack: ExitStack, redis_url: str, dsn: str, prefix: str) -> None:
        client = redis.Redis.from_url(redis_url)
        stack.callback(client.close)
        self.cache = Cache(RedisStore(client), [QUERY], prefix=prefix)
        stack.callback(self.cache.close)
        self.l3 = QueryCache(self.cache, client, dsn)
        stack.callback(self.l3.close)
        self.conn = stack.enter_context(psycopg.connect(dsn, autocommit=True))

    def fetch(self, sql: str, params: list[int]) -> list[tuple[object, ...]]:
        return self.l3.fetch_all(self.conn, sql, params)

    @property
    def loads(self) -> int:
        return self.cache.tiers.counts["query"].loads


@pytest.fixture
def two(cache_redis_url: str, cache_pg_dsn: str) -> Iterator[tuple[Instance, Instance]]:
    with psycopg.connect(cache_pg_dsn, autocommit=True) as conn:
        install_triggers(conn, ["authors", "posts"])
        install_triggers(conn, ["authors"])  # idempotent
    prefix = f"cache-l3-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        one = Instance(stack, cache_redis_url, cache_pg_dsn, prefix)
        other = Instance(stack, cache_redis_url, cache_pg_dsn, prefix)
        for instance in (one, other):
            assert instance.l3.watcher.listening.wait(30)
            assert instance.cache.tiers.subscribed.wait(30)
        yield one, other


def test_a_result_loaded_by_one_instance_answers_the_other(two: tuple[Instance, Instance]) -> None:
    one, other = two
    assert one.fetch(BY_ID, [1]) == [("author 1",)]
    assert other.fetch(BY_ID, [1]) == [("author 1",)]
    assert (one.loads, other.loads) == (1, 0)
    # The same query written otherwise is the same entry; other parameters are not.
    assert other.l3.fetch_all(other.conn, "select name\n FROM authors where id=%s", [1]) == [
        ("author 1",)
    ]
    assert other.fetch(BY_ID, [2]) == [("author 2",)]
    assert (one.loads, other.loads) == (1, 1)


def test_a_write_from_outside_the_sdk_invalidates_every_instances_results(
    two: tuple[Instance, Instance], cache_pg_dsn: str
) -> None:
    one, other = two
    assert one.fetch(JOINED, [3]) == [("post 3", "author 3")]
    assert other.fetch(BY_ID, [3]) == [("author 3",)]
    before = one.l3.generations.read(frozenset({"authors"}))
    with psycopg.connect(cache_pg_dsn, autocommit=True) as writer:
        writer.execute("UPDATE authors SET name = 'renamed' WHERE id = 3")
    wait_until(
        lambda: one.l3.generations.read(frozenset({"authors"})) != before,
        timeout_s=30,
        what="the authors table's generation bumped",
    )
    # Both the single-table and the joined result are read again, by either instance.
    assert other.fetch(JOINED, [3]) == [("post 3", "renamed")]
    assert one.fetch(BY_ID, [3]) == [("renamed",)]
    assert one.fetch(JOINED, [3]) == [("post 3", "renamed")]  # now cached again


def test_a_rolled_back_write_invalidates_nothing(
    two: tuple[Instance, Instance], cache_pg_dsn: str
) -> None:
    one, other = two
    assert one.fetch(BY_ID, [4]) == [("author 4",)]
    authors = one.l3.generations.read(frozenset({"authors"}))
    posts = one.l3.generations.read(frozenset({"posts"}))
    with psycopg.connect(cache_pg_dsn) as writer:
        writer.execute("UPDATE authors SET name = 'never' WHERE id = 4")
        writer.rollback()
        # A committed write after it: notifications arrive in commit order, so once this
        # one is seen, one for the rolled-back write would have been seen first.
        writer.execute("UPDATE posts SET title = 'edited' WHERE id = 4")
        writer.commit()
    wait_until(
        lambda: one.l3.generations.read(frozenset({"posts"})) != posts,
        timeout_s=30,
        what="the posts table's generation bumped",
    )
    assert one.l3.generations.read(frozenset({"authors"})) == authors
    assert other.fetch(BY_ID, [4]) == [("author 4",)]
    assert (one.loads, other.loads) == (1, 0)


def test_an_instance_that_cannot_listen_runs_its_queries_uncached(
    cache_redis_url: str, cache_pg_dsn: str
) -> None:
    client = redis.Redis.from_url(cache_redis_url)
    cache = Cache(RedisStore(client), [QUERY], prefix=f"cache-l3-{uuid.uuid4().hex[:8]}")
    deaf = QueryCache(cache, cache_redis_url, f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    try:
        with psycopg.connect(cache_pg_dsn, autocommit=True) as conn:
            assert deaf.fetch_all(conn, BY_ID, [5]) == [("author 5",)]
            assert deaf.fetch_all(conn, BY_ID, [5]) == [("author 5",)]
        assert deaf.bypassed == 2
        assert cache.tiers.counts["query"].loads == 0  # not through the cache at all
    finally:
        deaf.close()
        cache.close()
        client.close()


def test_generations_that_start_again_do_not_meet_the_results_cached_before(
    two: tuple[Instance, Instance], cache_redis_url: str
) -> None:
    one, other = two
    assert one.fetch(BY_ID, [6]) == [("author 6",)]
    prefix = one.cache.tiers.prefix
    # As a Redis that lost its counters but not the values (a restore, a failover).
    with redis.Redis.from_url(cache_redis_url) as client:
        client.delete(f"{prefix}:q:epoch", f"{prefix}:q:gen:authors")
    assert other.fetch(BY_ID, [6]) == [("author 6",)]
    assert (one.loads, other.loads) == (1, 1)  # read again, not the old entry
