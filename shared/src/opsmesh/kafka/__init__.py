"""The Kafka kit: producer, batch consumer, dead letters, headers, topic admin."""

from opsmesh.kafka.connection import connection_options
from opsmesh.kafka.consumer import (
    BatchConsumer,
    BatchHandler,
    BatchResult,
    CommitMetadataAware,
    ConsumerConfig,
    Received,
    Rejection,
    StatelessHandler,
)
from opsmesh.kafka.dlq import DeadLetterPublisher, DeadLetterReason, RawRecord
from opsmesh.kafka.producer import EventProducer, Outgoing

__all__ = [
    "BatchConsumer",
    "BatchHandler",
    "BatchResult",
    "CommitMetadataAware",
    "ConsumerConfig",
    "DeadLetterPublisher",
    "DeadLetterReason",
    "EventProducer",
    "Outgoing",
    "RawRecord",
    "Received",
    "Rejection",
    "StatelessHandler",
    "connection_options",
]
