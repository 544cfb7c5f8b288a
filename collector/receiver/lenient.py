"""A byte-tolerant twin of the OTLP trace schema, used only when strict parsing fails.

Protobuf refuses a whole message when any `string` field holds invalid UTF-8.
The twin declares every string field as `bytes` (same wire format), so such a
request still parses; its strings are then repaired and the request re-read
with the real schema. Built once, lazily: the hot path never touches it.
"""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_PREFIX = "spanhouse_lenient"
_FILES = (common_pb2, resource_pb2, trace_pb2, trace_service_pb2)


def _retype(messages: Any, changed: set[str], package: str) -> None:
    for message in messages:
        for f in message.field:
            if f.type == descriptor_pb2.FieldDescriptorProto.TYPE_STRING:
                f.type = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
                changed.add(f"{_PREFIX}.{package}.{message.name}.{f.name}")
            if f.type_name.startswith(".opentelemetry."):
                f.type_name = f".{_PREFIX}{f.type_name}"
        _retype(message.nested_type, changed, f"{package}.{message.name}")


@functools.cache
def twin_request_class() -> tuple[type, frozenset[str]]:
    pool = descriptor_pool.DescriptorPool()
    changed: set[str] = set()
    for module in _FILES:
        proto = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(proto)
        proto.name = f"{_PREFIX}/{proto.name}"
        proto.dependency[:] = [f"{_PREFIX}/{d}" for d in proto.dependency]
        _retype(proto.message_type, changed, proto.package)
        proto.package = f"{_PREFIX}.{proto.package}"
        del proto.service[:]
        pool.Add(proto)
    name = f"{_PREFIX}.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name)), frozenset(changed)


def _fix(raw: bytes, counter: list[int]) -> bytes:
    try:
        raw.decode("utf-8")
        return raw
    except UnicodeDecodeError:
        counter[0] += 1
        return raw.decode("utf-8", "replace").encode("utf-8")


def _repair(message: Any, changed: frozenset[str], counter: list[int]) -> None:
    for fd, value in message.ListFields():
        if fd.full_name in changed:
            if fd.is_repeated:
                value[:] = [_fix(v, counter) for v in value]
            else:
                setattr(message, fd.name, _fix(value, counter))
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            if fd.is_repeated:
                for item in value:
                    _repair(item, changed, counter)
            else:
                _repair(value, changed, counter)


def parse_repairing_utf8(data: bytes) -> tuple[trace_service_pb2.ExportTraceServiceRequest, int]:
    """Parse `data`, replacing invalid UTF-8 in string fields; returns (request, repaired strings).

    Raises DecodeError when `data` is not a trace request even byte-wise.
    """
    twin, changed = twin_request_class()
    loose = twin.FromString(data)
    counter = [0]
    _repair(loose, changed, counter)
    return trace_service_pb2.ExportTraceServiceRequest.FromString(loose.SerializeToString()), counter[0]
