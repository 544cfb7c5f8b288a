"""Both decoders give a request's spans one string per attribute key and per repeated short value,
not a new one per span: that is most of what a batch of GenAI spans holds in memory."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanhouse.collector.receiver.decode import Decoder

CONTENT = "a user message long enough to be content, " * 4


def request(spans: int) -> bytes:
    req = ExportTraceServiceRequest()
    out = req.resource_spans.add().scope_spans.add()
    for i in range(spans):
        span = out.spans.add(trace_id=bytes([1]) * 16, span_id=(i + 1).to_bytes(8, "big"), name="chat gpt-4o",
                             start_time_unix_nano=1_700_000_000_000_000_000,
                             end_time_unix_nano=1_700_000_001_000_000_000)
        for key, value in (("gen_ai.request.model", "gpt-4o"), ("gen_ai.operation.name", "chat"),
                           ("gen_ai.input.messages", CONTENT + str(i))):
            span.attributes.add(key=key).value.string_value = value
    return req.SerializeToString()


@pytest.mark.parametrize("mode", ["off", "auto"])
def test_keys_and_short_values_are_one_string_per_request(mode: str) -> None:
    decoder = Decoder(clock_ns=lambda: 1_700_000_000_500_000_000, native_decode=mode)
    if mode == "auto" and not decoder.native:
        pytest.skip("the native decoder is not built")
    first, second, third = decoder.decode_bytes(request(3), "t").batch["SpanAttributes"]
    assert first == {"gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat",
                     "gen_ai.input.messages": CONTENT + "0"}
    for a, b in ((first, second), (first, third)):
        assert [id(k) for k in a] == [id(k) for k in b]
        assert a["gen_ai.request.model"] is b["gen_ai.request.model"]
        assert a["gen_ai.operation.name"] is b["gen_ai.operation.name"]
        assert a["gen_ai.input.messages"] != b["gen_ai.input.messages"]
