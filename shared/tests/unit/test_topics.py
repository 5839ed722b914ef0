"""Partitioning agrees with Kafka's default partitioner as aiokafka computes it."""

from __future__ import annotations

import random

from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from opsmesh.topics import KeyPartitions, murmur2, partition_for


def test_murmur2_equals_aiokafka_for_every_tail_length() -> None:
    rng = random.Random(7)
    for length in range(130):
        data = bytes(rng.randrange(256) for _ in range(length))
        assert murmur2(data) == aiokafka_murmur2(data), length


def test_known_partition() -> None:
    key = '{}:{alertname="Bench00", instance="host-00000.bench.internal:9100"}'
    assert partition_for(key, 8) == (aiokafka_murmur2(key.encode()) & 0x7FFFFFFF) % 8


def test_key_partitions_remember_partition_for_within_their_bound() -> None:
    partitions = KeyPartitions(8, max_keys=3)
    keys = [f"series-{i}" for i in range(10)]
    assert [partitions(k) for k in keys] == [partition_for(k, 8) for k in keys]
    assert [partitions(k) for k in keys] == [partition_for(k, 8) for k in keys], "again"
    assert len(partitions._known) <= 3
