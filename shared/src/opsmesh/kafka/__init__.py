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
from opsmesh.kafka.dlq import DeadLetterFailed, DeadLetterPublisher, DeadLetterReason, RawRecord
from opsmesh.kafka.failures import ClassifiesFailures, FailureClass, classify
from opsmesh.kafka.handling import ConsumerStalled
from opsmesh.kafka.producer import EventProducer, Outgoing

__all__ = [
    "BatchConsumer",
    "BatchHandler",
    "BatchResult",
    "ClassifiesFailures",
    "CommitMetadataAware",
    "ConsumerConfig",
    "ConsumerStalled",
    "DeadLetterFailed",
    "DeadLetterPublisher",
    "DeadLetterReason",
    "EventProducer",
    "FailureClass",
    "Outgoing",
    "RawRecord",
    "Received",
    "Rejection",
    "StatelessHandler",
    "classify",
    "connection_options",
]
