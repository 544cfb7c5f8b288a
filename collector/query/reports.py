"""What `spanhouse usage`, `spanhouse traces` and `spanhouse trace ID` print.

Each report renders a packaged query (schemas/queries/), runs it through a
`run_sql` callable (the collector's query endpoint or the store itself) and
formats the rows. Nothing here opens a store.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from spanhouse.collector.query.queries import render

RunSql = Callable[[str], tuple[list[str], list[list[Any]]]]

GROUP_COLUMNS = {"model": "Model", "service": "ServiceName", "tenant": "TenantId"}
SORT_COLUMNS = {"cost": "cost_usd", "duration": "duration_ms", "start": "start"}
# The outcomes a task can end with (docs/instrumentation.md), and a task without one, as sessions.sql counts them.
OUTCOME_COLUMNS = ("completed", "surfaced", "errored", "timed_out", "no_outcome")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class ReportError(ValueError):
    """A bad option value; the message names the option."""


def parse_duration_s(option: str, text: str) -> float:
    """'24h', '90m', '1.5s', '250ms', '7d', '2w' -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ReportError(f"{option}: expected a duration such as 250ms, 30s, 15m, 24h, 7d, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_time(option: str, text: str, now: dt.datetime) -> dt.datetime:
    """A duration back from `now` ('24h') or an ISO date/time ('2025-11-01', '2025-11-01T12:00Z'), in UTC."""
    if _DURATION.match(text):
        return now - dt.timedelta(seconds=parse_duration_s(option, text))
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReportError(f"{option}: expected a duration back from now (24h, 7d) or an ISO time "
                          f"(2025-11-01T12:00Z), got {text!r}") from None
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


def _usd(value: Any) -> str:
    return "" if value is None else f"{float(value):.6f}"


def _ms3(value: Any) -> list[float | None]:
    return [None if v is None else float(v) for v in (value or [None] * 3)]


def usage_rows(run_sql: RunSql, by: str, since: dt.datetime, until: dt.datetime, *, tenant: str = "",
               service: str = "", model: str = "", tool: str = "") -> list[dict[str, Any]]:
    """Calls, errors, tokens by kind, cost, p50/p95/p99 latency (and time to first token for LLM calls) per
    model, service, tenant or tool, as structured rows: what `spanhouse usage` prints and the UI shows."""
    if by == "tool":
        _, rows = run_sql(render("latency_by_tool", since=since, until=until, tenant=tenant, service=service,
                                 tool=tool))
        return [{"key": key or "(none)", "calls": _int(calls), "errors": _int(errors), "ms": _ms3(ms)}
                for key, calls, errors, ms in rows]
    if by not in GROUP_COLUMNS:
        raise ReportError(f"--by: expected one of model, service, tenant, tool, got {by!r}")
    _, rows = run_sql(render("usage", group_by=GROUP_COLUMNS[by], since=since, until=until, tenant=tenant,
                             service=service, model=model))
    out = []
    for key, calls, errors, inp, cached, output, cost, unpriced, ms, ttft, cache_write, reasoning in rows:
        out.append({"key": key or "(none)", "calls": _int(calls), "errors": _int(errors), "input_tokens": _int(inp),
                    "cached_tokens": _int(cached), "output_tokens": _int(output),
                    "cache_write_tokens": _int(cache_write), "reasoning_tokens": _int(reasoning),
                    "cost_usd": None if cost is None else round(float(cost), 6), "unpriced": _int(unpriced),
                    "ms": _ms3(ms), "ttft_ms": _ms3(ttft)})
    return out


def usage(run_sql: RunSql, by: str, since: dt.datetime, until: dt.datetime, tenant: str = "") -> \
        tuple[list[str], list[list[Any]]]:
    """Calls, errors, tokens, cost and p50/p95/p99 latency per model, service, tenant or tool."""
    rows = usage_rows(run_sql, by, since, until, tenant=tenant)
    if by == "tool":
        return (["tool", "calls", "errors", "p50_ms", "p95_ms", "p99_ms"],
                [[r["key"], r["calls"], r["errors"], *r["ms"]] for r in rows])
    names = [by, "calls", "errors", "input_tokens", "cached_tokens", "output_tokens", "cost_usd", "unpriced",
             "p50_ms", "p95_ms", "p99_ms"]
    return names, [[r["key"], r["calls"], r["errors"], r["input_tokens"], r["cached_tokens"], r["output_tokens"],
                    r["cost_usd"], r["unpriced"], *r["ms"]] for r in rows]


def usage_over_time(run_sql: RunSql, by: str, since: dt.datetime, until: dt.datetime, bucket_s: int, *,
                    tenant: str = "", service: str = "", model: str = "") -> list[dict[str, Any]]:
    """usage_rows' LLM calls per time bucket and model, service or tenant (bucket start as epoch seconds)."""
    if by not in GROUP_COLUMNS:
        raise ReportError(f"by: expected one of model, service, tenant, got {by!r}")
    _, rows = run_sql(render("usage_over_time", group_by=GROUP_COLUMNS[by], since=since, until=until,
                             bucket_s=bucket_s, tenant=tenant, service=service, model=model))
    # Input tokens include cached ones and cache writes; the uncached part is what is left (as token_cost_split).
    return [{"t": int(_ns(bucket) // 1_000_000_000), "key": key or "(none)", "calls": _int(calls),
             "errors": _int(errors), "input_tokens": _int(inp), "cached_tokens": _int(cached),
             "output_tokens": _int(output), "cache_write_tokens": _int(writes), "reasoning_tokens": _int(reasoning),
             "uncached_input_tokens": max(_int(inp) - _int(cached) - _int(writes), 0),
             "cost_usd": 0.0 if cost is None else float(cost)}
            for bucket, key, calls, errors, inp, cached, output, writes, reasoning, cost in rows]


SESSION_COUNTS = ("users", "turns", "llm_calls", "errors", "tokens", "tasks", *OUTCOME_COLUMNS)


def sessions(run_sql: RunSql, since: dt.datetime, until: dt.datetime, *, tenant: str = "", service: str = "",
             user: str = "", conversation: str = "", limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Conversations (gen_ai.conversation.id) active in the range, newest first: turns, calls, tokens, cost,
    errors, tasks and their outcomes, and the newest traces (schemas/queries/sessions.sql), as structured rows:
    `spanhouse sessions` prints them, the UI's Sessions tab serializes them."""
    if limit <= 0:
        raise ReportError(f"--limit: must be at least 1, got {limit}")
    if offset < 0:
        raise ReportError(f"offset: must not be negative, got {offset}")
    names, rows = run_sql(render("sessions", since=since, until=until, tenant=tenant, service=service, user=user,
                                 conversation=conversation, limit=limit, offset=offset))
    out = []
    for row in rows:
        item = dict(zip(names, row))
        for key in SESSION_COUNTS:
            item[key] = _int(item[key])
        item["cost_usd"] = float(item["cost_usd"] or 0)
        item["duration_ms"] = float(item["duration_ms"] or 0)
        item["first_seen"], item["last_seen"] = str(item["first_seen"])[:23], str(item["last_seen"])[:23]
        out.append(item)
    return out


def session_turns(run_sql: RunSql, conversation: str, since: dt.datetime, until: dt.datetime, *,
                  tenant: str = "", limit: int = 1000) -> list[dict[str, Any]]:
    """One conversation's turns (traces), oldest first, with each turn's tasks and how they ended
    (schemas/queries/session_turns.sql): what `spanhouse sessions CONVERSATION_ID` prints."""
    if not conversation.strip():
        raise ReportError("conversation id: must not be empty")
    if limit <= 0:
        raise ReportError(f"--limit: must be at least 1, got {limit}")
    names, rows = run_sql(render("session_turns", conversation=conversation, since=since, until=until,
                                 tenant=tenant, limit=limit))
    out = []
    for row in rows:
        item = dict(zip(names, row))
        for key in ("llm_calls", "tokens", "errors", "tasks"):
            item[key] = _int(item[key])
        item["cost_usd"] = float(item["cost_usd"] or 0)
        item["duration_ms"] = float(item["duration_ms"] or 0)
        item["start"] = str(item["start"])[:23]
        out.append(item)
    return out


def facets(run_sql: RunSql, since: dt.datetime, until: dt.datetime, tenant: str = "") -> dict[str, list[str]]:
    """The tenants, services, models and tools seen in the range (the UI's filter choices)."""
    names, rows = run_sql(render("ui_facets", since=since, until=until, tenant=tenant))
    return dict(zip(names, rows[0])) if rows else {name: [] for name in names}


def trace_list(run_sql: RunSql, since: dt.datetime, until: dt.datetime, *, tenant: str = "", service: str = "",
               model: str = "", tool: str = "", errors_only: bool = False, min_cost: float = 0.0,
               min_duration_ms: float = 0.0, span_text: str = "", sort: str = "cost", limit: int = 20,
               offset: int = 0) -> list[dict[str, Any]]:
    """Traces started in [since, until) matching every filter, most expensive (or slowest, newest) first,
    as structured rows: `spanhouse traces` prints them, the UI's Traces tab serializes them."""
    if sort not in SORT_COLUMNS:
        raise ReportError(f"--sort: expected one of {', '.join(SORT_COLUMNS)}, got {sort!r}")
    if limit <= 0:
        raise ReportError(f"--limit: must be at least 1, got {limit}")
    if offset < 0:
        raise ReportError(f"offset: must not be negative, got {offset}")
    if min_cost < 0 or min_duration_ms < 0:
        raise ReportError("--min-cost and --min-duration must not be negative")
    sql = render("traces", since=since, until=until, tenant=tenant, service=service, model=model, tool=tool,
                 errors_only=int(errors_only), min_cost=min_cost, min_duration_ms=min_duration_ms,
                 span_text=span_text, order_by=SORT_COLUMNS[sort], limit=limit, offset=offset)
    _, rows = run_sql(sql)
    out = []
    for (trace_id, tenant_id, start, duration, calls, errs, tokens, cost, services, models, tools, inp, cached,
         output) in rows:
        out.append({"trace_id": trace_id, "tenant": tenant_id, "start": str(start)[:23], "duration_ms": float(duration),
                    "llm_calls": _int(calls), "errors": _int(errs), "tokens": _int(tokens),
                    "input_tokens": _int(inp), "cached_tokens": _int(cached), "output_tokens": _int(output),
                    "cost_usd": round(float(cost), 6), "services": sorted(services), "models": sorted(models),
                    "tools": sorted(tools)})
    return out


def trace_roots(run_sql: RunSql, trace_ids: list[str], since: dt.datetime, until: dt.datetime) -> \
        dict[str, tuple[str, int]]:
    """trace id -> (root span name, spans kept) for a page of traces."""
    if not trace_ids:
        return {}
    _, rows = run_sql(render("trace_roots", ids=trace_ids, since=since, until=until))
    return {trace_id: (name, _int(count)) for trace_id, name, count in rows}


def traces(run_sql: RunSql, since: dt.datetime, until: dt.datetime, *, tenant: str = "", service: str = "",
           model: str = "", tool: str = "", errors_only: bool = False, min_cost: float = 0.0,
           min_duration_ms: float = 0.0, span_text: str = "", sort: str = "cost", limit: int = 20) -> \
        tuple[list[str], list[list[Any]]]:
    """trace_list as the CLI's table."""
    rows = trace_list(run_sql, since, until, tenant=tenant, service=service, model=model, tool=tool,
                      errors_only=errors_only, min_cost=min_cost, min_duration_ms=min_duration_ms,
                      span_text=span_text, sort=sort, limit=limit)
    names = ["trace_id", "tenant", "start", "duration_ms", "llm_calls", "errors", "tokens", "cost_usd", "services",
             "models"]
    return names, [[r["trace_id"], r["tenant"], r["start"], r["duration_ms"], r["llm_calls"], r["errors"],
                    r["tokens"], r["cost_usd"], ",".join(r["services"]), ",".join(r["models"])] for r in rows]


def alerts(run_sql: RunSql, since: dt.datetime, until: dt.datetime, *, tenant: str = "", firing_only: bool = False,
           limit: int = 100) -> tuple[list[str], list[list[Any]]]:
    """Alert episodes (one per alert and start) with their latest state, newest first (docs/alerts.md)."""
    if limit <= 0:
        raise ReportError(f"--limit: must be at least 1, got {limit}")
    _, rows = run_sql(render("alerts", since=since, until=until, tenant=tenant, firing_only=int(firing_only),
                                 limit=limit))
    out = []
    for status, alertname, tenant_id, starts_at, ends_at, summary, fp, labels, notes, sent in rows:
        out.append([status, alertname, tenant_id, str(starts_at)[:23], "" if ends_at is None else str(ends_at)[:23],
                    summary, fp, labels, notes, _int(sent)])
    return ["status", "alertname", "tenant", "starts_at", "ends_at", "summary", "fingerprint", "labels",
            "annotations", "notifications"], out


def check_trace_id(trace_id: str) -> str:
    trace_id = trace_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}", trace_id):
        raise ReportError(f"trace id: expected 32 hex digits, got {trace_id!r}")
    return trace_id


def trace_spans(run_sql: RunSql, trace_id: str) -> list[dict[str, Any]]:
    """Every span of one trace (schemas/queries/trace_spans.sql) as a dict per span, in start order."""
    names, rows = run_sql(render("trace_spans", trace_id=check_trace_id(trace_id)))
    return [dict(zip(names, row)) for row in rows]


def trace_totals(spans: list[dict[str, Any]]) -> dict[str, Any]:
    """A trace's duration, tokens by kind and cost, counted as `spanhouse trace` counts them: billed calls only,
    a call traced twice once, unpriced calls named rather than counted as free."""
    counted = [s for s in spans if not s.get("DuplicateOf") and s["Operation"] in _BILLED]
    costs = [float(s["CostTotal"]) for s in counted if s["CostTotal"] is not None]
    starts = [_ns(s["Timestamp"]) for s in spans]
    ends = [start + _int(s["Duration"]) for start, s in zip(starts, spans)]

    def total(column: str) -> int:
        return sum(_int(s.get(column)) for s in counted)

    def cost(column: str) -> float:
        return round(sum(float(s[column]) for s in counted if s.get(column) is not None), 9)

    return {
        "spans": len(spans), "start_ns": min(starts) if starts else 0,
        "duration_ms": (max(ends) - min(starts)) / 1e6 if spans else 0.0,
        "tokens": total("InputTokens") + total("OutputTokens"), "input_tokens": total("InputTokens"),
        "cached_tokens": total("CacheReadTokens"), "cache_write_tokens": total("CacheWriteTokens"),
        "output_tokens": total("OutputTokens"), "reasoning_tokens": total("ReasoningTokens"),
        "cost_usd": sum(costs), "cost_input": cost("CostInput"), "cost_output": cost("CostOutput"),
        "cost_cache_read": cost("CostCacheRead"), "cost_cache_write": cost("CostCacheWrite"),
        "unpriced": sum(1 for s in counted if s["CostTotal"] is None and _has_usage(s)),
        "errors": sum(1 for s in spans if s["StatusCode"] in ("Error", "STATUS_CODE_ERROR")),
    }


def trace_tree(run_sql: RunSql, trace_id: str) -> str:
    """The spans of one trace as an indented tree with duration, tokens and cost per span."""
    trace_id = check_trace_id(trace_id)
    spans = trace_spans(run_sql, trace_id)
    if not spans:
        return f"trace {trace_id}: no spans found"
    ids = {s["SpanId"] for s in spans}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for span in spans:
        parent = span["ParentSpanId"]
        if parent and parent in ids and parent != span["SpanId"]:
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    totals = trace_totals(spans)
    unpriced = totals["unpriced"]
    header = (f"trace {trace_id}: {len(spans)} spans, {totals['duration_ms']:.1f} ms, "
              f"{totals['tokens']} tokens, cost ${totals['cost_usd']:.6f}"
              + (f" ({unpriced} call{'s' if unpriced != 1 else ''} without a price)" if unpriced else ""))
    lines = [header]
    seen: set[str] = set()

    def walk(span: dict[str, Any], prefix: str, last: bool, top: bool) -> None:
        if span["SpanId"] in seen:  # a cycle in bad data must not loop forever
            return
        seen.add(span["SpanId"])
        branch = "" if top else ("└─ " if last else "├─ ")
        lines.append(prefix + branch + _describe(span))
        kids = sorted(children.get(span["SpanId"], []), key=lambda s: (_ns(s["Timestamp"]), s["SpanId"]))
        inner = prefix + ("" if top else ("   " if last else "│  "))
        for i, kid in enumerate(kids):
            walk(kid, inner, i == len(kids) - 1, False)

    order = sorted(spans, key=lambda s: (_ns(s["Timestamp"]), s["SpanId"]))
    for root in (s for s in order if s in roots):
        walk(root, "", True, True)
    for span in order:  # spans whose parents form a cycle have no root: print them rather than lose them
        if span["SpanId"] not in seen:
            walk(span, "", True, True)
    return "\n".join(lines)


_BILLED = frozenset({"chat", "text_completion", "generate_content", "embeddings"})


def _has_usage(span: dict[str, Any]) -> bool:
    return span["InputTokens"] is not None or span["OutputTokens"] is not None


def _ns(timestamp: Any) -> int:
    """'2025-11-23 10:00:00.123456789' (UTC) -> ns since the epoch."""
    text = str(timestamp)
    whole, _, fraction = text.partition(".")
    seconds = dt.datetime.fromisoformat(whole).replace(tzinfo=dt.UTC).timestamp()
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def _describe(span: dict[str, Any]) -> str:
    parts = [span["SpanName"] or "(unnamed)"]
    if span["ServiceName"]:
        parts.append(f"[{span['ServiceName']}]")
    if span["Model"] and span["Model"] not in span["SpanName"]:
        parts.append(span["Model"])
    parts.append(f"{_int(span['Duration']) / 1e6:.1f} ms")
    if _has_usage(span):
        cached = _int(span["CacheReadTokens"])
        parts.append(f"{_int(span['InputTokens'])} in" + (f" ({cached} cached)" if cached else "")
                     + f" / {_int(span['OutputTokens'])} out tokens")
    if span["CostTotal"] is not None:
        parts.append(f"${float(span['CostTotal']):.6f}")
    elif span["Operation"] in _BILLED and _has_usage(span):
        parts.append("cost unknown")
    if span["StatusCode"] in ("Error", "STATUS_CODE_ERROR"):
        parts.append("ERROR")
    if span.get("DuplicateOf"):
        parts.append(f"(same call as {span['DuplicateOf']}, counted there)")
    return "  ".join(parts)
