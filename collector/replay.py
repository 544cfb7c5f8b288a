"""`spanhouse replay FILE...`: send OTLP/JSON trace files to a collector over OTLP/gRPC or OTLP/HTTP.

Input is what `spanhouse export --format otlp-json` writes (one ExportTraceServiceRequest per line) or any
OTLP/JSON file (one request per line, or one JSON document). Every file is read and checked before the
first span is sent, so a bad line stops the replay with its file and line named and nothing half sent.

Optionally every timestamp moves by one delta so the latest span end is now (`shift_to_now`), every trace
and span gets a fresh random id with parents and links kept consistent (`new_ids`, needed for `repeat` > 1:
the store would take copies with the same ids as the same spans), and sends are paced to `rate` spans per
second against time.monotonic() deadlines (sleeping, never spinning).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# Spans per OTLP request: under the receiver's default limits, and small enough for pacing to be smooth.
MAX_SPANS_PER_SEND = 1000
PROGRESS_EVERY_S = 2.0
_ID_FIELDS = (("traceId", "trace_id", 32), ("spanId", "span_id", 16), ("parentSpanId", "parent_span_id", 16))


class ReplayError(ValueError):
    """Bad input or options; the message names the file and line, or the option."""


class SendError(ReplayError):
    """The collector could not be reached, or refused a request outright."""


@dataclasses.dataclass
class Request:
    """One ExportTraceServiceRequest read from a file, with where it came from (for error messages)."""

    doc: dict[str, Any]
    where: str


@dataclasses.dataclass
class ReplayResult:
    traces: int = 0
    spans: int = 0  # spans sent
    rejected: int = 0  # spans the collector refused (partial_success)
    sends: int = 0
    messages: dict[str, int] = dataclasses.field(default_factory=dict)


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


def _list(obj: Any, camel: str, snake: str, where: str) -> list[dict[str, Any]]:
    if not isinstance(obj, dict):
        raise ReplayError(f"{where}: expected a JSON object")
    value = _get(obj, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ReplayError(f"{where}: {camel} must be a list of objects")
    return value


def spans_of(doc: dict[str, Any], where: str = "request") -> Iterable[tuple[dict[str, Any], str]]:
    """Every span object of a request, with its position."""
    for r, resource_spans in enumerate(_list(doc, "resourceSpans", "resource_spans", where)):
        at = f"{where}: resourceSpans[{r}]"
        for s, scope_spans in enumerate(_list(resource_spans, "scopeSpans", "scope_spans", at)):
            for p, span in enumerate(_list(scope_spans, "spans", "spans", f"{at}.scopeSpans[{s}]")):
                yield span, f"{at}.scopeSpans[{s}].spans[{p}]"


def _nanos(value: Any, name: str, where: str) -> int:
    try:
        number = int(value)
        if isinstance(value, (float, bool)) or not 0 <= number < 1 << 64:  # OTLP times are fixed64
            raise ValueError
    except (TypeError, ValueError):
        raise ReplayError(f"{where}: {name} must be Unix nanoseconds (an integer or a string of one), "
                          f"got {value!r}") from None
    return number


def _check(doc: Any, where: str) -> None:
    """Refuse what no collector would take: no resourceSpans, ids that are not hex, bad times."""
    if not isinstance(doc, dict) or not ("resourceSpans" in doc or "resource_spans" in doc):
        raise ReplayError(f"{where}: not an OTLP/JSON ExportTraceServiceRequest (no resourceSpans)")
    for span, at in spans_of(doc, where):
        for camel, snake, digits in _ID_FIELDS:
            value = _get(span, camel, snake)
            if camel == "parentSpanId" and value in (None, ""):
                continue
            if not isinstance(value, str) or len(value) != digits or not _is_hex(value):
                raise ReplayError(f"{at}: {camel} must be {digits} hex digits, got {value!r}")
        for camel, snake in (("startTimeUnixNano", "start_time_unix_nano"), ("endTimeUnixNano", "end_time_unix_nano")):
            _nanos(_get(span, camel, snake), camel, at)
        for e, event in enumerate(_list(span, "events", "events", at)):
            _nanos(_get(event, "timeUnixNano", "time_unix_nano") or 0, "timeUnixNano", f"{at}.events[{e}]")
        for k, link in enumerate(_list(span, "links", "links", at)):
            for camel, snake, digits in _ID_FIELDS[:2]:
                value = _get(link, camel, snake)
                if not isinstance(value, str) or len(value) != digits or not _is_hex(value):
                    raise ReplayError(f"{at}.links[{k}]: {camel} must be {digits} hex digits, got {value!r}")


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def read_files(paths: list[str]) -> list[Request]:
    """Every request of every file, checked; a file is one JSON document or one request per line."""
    requests: list[Request] = []
    for name in paths:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ReplayError(f"{name}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ReplayError(f"{name}: cannot read it: {exc}") from None
        if not text.strip():
            raise ReplayError(f"{name}: the file is empty")
        try:
            whole = json.loads(text)
        except ValueError:
            whole = None
        except RecursionError:
            raise ReplayError(f"{name}: JSON nested too deep to read") from None
        if whole is not None:  # one document (pretty-printed, or a single line)
            _check(whole, name)
            to_protobuf(whole, name)  # what the sends will do, done now: a bad value stops the replay up front
            requests.append(Request(whole, name))
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            where = f"{name}:{number}"
            try:
                doc = json.loads(line)
            except ValueError as exc:
                raise ReplayError(f"{where}: not valid JSON ({exc}); expected one OTLP/JSON "
                                  "ExportTraceServiceRequest per line, or one JSON document per file") from None
            except RecursionError:
                raise ReplayError(f"{where}: JSON nested too deep to read") from None
            _check(doc, where)
            to_protobuf(doc, where)
            requests.append(Request(doc, where))
    return requests


def latest_end_ns(requests: list[Request]) -> int:
    return max((int(_get(span, "endTimeUnixNano", "end_time_unix_nano"))
                for request in requests for span, _ in spans_of(request.doc)), default=0)


def shift_times(doc: dict[str, Any], delta_ns: int) -> None:
    """Move every span start and end and every event time by `delta_ns`, in place (times stay strings)."""
    for span, _ in spans_of(doc):
        for camel, snake in (("startTimeUnixNano", "start_time_unix_nano"), ("endTimeUnixNano", "end_time_unix_nano")):
            key = camel if camel in span else snake
            span[key] = str(int(span[key]) + delta_ns)
        for event in _list(span, "events", "events", ""):
            key = "timeUnixNano" if "timeUnixNano" in event else "time_unix_nano"
            if int(event.get(key) or 0):  # an unset event time stays unset
                event[key] = str(int(event[key]) + delta_ns)


class IdMap:
    """Old id -> fresh random id, one map per copy, so parents and links inside the input stay linked."""

    def __init__(self, random_hex: Callable[[int], str] = secrets.token_hex) -> None:
        self._random_hex = random_hex
        self.traces: dict[str, str] = {}
        self.spans: dict[tuple[str, str], str] = {}

    def _fresh(self, nbytes: int) -> str:
        while True:
            value = self._random_hex(nbytes)
            if value.strip("0"):  # all zeros is an invalid id
                return value

    def trace(self, old: str) -> str:
        old = old.lower()
        if old not in self.traces:
            self.traces[old] = self._fresh(16)
        return self.traces[old]

    def span(self, trace: str, old: str) -> str:
        key = (trace.lower(), old.lower())
        if key not in self.spans:
            self.spans[key] = self._fresh(8)
        return self.spans[key]

    def learn(self, doc: dict[str, Any]) -> None:
        """Give every trace and span of `doc` its new id. Called for the whole input before `apply`, so a link
        to a span of a later request is known as part of the input."""
        for span, _ in spans_of(doc):
            trace = _get(span, "traceId", "trace_id")
            self.trace(trace)
            self.span(trace, _get(span, "spanId", "span_id"))

    def apply(self, doc: dict[str, Any]) -> None:
        """Rewrite every id of `doc` in place: spans, parents, and links to spans or traces of the input
        (a link to a trace the input does not hold keeps its ids: it points outside the replay)."""
        for span, _ in spans_of(doc):
            trace = _get(span, "traceId", "trace_id")
            for camel, snake, _digits in _ID_FIELDS:
                key = camel if camel in span else snake
                value = span.get(key)
                if not value:
                    continue
                span[key] = self.trace(value) if camel == "traceId" else self.span(trace, value)
            for link in _list(span, "links", "links", ""):
                tkey = "traceId" if "traceId" in link else "trace_id"
                skey = "spanId" if "spanId" in link else "span_id"
                if link[tkey].lower() in self.traces:
                    old_trace = link[tkey]
                    link[tkey] = self.trace(old_trace)
                    link[skey] = self.span(old_trace, link[skey])


def split(doc: dict[str, Any], max_spans: int) -> list[tuple[dict[str, Any], int]]:
    """`doc` as requests of at most `max_spans` spans each, resource and scope kept; (request, spans)."""
    out: list[tuple[dict[str, Any], int]] = []
    current: dict[str, Any] = {"resourceSpans": []}
    count = 0
    for resource_spans in _list(doc, "resourceSpans", "resource_spans", ""):
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans", ""):
            spans = _list(scope_spans, "spans", "spans", "")
            start = 0
            while start < len(spans):
                take = spans[start:start + max_spans - count]
                resource = {k: v for k, v in resource_spans.items() if k not in ("scopeSpans", "scope_spans")}
                scope = {k: v for k, v in scope_spans.items() if k != "spans"}
                current["resourceSpans"].append({**resource, "scopeSpans": [{**scope, "spans": take}]})
                count += len(take)
                start += len(take)
                if count >= max_spans:
                    out.append((current, count))
                    current, count = {"resourceSpans": []}, 0
    if count:
        out.append((current, count))
    return out


class Pacer:
    """At most `rate` spans per second on average: before a send, sleep until the deadline that the spans
    already sent set (start + sent / rate). `clock` and `sleep` are injectable for tests."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.start: float | None = None
        self.sent = 0

    def wait(self, spans: int) -> None:
        now = self.clock()
        if self.start is None:
            self.start = now
        deadline = self.start + self.sent / self.rate
        if deadline > now:
            self.sleep(deadline - now)
        self.sent += spans


Sender = Callable[[bytes], tuple[int, str]]  # protobuf request -> (rejected spans, partial_success message)


def grpc_sender(endpoint: str, key: str, timeout_s: float = 30.0) -> tuple[Sender, Callable[[], None]]:
    """Export calls to an OTLP/gRPC `endpoint` (HOST:PORT, plaintext), retried with backoff while the
    collector says UNAVAILABLE or RESOURCE_EXHAUSTED (backpressure); the sender and a close function."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    target = endpoint.removeprefix("http://")
    channel = grpc.insecure_channel(target)
    call = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                               request_serializer=lambda data: data,
                               response_deserializer=ExportTraceServiceResponse.FromString)
    metadata = (("authorization", f"Bearer {key}"),) if key else None
    retryable = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}

    def send(data: bytes) -> tuple[int, str]:
        delay, deadline = 0.2, time.monotonic() + 60
        while True:
            try:
                response = call(data, metadata=metadata, timeout=timeout_s)
                return response.partial_success.rejected_spans, response.partial_success.error_message
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else None
                if code in retryable and time.monotonic() + delay < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                details = exc.details() if hasattr(exc, "details") else str(exc)
                name = code.name if code is not None else "error"
                hint = " Is `spanhouse collector` running there (--endpoint HOST:PORT)?" \
                    if code == grpc.StatusCode.UNAVAILABLE else ""
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    hint = " Set SPANHOUSE_API_KEY to a key of the collector (docs/security.md)."
                raise SendError(f"the collector at {target} refused the spans: {name}: {details}.{hint}") from None

    return send, channel.close


def http_sender(url: str, key: str, timeout_s: float = 30.0) -> tuple[Sender, Callable[[], None]]:
    """POSTs of binary OTLP to an OTLP/HTTP URL (http://host:4318, /v1/traces added when no path is given)."""
    from urllib.parse import urlsplit

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ReplayError(f"--http: expected a URL such as http://127.0.0.1:4318, got {url!r}")
    if parts.path in ("", "/"):
        url = url.rstrip("/") + "/v1/traces"
    headers = {"Content-Type": "application/x-protobuf"}
    if key:
        headers["Authorization"] = f"Bearer {key}"

    def send(data: bytes) -> tuple[int, str]:
        request = urllib.request.Request(url, data=data, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as reply:
                response = ExportTraceServiceResponse.FromString(reply.read())
        except urllib.error.HTTPError as exc:
            body = exc.read()[:500].decode("utf-8", "replace")
            raise SendError(f"the collector at {url} refused the spans: HTTP {exc.code}: {body.strip()}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise SendError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}. Is `spanhouse collector` "
                              "running with OTLP/HTTP there?") from None
        return response.partial_success.rejected_spans, response.partial_success.error_message

    return send, lambda: None


def to_protobuf(doc: dict[str, Any], where: str) -> bytes:
    """An OTLP/JSON request (hex ids) -> binary protobuf, with the receiver's own JSON reading."""
    from spanhouse.collector.receiver.decode import RequestDecodeError
    from spanhouse.collector.receiver.http import json_to_protobuf

    try:
        data, _notes = json_to_protobuf(json.dumps(doc).encode("utf-8"))
    except RequestDecodeError as exc:
        raise ReplayError(f"{where}: {exc}") from None
    return data


def replay(requests: list[Request], send: Sender, *, shift_to_now: bool = False, new_ids: bool = False,
           repeat: int = 1, rate: float = 0.0, now_ns: Callable[[], int] = time.time_ns,
           pacer: Pacer | None = None, progress: Callable[[str], None] | None = None,
           random_hex: Callable[[int], str] = secrets.token_hex) -> ReplayResult:
    """Send `requests` `repeat` times (see the module docstring); what was sent and refused."""
    if repeat < 1:
        raise ReplayError(f"--repeat: expected 1 or more copies, got {repeat}")
    if repeat > 1 and not new_ids:
        raise ReplayError(f"--repeat {repeat} needs --new-ids: copies with the same trace and span ids would be "
                          "taken by the store as the same spans (dropped or merged), not as new traces")
    if rate < 0:
        raise ReplayError(f"--rate: expected spans per second above 0, got {rate:g}")
    delta = now_ns() - latest_end_ns(requests) if shift_to_now else 0
    if rate and pacer is None:
        pacer = Pacer(rate)
    max_spans = max(1, min(MAX_SPANS_PER_SEND, int(rate / 5))) if rate else MAX_SPANS_PER_SEND
    total = sum(1 for r in requests for _ in spans_of(r.doc)) * repeat
    result = ReplayResult()
    traces: set[str] = set()
    last_progress = time.monotonic()
    for _copy in range(repeat):
        ids = IdMap(random_hex) if new_ids else None
        for request in requests if ids is not None else ():
            ids.learn(request.doc)
        for request in requests:
            doc = copy.deepcopy(request.doc) if (ids is not None or delta) else request.doc
            if delta:
                shift_times(doc, delta)
            if ids is not None:
                ids.apply(doc)
            traces.update(_get(span, "traceId", "trace_id").lower() for span, _ in spans_of(doc))
            for part, spans in split(doc, max_spans):
                data = to_protobuf(part, request.where)
                if pacer is not None:
                    pacer.wait(spans)
                rejected, message = send(data)
                result.sends += 1
                result.spans += spans
                result.rejected += rejected
                if message:
                    result.messages[message] = result.messages.get(message, 0) + 1
                if progress is not None and time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                    last_progress = time.monotonic()
                    progress(f"sent {result.spans} of {total} spans")
    result.traces = len(traces)
    return result


def run_command(files: list[str], endpoint: str, http_url: str, key: str, *, shift_to_now: bool, new_ids: bool,
                repeat: int, rate: float, quiet: bool) -> int:
    """What `spanhouse replay` does: read and check every file, send, print a summary; the exit status."""
    import sys

    def say(text: str) -> None:
        print(f"spanhouse replay: {text}", file=sys.stderr, flush=True)

    try:
        if repeat > 1 and not new_ids:  # refused before any file is read
            replay([], lambda _data: (0, ""), repeat=repeat)
        requests = read_files(files)
        if http_url:
            send, close = http_sender(http_url, key)
            target = http_url
        else:
            send, close = grpc_sender(endpoint, key)
            target = endpoint
        try:
            result = replay(requests, send, shift_to_now=shift_to_now, new_ids=new_ids, repeat=repeat, rate=rate,
                            progress=None if quiet else say)
        finally:
            close()
    except ReplayError as exc:
        say(str(exc))
        return 1 if isinstance(exc, SendError) else 2
    print(f"replayed {result.traces} trace{'s' if result.traces != 1 else ''}, {result.spans} spans to {target}"
          f" in {result.sends} request{'s' if result.sends != 1 else ''}"
          + (f"; {result.rejected} spans rejected" if result.rejected else ""))
    for message, count in result.messages.items():
        say(f"the collector said ({count}x): {message}")
    return 1 if result.rejected else 0
