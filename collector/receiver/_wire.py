"""Pruning attribute values nested too deep from raw OTLP trace request bytes.

protobuf refuses a whole message nested deeper than its recursion limit (about
100 message levels; an attribute value costs two or three of them per level of
array or key-value list), so one deep value would cost every span of the
request. When strict parsing fails, the request is walked here at the wire
level: every span whose attribute values (its own, its events' or its links')
nest more than MAX_VALUE_DEPTH levels is emptied and reported by position, and
the rest parses normally. The walk recurses at most MAX_VALUE_DEPTH + 1 levels
whatever the input. Only this rare path pays for it.
"""

from __future__ import annotations

from collections.abc import Iterator

# Levels of AnyValue (arrays and key-value lists in one another) a stored attribute value may have.
# Every value up to this depth parses with protobuf wherever it sits (it takes 32 levels of key-value
# lists and ~47 of arrays); real JSON-like values (tool arguments, messages) stay well below it.
MAX_VALUE_DEPTH = 32
DEEP_REASON = f"nests deeper than {MAX_VALUE_DEPTH} levels of arrays and key-value lists"

_LEN = 2
# Field numbers of the OTLP trace schema (opentelemetry/proto/trace/v1/trace.proto and common.proto).
_REQUEST_RESOURCE_SPANS = 1
_RESOURCE_SPANS_RESOURCE, _RESOURCE_SPANS_SCOPE_SPANS = 1, 2
_RESOURCE_ATTRIBUTES = 1
_SCOPE_SPANS_SCOPE, _SCOPE_SPANS_SPANS = 1, 2
_SCOPE_ATTRIBUTES = 3
_SPAN_ATTRIBUTES, _SPAN_EVENTS, _SPAN_LINKS = 9, 11, 13
_EVENT_ATTRIBUTES, _LINK_ATTRIBUTES = 3, 4
_KEY_VALUE_VALUE = 2
_ANY_ARRAY, _ANY_KVLIST = 5, 6
_LIST_VALUES = 1  # ArrayValue.values and KeyValueList.values


class WireError(ValueError):
    """The bytes are not a protobuf message at all."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int, int, int]]:
    """(field number, wire type, start of the field, start of its value, end) for each field of a message."""
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire_type == 0:
            _, value_end = _varint(data, pos)
        elif wire_type == 1:
            value_end = pos + 8
        elif wire_type == _LEN:
            length, pos = _varint(data, pos)
            value_end = pos + length
        elif wire_type == 5:
            value_end = pos + 4
        else:  # groups (3, 4) are not used by OTLP; 6 and 7 do not exist
            raise WireError(f"unsupported wire type {wire_type}")
        if value_end > end:
            raise WireError("field runs past the end of its message")
        yield number, wire_type, start, pos, value_end
        pos = value_end


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(field number, start of the field, value) for each length-delimited field of a message."""
    for number, wire_type, start, value_start, end in _fields(data):
        if wire_type == _LEN:
            yield number, start, data[value_start:end]


def _children(data: bytes, number: int) -> Iterator[bytes]:
    for n, wire_type, _, value_start, value_end in _fields(data):
        if n == number and wire_type == _LEN:
            yield data[value_start:value_end]


def _too_deep(any_value: bytes, depth: int = 1) -> bool:
    """True when the AnyValue `any_value` (at `depth`) nests more than MAX_VALUE_DEPTH levels."""
    if depth > MAX_VALUE_DEPTH:
        return True
    for array in _children(any_value, _ANY_ARRAY):
        if any(_too_deep(v, depth + 1) for v in _children(array, _LIST_VALUES)):
            return True
    for kvlist in _children(any_value, _ANY_KVLIST):
        for kv in _children(kvlist, _LIST_VALUES):
            if any(_too_deep(v, depth + 1) for v in _children(kv, _KEY_VALUE_VALUE)):
                return True
    return False


def _attributes_too_deep(message: bytes, number: int) -> bool:
    return any(_too_deep(v) for kv in _children(message, number) for v in _children(kv, _KEY_VALUE_VALUE))


def _span_too_deep(span: bytes) -> bool:
    return (_attributes_too_deep(span, _SPAN_ATTRIBUTES)
            or any(_attributes_too_deep(e, _EVENT_ATTRIBUTES) for e in _children(span, _SPAN_EVENTS))
            or any(_attributes_too_deep(ln, _LINK_ATTRIBUTES) for ln in _children(span, _SPAN_LINKS)))


def _len_field(number: int, value: bytes) -> bytes:
    out = bytearray()
    for n in ((number << 3) | _LEN, len(value)):
        while n >= 0x80:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
    return bytes(out) + value


def _rebuild(data: bytes, replace: dict[int, bytes]) -> bytes:
    """`data` with the fields starting at the offsets in `replace` swapped for the given encoded fields."""
    if not replace:
        return data
    parts: list[bytes] = []
    for _, _, start, _, end in _fields(data):
        parts.append(replace.get(start, data[start:end]))
    return b"".join(parts)


def _without(message: bytes, number: int) -> bytes:
    return b"".join(message[start:end] for n, _, start, _, end in _fields(message) if n != number)


def prune_deep_values(data: bytes) -> tuple[bytes, dict[tuple[int, int, int], str]]:
    """(request bytes without deep values, {(resource, scope, span) index: reason} of the spans emptied).

    A span holding a deep value is replaced by an empty span (so positions do not shift); a resource
    whose attributes are deep loses them and all its spans are reported; an instrumentation scope's
    deep attributes (never stored) are dropped. Raises WireError when `data` is not protobuf.
    """
    refused: dict[tuple[int, int, int], str] = {}
    request_changes: dict[int, bytes] = {}
    r_index = -1
    for number, wire_type, start, value_start, end in _fields(data):
        if number != _REQUEST_RESOURCE_SPANS or wire_type != _LEN:
            continue
        r_index += 1
        resource_spans = data[value_start:end]
        changes: dict[int, bytes] = {}
        resource_deep = False
        s_index = -1
        for n, s_start, value in _messages(resource_spans):
            if n == _RESOURCE_SPANS_RESOURCE and _attributes_too_deep(value, _RESOURCE_ATTRIBUTES):
                resource_deep = True
                changes[s_start] = _len_field(n, _without(value, _RESOURCE_ATTRIBUTES))
            elif n == _RESOURCE_SPANS_SCOPE_SPANS:
                s_index += 1
                scope_changes = _prune_scope_spans(value, r_index, s_index, refused)
                if scope_changes is not None:
                    changes[s_start] = _len_field(n, scope_changes)
        if resource_deep:
            for n_scope, scope_spans in enumerate(_children(resource_spans, _RESOURCE_SPANS_SCOPE_SPANS)):
                for n_span, _ in enumerate(_children(scope_spans, _SCOPE_SPANS_SPANS)):
                    refused[(r_index, n_scope, n_span)] = f"a resource attribute value {DEEP_REASON}"
        if changes:
            request_changes[start] = _len_field(number, _rebuild(resource_spans, changes))
    return _rebuild(data, request_changes), refused


def _prune_scope_spans(scope_spans: bytes, r_index: int, s_index: int,
                       refused: dict[tuple[int, int, int], str]) -> bytes | None:
    """The ScopeSpans bytes with deep spans emptied (None when nothing changed)."""
    changes: dict[int, bytes] = {}
    p_index = -1
    for n, start, value in _messages(scope_spans):
        if n == _SCOPE_SPANS_SCOPE and _attributes_too_deep(value, _SCOPE_ATTRIBUTES):
            changes[start] = _len_field(n, _without(value, _SCOPE_ATTRIBUTES))
        elif n == _SCOPE_SPANS_SPANS:
            p_index += 1
            if _span_too_deep(value):
                refused[(r_index, s_index, p_index)] = f"an attribute value {DEEP_REASON}"
                changes[start] = _len_field(n, b"")
    return _rebuild(scope_spans, changes) if changes else None
