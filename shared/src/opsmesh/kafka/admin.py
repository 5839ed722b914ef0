"""Topic creation: every service makes sure the topics it touches exist, idempotently."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from opsmesh.shutdown import finish_within
from opsmesh.topics import ALL_TOPICS, Topic

CLOSE_TIMEOUT_S = 1.0


async def ensure_topics(
    connection: dict[str, Any], topics: Iterable[Topic] = ALL_TOPICS, replication: int = 1
) -> None:
    admin = AIOKafkaAdminClient(**connection)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name=t.name,
                num_partitions=t.partitions,
                replication_factor=replication,
                topic_configs={"retention.ms": str(t.retention_ms)},
            )
            for t in topics
            if t.name not in existing
        ]
        if not missing:
            return
        response = await admin.create_topics(missing)
        for name, code, message in _errors(response):
            if code and code != TopicAlreadyExistsError.errno:
                raise RuntimeError(f"creating topic {name} failed: error {code} {message}")
    finally:
        await finish_within(admin.close(), CLOSE_TIMEOUT_S, "admin client close")


def _errors(response: Any) -> list[tuple[str, int, str | None]]:
    out = []
    for entry in getattr(response, "topic_errors", []):
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        out.append((name, code, message))
    return out
