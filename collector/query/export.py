"""What `spanhouse export` writes: GenAI calls as dataset records, one JSON object per line.

Traces are selected by id, by `spanhouse traces`' filters (reports.trace_list, the same query) or, for admin
keys, by an SQL condition over `spans` (schemas/queries/export_where.sql). Their calls are read with
schemas/queries/export_calls.sql: numbers from genai_calls (every call, exact), content from the call's
`spans` row when sampling kept one. Three output shapes:

- `records` (default): everything known about a call, grouped (request settings, content, usage, cost,
  latency, status) with its provenance (trace, span, parent, tenant, service, time, operation, provider).
- `openai-chat`: one chat-completion example per call ({"messages", "tools", "metadata"}), the GenAI
  semantic conventions' parts-based messages converted to OpenAI chat messages.
- `otlp-json` (otlp_json.py): whole traces as OTLP/JSON ExportTraceServiceRequest lines.

Content is exported as stored, that is after the collector's redaction. Every read of content columns
goes through `ContentReader.attributes`, so a store that keeps some content elsewhere can resolve it in
one place. Nothing here opens a store: SQL runs through a `run_sql` callable, like reports.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from spanhouse.collector.query.export_content import ContentReader, ResolveContent
from spanhouse.collector.query.queries import render
from spanhouse.collector.query.reports import RunSql, check_trace_id, trace_list

FORMATS = ("records", "openai-chat", "otlp-json")
# Span attributes holding captured content (GenAI semantic conventions), read only through ContentReader.
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
CONTENT_ATTRIBUTES = (INPUT_MESSAGES, OUTPUT_MESSAGES, SYSTEM_INSTRUCTIONS, TOOL_DEFINITIONS)
REQUEST_PREFIX = "gen_ai.request."
# Operations whose calls carry chat messages (the others, such as embeddings or execute_tool, have none).
CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
MAX_TRACES = 10_000
# How many "no span row" lines are printed one by one before only their count is given.
MAX_NOTES = 10
_NUMBER = re.compile(r"^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?$")


class ExportError(ValueError):
    """A bad selection or option; the message names it and says what to do."""


@dataclasses.dataclass
class Selection:
    """Which traces to export: by id, by `spanhouse traces`' filters, or by an SQL condition (admins)."""

    trace_ids: list[str] = dataclasses.field(default_factory=list)
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    tenant: str = ""
    service: str = ""
    model: str = ""
    tool: str = ""
    errors_only: bool = False
    min_cost: float = 0.0
    min_duration_ms: float = 0.0
    span_text: str = ""
    where: str = ""
    limit: int = 100


def select_trace_ids(run_sql: RunSql, selection: Selection) -> list[str]:
    """The ids of the traces `selection` names, each once, in a stable order."""
    if selection.limit <= 0 or selection.limit > MAX_TRACES:
        raise ExportError(f"--limit: expected 1..{MAX_TRACES} traces, got {selection.limit}")
    if selection.trace_ids:
        try:
            ids = [check_trace_id(t) for t in selection.trace_ids]
        except ValueError as exc:
            raise ExportError(f"--trace-id: {exc}") from None
        return list(dict.fromkeys(ids))
    if selection.since is None or selection.until is None:
        raise ExportError("a time range is needed to select traces by filters (--since, --until)")
    if selection.where:
        sql = render("export_where", since=selection.since, until=selection.until, tenant=selection.tenant,
                     limit=selection.limit)
        # The caller's condition goes in after the parameters are rendered: it is SQL, not a value.
        _, rows = run_sql(sql.replace("{condition}", _condition(selection.where), 1))
        return [row[0] for row in rows]
    rows = trace_list(run_sql, selection.since, selection.until, tenant=selection.tenant, service=selection.service,
                      model=selection.model, tool=selection.tool, errors_only=selection.errors_only,
                      min_cost=selection.min_cost, min_duration_ms=selection.min_duration_ms,
                      span_text=selection.span_text, sort="start", limit=selection.limit)
    return list(dict.fromkeys(row["trace_id"] for row in rows))


def _condition(where: str) -> str:
    """The --where text checked for what would change the statement's shape (the read policy still refuses
    anything that writes, reads the host or runs past the limits)."""
    text = where.strip()
    if not text:
        raise ExportError("--where: the condition is empty")
    if ";" in re.sub(r"'(?:[^'\\]|\\.)*'", "", text):
        raise ExportError("--where: one SQL condition, without ';'")
    if "--" in text or "/*" in text:
        raise ExportError("--where: no comments in the condition")
    return text


def _json_value(text: str) -> Any:
    """A stored attribute value -> its JSON value when it is JSON (content, arrays), else the text itself
    (a value cut by receiver.max_attribute_value_length is no longer JSON and is kept as text)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _setting(text: str) -> Any:
    """A gen_ai.request.* value (stored as text) -> number, bool, list or text, as the caller set it."""
    if _NUMBER.match(text):
        number = float(text)
        return int(text) if re.fullmatch(r"-?\d+", text) else number
    if text in ("true", "false"):
        return text == "true"
    if text.startswith(("[", "{")):
        return _json_value(text)
    return text


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _iso(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def call_records(run_sql: RunSql, trace_ids: list[str], content: ContentReader,
                 note: Callable[[str], None]) -> Iterator[dict[str, Any]]:
    """One record per GenAI call of `trace_ids` (see the module docstring); `note` hears of calls whose span
    row sampling dropped (exported without content) and of ids with no call at all."""
    noted = 0
    for start in range(0, len(trace_ids), 100):  # a bounded IN list per statement
        chunk = trace_ids[start:start + 100]
        names, rows = run_sql(render("export_calls", trace_ids=chunk))
        seen: set[str] = set()
        for row in rows:
            call = dict(zip(names, row))
            seen.add(call["trace_id"])
            if not int(call["kept"] or 0):
                noted += 1
                if noted <= MAX_NOTES:
                    note(f"call {call['span_id']} ({call['span_name']}) of trace {call['trace_id']} has no span row "
                         "(sampled out): exported with its numbers, without content or attributes")
            yield _record(call, content)
        for trace_id in chunk:
            if trace_id not in seen:
                note(f"trace {trace_id}: no GenAI call found (not stored, past retention, or not visible to this "
                     "API key)")
    if noted > MAX_NOTES:
        note(f"{noted - MAX_NOTES} more calls had no span row (sampled out)")


def _record(call: dict[str, Any], content: ContentReader) -> dict[str, Any]:
    kept = bool(int(call["kept"] or 0))
    attributes = content.attributes(call["trace_id"], call["span_id"], call["attributes"] or {}) if kept else {}
    request = {key[len(REQUEST_PREFIX):]: _setting(value) for key, value in sorted(attributes.items())
               if key.startswith(REQUEST_PREFIX)}
    request.setdefault("model", call["request_model"])
    duration_ns = int(call["duration_ns"] or 0)
    ttft = _float(call["ttft_s"])
    return {
        "trace_id": call["trace_id"], "span_id": call["span_id"], "parent_span_id": call["parent_span_id"],
        "tenant": call["tenant"], "service": call["service"], "time": _iso(int(call["start_ns"])),
        "span_name": call["span_name"], "operation": call["operation"], "provider": call["provider"],
        "request": request,
        "system_instructions": _content(attributes, SYSTEM_INSTRUCTIONS),
        "input_messages": _content(attributes, INPUT_MESSAGES),
        "tool_definitions": _content(attributes, TOOL_DEFINITIONS),
        "output_messages": _content(attributes, OUTPUT_MESSAGES),
        "finish_reasons": list(call["finish_reasons"] or []),
        "response": {"model": call["response_model"], "id": call["response_id"]},
        "usage": {"input_tokens": _int(call["input_tokens"]), "output_tokens": _int(call["output_tokens"]),
                  "cache_read_input_tokens": _int(call["cache_read_tokens"]),
                  "cache_write_input_tokens": _int(call["cache_write_tokens"]),
                  "reasoning_output_tokens": _int(call["reasoning_tokens"])},
        "cost_usd": {"input": _float(call["cost_input"]), "output": _float(call["cost_output"]),
                     "cache_read": _float(call["cost_cache_read"]), "cache_write": _float(call["cost_cache_write"]),
                     "total": _float(call["cost_total"])},
        "latency": {"duration_ms": duration_ns / 1e6, "ttft_ms": None if ttft is None else ttft * 1e3},
        "status": {"code": call["status_code"], "error_type": call["error_type"],
                   "message": call["status_message"] or ""},
        "tool_name": call["tool_name"], "conversation_id": call["conversation_id"], "agent_name": call["agent_name"],
        "resource": dict(call["resource"] or {}) if kept else {},
        "span_kept": kept,
    }


def _content(attributes: Mapping[str, str], key: str) -> Any:
    text = attributes.get(key)
    return None if text is None else _json_value(text)


# --- openai-chat ---


def openai_chat(record: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """A call record -> one chat-completion example, or (None, why it has none)."""
    if record["operation"] not in CHAT_OPERATIONS:
        return None, f"operation {record['operation'] or '(none)'} is not a chat call"
    if not record["span_kept"]:
        return None, "its span row was sampled out (no content)"
    inputs, outputs = record["input_messages"], record["output_messages"]
    if inputs is None and outputs is None:
        return None, "no messages were captured (content capture off in the instrumentation?)"
    dropped: dict[str, int] = {}
    messages: list[dict[str, Any]] = []
    system = record["system_instructions"]
    if system is not None:
        text = _system_text(system, dropped)
        if text:
            messages.append({"role": "system", "content": text})
    for message in _message_list(inputs, INPUT_MESSAGES):
        messages.extend(_chat_messages(message, dropped))
    choices = _message_list(outputs, OUTPUT_MESSAGES)
    if choices:  # the first choice is the completion; n > 1 is noted in the metadata
        messages.extend(_chat_messages(choices[0], dropped))
    example: dict[str, Any] = {"messages": messages}
    tools = record["tool_definitions"]
    if isinstance(tools, list) and tools:
        example["tools"] = [_tool(t) for t in tools]
    if "parallel_tool_calls" in record["request"]:
        example["parallel_tool_calls"] = record["request"]["parallel_tool_calls"]
    metadata = {key: record[key] for key in ("trace_id", "span_id", "tenant", "service", "time", "provider",
                                             "finish_reasons", "usage")}
    metadata["model"] = record["response"]["model"] or record["request"].get("model", "")
    metadata["request"] = {k: v for k, v in record["request"].items() if k != "parallel_tool_calls"}
    metadata["cost_usd"] = record["cost_usd"]["total"]
    if len(choices) > 1:
        metadata["choices"] = len(choices)
    if dropped:
        metadata["dropped_parts"] = dropped
    example["metadata"] = metadata
    return example, ""


def _message_list(value: Any, key: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ExportError(f"{key} is not a JSON list of messages (cut by the attribute length limit?)")
    return value


def _system_text(system: Any, dropped: dict[str, int]) -> str:
    if isinstance(system, str):
        return system
    texts = []
    for part in system if isinstance(system, list) else []:
        if isinstance(part, dict) and part.get("type") == "text":
            texts.append(str(part.get("content", "")))
        else:
            kind = str(part.get("type")) if isinstance(part, dict) else "invalid"
            dropped[kind] = dropped.get(kind, 0) + 1
    return "\n".join(texts)


def _arguments(value: Any) -> str:
    """OpenAI sends tool call arguments as a JSON string; the conventions allow any JSON value."""
    return value if isinstance(value, str) else json.dumps(value if value is not None else {}, ensure_ascii=False)


def _chat_messages(message: dict[str, Any], dropped: dict[str, int]) -> list[dict[str, Any]]:
    """One conventions message (role + parts) -> OpenAI chat messages: text becomes content, tool_call parts
    the assistant's tool_calls, each tool_call_response part a message of role tool."""
    role = str(message.get("role") or "user")
    parts = message.get("parts")
    if not isinstance(parts, list):  # an older, content-string shape
        return [{"role": role, "content": str(message.get("content", ""))}]
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    tool_messages: list[dict[str, Any]] = []
    for part in parts:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("content", "")))
        elif kind == "tool_call":
            calls.append({"id": str(part.get("id") or ""), "type": "function",
                          "function": {"name": str(part.get("name", "")),
                                       "arguments": _arguments(part.get("arguments"))}})
        elif kind == "tool_call_response":
            response = part.get("response", part.get("result"))
            tool_messages.append({"role": "tool", "tool_call_id": str(part.get("id") or ""),
                                  "content": response if isinstance(response, str)
                                  else json.dumps(response, ensure_ascii=False)})
        else:
            name = str(kind) if kind is not None else "invalid"
            dropped[name] = dropped.get(name, 0) + 1
    out: list[dict[str, Any]] = []
    if texts or calls or not tool_messages:
        chat: dict[str, Any] = {"role": role}
        if len(texts) == 1:
            chat["content"] = texts[0]
        elif texts:
            chat["content"] = [{"type": "text", "text": t} for t in texts]
        else:
            chat["content"] = None if calls else ""
        if message.get("name"):
            chat["name"] = str(message["name"])
        if calls:
            chat["tool_calls"] = calls
        out.append(chat)
    return out + tool_messages


def _tool(definition: Any) -> Any:
    """A gen_ai.tool.definitions entry -> OpenAI's {"type": "function", "function": {...}}."""
    if not isinstance(definition, dict) or "function" in definition:
        return definition
    function = {key: definition[key] for key in ("name", "description", "parameters", "strict")
                if key in definition}
    return {"type": definition.get("type", "function"), "function": function}


@dataclasses.dataclass
class ExportCounts:
    traces: int = 0  # traces selected
    lines: int = 0  # lines written
    skipped: int = 0  # calls with no line in the chosen format (openai-chat)


def write_export(run_sql: RunSql, selection: Selection, fmt: str, write: Callable[[str], Any],
                 note: Callable[[str], None], resolve: ResolveContent | None = None) -> ExportCounts:
    """Select, read and write one JSON line per call (records, openai-chat) or per trace (otlp-json)."""
    from spanhouse.collector.query import otlp_json

    if fmt not in FORMATS:
        raise ExportError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    counts = ExportCounts()
    trace_ids = select_trace_ids(run_sql, selection)
    counts.traces = len(trace_ids)
    content = ContentReader(run_sql, resolve)

    def line(doc: dict[str, Any]) -> None:
        write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        counts.lines += 1

    if fmt == "otlp-json":
        found = set()
        for trace_id, request in otlp_json.trace_requests(run_sql, trace_ids, content):
            found.add(trace_id)
            line(request)
        for trace_id in trace_ids:
            if trace_id not in found:
                note(f"trace {trace_id}: no span kept (not stored, sampled out, past retention, or not visible to "
                     "this API key)")
        return counts
    skip_reasons: dict[str, int] = {}
    for record in call_records(run_sql, trace_ids, content, note):
        if fmt == "records":
            line(record)
            continue
        try:
            example, why = openai_chat(record)
        except ExportError as exc:
            example, why = None, str(exc)
        if example is None:
            counts.skipped += 1
            skip_reasons[why] = skip_reasons.get(why, 0) + 1
        else:
            line(example)
    for why, count in skip_reasons.items():
        note(f"{count} call{'s' if count != 1 else ''} left out of openai-chat: {why}")
    return counts
