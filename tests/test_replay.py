"""`spanhouse replay` without a collector: input checks that name the file and line, time shifting, fresh ids
that keep parents and links, request splitting and pacing against an injected clock."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanhouse.collector import cli, replay


def span(trace: str, span_id: str, parent: str = "", start: int = 10**18, end: int = 10**18 + 5000,
         links: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"traceId": trace, "spanId": span_id, "name": f"s-{span_id[-2:]}",
                           "startTimeUnixNano": str(start), "endTimeUnixNano": str(end),
                           "events": [{"timeUnixNano": str(start + 100), "name": "e"}]}
    if parent:
        doc["parentSpanId"] = parent
    if links:
        doc["links"] = links
    return doc


def request(*spans: dict[str, Any]) -> dict[str, Any]:
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
                               "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}]}


T1, T2 = "1" * 32, "2" * 32


def write(tmp_path: Path, text: str, name: str = "in.jsonl") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_replay(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(["replay", "--endpoint", "127.0.0.1:9", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("text", "expected"), [
    ("", "in.jsonl: the file is empty"),
    (json.dumps(request(span(T1, "a" * 16))) + "\n{not json\n", "in.jsonl:2: not valid JSON"),
    ('{"spans": []}\n', "in.jsonl: not an OTLP/JSON ExportTraceServiceRequest (no resourceSpans)"),
    ('[1, 2]\n', "in.jsonl: not an OTLP/JSON ExportTraceServiceRequest (no resourceSpans)"),
    (json.dumps(request(span("zz" * 16, "a" * 16))) + "\n" + json.dumps(request()),
     "in.jsonl:1: resourceSpans[0].scopeSpans[0].spans[0]: traceId must be 32 hex digits, got 'zzzz"),
    (json.dumps(request(span(T1, "a" * 16))) + "\n" + json.dumps(request(span(T1, "a" * 15))),
     "in.jsonl:2: resourceSpans[0].scopeSpans[0].spans[0]: spanId must be 16 hex digits"),
    (json.dumps(request({**span(T1, "a" * 16), "startTimeUnixNano": "soon"})) + "\n" + json.dumps(request()),
     "in.jsonl:1: resourceSpans[0].scopeSpans[0].spans[0]: startTimeUnixNano must be Unix nanoseconds"),
    (json.dumps(request(span(T1, "a" * 16, links=[{"traceId": T2, "spanId": ""}]))) + "\n" + json.dumps(request()),
     "in.jsonl:1: resourceSpans[0].scopeSpans[0].spans[0].links[0]: spanId must be 16 hex digits"),
    (json.dumps({"resourceSpans": {"oops": 1}}) + "\n" + json.dumps(request()),
     "in.jsonl:1: resourceSpans must be a list of objects"),
    (json.dumps(request({**span(T1, "a" * 16), "endTimeUnixNano": str(1 << 64)})) + "\n" + json.dumps(request()),
     "in.jsonl:1: resourceSpans[0].scopeSpans[0].spans[0]: endTimeUnixNano must be Unix nanoseconds"),
    (json.dumps(request(span(T1, "a" * 16))) + "\n"
     + json.dumps(request({**span(T1, "b" * 16), "attributes": [{"key": "k", "value": {"intValue": "many"}}]})),
     "in.jsonl:2: request is not a valid OTLP/JSON ExportTraceServiceRequest"),
])
def test_bad_input_is_refused_naming_file_and_line_before_anything_is_sent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str) -> None:
    code, out, err = run_replay(write(tmp_path, text), capsys=capsys)
    assert (code, out) == (2, "")
    assert err.startswith("spanhouse replay: " + str(tmp_path / expected)), err


def test_a_missing_file_and_repeat_without_new_ids_are_refused(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run_replay(str(tmp_path / "nope.jsonl"), capsys=capsys)
    assert code == 2 and err == f"spanhouse replay: {tmp_path / 'nope.jsonl'}: no such file\n"
    code, _out, err = run_replay(str(tmp_path / "nope.jsonl"), "--repeat", "2", capsys=capsys)
    assert code == 2 and "--repeat 2 needs --new-ids" in err


def test_an_unreachable_collector_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, json.dumps(request(span(T1, "a" * 16))))
    code, _out, err = run_replay(path, "--http", "http://127.0.0.1:9", capsys=capsys)
    assert code == 1 and "cannot reach http://127.0.0.1:9/v1/traces" in err


def test_one_pretty_printed_document_is_one_request(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(request(span(T1, "a" * 16), span(T1, "b" * 16, "a" * 16)), indent=2))
    (only,) = replay.read_files([path])
    assert only.where == path and len(list(replay.spans_of(only.doc))) == 2


class Recorder:
    """A Sender that decodes what it is given, as the collector would."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []

    def __call__(self, data: bytes) -> tuple[int, str]:
        self.requests.append(ExportTraceServiceRequest.FromString(data))
        return 0, ""

    def spans(self) -> list[Any]:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_shift_to_now_moves_every_time_by_one_delta_so_the_latest_end_is_now() -> None:
    early, late = span(T1, "a" * 16, start=1000, end=5000), span(T1, "b" * 16, "a" * 16, start=2000, end=9000)
    sent = Recorder()
    replay.replay([replay.Request(request(early, late), "x")], sent, shift_to_now=True, now_ns=lambda: 10**18)
    first, second = sent.spans()
    delta = 10**18 - 9000
    assert (first.start_time_unix_nano, first.end_time_unix_nano) == (1000 + delta, 5000 + delta)
    assert (second.start_time_unix_nano, second.end_time_unix_nano) == (2000 + delta, 10**18)
    assert [e.time_unix_nano for e in first.events] == [1100 + delta]


def test_new_ids_keep_parents_and_links_and_differ_per_copy() -> None:
    root = span(T1, "a" * 16)
    child = span(T1, "b" * 16, "a" * 16, links=[{"traceId": T2, "spanId": "c" * 16},  # a span of the input
                                                {"traceId": "9" * 32, "spanId": "9" * 16}])  # outside it
    other = span(T2, "c" * 16)
    sent = Recorder()
    result = replay.replay([replay.Request(request(root, child), "x"), replay.Request(request(other), "y")], sent,
                           new_ids=True, repeat=2)
    assert (result.traces, result.spans, result.sends) == (4, 6, 4)
    spans = sent.spans()
    for copy in (spans[:3], spans[3:]):
        new_root, new_child, new_other = copy
        assert new_child.parent_span_id == new_root.span_id and new_child.trace_id == new_root.trace_id
        assert new_child.links[0].trace_id == new_other.trace_id and new_child.links[0].span_id == new_other.span_id
        assert new_child.links[1].trace_id.hex() == "9" * 32  # a link out of the input keeps its ids
        assert new_root.trace_id.hex() not in (T1, T2) and new_root.span_id.hex() != "a" * 16
    assert spans[0].trace_id != spans[3].trace_id and spans[0].span_id != spans[3].span_id


class FakeClock:
    """time.monotonic and time.sleep for the pacer: sleeping moves the clock, and is recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("rate", "spans", "per_send"), [(100.0, 250, 20), (3.0, 7, 1), (50_000.0, 2500, 1000)])
def test_rate_paces_sends_by_deadline(rate: float, spans: int, per_send: int) -> None:
    clock = FakeClock()
    sends: list[tuple[float, int]] = []  # (time of the send, spans sent before it)
    total = 0

    def send(data: bytes) -> tuple[int, str]:
        nonlocal total
        decoded = ExportTraceServiceRequest.FromString(data)
        count = sum(len(ss.spans) for rs in decoded.resource_spans for ss in rs.scope_spans)
        sends.append((clock.now, total))
        total += count
        return 0, ""

    doc = request(*[span(T1, f"{i + 1:016x}") for i in range(spans)])
    result = replay.replay([replay.Request(doc, "x")], send, rate=rate,
                           pacer=replay.Pacer(rate, clock.clock, clock.sleep))
    assert result.spans == spans and result.sends == math.ceil(spans / per_send)
    start = sends[0][0]
    for at, before in sends:  # never ahead of the rate
        assert before <= rate * (at - start) + 1e-6
    # ... and never slower than it: the last send goes out as soon as the spans before it allow.
    assert sends[-1][0] - start == pytest.approx(sends[-1][1] / rate)
    assert len(clock.sleeps) <= result.sends


def test_pacing_sleeps_only_when_ahead() -> None:
    clock = FakeClock()
    pacer = replay.Pacer(10.0, clock.clock, clock.sleep)
    pacer.wait(5)  # the first send goes at once
    clock.now += 2.0  # the sender was slow: 2 s later, 5 spans are well within 10/s
    pacer.wait(5)
    assert clock.sleeps == []
    pacer.wait(15)  # 10 sent over 2 s: the next may go at 1 s, already past
    pacer.wait(1)  # 25 sent: not before 2.5 s after the start
    assert clock.sleeps == [pytest.approx(0.5)]


def test_split_keeps_resource_and_scope_and_every_span() -> None:
    doc = request(*[span(T1, f"{i + 1:016x}") for i in range(5)])
    parts = replay.split(doc, 2)
    assert [count for _part, count in parts] == [2, 2, 1]
    for part, _count in parts:
        (resource_spans,) = part["resourceSpans"]
        assert resource_spans["resource"] == doc["resourceSpans"][0]["resource"]
        assert resource_spans["scopeSpans"][0]["scope"] == {"name": "s"}
    assert [s["spanId"] for p, _ in parts for s in p["resourceSpans"][0]["scopeSpans"][0]["spans"]] == \
        [f"{i + 1:016x}" for i in range(5)]
