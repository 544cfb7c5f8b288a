"""The UI's JSON answers (`GET /ui/api/...`): each one a shared report of collector/query/reports.py.

The pages are static; every number they show comes from here. A request names filters, never SQL: the
statements are the packaged templates of schemas/queries with bound values, run through the query endpoint's
ReadPolicy for the caller, so a tenant key reads only its tenant's rows (additional_table_filters) under the
endpoint's limits, exactly as the CLI's `spanhouse traces`, `usage`, `trace` and `alerts` do.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from spanhouse.collector.auth import Principal
from spanhouse.collector.content_keys import parse_reference
from spanhouse.collector.query import reports
from spanhouse.collector.query.reports import ReportError, RunSql

PAGE_SIZE = 50
# Offset paging reads and drops every row before the page: past this many rows, narrow the filters instead.
MAX_OFFSET = 5000
MAX_FILTER_CHARS = 200
# Chart buckets: the smallest that gives at most MAX_BUCKETS points over the range.
BUCKETS_S = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 120
# The Usage tab's four reads run at most this many at a time (and never more than the caller's
# query.max_concurrent_per_caller).
MAX_PARALLEL = 2

Answer = tuple[HTTPStatus, dict[str, Any]]
Resolve = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


class BadRequest(ValueError):
    """A filter value the API cannot use; the message names the parameter."""


class Filters:
    """The query string of a UI request, checked: every page takes the same names."""

    def __init__(self, query: str, caller: Principal, now: dt.datetime | None = None, parallel: int = 1) -> None:
        self.parallel = max(1, min(parallel, MAX_PARALLEL))
        self.values = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        for name, value in self.values.items():
            if len(value) > MAX_FILTER_CHARS:
                raise BadRequest(f"{name}: longer than {MAX_FILTER_CHARS} characters")
        now = now or dt.datetime.now(dt.UTC)
        try:
            self.since = reports.parse_time("since", self.text("since") or "1h", now)
            self.until = reports.parse_time("until", self.text("until"), now) if self.text("until") else now
        except ReportError as exc:
            raise BadRequest(str(exc)) from None
        if self.since >= self.until:
            raise BadRequest("since must be before until")
        # A tenant key sees its own tenant whatever it asks for (the engine's filter confines it anyway; naming
        # the tenant here also lets the sort key prune the read).
        self.tenant = self.text("tenant") if caller.admin else caller.tenant

    def text(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def number(self, name: str) -> float:
        text = self.text(name)
        if not text:
            return 0.0
        try:
            value = float(text)
        except ValueError:
            raise BadRequest(f"{name}: expected a number, got {text[:40]!r}") from None
        if not math.isfinite(value) or value < 0:
            raise BadRequest(f"{name}: expected a number of 0 or more, got {text[:40]!r}")
        return value

    def page(self) -> int:
        text = self.text("page") or "0"
        if not text.isdigit():
            raise BadRequest(f"page: expected 0, 1, 2, ..., got {text[:40]!r}")
        return int(text)

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.text(name) or default
        if value not in options:
            raise BadRequest(f"{name}: expected one of {', '.join(options)}, got {value[:40]!r}")
        return value

    def window(self) -> dict[str, str]:
        return {"since": _iso(self.since), "until": _iso(self.until)}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def whoami(caller: Principal, keys_required: bool) -> dict[str, Any]:
    return {"tenant": caller.tenant, "admin": caller.admin, "keys_required": keys_required}


def traces(run_sql: RunSql, f: Filters) -> dict[str, Any]:
    """One page of the Traces tab: reports.trace_list (what `spanhouse traces` prints) plus each trace's root
    span name and span count."""
    page = f.page()
    offset = page * PAGE_SIZE
    if offset > MAX_OFFSET:
        raise BadRequest(f"page: at most {MAX_OFFSET // PAGE_SIZE} pages are listed; narrow the time range or "
                         "filters instead")
    try:
        rows = reports.trace_list(
            run_sql, f.since, f.until, tenant=f.tenant, service=f.text("service"), model=f.text("model"),
            tool=f.text("tool"), errors_only=f.text("errors") in ("1", "true", "on"), min_cost=f.number("min_cost"),
            min_duration_ms=f.number("min_duration_ms"), span_text=f.text("q"),
            sort=f.choice("sort", tuple(reports.SORT_COLUMNS), "start"), limit=PAGE_SIZE + 1, offset=offset)
    except ReportError as exc:
        raise BadRequest(str(exc)) from None
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    roots = reports.trace_roots(run_sql, [r["trace_id"] for r in rows], f.since, f.until)
    for row in rows:
        row["root_name"], row["span_count"] = roots.get(row["trace_id"], ("", 0))
    return {"traces": rows, "page": page, "page_size": PAGE_SIZE, "more": more, **f.window()}


def trace(run_sql: RunSql, trace_id: str, resolve: Resolve | None = None, admin: bool = False) -> Answer:
    """One trace: its spans (attributes, events, links, conversation) and totals, as `spanhouse trace` counts.

    `resolve` replaces content references by the archived content for an admin key (query/content.py's
    resolve_archived, which logs the read); references left (a tenant key, or expired content) are shown as
    archived in the conversation. `admin` only words that note."""
    try:
        spans = reports.trace_spans(run_sql, trace_id)
    except ReportError as exc:
        raise BadRequest(str(exc)) from None
    if not spans:
        return HTTPStatus.NOT_FOUND, {"error": f"trace {trace_id[:32]}: no spans found (or none your key may read)"}
    totals = reports.trace_totals(spans)
    if resolve is not None:
        spans = resolve(spans)
    return HTTPStatus.OK, {"trace_id": trace_id.strip().lower(), "totals": totals,
                           "spans": [_span(s, admin) for s in spans]}


def _span(s: dict[str, Any], admin: bool = False) -> dict[str, Any]:
    start_ns = reports._ns(s["Timestamp"])
    out = {
        "span_id": s["SpanId"], "parent_id": s["ParentSpanId"], "name": s["SpanName"], "service": s["ServiceName"],
        "tenant": s["TenantId"], "kind": s["SpanKind"], "start_ns": start_ns, "start": str(s["Timestamp"])[:26],
        "duration_ms": int(s["Duration"] or 0) / 1e6, "status": s["StatusCode"], "status_message": s["StatusMessage"],
        "error": s["StatusCode"] in ("Error", "STATUS_CODE_ERROR") or bool(s["ErrorType"]),
        "error_type": s["ErrorType"], "operation": s["Operation"], "provider": s["ProviderName"],
        "model": s["Model"], "tool": s["Tool"], "conversation_id": s["ConversationId"],
        "duplicate_of": s["DuplicateOf"], "kept": bool(int(s["Kept"])),
        "finish_reasons": s["Finish"], "ttft_ms": None if s["TimeToFirstToken"] is None
        else round(float(s["TimeToFirstToken"]) * 1e3, 3),
        "tokens": {key: None if s[col] is None else int(s[col]) for key, col in (
            ("input", "InputTokens"), ("cached_input", "CacheReadTokens"), ("cache_write", "CacheWriteTokens"),
            ("output", "OutputTokens"), ("reasoning", "ReasoningTokens"))},
        "cost": {key: None if s[col] is None else float(s[col]) for key, col in (
            ("input", "CostInput"), ("cached_input", "CostCacheRead"), ("cache_write", "CostCacheWrite"),
            ("output", "CostOutput"), ("total", "CostTotal"))},
        "attributes": dict(sorted(s["Attributes"].items())), "resource": dict(sorted(s["Resource"].items())),
        "events": [{"time": t, "name": n, "attributes": a} for t, n, a in s["EventList"]],
        "links": [{"trace_id": t, "span_id": i, "attributes": a} for t, i, a in s["LinkList"]],
    }
    tokens = out["tokens"]
    if tokens["input"] is not None:  # input tokens include the cached and cache-written ones (ARCHITECTURE.md)
        tokens["uncached_input"] = max(0, tokens["input"] - (tokens["cached_input"] or 0) - (tokens["cache_write"] or 0))
    out["messages"] = [_archived(m, admin) for m in conversation(out["attributes"], out["events"])]
    return out


def _archived(message: dict[str, Any], admin: bool) -> dict[str, Any]:
    """A message whose content is still a reference: its parts say it is archived, and whom to ask."""
    parts = []
    for part in message["parts"]:
        parsed = parse_reference(part.get("content", "")) if part.get("type") == "text" else None
        if parsed is None:
            parts.append(part)
            continue
        sha, kept_until = parsed
        note = ("archived content no longer in genai_content (kept until " + kept_until + ")") if admin else (
            "archived, ask an admin (kept until " + kept_until + ")")
        parts.append({"type": "archived", "content": note, "sha256": sha, "kept_until": kept_until})
    return {**message, "parts": parts}


# Events of the older GenAI conventions that carry one message each, by role.
_MESSAGE_EVENTS = {"gen_ai.system.message": "system", "gen_ai.user.message": "user",
                   "gen_ai.assistant.message": "assistant", "gen_ai.tool.message": "tool", "gen_ai.choice": "assistant"}


def conversation(attributes: dict[str, str], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A call's messages as stored (after redaction), in order: system instructions, input, output.

    Read from gen_ai.system_instructions / gen_ai.input.messages / gen_ai.output.messages (current
    conventions, JSON), else the older per-message events. Each message: role, parts of type text,
    tool_call (name, arguments), tool_call_response (response) or other (the raw JSON); `source` says where
    it came from. Values that are not the expected JSON are shown as text, never dropped.
    """
    out: list[dict[str, Any]] = []
    instructions = attributes.get("gen_ai.system_instructions")
    if instructions:
        parsed = _json(instructions)
        parts = _parts(parsed) if parsed is not None else [{"type": "text", "content": instructions}]
        out.append({"role": "system", "parts": parts, "source": "gen_ai.system_instructions"})
    for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
        if key in attributes:
            out.extend(_messages(attributes[key], key))
    if not any(m["source"] != "gen_ai.system_instructions" for m in out):
        for event in events:
            if event["name"] == "gen_ai.client.inference.operation.details":
                for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
                    if key in event["attributes"]:
                        out.extend(_messages(event["attributes"][key], f"event {key}"))
            role = _MESSAGE_EVENTS.get(event["name"])
            if role:
                attrs = event["attributes"]
                text = attrs.get("content") or attrs.get("message") or attrs.get("gen_ai.event.content") or ""
                parsed = _json(text)
                out.append({"role": attrs.get("role") or role, "parts": _parts(parsed) if parsed is not None
                            else [{"type": "text", "content": text}], "source": f"event {event['name']}"})
    return out


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def _messages(text: str, source: str) -> list[dict[str, Any]]:
    parsed = _json(text)
    if not isinstance(parsed, list):
        return [{"role": "output" if "output" in source else "input", "parts": [{"type": "text", "content": text}],
                 "source": source}]
    out = []
    for message in parsed:
        if not isinstance(message, dict):
            out.append({"role": "", "parts": [{"type": "text", "content": json.dumps(message)}], "source": source})
            continue
        item = {"role": str(message.get("role", "")), "parts": _parts(message.get("parts", message.get("content"))),
                "source": source}
        if message.get("finish_reason"):
            item["finish_reason"] = str(message["finish_reason"])
        out.append(item)
    return out


def _parts(value: Any) -> list[dict[str, Any]]:
    """Message parts as {type, content | name, id, arguments | response}: strings for the page to show."""
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "text", "content": value}]
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return [{"type": "text", "content": json.dumps(value)}]
    parts = []
    for part in value:
        if isinstance(part, str):
            parts.append({"type": "text", "content": part})
            continue
        if not isinstance(part, dict):
            parts.append({"type": "text", "content": json.dumps(part)})
            continue
        kind = str(part.get("type", "text"))
        if kind == "text" or ("content" in part and kind not in ("tool_call", "tool_call_response")):
            content = part.get("content", part.get("text", ""))
            parts.append({"type": "text", "content": content if isinstance(content, str) else json.dumps(content)})
        elif kind == "tool_call":
            arguments = part.get("arguments")
            parts.append({"type": "tool_call", "name": str(part.get("name", "")), "id": str(part.get("id", "")),
                          "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments, indent=1)})
        elif kind == "tool_call_response":
            response = part.get("response", part.get("result"))
            parts.append({"type": "tool_call_response", "id": str(part.get("id", "")),
                          "response": response if isinstance(response, str) else json.dumps(response, indent=1)})
        else:
            parts.append({"type": "other", "content": json.dumps(part)})
    return parts


def usage(run_sql: RunSql, f: Filters) -> dict[str, Any]:
    """The Usage tab: reports.usage_rows per model (and per tool, and per the chosen grouping), and
    reports.usage_over_time for the charts; the same rows `spanhouse usage` prints."""
    by = f.choice("by", ("model", "service", "tenant"), "model")
    least = {"auto": 0, "hour": 3600, "day": 86400}[f.choice("per", ("auto", "hour", "day"), "auto")]
    span = (f.until - f.since).total_seconds()
    # The bucket asked for, or a coarser one when it would give more than MAX_BUCKETS points.
    bucket_s = next((b for b in BUCKETS_S if b >= least and span / b <= MAX_BUCKETS), BUCKETS_S[-1])
    common = {"tenant": f.tenant, "service": f.text("service"), "model": f.text("model")}
    jobs: dict[str, Callable[[], Any]] = {
        "groups": lambda: reports.usage_rows(run_sql, by, f.since, f.until, **common),
        "models": lambda: reports.usage_rows(run_sql, "model", f.since, f.until, **common) if by != "model" else None,
        "tools": lambda: reports.usage_rows(run_sql, "tool", f.since, f.until, tenant=f.tenant,
                                            service=f.text("service"), tool=f.text("tool")),
        "series": lambda: reports.usage_over_time(run_sql, by, f.since, f.until, bucket_s, **common),
    }
    # Independent reads, side by side up to the caller's share of the endpoint (f.parallel, at most
    # query.max_concurrent_per_caller), so none of them is refused as one too many.
    with ThreadPoolExecutor(max_workers=f.parallel, thread_name_prefix="spanhouse-ui") as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        try:
            return {"by": by, "bucket_s": bucket_s, **f.window(),
                    **{name: future.result() for name, future in futures.items()}}
        except ReportError as exc:
            raise BadRequest(str(exc)) from None


def sessions(run_sql: RunSql, f: Filters) -> dict[str, Any]:
    page = f.page()
    if page * PAGE_SIZE > MAX_OFFSET:
        raise BadRequest(f"page: at most {MAX_OFFSET // PAGE_SIZE} pages are listed; narrow the time range")
    rows = reports.sessions(run_sql, f.since, f.until, tenant=f.tenant, service=f.text("service"),
                            user=f.text("user"), conversation=f.text("conversation"),
                            limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE)
    return {"sessions": rows[:PAGE_SIZE], "more": len(rows) > PAGE_SIZE, "page": page, **f.window()}


def session(run_sql: RunSql, f: Filters) -> dict[str, Any]:
    """One conversation's turns in order (`spanhouse sessions CONVERSATION_ID`)."""
    conversation = f.text("conversation")
    if not conversation:
        raise BadRequest("conversation: name the conversation whose turns to show")
    try:
        turns = reports.session_turns(run_sql, conversation, f.since, f.until, tenant=f.tenant, limit=PAGE_SIZE)
    except ReportError as exc:
        raise BadRequest(str(exc)) from None
    return {"conversation": conversation, "turns": turns, **f.window()}


def alerts(run_sql: RunSql, f: Filters) -> dict[str, Any]:
    """Alert episodes with their latest state (`spanhouse alerts`), those still firing first."""
    names, rows = reports.alerts(run_sql, f.since, f.until, tenant=f.tenant, limit=500)
    items = [dict(zip(names, row)) for row in rows]
    items.sort(key=lambda a: a["status"] != "firing")  # stable: newest first within each group
    return {"alerts": items, **f.window()}


def facets(run_sql: RunSql, f: Filters) -> dict[str, Any]:
    return reports.facets(run_sql, f.since, f.until, tenant=f.tenant)


ROUTES: dict[str, Callable[[RunSql, Filters], dict[str, Any]]] = {
    "traces": traces, "usage": usage, "sessions": sessions, "session": session, "alerts": alerts, "facets": facets,
}
