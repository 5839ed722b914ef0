"""The Remote-Write 1.0 messages (``prometheus.WriteRequest``) as protobuf descriptors.

Declared here in Python rather than compiled from a ``.proto``: this machine and CI have
no ``protoc``, and a generator (grpcio-tools) in the build for four small messages would
be one more pinned tool to keep in step with the protobuf runtime. The descriptor is the one a
``.proto`` would give (same package, message names, field numbers and types), so the
maintained protobuf runtime (its upb parser) does the decoding, and tests encode real
payloads with the same classes.

Only what the receiver reads is declared; the protobuf parser skips the other fields
(metadata, exemplars). Native histograms (field 4 of a time series) are declared as
``bytes``, which is wire-compatible with a message field: the receiver counts them to
refuse them by name without decoding them.

    message WriteRequest { repeated TimeSeries timeseries = 1; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2;
                           repeated bytes histograms = 4; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }  // ms since epoch
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
PACKAGE = "prometheus"


def _field(message: Any, name: str, number: int, kind: int, type_name: str = "") -> None:
    field = message.field.add()
    field.name = name
    field.number = number
    field.type = kind
    # Every field here is a repeated message/bytes or a proto3 scalar.
    repeated = kind in (_F.TYPE_MESSAGE, _F.TYPE_BYTES)
    field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if type_name:
        field.type_name = f".{PACKAGE}.{type_name}"


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="opsmesh/prometheus_remote_write_v1.proto", package=PACKAGE, syntax="proto3"
    )
    write = proto.message_type.add(name="WriteRequest")
    _field(write, "timeseries", 1, _F.TYPE_MESSAGE, "TimeSeries")
    series = proto.message_type.add(name="TimeSeries")
    _field(series, "labels", 1, _F.TYPE_MESSAGE, "Label")
    _field(series, "samples", 2, _F.TYPE_MESSAGE, "Sample")
    _field(series, "histograms", 4, _F.TYPE_BYTES)
    label = proto.message_type.add(name="Label")
    _field(label, "name", 1, _F.TYPE_STRING)
    _field(label, "value", 2, _F.TYPE_STRING)
    sample = proto.message_type.add(name="Sample")
    _field(sample, "value", 1, _F.TYPE_DOUBLE)
    _field(sample, "timestamp", 2, _F.TYPE_INT64)
    return proto


# A pool of our own: the default pool may hold another library's ``prometheus`` package.
_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _message(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))


WriteRequest: Any = _message("WriteRequest")
TimeSeries: Any = _message("TimeSeries")
Label: Any = _message("Label")
Sample: Any = _message("Sample")
