"""The pure parts of `spanhouse export`: stored text -> OTLP AnyValue that the collector stores as the same text,
and GenAI semantic-conventions messages -> OpenAI chat messages, hostile content included."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from spanhouse.collector.query.export import openai_chat
from spanhouse.collector.query.otlp_json import any_value
from spanhouse.collector.receiver.decode import Decoder
from spanhouse.collector.replay import to_protobuf

STORED_TEXTS = ["42", "-7", "0", "007", "1e3", "0.2", "1e-05", "2.0", "true", "false", "True", "", "abc",
                '["stop","length"]', '[1,2,3]', '[0.5,1.5]', '[true,false]', '["a", "b"]', '[1,"a"]', "[]",
                '[{"role":"user"}]', '{"a":1}', "9223372036854775808", "nan", "inf", "ünïcode", "[\"\"]"]


@pytest.mark.parametrize("text", STORED_TEXTS)
def test_a_stored_value_sent_back_is_stored_as_the_same_text(text: str) -> None:
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "1" * 32, "spanId": "2" * 16, "name": "s", "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000000001000", "attributes": [{"key": "k", "value": any_value(text)}]}]}]}]}
    request = ExportTraceServiceRequest.FromString(to_protobuf(doc, "test"))
    result = Decoder(retention_days=0, max_future_skew_s=1e10).decode(request, "t")
    assert result.batch.columns["SpanAttributes"] == [{"k": text}]


@pytest.mark.parametrize(("text", "kind"), [("42", "intValue"), ("0.2", "doubleValue"), ("true", "boolValue"),
                                           ('["stop"]', "arrayValue"), ("007", "stringValue"),
                                           ('[{"role":"user"}]', "stringValue")])
def test_types_come_back_where_the_text_says_so(text: str, kind: str) -> None:
    assert list(any_value(text)) == [kind]


def record(**content: Any) -> dict[str, Any]:
    base = {"operation": "chat", "span_kept": True, "input_messages": None, "output_messages": None,
            "system_instructions": None, "tool_definitions": None, "request": {"model": "m"},
            "trace_id": "t", "span_id": "s", "tenant": "", "service": "svc", "time": "", "provider": "p",
            "finish_reasons": [], "usage": {}, "response": {"model": ""}, "cost_usd": {"total": None}}
    return {**base, **content}


def test_multi_part_text_unknown_parts_and_choices_are_kept_or_counted() -> None:
    example, why = openai_chat(record(
        input_messages=[{"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"},
                                                   {"type": "blob", "mime_type": "image/png", "content": "AAAA"}]}],
        output_messages=[{"role": "assistant", "parts": [{"type": "reasoning", "content": "hmm"},
                                                         {"type": "text", "content": "c"}]},
                         {"role": "assistant", "parts": [{"type": "text", "content": "d"}]}],
        request={"model": "m", "parallel_tool_calls": False}))
    assert why == ""
    assert example["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                 {"type": "text", "text": "b"}]},
                                   {"role": "assistant", "content": "c"}]
    assert example["parallel_tool_calls"] is False
    assert example["metadata"]["dropped_parts"] == {"blob": 1, "reasoning": 1}
    assert example["metadata"]["choices"] == 2


@pytest.mark.parametrize(("content", "reason"), [
    ({"operation": "embeddings"}, "operation embeddings is not a chat call"),
    ({"span_kept": False}, "its span row was sampled out (no content)"),
    ({}, "no messages were captured"),
])
def test_calls_without_a_chat_example_say_why(content: dict[str, Any], reason: str) -> None:
    example, why = openai_chat(record(**content))
    assert example is None and why.startswith(reason)


def test_content_that_is_not_a_message_list_is_refused_with_the_attribute_named() -> None:
    from spanhouse.collector.query.export import ExportError

    with pytest.raises(ExportError, match=r"gen_ai.input.messages is not a JSON list of messages"):
        openai_chat(record(input_messages='[{"role": "user", "parts": [...[truncated 90 chars]'))
    example, _ = openai_chat(record(input_messages=[{"role": "user", "parts": [7, None, {"type": "text"}]}]))
    assert example["messages"] == [{"role": "user", "content": ""}]
    assert example["metadata"]["dropped_parts"] == {"invalid": 2}
