"""The one wrapper factory of the Bedrock instrumentor: botocore's `BaseClient._make_api_call`.

Every botocore client sends every operation through `_make_api_call(operation_name,
api_params)`; the wrapper lets all but four bedrock-runtime operations through
after a dict lookup and an attribute read. Wrapping the class (instead of
registering event handlers per client) traces clients made before
`instrument()` too, and `uninstrument()` restores them all at once.

Responses are plain dicts: a stream (`stream` of ConverseStream, `body` of
InvokeModelWithResponseStream) is swapped for a proxy that ends the span when
the stream ends; InvokeModel's `body` is read here, for its usage, and put back
as a fresh `StreamingBody` over the same bytes, so the user reads it as before.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from typing import Any


from .. import _semconv as sc
from .._stream import SyncStreamProxy
from .._telemetry import Call, Operation, Telemetry, log_once
from .._traced import call_in_span
from . import extract
from .accumulate import ConverseStreamAccumulator, InvokeStreamAccumulator

SERVICE = "bedrock-runtime"

CONVERSE = Operation(
    name=sc.OP_CHAT,
    request_attributes=extract.converse_request_attributes,
    response_attributes=extract.converse_response_attributes,
    request_content=extract.converse_request_content,
    output_messages=extract.converse_output_messages,
    client_attributes=extract.client_attributes,
    error_type=extract.error_type,
)
CONVERSE_STREAM = Operation(
    name=sc.OP_CHAT,
    request_attributes=extract.converse_stream_request_attributes,
    response_attributes=extract.converse_response_attributes,
    request_content=extract.converse_request_content,
    stream_accumulator=ConverseStreamAccumulator,
    client_attributes=extract.client_attributes,
    error_type=extract.error_type,
)


def _invoke_operation(name: str, stream: bool) -> Operation:
    return Operation(
        name=name,
        request_attributes=(extract.invoke_stream_request_attributes if stream
                            else extract.invoke_request_attributes),
        response_attributes=lambda body: extract.invoke_body_attributes(body),
        request_content=extract.invoke_request_content,
        output_messages=extract.invoke_output_messages,
        stream_accumulator=InvokeStreamAccumulator if stream else None,
        client_attributes=extract.client_attributes,
        error_type=extract.error_type,
    )


# InvokeModel's operation name depends on the model family.
_INVOKE_NAMES = {extract.ANTHROPIC: sc.OP_CHAT, extract.NOVA: sc.OP_CHAT,
                 extract.TITAN_TEXT: sc.OP_TEXT_COMPLETION,
                 extract.TITAN_EMBED: sc.OP_EMBEDDINGS, extract.OTHER: sc.OP_CHAT}
INVOKE = {kind: _invoke_operation(name, False) for kind, name in _INVOKE_NAMES.items()}
INVOKE_STREAM = {kind: _invoke_operation(name, True) for kind, name in _INVOKE_NAMES.items()}

_SELECT: dict[str, Callable[[Mapping[str, Any]], Operation]] = {
    "Converse": lambda params: CONVERSE,
    "ConverseStream": lambda params: CONVERSE_STREAM,
    "InvokeModel": lambda params: INVOKE[extract.family(params.get("modelId"))],
    "InvokeModelWithResponseStream": lambda params: INVOKE_STREAM[extract.family(params.get("modelId"))],
}

Wrapper = Callable[..., Any]


class EventStreamProxy(SyncStreamProxy):
    """botocore's EventStream is iterable (a fresh generator per `iter()`), not an iterator; read one."""

    def __init__(self, wrapped: Any, call: Call, accumulator: Any) -> None:
        super().__init__(wrapped, call, accumulator)
        self._self_events: Any = None

    def __next__(self) -> Any:
        if self._self_events is None:
            self._self_events = iter(self.__wrapped__)
        try:
            item = next(self._self_events)
        except StopIteration:
            self._self_state.finish()
            raise
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        self._self_state.observe(item)
        return item

    def __enter__(self) -> EventStreamProxy:
        return self  # EventStream is no context manager; iteration is all it offers

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close()


# Bodies larger than this (images, long embeddings batches) are not parsed for usage: the token-count
# headers every InvokeModel answer carries give input and output tokens without the JSON's cost.
MAX_PARSED_BODY = 1 << 20


def _read_body(result: dict[str, Any]) -> bytes | None:
    """The bytes of an InvokeModel body, leaving an unread copy in its place."""
    from botocore.response import StreamingBody  # only once botocore is known to be installed

    body = result.get("body")
    if not isinstance(body, StreamingBody):
        return None
    data = body.read()
    result["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


def _parse(data: bytes | None) -> Any:
    if not data or len(data) > MAX_PARSED_BODY:
        return None
    try:
        return json.loads(data)
    except ValueError:  # not JSON (or not UTF-8): the headers still give the token counts
        return None


def _finish(call: Call, operation: Operation, name: str, result: Any, params: Mapping[str, Any]) -> Any:
    if not isinstance(result, dict):
        call.end()
        return result
    data = None
    if name == "InvokeModel":
        try:
            data = _read_body(result)
        except Exception as exc:
            # The body could not be read (the connection dropped): the user's own read() would have failed
            # the same way, and nothing is left to read now, so the call fails here, and its span says so.
            call.end(error=exc)
            raise
    try:
        if name in ("ConverseStream", "InvokeModelWithResponseStream"):
            key = "stream" if name == "ConverseStream" else "body"
            stream = result.get(key)
            if stream is None or operation.stream_accumulator is None:
                call.end()
            else:
                result[key] = EventStreamProxy(stream, call, operation.stream_accumulator(params))
        elif name == "InvokeModel":
            body = _parse(data)
            headers = (result.get("ResponseMetadata") or {}).get("HTTPHeaders")
            call.end(extract.invoke_body_attributes(body, headers),
                     lambda: extract.invoke_output_messages(body))
        else:
            call.end(operation.response_attributes(result), lambda: extract.converse_output_messages(result))
    except Exception as exc:  # noqa: BLE001 - telemetry must never break the call
        log_once(f"aws.bedrock.{name}.finish", exc)
        call.end()
    return result


def bedrock_runtime_make_api_call(telemetry: Telemetry) -> Wrapper:
    def wrapper(wrapped: Wrapper, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        # botocore always calls _make_api_call(operation_name, api_params), positionally.
        select = _SELECT.get(args[0]) if len(args) == 2 and not kwargs and isinstance(args[0], str) else None
        if (select is None or not isinstance(args[1], dict)
                or getattr(getattr(instance, "_service_model", None), "service_name", None) != SERVICE):
            return wrapped(*args, **kwargs)
        name, params = args
        operation = select(params)
        call = telemetry.begin(operation, instance, params)
        if call is None:
            return wrapped(*args, **kwargs)
        result = call_in_span(call, wrapped, args, kwargs)
        return _finish(call, operation, name, result, params)

    return wrapper
