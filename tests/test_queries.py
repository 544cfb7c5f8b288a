"""schemas/queries/*.sql against a fixture data set whose answers are computed here, in Python."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from spanhouse.collector.batch import GENAI_COLUMNS
from spanhouse.collector.query.queries import QueryParameterError, quote, render
from spanhouse.collector.store import Store
from spanhouse.collector.writer.clickhouse import GENAI_CALLS_COLUMNS

LLM_OPS = ("chat", "text_completion", "embeddings")
MODELS = (("openai", "gpt-4o", "gpt-4o-2024-08-06"), ("openai", "gpt-4o-mini", ""),
          ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929"), ("acme", "in-house", ""))
TOOLS = ("search", "sql", "fetch")
DAY0 = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None) - dt.timedelta(days=3)
SINCE, UNTIL = DAY0, DAY0 + dt.timedelta(days=3)


def _fixture_rows(seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for t in range(120):
        tenant = rng.choice(("acme", "globex", "initech"))
        service = rng.choice(("bot", "search", "summarizer"))
        trace_id = f"{rng.getrandbits(128):032x}"
        # A few traces start outside the range, to check the range filters.
        start = DAY0 + dt.timedelta(seconds=rng.uniform(-3600, 3 * 86400 + 3600))
        provider, request_model, response_model = rng.choice(MODELS)
        agent_id = f"{rng.getrandbits(64):016x}"
        calls = []
        clock = start + dt.timedelta(milliseconds=1)
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            duration_ns = int(rng.lognormvariate(19.5, 0.7))
            base = {"TenantId": tenant, "ServiceName": service, "TraceId": trace_id, "SpanId": f"{rng.getrandbits(64):016x}",
                    "ParentSpanId": agent_id, "Timestamp": clock, "Duration": duration_ns, "StatusCode": "Unset",
                    "ErrorType": "", "ToolName": "", "AgentName": "", "Provider": "", "RequestModel": "",
                    "ResponseModel": "", "InputTokens": None, "OutputTokens": None, "CacheReadTokens": None,
                    "CacheWriteTokens": None, "CostInput": None, "CostOutput": None, "CostCacheRead": None,
                    "CostCacheWrite": None, "CostTotal": None, "TimeToFirstToken": None}
            if kind < 0.3:
                tool = rng.choice(TOOLS)
                failed = rng.random() < 0.2
                calls.append({**base, "Operation": "execute_tool", "SpanName": f"execute_tool {tool}", "ToolName": tool,
                              "StatusCode": "Error" if failed else "Unset", "ErrorType": "Timeout" if failed else ""})
            else:
                failed = rng.random() < 0.1
                inp = rng.randint(100, 5000)
                read = rng.choice((0, 0, inp // 3))
                write = rng.choice((0, 0, 0, inp // 5))
                out = rng.randint(10, 800)
                priced = provider != "acme"
                c_in, c_read, c_write, c_out = (round(rng.uniform(0, 0.01), 7) for _ in range(4))
                calls.append({**base, "Operation": rng.choice(LLM_OPS), "SpanName": f"chat {request_model}",
                              "Provider": provider, "RequestModel": request_model, "ResponseModel": response_model,
                              "InputTokens": inp, "OutputTokens": out, "CacheReadTokens": read, "CacheWriteTokens": write,
                              "CostInput": c_in if priced else None, "CostOutput": c_out if priced else None,
                              "CostCacheRead": c_read if priced else None, "CostCacheWrite": c_write if priced else None,
                              "CostTotal": c_in + c_out + c_read + c_write if priced else None,
                              "TimeToFirstToken": round(rng.uniform(0.05, 2.0), 4) if rng.random() < 0.5 else None,
                              "StatusCode": "Error" if failed else "Unset", "ErrorType": "RateLimit" if failed else ""})
            clock += dt.timedelta(microseconds=duration_ns // 1000 + 500)
        end = clock + dt.timedelta(milliseconds=1)
        agent = {**calls[0], "SpanId": agent_id, "ParentSpanId": "", "Operation": "invoke_agent",
                 "SpanName": "invoke_agent helper", "AgentName": "helper", "Timestamp": start, "ToolName": "",
                 "Duration": int((end - start).total_seconds() * 1e9), "StatusCode": "Unset", "ErrorType": "",
                 "Provider": provider, "RequestModel": request_model, "ResponseModel": "",
                 # usage repeated from the children, as some agent frameworks report it
                 "InputTokens": sum(c["InputTokens"] or 0 for c in calls), "OutputTokens": None,
                 "CacheReadTokens": None, "CacheWriteTokens": None, "CostInput": None, "CostOutput": None,
                 "CostCacheRead": None, "CostCacheWrite": None, "CostTotal": None, "TimeToFirstToken": None}
        rows.append(agent)
        rows.extend(calls)
    for row in rows:
        row["Model"] = row["ResponseModel"] or row["RequestModel"]
    return rows


ROWS = _fixture_rows()


def _ns(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1) * 1000


def _in_range(row: dict[str, Any]) -> bool:
    return SINCE <= row["Timestamp"] < UNTIL


def _llm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["Operation"] in LLM_OPS and _in_range(r)]


def _pcts(values: list[float]) -> list[float]:
    if len(values) == 1:
        return values * 3
    q = statistics.quantiles(values, n=100, method="inclusive")
    return [q[49], q[94], q[98]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store.open(f"chdb://{tmp_path_factory.mktemp('queries') / 'store'}")
    try:
        opened.migrate()
        names = list(GENAI_CALLS_COLUMNS)
        data = [[_ns(r[c]) if c == "Timestamp" else r.get(c, GENAI_COLUMNS.get(c, "")) for r in ROWS] for c in names]
        opened.insert("genai_calls", data, names)
        yield opened
    finally:
        opened.close()


def run(store: Store, name: str, **params: Any) -> list[tuple[Any, ...]]:
    params.setdefault("since", SINCE)
    params.setdefault("until", UNTIL)
    return store.query_rows(render(name, **params))


def test_cost_per_tenant_service_model_per_day(store: Store) -> None:
    # The rollup is hourly: the range is whole days here, so hours and calls line up.
    expected: dict[tuple[Any, ...], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for r in _llm(ROWS):
        slot = expected[(r["Timestamp"].date(), r["TenantId"], r["ServiceName"], r["Model"])]
        slot[0] += 1
        slot[1] += r["CostTotal"] is None
        slot[2] += r["CostTotal"] or 0.0
    got = {row[:4]: list(row[4:]) for row in run(store, "cost_by_day")}
    assert got.keys() == expected.keys()
    for key, (calls, unpriced, cost) in expected.items():
        assert got[key][:2] == [calls, unpriced], key
        assert got[key][2] == pytest.approx(cost, abs=2e-6), key


def test_latency_percentiles_per_model(store: Store) -> None:
    by_model: dict[str, list[float]] = defaultdict(list)
    for r in _llm(ROWS):
        by_model[r["Model"]].append(r["Duration"] / 1e6)
    got = {model: (calls, pcts) for model, calls, pcts in run(store, "latency_by_model")}
    assert got.keys() == by_model.keys()
    for model, values in by_model.items():
        assert got[model][0] == len(values)
        assert got[model][1] == pytest.approx(_pcts(values), abs=1e-3)


def test_latency_percentiles_and_errors_per_tool(store: Store) -> None:
    tools = [r for r in ROWS if r["Operation"] == "execute_tool" and _in_range(r)]
    got = {tool: rest for tool, *rest in run(store, "latency_by_tool", tenant="", service="", tool="")}
    assert got.keys() == {r["ToolName"] for r in tools}
    for tool in got:
        mine = [r for r in tools if r["ToolName"] == tool]
        calls, errors, pcts = got[tool]
        assert (calls, errors) == (len(mine), sum(r["StatusCode"] == "Error" for r in mine))
        assert pcts == pytest.approx(_pcts([r["Duration"] / 1e6 for r in mine]), abs=1e-3)


def test_error_rate_per_model(store: Store) -> None:
    rows = run(store, "error_rate_by_model")
    for model, calls, errors, rate, _top in rows:
        mine = [r for r in _llm(ROWS) if r["Model"] == model]
        failed = sum(r["StatusCode"] == "Error" or r["ErrorType"] != "" for r in mine)
        assert (calls, errors) == (len(mine), failed)
        assert rate == pytest.approx(failed / len(mine), abs=1e-6)
    assert [r[3] for r in rows] == sorted((r[3] for r in rows), reverse=True)


def test_token_cost_split_into_cached_uncached_and_output(store: Store) -> None:
    got = {row[0]: row[1:] for row in run(store, "token_cost_split")}
    priced = [r for r in ROWS if _in_range(r) and r["CostTotal"] is not None]
    assert got.keys() == {r["Model"] for r in priced}
    for model, values in got.items():
        mine = [r for r in priced if r["Model"] == model]
        tokens = (len(mine),
                  sum(max(r["InputTokens"] - r["CacheReadTokens"] - r["CacheWriteTokens"], 0) for r in mine),
                  sum(r["CacheReadTokens"] for r in mine), sum(r["CacheWriteTokens"] for r in mine),
                  sum(r["OutputTokens"] for r in mine))
        assert values[:5] == tokens
        costs = [sum(r[c] for r in mine) for c in ("CostInput", "CostCacheRead", "CostCacheWrite", "CostOutput",
                                                    "CostTotal")]
        assert list(values[5:]) == pytest.approx(costs, abs=2e-6)


def test_time_to_first_token_percentiles(store: Store) -> None:
    got = {model: rest for model, *rest in run(store, "ttft_percentiles")}
    streamed = [r for r in ROWS if _in_range(r) and r["TimeToFirstToken"] is not None]
    assert got.keys() == {r["Model"] for r in streamed}
    for model, (calls, pcts) in got.items():
        values = [r["TimeToFirstToken"] * 1e3 for r in streamed if r["Model"] == model]
        assert calls == len(values)
        assert pcts == pytest.approx(_pcts(values), abs=1e-3)


def _traces() -> dict[str, dict[str, Any]]:
    traces: dict[str, dict[str, Any]] = {}
    for r in ROWS:
        t = traces.setdefault(r["TraceId"], {"start": r["Timestamp"], "end": r["Timestamp"], "cost": 0.0})
        t["start"] = min(t["start"], r["Timestamp"])
        t["end"] = max(t["end"], r["Timestamp"] + dt.timedelta(microseconds=r["Duration"] / 1000))
        t["cost"] += r["CostTotal"] or 0.0
    return {k: v for k, v in traces.items() if SINCE <= v["start"] < UNTIL}


NO_FILTERS = {"tenant": "", "service": "", "model": "", "tool": "", "errors_only": 0, "min_cost": 0.0,
              "min_duration_ms": 0.0, "span_text": "", "offset": 0}


def test_most_expensive_traces(store: Store) -> None:
    traces = _traces()
    expected = sorted(traces, key=lambda k: (-round(traces[k]["cost"], 6), k))[:5]
    rows = run(store, "traces", **NO_FILTERS, order_by="cost_usd", limit=5)
    assert [r[0] for r in rows] == expected
    assert [r[7] for r in rows] == pytest.approx([traces[k]["cost"] for k in expected], abs=2e-6)


def test_slowest_traces(store: Store) -> None:
    traces = _traces()
    duration = {k: (v["end"] - v["start"]).total_seconds() * 1e3 for k, v in traces.items()}
    expected = sorted(duration, key=lambda k: (-duration[k], k))[:7]
    rows = run(store, "traces", **NO_FILTERS, order_by="duration_ms", limit=7)
    assert [r[0] for r in rows] == expected
    assert [r[3] for r in rows] == pytest.approx([duration[k] for k in expected], abs=2e-3)


def test_usage_by_model_matches_the_detail_queries(store: Store) -> None:
    usage = {r[0]: r for r in run(store, "usage", group_by="Model", tenant="", service="", model="")}
    latency = {r[0]: r[2] for r in run(store, "latency_by_model")}
    assert usage.keys() == latency.keys()
    for model, row in usage.items():
        assert row[8] == pytest.approx(latency[model], abs=0.06)


@pytest.mark.parametrize("params, message", [
    pytest.param({"group_by": "Model; DROP TABLE spans", "tenant": "", "service": "", "model": ""}, "not a column name", id="identifier"),
    pytest.param({"group_by": "Model"}, "needs parameter", id="missing"),
    pytest.param({"group_by": "Model", "tenant": "", "service": "", "model": "", "since": "yesterday"}, "expected a datetime", id="datetime"),
])
def test_bad_query_parameters_are_refused(params: dict[str, Any], message: str) -> None:
    params.setdefault("since", SINCE)
    params.setdefault("until", UNTIL)
    with pytest.raises(QueryParameterError, match=message):
        render("usage", **params)


def test_string_parameters_cannot_escape_their_literal(store: Store) -> None:
    for text in ("it's", "back\\slash'", "\\'; SELECT 1 --"):
        assert store.query_rows(f"SELECT {quote(text)}") == [(text,)]



@pytest.mark.parametrize("filters", [
    pytest.param({}, id="none"),
    pytest.param({"tenant": "acme"}, id="tenant"),
    pytest.param({"service": "search"}, id="service"),
    pytest.param({"model": "gpt-4o-2024-08-06"}, id="model"),
    pytest.param({"tool": "sql"}, id="tool"),
    pytest.param({"errors_only": 1}, id="errors"),
    pytest.param({"min_cost": 0.02}, id="min-cost"),
    pytest.param({"min_duration_ms": 900.0}, id="min-duration"),
    pytest.param({"tenant": "globex", "errors_only": 1, "min_cost": 0.005}, id="combined"),
])
def test_traces_filters(store: Store, filters: dict[str, Any]) -> None:
    params = {**NO_FILTERS, "order_by": "cost_usd", "limit": 1000, **filters}
    traces: dict[str, dict[str, Any]] = {}
    for r in ROWS:
        t = traces.setdefault(r["TraceId"], {"rows": [], "tenant": r["TenantId"]})
        t["rows"].append(r)
    expected = set()
    for trace_id, t in traces.items():
        rows = t["rows"]
        start = min(r["Timestamp"] for r in rows)
        end = max(r["Timestamp"] + dt.timedelta(microseconds=r["Duration"] / 1000) for r in rows)
        if not SINCE <= start < UNTIL:
            continue
        cost = sum(r["CostTotal"] or 0 for r in rows)
        checks = [
            not params["tenant"] or t["tenant"] == params["tenant"],
            not params["service"] or any(r["ServiceName"] == params["service"] for r in rows),
            not params["model"] or any(r["Model"] == params["model"] for r in rows),
            not params["tool"] or any(r["ToolName"] == params["tool"] for r in rows),
            not params["errors_only"] or any(r["StatusCode"] == "Error" or r["ErrorType"] for r in rows),
            cost >= params["min_cost"],
            (end - start).total_seconds() * 1e3 >= params["min_duration_ms"],
        ]
        if all(checks):
            expected.add(trace_id)
    got = run(store, "traces", **params)
    assert {r[0] for r in got} == expected
    assert filters == {} or len(expected) < len(_traces())  # each filter really filters this data set
    costs = [r[7] for r in got]
    assert costs == sorted(costs, reverse=True)
