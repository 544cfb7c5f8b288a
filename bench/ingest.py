"""Ingest benchmark: OTLP/gRPC -> collector -> queryable rows, and each stage on its own.

    python bench/ingest.py              # ~150k spans, well under 2 minutes on 2 cores
    python bench/ingest.py --quick      # ~25k spans, under ~20 s
    python bench/ingest.py --spans 500000 --streams 8
    python bench/ingest.py --pii        # PII in every chat input: the redactor's worst case

End to end: a `spanhouse collector` runs as a separate process on a fresh
embedded store and free ports, with every processor on: normalize, redact,
price, and the tail sampler (SAMPLING: tail policies, rate 1.0, so every trace
is held until its root arrives and then kept), and the disk spool as by
default. This process sends pre-serialized ExportTraceServiceRequest payloads
(512 GenAI-shaped spans each, each request's root spans one request late) over
a raw gRPC channel from a few concurrent streams, then POSTs /flush and checks
through /query that `count()` of `spans` equals the spans sent. The rate is
spans sent divided by the time from the first send to that count being
confirmed.

Stages, in this process, over the same payloads and with the collector's
configuration: protobuf parse alone (a ceiling), decode (request bytes ->
SpanBatch with the collector's decoder: native unless off or not built)
alone, each processor alone in pipeline order (normalize, redact, price,
sample), the spool's encoding of the sampler's output, and the ClickHouse
insert alone (ClickHouseSink.write of those batches merged to
writer.max_batch_rows rows, into a fresh embedded store opened only after the
collector process has exited: one chDB engine per process). Each stage is
printed as spans/s and as its ratio to the end-to-end rate, and the two
ceilings (parse alone, insert alone) once more, the CPU per span of the Python stages and of the
insert (one merge of every row included), and a line per target; see bench/README.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

SPANS_PER_REQUEST = 512
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

SERVICES = ("support-bot", "research-agent", "doc-summarizer", "billing-assistant")
MODELS = (  # provider, request model, response model
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001"),
)
TOOLS = ("search_docs", "get_order_status", "run_sql", "fetch_url")
# The sampler of the collector under test: tail policies on, so every trace is held until its
# root arrives, and a rate of 1.0, so every trace is kept and every span stored (the writer's worst case).
SAMPLING: dict[str, Any] = {"rate": 1.0, "keep_errors": True, "keep_duration_over_ms": 5000.0,
                            "keep_cost_over_usd": 0.5}
TARGET_SCALING = 1.7
TARGET_P99_S = 2.0
TARGET_PEAK_RSS_MIB = 600
MIB = 1024 * 1024
TARGET_SPANS_PER_S = 35_000
TARGET_SPANS_PER_S_PII = 25_000  # with --pii: the redactor finds something in every chat span
TARGET_PYTHON_US = 10.0  # Python CPU per span before the insert (decode, processors, spool encode)
TARGET_INSERT_US = 20.0  # CPU per span of the insert, the engine's threads and one merge of every row included
WORDS = ("the", "order", "customer", "invoice", "refund", "shipping", "account", "please", "status", "help",
         "delivery", "payment", "charged", "twice", "support", "ticket", "update", "address", "policy", "return")


# --- payloads ---------------------------------------------------------------------


def _text(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    n = 0
    while n < chars:
        word = rng.choice(WORDS)
        out.append(word)
        n += len(word) + 1
    return " ".join(out)


def _kv(key: str, value: Any) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    if isinstance(value, bool):
        v = AnyValue(bool_value=value)
    elif isinstance(value, int):
        v = AnyValue(int_value=value)
    elif isinstance(value, float):
        v = AnyValue(double_value=value)
    elif isinstance(value, (list, tuple)):
        v = AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=s) for s in value]))
    else:
        v = AnyValue(string_value=value)
    return KeyValue(key=key, value=v)


def _luhn_card(rng: random.Random) -> str:
    """A 16-digit Visa-like card number whose Luhn check digit is right, in groups of four."""
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit goes to the right: these double from here
        doubled = d * 2 if i % 2 == 0 else d
        total += doubled - 9 if doubled > 9 else doubled
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i:i + 4] for i in range(0, 16, 4))


def _pii_text(rng: random.Random, chars: int) -> str:
    """`chars` characters of user message with an email address and a phone number in it, and in about one
    message in ten a Luhn-valid card number and an API-key-looking secret too (--pii)."""
    found = [f"my email is {rng.choice(WORDS)}.{rng.choice(WORDS)}{rng.randrange(1000)}@example.com",
             f"call me at +1 415 555 {rng.randrange(10000):04d}"]
    if rng.random() < 0.1:
        found.append(f"card {_luhn_card(rng)}")
        found.append("key sk-proj-" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP0123456789",
                                                          k=40)))
    filler = max(0, chars - sum(len(f) + 2 for f in found))
    words = _text(rng, filler).split(" ")
    for f in found:  # spread through the message, not all at its start
        words.insert(rng.randrange(len(words) + 1), f)
    return " ".join(words)


def _trace(rng: random.Random, spans: list[Any], t0: int, service: str, pii: bool = False) -> None:
    """One agent turn: invoke_agent -> chat, tool, chat, tool, chat (with content and events).

    With `pii`, every chat span's user message carries an email address and a phone number, and about
    one in ten also a card number and an API key (see _pii_text), at the same length of content."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    trace_id = rng.randbytes(16)
    root_id = rng.randbytes(8)
    conversation = f"conv-{rng.getrandbits(40):x}"
    provider, request_model, response_model = rng.choice(MODELS)
    children: list[Any] = []
    t = t0 + 1_000_000
    for step in range(5):
        span_id = rng.randbytes(8)
        if step % 2 == 0:  # chat call
            duration = int(rng.lognormvariate(6.6, 0.5) * 1_000_000)
            input_tokens = rng.randint(200, 4000)
            output_tokens = rng.randint(20, 800)
            user = _pii_text(rng, 600) if pii else _text(rng, 600)
            answer = _text(rng, 500)
            attrs = [
                _kv("gen_ai.operation.name", "chat"),
                _kv("gen_ai.provider.name", provider),
                _kv("gen_ai.request.model", request_model),
                _kv("gen_ai.request.temperature", 0.2),
                _kv("gen_ai.request.max_tokens", 1024),
                _kv("gen_ai.response.model", response_model),
                _kv("gen_ai.response.id", f"chatcmpl-{rng.getrandbits(64):x}"),
                _kv("gen_ai.response.finish_reasons", ["tool_calls"] if step < 4 else ["stop"]),
                _kv("gen_ai.usage.input_tokens", input_tokens),
                _kv("gen_ai.usage.output_tokens", output_tokens),
                _kv("gen_ai.usage.cache_read.input_tokens", rng.choice((0, input_tokens // 2))),
                _kv("gen_ai.conversation.id", conversation),
                _kv("server.address", "api.openai.com" if provider == "openai" else "api.anthropic.com"),
                _kv("server.port", 443),
                _kv("gen_ai.input.messages", json.dumps([
                    {"role": "system", "parts": [{"type": "text", "content": "You are a helpful support agent."}]},
                    {"role": "user", "parts": [{"type": "text", "content": user}]}])),
                _kv("gen_ai.output.messages", json.dumps([
                    {"role": "assistant", "parts": [{"type": "text", "content": answer}],
                     "finish_reason": "stop" if step == 4 else "tool_call"}])),
            ]
            failed = rng.random() < 0.03
            if failed:
                attrs.append(_kv("error.type", "429"))
            span = Span(trace_id=trace_id, span_id=span_id, parent_span_id=root_id, name=f"chat {request_model}",
                        kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=t, end_time_unix_nano=t + duration,
                        attributes=attrs,
                        status=Status(code=Status.STATUS_CODE_ERROR, message="rate limit exceeded") if failed
                        else Status())
            span.events.add(time_unix_nano=t + duration // 3, name="gen_ai.content.chunk",
                            attributes=[_kv("gen_ai.response.time_to_first_chunk", 0.21)])
        else:  # tool call
            duration = rng.randint(5, 400) * 1_000_000
            tool = rng.choice(TOOLS)
            span = Span(trace_id=trace_id, span_id=span_id, parent_span_id=root_id, name=f"execute_tool {tool}",
                        kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=t, end_time_unix_nano=t + duration,
                        attributes=[_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", tool),
                                    _kv("gen_ai.tool.call.id", f"call_{rng.getrandbits(48):x}"),
                                    _kv("gen_ai.tool.type", "function")])
        children.append(span)
        t += duration + 2_000_000
    root = Span(trace_id=trace_id, span_id=root_id, name="invoke_agent support", kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=t0, end_time_unix_nano=t,
                attributes=[_kv("gen_ai.operation.name", "invoke_agent"), _kv("gen_ai.agent.name", "support"),
                            _kv("gen_ai.agent.id", "agent-7"), _kv("gen_ai.provider.name", provider),
                            _kv("gen_ai.request.model", request_model), _kv("gen_ai.conversation.id", conversation)])
    root.events.add(time_unix_nano=t0 + 500_000, name="agent.turn.start", attributes=[_kv("turn", 1)])
    spans.append(root)
    spans.extend(children)


def _scope_spans(request: Any, service: str, k: int) -> Any:
    """A new resource (service `service`, host slot `k`) with one instrumentation scope in `request`."""
    rs = request.resource_spans.add()
    rs.resource.attributes.extend([
        _kv("service.name", service), _kv("service.version", "1.4.2"),
        _kv("deployment.environment", "production"), _kv("telemetry.sdk.language", "python"),
        _kv("telemetry.sdk.name", "opentelemetry"), _kv("telemetry.sdk.version", "1.30.0"),
        _kv("host.name", f"pod-{service}-{k}"),
    ])
    ss = rs.scope_spans.add()
    ss.scope.name = "spanhouse.instrumentation.openai"
    ss.scope.version = "0.1.0"
    return ss


def build_payloads(total_spans: int, seed: int = 7, roots_late: bool = False, pii: bool = False) -> list[bytes]:
    """Serialized ExportTraceServiceRequests of SPANS_PER_REQUEST spans each, two services per request.

    With `roots_late`, the root spans of a request's traces travel in the next request instead (the
    last request keeps its own), under their own resource, as when an SDK exports a trace's children
    before its root has ended: a tail sampler then holds every trace once. The total is the same.
    """
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rng = random.Random(seed)
    now = time.time_ns() - 3_600_000_000_000  # an hour ago: inside every retention
    count = max(1, total_spans // SPANS_PER_REQUEST)
    carried: list[tuple[str, int, list[Any]]] = []  # (service, host slot, roots) for the next request
    payloads = []
    for r in range(count):
        request = ExportTraceServiceRequest()
        per_resource = SPANS_PER_REQUEST // 2
        late = carried
        carried = []
        for k in range(2):
            service = SERVICES[(2 * r + k) % len(SERVICES)]
            ss = _scope_spans(request, service, k)
            spans: list[Any] = []
            while len(spans) < per_resource:
                _trace(rng, spans, now + rng.randint(0, 600) * 1_000_000_000, service, pii)
            spans = spans[:per_resource]
            if roots_late and r < count - 1:
                carried.append((service, k, [s for s in spans if not s.parent_span_id]))
                spans = [s for s in spans if s.parent_span_id]
            ss.spans.extend(spans)
        for service, k, roots in late:
            _scope_spans(request, service, k).spans.extend(roots)
        payloads.append(request.SerializeToString())
    return payloads


# --- collector subprocess ---------------------------------------------------------


def sampling_env() -> dict[str, str]:
    """SAMPLING as the collector's environment overrides."""
    return {f"SPANHOUSE_SAMPLING__{key.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in SAMPLING.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CollectorProcess:
    """`spanhouse collector` in its own process, on a fresh store and free ports."""

    def __init__(self, store_dir: Path, env: dict[str, str], processes: int = 1) -> None:
        self.grpc = f"127.0.0.1:{free_port()}"
        self.query = f"127.0.0.1:{free_port()}"
        cmd = [sys.executable, "-m", "spanhouse.collector.cli", "collector", "--store", f"chdb://{store_dir}",
               "--grpc", self.grpc, "--http", "", "--query-endpoint", self.query, "--processes", str(processes)]
        self.log = open(store_dir.parent / f"collector-{processes}.log", "w+")  # noqa: SIM115 - as long as the process
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env={**os.environ, "SPANHOUSE_LOG_LEVEL": "warning", **env})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "OTLP/gRPC on" not in line:
            self.proc.kill()
            self.log.seek(0)
            raise RuntimeError(f"collector did not start: {line}{self.log.read()}")

    def post(self, path: str, body: bytes = b"", timeout_s: float = 120.0) -> bytes:
        req = urllib.request.Request(f"http://{self.query}{path}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.read()

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.query}/stats", timeout=30) as resp:
            return json.loads(resp.read())

    def query_rows(self, sql: str) -> list[list[Any]]:
        return json.loads(self.post("/query?format=JSONCompact", sql.encode()))["data"]

    def count_spans(self) -> int:
        return int(self.query_rows("SELECT count() FROM spans")[0][0])

    def stop(self) -> None:
        stop_process(self.proc, 60)
        self.log.close()


def stop_process(proc: subprocess.Popen[Any], timeout_s: float) -> None:
    """SIGTERM, then SIGKILL if `proc` is still running after `timeout_s`."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, anonymous RSS) summed over `pids`, in MiB. RSS includes mapped files such as the chDB library."""
    rss = anon = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1])
        except OSError:
            pass
    return rss / 1024, anon / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemoryPeak:
    """Samples the collector's processes every `interval_s`: peak memory summed and of the collector's
    own process, and the CPU time each process used."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        self.pid = pid
        self.rss = self.anon = self.own_rss = 0.0
        self.processes = 0
        self.cpu: dict[int, float] = {}
        self.cpu_before = {p: cpu_seconds(p) for p in process_tree(pid)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            pids = process_tree(self.pid)
            rss, anon = memory_mib(pids)
            self.processes = max(self.processes, len(pids))
            self.rss, self.anon = max(self.rss, rss), max(self.anon, anon)
            self.own_rss = max(self.own_rss, memory_mib([self.pid])[0])
            self.cpu.update({pid: cpu_seconds(pid) for pid in pids})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_split(self) -> tuple[float, float]:
        """CPU seconds of the collector's own process, and of its workers together, since this began."""
        used = {p: cpu - self.cpu_before.get(p, 0.0) for p, cpu in self.cpu.items()}
        own = used.get(self.pid, 0.0)
        return own, sum(used.values()) - own


class Probes:
    """One-span requests sent during the load; each one's time from OK to visible through /query.

    A sender exports a probe every `interval_s` over its own channel; a poller asks the
    collector which probes `spans` holds every `poll_s`. Latency = first seen - OK received.
    """

    SERVICE = "bench-probe"

    def __init__(self, collector: CollectorProcess, interval_s: float = 0.2, poll_s: float = 0.05) -> None:
        self.collector = collector
        self.acked: dict[str, float] = {}  # span id hex -> when the OK arrived
        self.seen: dict[str, float] = {}
        self._stop_sending = threading.Event()
        self._stop_polling = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(interval_s,), daemon=True),
                         threading.Thread(target=self._poll, args=(poll_s,), daemon=True)]
        for t in self._threads:
            t.start()

    def _send(self, interval_s: float) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

        channel = grpc.insecure_channel(self.collector.grpc, options=[("grpc.use_local_subchannel_pool", 1)])
        export = channel.unary_unary(EXPORT_METHOD)
        rng = random.Random(11)
        try:
            while not self._stop_sending.wait(interval_s):
                span_id = rng.randbytes(8)
                now = time.time_ns()
                rs = ResourceSpans(scope_spans=[{"spans": [Span(trace_id=rng.randbytes(16), span_id=span_id,
                                                                 name="probe", start_time_unix_nano=now,
                                                                 end_time_unix_nano=now + 1000)]}])
                rs.resource.attributes.append(_kv("service.name", self.SERVICE))
                try:
                    export(ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString(), timeout=30)
                except grpc.RpcError:
                    continue  # refused: not acknowledged, not a probe
                with self._lock:
                    self.acked[span_id.hex()] = time.perf_counter()
        finally:
            channel.close()

    def _poll(self, poll_s: float) -> None:
        sql = f"SELECT SpanId FROM spans WHERE ServiceName = '{self.SERVICE}'"
        while not self._stop_polling.wait(poll_s):
            try:
                rows = self.collector.query_rows(sql)
            except OSError:
                continue
            now = time.perf_counter()
            with self._lock:
                for (span_id,) in rows:
                    self.seen.setdefault(span_id, now)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop sending; keep polling until every acknowledged probe was seen (or `timeout_s`)."""
        self._stop_sending.set()
        self._threads[0].join()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if self.acked.keys() <= self.seen.keys():
                    break
            time.sleep(0.05)
        self._stop_polling.set()
        self._threads[1].join()

    def latencies(self) -> list[float]:
        """Seconds from OK to queryable of every probe seen (probes are waited for before stopping)."""
        return sorted(self.seen[k] - t for k, t in self.acked.items() if k in self.seen)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def send_all(endpoint: str, payloads: list[bytes], streams: int) -> int:
    """Export every payload over `streams` concurrent channels; retries UNAVAILABLE. Returns retries."""
    import grpc

    retries = 0
    lock = threading.Lock()
    next_index = iter(range(len(payloads)))
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal retries
        # A connection of its own per stream (gRPC shares one between same-target channels by default):
        # several clients, as worker processes on one port see them.
        channel = grpc.insecure_channel(endpoint, options=[("grpc.max_send_message_length", 64 << 20),
                                                           ("grpc.use_local_subchannel_pool", 1)])
        export = channel.unary_unary(EXPORT_METHOD)  # no serializers: bytes in, bytes out
        try:
            while True:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                while True:
                    try:
                        export(payloads[i], timeout=60)
                        break
                    except grpc.RpcError as exc:
                        if exc.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        with lock:
                            retries += 1
                        time.sleep(0.05)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            channel.close()

    run_workers(worker, streams, errors)
    return retries


def run_workers(worker: Callable[[], None], count: int, errors: list[BaseException]) -> None:
    """`count` threads running `worker`; re-raises the first error they appended to `errors`."""
    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def end_to_end(payloads: list[bytes], spans: int, streams: int, work: Path, env: dict[str, str],
               processes: int = 1) -> dict[str, Any]:
    """Send everything; spans/s until queryable, probe latencies, peak memory, spans lost."""
    store = work / f"e2e-store-{processes}"
    store.mkdir()
    collector = CollectorProcess(store, env, processes)
    idle_rss, idle_anon = memory_mib(process_tree(collector.proc.pid))  # started, store open, no traffic yet
    memory = MemoryPeak(collector.proc.pid)  # CPU counts from here: start-up is not load
    probes = Probes(collector)
    try:
        t0 = time.perf_counter()
        retries = send_all(collector.grpc, payloads, streams)
        t_sent = time.perf_counter()
        collector.post("/flush")
        loaded = int(collector.query_rows(
            f"SELECT count() FROM spans WHERE ServiceName != '{Probes.SERVICE}'")[0][0])
        t_done = time.perf_counter()
        probes.stop()
        memory.stop()
        collector.post("/flush")
        stored = collector.count_spans()
        distinct = int(collector.query_rows("SELECT uniqExact(SpanId) FROM spans")[0][0])
        stats = collector.stats()
    finally:
        collector.stop()
    acknowledged = spans + len(probes.acked)
    lost = acknowledged - stored
    if loaded != spans or lost or distinct != stored:
        raise SystemExit(f"FAILED: {acknowledged} spans acknowledged ({spans} load, {len(probes.acked)} probes), "
                         f"{stored} queryable, {distinct} distinct (collector log: {collector.log.name})")
    latencies = probes.latencies()
    return {"spans_per_s": spans / (t_done - t0), "send_s": t_sent - t0, "flush_s": t_done - t_sent,
            "total_s": t_done - t0, "retries": retries, "stats": stats, "lost": lost,
            "probes": len(probes.acked), "probes_seen": len(latencies),
            "p50_s": percentile(latencies, 0.50), "p99_s": percentile(latencies, 0.99),
            "max_s": latencies[-1] if latencies else float("nan"),
            "rss_mib": memory.rss, "anon_mib": memory.anon, "own_rss_mib": memory.own_rss,
            "idle_rss_mib": idle_rss, "idle_anon_mib": idle_anon,
            "processes_seen": memory.processes, "cpu_s": memory.cpu_split()}


# --- stages in this process ---------------------------------------------------------


# Every MergeTree table an insert into genai_calls and spans writes to (the views' targets included).
MERGED_TABLES = ("spans", "genai_calls", "spans_trace_id_ts", "genai_usage_1m", "genai_usage_1h", "trace_costs")


def merge_all(store: Any) -> None:
    """Wait for the engine's own merges, then merge what is left to one part per partition.

    When the engine starts merging after a run of inserts varies: it may not have begun by the time
    the inserts return, so waiting for `system.merges` to be empty alone counted a merge of every row
    in one run and none in the next (27 against 34 us per span). Merging every table down to one part
    per partition afterwards makes it one merge of every row, every time: what the first level of
    background merging costs each span. (Larger parts are merged again later, less often.)
    """
    while store.query_rows("SELECT count() FROM system.merges")[0][0]:
        time.sleep(0.05)
    for table in MERGED_TABLES:
        store.command(f"OPTIMIZE TABLE {table} FINAL SETTINGS optimize_skip_merged_partitions = 1")


def timed(fn: Callable[[], Any], cpu: list[float] | None = None) -> tuple[float, Any]:
    """(wall seconds, result) of `fn()`; with `cpu`, this thread's CPU seconds are appended to it."""
    # The bench holds every payload and batch at once, the collector only what is in flight: freeze
    # what exists so the cyclic GC does not rescan the bench's own heap and bill it to the stage.
    gc.collect()
    gc.freeze()
    try:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        if cpu is not None:
            # CPU time leaves out the time other processes had the core: on a shared machine it is
            # the steadier measure of what the stage costs.
            cpu.append(time.thread_time() - c0)
        return wall, out
    finally:
        gc.unfreeze()


def stages(payloads: list[bytes], spans: int, work: Path) -> tuple[dict[str, float], float, float]:
    """Each stage alone over all payloads, in pipeline order, with the collector's processors; the CPU
    microseconds per span of the Python stages before the insert (this thread's CPU time, parse to
    spool encode), and of the insert stage, the engine's threads and one merge of every row included."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from spanhouse.collector.batch import SpanBatch
    from spanhouse.collector.config import load
    from spanhouse.collector.processors import registry
    from spanhouse.collector.receiver.decode import Decoder
    from spanhouse.collector.store import Store
    from spanhouse.collector.writer.clickhouse import ClickHouseSink
    from spanhouse.collector.writer.spool import encode

    # The configuration the collector under test runs with (environment included).
    config = load(None, overrides={"sampling": SAMPLING})
    rates: dict[str, float] = {}
    cpu: list[float] = []  # CPU seconds of each Python stage before the insert
    # A ceiling only, not counted in the CPU: the decoder starts from the request bytes again.
    parse_s, _ = timed(lambda: [ExportTraceServiceRequest.FromString(p) for p in payloads], [])
    rates["protobuf parse"] = spans / parse_s
    r = config.receiver
    # The collector's decoder (the native one unless receiver.native_decode is off or it is not built).
    decoder = Decoder(r.max_attribute_value_length, r.max_spans_per_request, r.max_attributes_per_span,
                      native_decode=r.native_decode)
    decode_s, batches = timed(lambda: [decoder.decode_bytes(p, "default").batch for p in payloads], cpu)
    rates[f"decode ({'native' if decoder.native else 'Python'}) -> batch"] = spans / decode_s
    for processor in registry.build(config).all:
        process = processor.process
        seconds, batches = timed(lambda: [process(b) for b in batches], cpu)  # noqa: B023 - called at once
        poll = getattr(processor, "poll", None)
        if poll is not None:  # the tail sampler: decide what it still holds, as /flush does
            more_s, rest = timed(lambda: poll(everything=True), cpu)  # noqa: B023
            seconds += more_s
            if rest is not None:
                batches.append(rest)
        rates[processor.name] = spans / seconds
    encode_s, _ = timed(lambda: [encode(b) for b in batches], cpu)
    rates["spool encode"] = spans / encode_s

    step = max(1, config.writer.max_batch_rows // SPANS_PER_REQUEST)
    merged = [SpanBatch.concat(batches[i:i + step]) for i in range(0, len(batches), step)]
    del batches
    store = Store.open(f"chdb://{work / 'insert-store'}")
    try:
        store.migrate()
        sink = ClickHouseSink(store)
        cpu_before = cpu_seconds(os.getpid())  # every thread, the engine's included
        insert_s, _ = timed(lambda: [sink.write(b) for b in merged])
        # The engine's merges go on after the inserts return: their CPU is part of the cost of a span.
        merge_all(store)
        insert_cpu_s = cpu_seconds(os.getpid()) - cpu_before
        (stored,), = store.query_rows("SELECT count() FROM spans")
    finally:
        store.close()
    if stored != spans:
        raise SystemExit(f"FAILED: insert stage wrote {stored} of {spans} spans")
    rates["ClickHouse insert"] = spans / insert_s
    return rates, sum(cpu) / spans * 1e6, insert_cpu_s / spans * 1e6



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, help="spans to send (rounded down to 512 per request)")
    parser.add_argument("--quick", action="store_true", help="a small run, under ~20 s")
    parser.add_argument("--streams", type=int, default=4, help="concurrent gRPC streams (default 4)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="worker processes for the second end-to-end run (default: CPU count; 1 skips it)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--pii", action="store_true",
                        help="hit-dense payloads: an email address and a phone number in every chat span's input "
                             "message, a card number and an API key in about one in ten")
    args = parser.parse_args(argv)
    wanted = args.spans or (25_600 if args.quick else 153_600)
    requests = max(1, wanted // SPANS_PER_REQUEST)
    spans = requests * SPANS_PER_REQUEST

    from spanhouse.collector.config import load

    # the collector's writer settings, as the subprocess will see them (environment overrides included)
    max_batch_rows = load(None).writer.max_batch_rows
    env = sampling_env()

    t0 = time.perf_counter()
    payloads = build_payloads(spans, roots_late=True, pii=args.pii)
    mb = sum(map(len, payloads)) / 1e6
    print(f"payloads: {requests} requests x {SPANS_PER_REQUEST} spans = {spans} spans, {mb:.1f} MB "
          f"({mb * 1e6 / spans:.0f} B/span), roots one request late"
          f"{', PII in every chat input (--pii)' if args.pii else ''}, built in {time.perf_counter() - t0:.1f}s; "
          f"{args.streams} streams, writer.max_batch_rows={max_batch_rows}, {os.cpu_count()} CPUs")
    print(f"collector: normalize, redact, price, sample {SAMPLING}, spool on")
    work = Path(tempfile.mkdtemp(prefix="spanhouse-bench-"))
    try:
        single = end_to_end(payloads, spans, args.streams, work, env, processes=1)
        multi = end_to_end(payloads, spans, args.streams, work, env, processes=args.processes) \
            if args.processes > 1 else None
        st, python_us, insert_cpu_us = stages(payloads, spans, work)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    rate = single["spans_per_s"]
    print()
    for label, e2e in (("1 process", single), (f"{args.processes} worker processes", multi)):
        if e2e is None:
            continue
        w = e2e["stats"]
        print(f"end to end, {label + ' (sent -> queryable):':<38}{e2e['spans_per_s']:>10,.0f} spans/s  "
              f"[{spans} spans in {e2e['total_s']:.2f}s: send {e2e['send_s']:.2f}s, flush+count "
              f"{e2e['flush_s']:.2f}s; {e2e['retries']} UNAVAILABLE retries; "
              f"{w.get('writer_batches_written_total', '?')} inserts; sampler kept "
              f"{w.get('sample_spans_kept_total', '?')} spans, {w.get('sample_wait_decisions_total', '?')} traces "
              "decided on their wait]")
        own_cpu, workers_cpu = e2e["cpu_s"]
        print(f"  OK -> queryable: p50 {e2e['p50_s']:.2f}s, p99 {e2e['p99_s']:.2f}s, max {e2e['max_s']:.2f}s "
              f"({e2e['probes_seen']} probes); spans lost {e2e['lost']}")
        print(f"  peak memory, {e2e['processes_seen']} process(es): {e2e['rss_mib']:.0f} MiB RSS "
              f"({e2e['anon_mib']:.0f} MiB anonymous), the store's process {e2e['own_rss_mib']:.0f} MiB RSS; "
              f"CPU: the store's process {own_cpu:.1f}s" + (f", workers {workers_cpu:.1f}s" if workers_cpu else ""))
        print(f"  at start (store open, no traffic): {e2e['idle_rss_mib']:.0f} MiB RSS "
              f"({e2e['idle_anon_mib']:.0f} MiB anonymous); the rest of RSS is mapped files, "
              "mostly the engine's library")
        cores = (own_cpu + workers_cpu) / e2e["total_s"]
        print(f"  CPU: {cores:.2f} cores busy on average, "
              f"{(own_cpu + workers_cpu) / spans * 1e6:.0f} us of CPU per span")
    one_cores = sum(single["cpu_s"]) / single["total_s"]
    cpus = os.cpu_count() or 1
    # Work per span does not shrink with more processes (the hand-off adds some), so N processes can at
    # best keep every core as busy as one process keeps its share busy.
    ceiling = cpus / one_cores
    ratio = multi["spans_per_s"] / rate if multi is not None else None
    if ratio is not None:
        print(f"{args.processes} worker processes / 1 process: {ratio:.2f}x "
              f"(CPU-bound ceiling on {cpus} cores: {cpus} / {one_cores:.2f} cores one process keeps busy "
              f"= {ceiling:.2f}x)")
    print(f"{'stage (this process, 1 thread)':<32}{'spans/s':>12}{'x end-to-end':>14}")
    for name, value in st.items():
        print(f"  {name:<30}{value:>12,.0f}{value / rate:>13.2f}x")
    # The decode stage reads the request bytes itself: the parse alone is a ceiling, not a stage to add.
    summed = {k: v for k, v in st.items() if k != "protobuf parse"}
    serial = 1 / sum(1 / v for v in summed.values())
    print(f"  {'all stages, serial':<30}{serial:>12,.0f}{serial / rate:>13.2f}x")
    parse, insert = st["protobuf parse"], st["ClickHouse insert"]
    print(f"\nceilings: protobuf parse alone {parse:,.0f} spans/s = {parse / rate:.2f}x end to end; "
          f"ClickHouse insert alone {insert:,.0f} spans/s = {insert / rate:.2f}x end to end")
    # CPU per span, against what the machine has: every span costs the Python stages (one thread, the
    # GIL) plus the insert (Arrow in Python, then the engine's threads and its merges).
    total_us = python_us + insert_cpu_us
    target_rate = TARGET_SPANS_PER_S_PII if args.pii else TARGET_SPANS_PER_S
    print(f"CPU per span: Python stages before the insert {python_us:.1f} us of CPU (one core at most: "
          f"{1e6 / python_us:,.0f} spans/s), the insert with one merge of every row {insert_cpu_us:.1f} us; "
          f"{total_us:.1f} us in all, so {cpus} cores fit at most {cpus * 1e6 / total_us:,.0f} spans/s. "
          f"{target_rate:,} spans/s on {cpus} cores leaves "
          f"{cpus * 1e6 / target_rate:.0f} us per span.")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"target Python CPU per span before the insert <= {TARGET_PYTHON_US:g} us: "
          f"{verdict(python_us <= TARGET_PYTHON_US)} ({python_us:.1f} us)")
    print(f"target insert CPU per span <= {TARGET_INSERT_US:g} us: {verdict(insert_cpu_us <= TARGET_INSERT_US)} "
          f"({insert_cpu_us:.1f} us, the engine's threads and one merge of every row included)")
    print(f"target {target_rate:,} spans/s end to end, one process{' (--pii)' if args.pii else ''}: "
          f"{verdict(rate >= target_rate)} ({rate:,.0f} spans/s, {rate / target_rate:.2f}x)")
    if ratio is not None:
        print(f"target {TARGET_SCALING}x with {args.processes} processes: {verdict(ratio >= TARGET_SCALING)} "
              f"({ratio:.2f}x)")
    worst_p99 = max(e["p99_s"] for e in (single, multi) if e is not None)
    print(f"target p99 OK -> queryable <= {TARGET_P99_S:g} s: {verdict(worst_p99 <= TARGET_P99_S)} "
          f"({worst_p99:.2f}s)")
    peak = single["rss_mib"]
    print(f"target peak RSS <= {TARGET_PEAK_RSS_MIB} MiB, one process: {verdict(peak <= TARGET_PEAK_RSS_MIB)} "
          f"({peak:,.0f} MiB at its peak, {single['idle_rss_mib']:,.0f} MiB at start before any span)")
    lost = sum(e["lost"] for e in (single, multi) if e is not None)
    print(f"target 0 spans lost: {verdict(lost == 0)} ({lost})")
    return 0

if __name__ == "__main__":
    sys.exit(main())
