"""The Agents SDK tracing processor that turns its traces and spans into OpenTelemetry GenAI spans.

Imported only once `agents` is known to be installed. The SDK calls a
processor synchronously where the work happens (`span.start()` inside the
run's task), so a span made current at `on_span_start` is the parent of what
the SDK does inside it, the OpenAI client's own CLIENT span included.

- A trace (one `Runner.run`, or a `trace()` block): `invoke_workflow {name}`.
- `AgentSpanData`: `invoke_agent {name}`.
- `FunctionSpanData`: `execute_tool {name}` (the call id comes from the
  `ToolContext` the SDK builds inside it, see `patch.from_agent_context`).
- `HandoffSpanData`: `handoff {to_agent}`, no GenAI operation.
- `ResponseSpanData` (Responses API) and `GenerationSpanData` (Chat
  Completions): `chat {model}`. When the OpenAI client is traced too, its
  CLIENT span below is the call: a response span then carries the response id
  and no usage, and dedup groups the two by that id; a generation span has no
  response id, so it keeps the usage the SDK reports, and dedup groups it with
  the client's span by model and token counts. Either way one call is counted;
  a span with neither gets no GenAI operation, a plain span over the call.
- Anything else (guardrails, custom spans, MCP tool listing): `{type} {name}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.tracing import TracingProcessor
from opentelemetry.trace import SpanKind, Tracer

from .. import _config
from .. import _semconv as sc
from .._content import to_json
from .._fields import field, integer, string
from .._runs import RunSpans, client_traced
from .._telemetry import log_once
from ..agent import current_context_attributes

PROVIDER = sc.PROVIDER_OPENAI


class SpanProcessor(TracingProcessor):
    """Registered with `agents.tracing.add_trace_processor`; inert while `active` is False."""

    def __init__(self, tracer: Tracer) -> None:
        self.runs = RunSpans(tracer)
        self.active = True

    # --- traces ---------------------------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if not self.active:
            return
        try:
            name = string(getattr(trace, "name", None)) or "workflow"
            attributes = {sc.OPERATION_NAME: sc.OP_INVOKE_WORKFLOW, sc.WORKFLOW_NAME: name,
                          sc.CONVERSATION_ID: string(getattr(trace, "group_id", None)),
                          **current_context_attributes()}
            self.runs.start(("trace", trace.trace_id), None, f"{sc.OP_INVOKE_WORKFLOW} {name}", SpanKind.INTERNAL,
                            attributes)
        except Exception as exc:  # noqa: BLE001 - telemetry must never break the run
            log_once("openai_agents.on_trace_start", exc)

    def on_trace_end(self, trace: Any) -> None:
        try:
            self.runs.end(("trace", trace.trace_id))
        except Exception as exc:  # noqa: BLE001
            log_once("openai_agents.on_trace_end", exc)

    # --- spans ----------------------------------------------------------------------------------

    def on_span_start(self, span: Any) -> None:
        if not self.active:
            return
        try:
            data = span.span_data
            kind = getattr(data, "type", "")
            traced = kind in ("response", "generation") and client_traced(PROVIDER)
            name, span_kind, attributes = _start(kind, data)
            if traced:
                span_kind = SpanKind.INTERNAL  # the client's span is the CLIENT one
                # A GenAI call only once it ends with what dedup groups it by (see the module docstring).
                attributes.pop(sc.OPERATION_NAME, None)
            parent = ("span", span.parent_id) if span.parent_id else ("trace", span.trace_id)
            self.runs.start(("span", span.span_id), parent, name, span_kind,
                            {**attributes, **current_context_attributes()} if sc.OPERATION_NAME in attributes
                            else attributes)
            run = self.runs.get(("span", span.span_id))
            if run is not None:
                run.data["traced"] = traced
        except Exception as exc:  # noqa: BLE001
            log_once("openai_agents.on_span_start", exc)

    def on_span_end(self, span: Any) -> None:
        key = ("span", span.span_id)
        run = self.runs.get(key)
        attributes: dict[str, Any] = {}
        error: str | None = None
        if run is not None and self.active:
            try:
                data = span.span_data
                traced = bool(run.data.get("traced"))
                attributes = _end(getattr(data, "type", ""), data, traced=traced)
                if traced and (attributes.get(sc.RESPONSE_ID) or attributes.get(sc.USAGE_INPUT_TOKENS) is not None):
                    attributes[sc.OPERATION_NAME] = sc.OP_CHAT
                name = attributes.pop("__name__", None)
                if name and run.span is not None:
                    run.span.update_name(name)
                failure = span.error
                if failure:
                    error = string(field(failure, "message")) or "error"
            except Exception as exc:  # noqa: BLE001
                log_once("openai_agents.on_span_end", exc)
        try:
            self.runs.end(key, attributes, error)
        except Exception as exc:  # noqa: BLE001
            log_once("openai_agents.end", exc)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


def _start(kind: str, data: Any) -> tuple[str, SpanKind, dict[str, Any]]:
    if kind == "agent":
        name = string(data.name) or "agent"
        return f"{sc.OP_INVOKE_AGENT} {name}", SpanKind.INTERNAL, {
            sc.OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.AGENT_NAME: name, sc.PROVIDER_NAME: PROVIDER}
    if kind == "function":
        name = string(data.name) or "tool"
        return f"{sc.OP_EXECUTE_TOOL} {name}", SpanKind.INTERNAL, {
            sc.OPERATION_NAME: sc.OP_EXECUTE_TOOL, sc.TOOL_NAME: name, sc.TOOL_TYPE: "function"}
    if kind == "handoff":
        to_agent = string(data.to_agent)
        return f"handoff {to_agent}" if to_agent else "handoff", SpanKind.INTERNAL, {
            sc.HANDOFF_FROM_AGENT: string(data.from_agent), sc.HANDOFF_TO_AGENT: to_agent}
    if kind in ("response", "generation"):
        model = string(getattr(data, "model", None))
        return f"{sc.OP_CHAT} {model}" if model else sc.OP_CHAT, SpanKind.CLIENT, {
            sc.OPERATION_NAME: sc.OP_CHAT, sc.PROVIDER_NAME: PROVIDER, sc.REQUEST_MODEL: model}
    label = string(getattr(data, "name", None))
    return f"{kind} {label}" if label else (kind or "span"), SpanKind.INTERNAL, {}


def _end(kind: str, data: Any, traced: bool) -> dict[str, Any]:
    settings = _config.SETTINGS
    attributes: dict[str, Any] = {}
    if kind == "function" and settings.capture_content:
        if data.input is not None:
            attributes[sc.TOOL_CALL_ARGUMENTS] = to_json(data.input, settings.capture_max_bytes)
        if data.output is not None:
            attributes[sc.TOOL_CALL_RESULT] = to_json(data.output, settings.capture_max_bytes)
    elif kind == "handoff":
        attributes[sc.HANDOFF_TO_AGENT] = string(data.to_agent)
        if string(data.to_agent):
            attributes["__name__"] = f"handoff {data.to_agent}"
    elif kind == "response":
        response = data.response
        model = string(field(response, "model"))
        attributes[sc.RESPONSE_ID] = string(field(response, "id"))
        attributes[sc.RESPONSE_MODEL] = model
        if model:
            attributes["__name__"] = f"{sc.OP_CHAT} {model}"
        if not traced:
            attributes.update(_usage(field(response, "usage") or data.usage))
    elif kind == "generation":
        # No response id here: the usage is how dedup recognises the client's span of the same call.
        attributes.update(_usage(data.usage))
        if settings.capture_content and data.output:
            attributes[sc.OUTPUT_MESSAGES] = to_json(data.output, settings.capture_max_bytes)
    return attributes


def _usage(usage: Any) -> dict[str, Any]:
    if not usage:
        return {}
    cached = field(field(usage, "input_tokens_details"), "cached_tokens")
    reasoning = field(field(usage, "output_tokens_details"), "reasoning_tokens")
    result: Mapping[str, Any] = {
        sc.USAGE_INPUT_TOKENS: integer(field(usage, "input_tokens")),
        sc.USAGE_OUTPUT_TOKENS: integer(field(usage, "output_tokens")),
        sc.USAGE_CACHE_READ_INPUT_TOKENS: integer(cached),
        sc.USAGE_REASONING_OUTPUT_TOKENS: integer(reasoning),
    }
    return dict(result)
