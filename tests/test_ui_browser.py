"""The web UI in a real browser, against a real collector with API keys: traces sent through the SDK's gRPC
exporter per tenant, every page opened, every filter applied, a trace and a span opened, and what the pages show
compared with the CLI's answers (`spanhouse traces`, `usage`, `trace`) for the same store. Also: tenant keys see
only their tenant, script-bearing data stays text, the API refuses without a key, the security headers."""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from access_harness import Key, auth_overrides
from collector_harness import start_collector
from ui_helpers import XSS_NAME, XSS_TEXT, agent_turn, browser, cli_json, cli_text, new_page, send_traces

ADMIN = Key.new("ops", admin=True)
ACME = Key.new("acme")
GLOBEX = Key.new("globex")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    running = start_collector(tmp_path_factory.mktemp("ui") / "store", **auth_overrides(ADMIN, ACME, GLOBEX))
    ids: dict[str, str] = {}

    def acme(tracer: Any) -> None:
        ids["plan"] = agent_turn(tracer, name="plan trip", model="gpt-4o", input_tokens=5000, output_tokens=800,
                                 cached=1000, tools=("search_docs",), conversation="conv-a", ago_s=300,
                                 messages=("Plan a trip to Lisbon", "Day 1: Alfama."))
        ids["summary"] = agent_turn(tracer, name="summarize notes", model="gpt-4o-mini", input_tokens=1200,
                                    output_tokens=200, conversation="conv-a", ago_s=240)
        ids["xss"] = agent_turn(tracer, name=XSS_NAME, model="gpt-4o-mini", input_tokens=300, output_tokens=50,
                                messages=(XSS_TEXT, XSS_TEXT), ago_s=200)
        ids["error"] = agent_turn(tracer, name="lookup order", model="gpt-4o", input_tokens=2000, output_tokens=100,
                                  tools=("get_order_status",), error=True, ago_s=150)
        ids["slow"] = agent_turn(tracer, name="slow report", model="gpt-4o-mini", input_tokens=800, output_tokens=300,
                                 duration_ms=3000, ago_s=120)
        ids["cheap"] = agent_turn(tracer, name="cheap ping", model="gpt-4o-mini", input_tokens=10, output_tokens=5,
                                  ago_s=90)

    def globex(tracer: Any) -> None:
        ids["globex"] = agent_turn(tracer, name="globex secret plan", model="gpt-4o", input_tokens=100,
                                   output_tokens=10, ago_s=100)

    send_traces(running.grpc_endpoint, ACME.key, acme, "acme-app")
    send_traces(running.grpc_endpoint, GLOBEX.key, globex, "globex-app")
    running.flush()
    # An alert episode that resolved and one still firing, as the alert engine writes them.
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    running.collector.store.command(
        "INSERT INTO alerts (TenantId, Timestamp, Fingerprint, AlertName, Event, Status, Severity, StartsAt, EndsAt, "
        "Summary) VALUES "
        f"('acme', '{now - dt.timedelta(minutes=30):%Y-%m-%d %H:%M:%S}', 'f1', 'CostSpike', 'fired', 'resolved', "
        f"'warning', '{now - dt.timedelta(minutes=40):%Y-%m-%d %H:%M:%S}', '{now - dt.timedelta(minutes=30):%Y-%m-%d %H:%M:%S}', "
        "'cost doubled'), "
        f"('acme', '{now - dt.timedelta(minutes=50):%Y-%m-%d %H:%M:%S}', 'f2', 'ErrorSpike', 'fired', 'firing', "
        f"'critical', '{now - dt.timedelta(minutes=50):%Y-%m-%d %H:%M:%S}', NULL, 'errors up')")
    try:
        yield {"running": running, "ids": ids, "base": f"http://{running.query_endpoint}"}
    finally:
        running.collector.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from browser()


def get(url: str, key: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def signed_in(chromium: Any, base: str, key: Key, path: str = "/ui/", **kw: Any) -> Any:
    """A page at `path` after entering `key` in the key form (kept in sessionStorage for the tab)."""
    page = new_page(chromium, **kw)
    page.goto(base + path)
    page.fill("#apikey", key.key)
    page.press("#apikey", "Enter")
    page.wait_for_selector("#who:text-matches('.+')")
    return page


def shown_trace_ids(page: Any) -> list[str]:
    page.wait_for_function("() => !document.querySelector('.results').classList.contains('busy')")
    return page.eval_on_selector_all("tr[data-trace-id]", "rows => rows.map(r => r.dataset.traceId)")


def cli_trace_ids(ui: dict[str, Any], *options: str, key: Key = ADMIN) -> list[str]:
    rows = cli_json("traces", "--since", "1h", "--sort", "start", "--limit", "50", *options,
                    endpoint=ui["running"].query_endpoint, key=key.key)
    return [row["trace_id"] for row in rows]


def test_pages_need_no_key_but_the_api_does_and_every_reply_has_the_security_headers(ui: dict[str, Any]) -> None:
    for path in ("/ui/", "/ui/usage", "/ui/sessions", "/ui/alerts", f"/ui/trace/{ui['ids']['plan']}",
                 "/ui/static/app.js", "/ui/api/traces"):
        status, headers, body = get(ui["base"] + path)
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "unsafe-inline" not in headers["Content-Security-Policy"]
        assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"], headers["Referrer-Policy"]) == \
            ("DENY", "nosniff", "no-referrer")
        if path.startswith("/ui/api/"):
            assert status == 401 and "API key" in json.loads(body)["error"]
        else:
            assert status == 200 and ui["ids"]["plan"].encode() not in body  # shells hold no data
    assert get(ui["base"] + "/ui/api/traces", key="shk_not_a_key")[0] == 401
    assert b"<script>" not in get(ui["base"] + "/ui/")[2]  # scripts come from files only (CSP: no inline)
    assert get(ui["base"] + "/ui/static/../../config.py")[0] == 404


def test_a_tenant_key_sees_only_its_tenant_through_the_api(ui: dict[str, Any]) -> None:
    base, ids = ui["base"], ui["ids"]
    status, _, body = get(f"{base}/ui/api/traces?since=1h&tenant=globex", key=ACME.key)
    assert status == 200
    assert {t["tenant"] for t in json.loads(body)["traces"]} == {"acme"}
    assert get(f"{base}/ui/api/trace/{ids['globex']}", key=ACME.key)[0] == 404
    assert get(f"{base}/ui/api/trace/{ids['globex']}", key=GLOBEX.key)[0] == 200
    _, _, usage = get(f"{base}/ui/api/usage?since=1h&by=tenant", key=GLOBEX.key)
    assert [g["key"] for g in json.loads(usage)["groups"]] == ["globex"]
    # No caller-provided SQL anywhere: unknown parameters are ignored, bad values are refused by name.
    status, _, body = get(f"{base}/ui/api/traces?since=1h&sort=cost_usd;DROP", key=ADMIN.key)
    assert status == 400 and "sort" in json.loads(body)["error"]


def test_traces_tab_lists_what_spanhouse_traces_prints(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN)
    expected = cli_trace_ids(ui)
    assert shown_trace_ids(page) == expected and len(expected) == 7
    cli = {r["trace_id"]: r for r in cli_json("traces", "--since", "1h", "--limit", "50",
                                              endpoint=ui["running"].query_endpoint, key=ADMIN.key)}
    for trace_id in expected:
        row = page.locator(f"tr[data-trace-id='{trace_id}']")
        cost = float(row.locator("td[data-col=cost]").inner_text().lstrip("$"))
        assert cost == pytest.approx(cli[trace_id]["cost_usd"], rel=2e-3)
        assert row.locator("td[data-col=tenant]").inner_text() == cli[trace_id]["tenant"]
        assert row.locator("td[data-col=models]").inner_text() == cli[trace_id]["models"].replace(",", ", ")
    plan = page.locator(f"tr[data-trace-id='{ui['ids']['plan']}']")
    assert plan.locator("td[data-col=root]").inner_text() == "plan trip"
    assert plan.locator("td[data-col=spans]").inner_text() == "3"
    assert plan.locator("td[data-col=tools]").inner_text() == "search_docs"
    assert plan.locator("td[data-col=cached]").inner_text() == "1,000"
    assert page.errors == []


FILTERS = [  # (how the user sets it, the URL parameter it becomes, the CLI options that mean the same)
    pytest.param(lambda p: p.fill("input[name=service]", "globex-app"), "service=globex-app",
                 ("--service", "globex-app"), id="service"),
    pytest.param(lambda p: p.fill("input[name=model]", "gpt-4o"), "model=gpt-4o", ("--model", "gpt-4o"), id="model"),
    pytest.param(lambda p: p.fill("input[name=tool]", "search_docs"), "tool=search_docs", ("--tool", "search_docs"),
                 id="tool"),
    pytest.param(lambda p: p.fill("input[name=tenant]", "globex"), "tenant=globex", ("--tenant", "globex"),
                 id="tenant"),
    pytest.param(lambda p: p.check("input[name=errors]"), "errors=1", ("--errors",), id="errors"),
    pytest.param(lambda p: p.fill("input[name=min_cost]", "0.01"), "min_cost=0.01", ("--min-cost", "0.01"),
                 id="min-cost"),
    pytest.param(lambda p: p.fill("input[name=min_duration_ms]", "2000"), "min_duration_ms=2000",
                 ("--min-duration", "2000ms"), id="min-duration"),
    pytest.param(lambda p: p.fill("input[name=q]", "SUMMAR"), "q=SUMMAR", ("--span-name", "SUMMAR"), id="span-name"),
    pytest.param(lambda p: p.select_option("select[name=sort]", "cost"), "sort=cost", ("--sort", "cost"), id="sort"),
    pytest.param(lambda p: p.select_option("select[name=range]", "24h"), "since=24h", ("--since", "24h"),
                 id="range"),
]


@pytest.mark.parametrize("apply, param, options", FILTERS)
def test_each_filter_shows_what_the_cli_shows_and_lives_in_the_url(ui: dict[str, Any], chromium: Any, apply: Any,
                                                                   param: str, options: tuple[str, ...]) -> None:
    page = ui.setdefault("filter_page", None) or signed_in(chromium, ui["base"], ADMIN)
    ui["filter_page"] = page
    page.goto(ui["base"] + "/ui/")
    page.wait_for_selector("tr[data-trace-id]")
    everything = shown_trace_ids(page)
    with page.expect_response(lambda r: "/ui/api/traces" in r.url and param in r.url):
        apply(page)
        page.keyboard.press("Tab")
    shown = shown_trace_ids(page)
    assert param in page.url  # shareable: the filter is in the address
    assert shown == cli_trace_ids(ui, *options)
    if param not in ("since=24h", "sort=cost"):
        assert 0 < len(shown) < len(everything)  # the filter really filtered
    else:
        assert sorted(shown) == sorted(everything)
    page.goto(page.url)  # the shared URL shows the same view
    page.wait_for_selector("tr[data-trace-id]")
    assert shown_trace_ids(page) == shown


def test_custom_time_range_and_paging_controls(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN, "/ui/?since=1h")
    page.wait_for_selector("tr[data-trace-id]")
    page.select_option("select[name=range]", "custom")
    start = (dt.datetime.now() - dt.timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M")  # local time, as the input
    with page.expect_response(lambda r: "/ui/api/traces" in r.url and "since=20" in r.url):
        page.fill("input[name=since]", start)
        page.keyboard.press("Tab")
    shown = shown_trace_ids(page)
    assert ui["ids"]["plan"] not in shown and ui["ids"]["cheap"] in shown  # 5 min ago: outside; 1.5 min: inside
    assert page.is_disabled("nav.pager button >> nth=0") and page.is_disabled("nav.pager button >> nth=1")


def test_trace_page_shows_the_waterfall_totals_and_a_calls_conversation(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN)
    trace_id = ui["ids"]["plan"]
    page.click(f"tr[data-trace-id='{trace_id}'] td[data-col=models]")  # the row, not only its link
    page.wait_for_selector(".wf-row")
    assert page.url.endswith(f"/ui/trace/{trace_id}")
    header = cli_text("trace", trace_id, endpoint=ui["running"].query_endpoint, key=ADMIN.key).splitlines()[0]
    spans, cost = re.search(r": (\d+) spans, .* cost \$([0-9.]+)", header).groups()
    assert page.locator(".wf-row").count() == int(spans) == 3
    assert float(page.inner_text("[data-total=cost] .card-value").lstrip("$")) == pytest.approx(float(cost), rel=2e-3)
    assert page.inner_text("[data-total=input] .card-value") == "5,000"
    assert page.inner_text("[data-total=cached] .card-value") == "1,000"
    assert page.inner_text("#cli-form") == f"spanhouse trace {trace_id}"
    # The call with a conversation opens first; its tokens by kind and the messages as stored.
    detail = page.locator("#span-detail")
    assert detail.locator("h2").inner_text() == "chat gpt-4o"
    assert detail.locator("tr[data-kind=uncached] td >> nth=0").inner_text() == "4,000"
    assert detail.locator("tr[data-kind=cached] td >> nth=0").inner_text() == "1,000"
    assert detail.locator("tr[data-kind=output] td >> nth=0").inner_text() == "800"
    assert detail.locator(".msg.role-user pre").inner_text() == "Plan a trip to Lisbon"
    assert detail.locator(".msg.role-assistant pre").inner_text() == "Day 1: Alfama."
    page.click(".wf-row:has-text('execute_tool search_docs')")
    assert detail.locator("h2").inner_text() == "execute_tool search_docs"
    assert "gen_ai.tool.name" in detail.inner_text() and ".msg" not in detail.inner_html()
    page.click("#copy-id")  # the clipboard may be refused headless; the button must say something either way
    page.wait_for_function("() => document.querySelector('#copy-id').textContent !== 'Copy id'")
    assert page.errors == []


def test_errors_are_marked_in_the_list_and_the_waterfall(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN, f"/ui/trace/{ui['ids']['error']}")
    page.wait_for_selector(".wf-row")
    assert page.locator(".wf-bar.err").count() == 1 and page.locator(".err-mark").count() == 1
    assert page.inner_text("[data-total=errors] .card-value") == "1"


def test_script_in_stored_values_is_shown_as_text_and_never_runs(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN)
    row = page.locator(f"tr[data-trace-id='{ui['ids']['xss']}'] td[data-col=root]")
    assert row.inner_text() == XSS_NAME
    row.locator("a").click()
    page.wait_for_selector(".msg.role-user")
    assert page.locator(".wf-row .wf-name >> nth=0").inner_text().startswith(XSS_NAME)
    assert page.locator(".msg.role-user pre").inner_text() == XSS_TEXT
    page.hover(".msg.role-user pre")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src=x]").count() == 0 and page.locator("#main script").count() == 0
    assert page.errors == []


def test_a_tenant_key_sees_only_its_traces_and_cannot_open_anothers(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ACME)
    assert page.inner_text("#who") == "tenant acme"
    shown = shown_trace_ids(page)
    assert shown == cli_trace_ids(ui, key=ACME) and ui["ids"]["globex"] not in shown and len(shown) == 6
    assert page.locator("input[name=tenant]").count() == 0  # only admins pick a tenant
    page.goto(f"{ui['base']}/ui/trace/{ui['ids']['globex']}")
    page.wait_for_selector(".empty.error")
    assert "no spans found" in page.inner_text(".empty.error")
    assert "globex secret" not in page.content()
    page.click("#signout")
    page.wait_for_selector("#apikey")


def test_usage_tab_shows_spanhouse_usage_numbers_and_charts(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN, "/ui/usage")
    page.wait_for_selector("tr.usage-row")
    cli = cli_json("usage", "--since", "1h", endpoint=ui["running"].query_endpoint, key=ADMIN.key)
    shown = {r.get_attribute("data-key"): r for r in page.locator("tr.usage-row").all()}
    assert set(shown) == {r["model"] for r in cli}
    for row in cli:
        cells = shown[row["model"]]
        assert cells.locator("td[data-col=calls]").inner_text() == f"{row['calls']:,}"
        assert cells.locator("td[data-col=output]").inner_text() == f"{row['output_tokens']:,}"
        assert float(cells.locator("td[data-col=cost]").inner_text().lstrip("$")) == pytest.approx(row["cost_usd"],
                                                                                                   rel=2e-3)
    tools = cli_json("usage", "--by", "tool", "--since", "1h", endpoint=ui["running"].query_endpoint, key=ADMIN.key)
    assert {r.get_attribute("data-key"): int(r.locator("td[data-col=calls]").inner_text())
            for r in page.locator("tr.tool-row").all()} == {r["tool"]: r["calls"] for r in tools}
    for chart in ("#cost-chart", "#tokens-chart", "#calls-chart"):
        assert page.locator(f"{chart} canvas").count() == 1
    box = page.locator("#cost-chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 3, box["y"] + box["height"] / 2)  # the newest bucket
    legend = page.inner_text("#cost-chart .u-legend")
    assert "$" in legend  # numbers on hover
    with page.expect_response(lambda r: "/ui/api/usage" in r.url and "by=service" in r.url):
        page.select_option("select[name=by]", "service")
    page.wait_for_selector("tr.usage-row[data-key=acme-app]")
    by_service = cli_json("usage", "--by", "service", "--since", "1h", endpoint=ui["running"].query_endpoint,
                          key=ADMIN.key)
    assert sorted(r.get_attribute("data-key") for r in page.locator("tr.usage-row").all()) == \
        sorted(r["service"] for r in by_service)
    assert page.errors == []


def test_sessions_and_alerts_tabs(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ACME, "/ui/sessions")
    row = page.locator("tr[data-conversation=conv-a]")
    row.wait_for()
    assert row.locator("td[data-col=turns]").inner_text() == "2"
    links = row.locator("td[data-col=traces] a")
    assert sorted(a.get_attribute("href") for a in links.all()) == \
        sorted(f"/ui/trace/{ui['ids'][k]}" for k in ("plan", "summary"))
    links.first.click()
    page.wait_for_selector(".wf-row")
    page.goto(ui["base"] + "/ui/alerts?since=24h")
    page.wait_for_selector("tr[data-status]")
    assert [r.get_attribute("data-status") for r in page.locator("tr[data-status]").all()] == ["firing", "resolved"]
    assert page.inner_text("tr[data-status=firing] td[data-col=alertname]") == "ErrorSpike"
    assert page.errors == []


def test_phone_width_and_dark_theme_render(ui: dict[str, Any], chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN, width=375, height=800, scheme="dark")
    page.wait_for_selector("tr[data-trace-id]")
    # Nothing but the table scrolls sideways: the page itself fits the phone.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    page.click("#theme")
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != background
    assert page.evaluate("() => document.documentElement.dataset.theme") == "light"


def test_query_ui_false_serves_no_ui_path(ui: dict[str, Any]) -> None:
    """query.ui: false: the endpoint answers ClickHouse and /query as before, and 404 under /ui."""
    import copy

    from spanhouse.collector.query.server import QueryServer

    running = ui["running"].collector
    config = copy.deepcopy(running.config)
    config.query.ui = False

    class Served:  # the running collector, seen with the UI turned off
        store, metrics = running.store, running.metrics

        def __init__(self) -> None:
            self.config = config

        def counters(self) -> dict[str, int]:
            return running.counters()

        def flush(self, timeout_s: float = 30.0) -> bool:
            return running.flush(timeout_s)

    server = QueryServer(Served(), "127.0.0.1:0")
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert get(base + "/ui/")[0] == 404 and get(base + "/ui/api/traces", key=ADMIN.key)[0] == 404
        assert get(base + "/ping")[0] == 200
    finally:
        server.stop()


def test_usage_series_sum_to_spanhouse_usage_and_take_the_bucket_asked_for(ui: dict[str, Any]) -> None:
    base = ui["base"]
    cli = cli_json("usage", "--since", "24h", endpoint=ui["running"].query_endpoint, key=ADMIN.key)
    _, _, body = get(f"{base}/ui/api/usage?since=24h&per=hour", key=ADMIN.key)
    doc = json.loads(body)
    assert doc["bucket_s"] == 3600
    for field in ("calls", "errors", "input_tokens", "cached_tokens", "output_tokens"):
        assert sum(p[field] for p in doc["series"]) == sum(r[field] for r in cli), field
    for point in doc["series"]:  # each kind once: the uncached part is what cache reads and writes leave
        assert point["uncached_input_tokens"] == \
            point["input_tokens"] - point["cached_tokens"] - point["cache_write_tokens"]
        assert 0 <= point["reasoning_tokens"] <= point["output_tokens"]
    assert sum(p["cost_usd"] for p in doc["series"]) == pytest.approx(sum(r["cost_usd"] or 0 for r in cli))
    assert [(g["key"], g["calls"], g["cost_usd"]) for g in doc["groups"]] == \
        [(r["model"], r["calls"], r["cost_usd"]) for r in cli]
    _, _, body = get(f"{base}/ui/api/usage?since=7d&per=day", key=ADMIN.key)
    assert json.loads(body)["bucket_s"] == 86400
    _, _, body = get(f"{base}/ui/api/usage?since=30d&per=hour", key=ADMIN.key)  # 720 hours: too many points
    assert json.loads(body)["bucket_s"] == 6 * 3600


def test_an_empty_range_says_how_to_send_the_first_span_and_a_wrong_key_is_named(ui: dict[str, Any],
                                                                                   chromium: Any) -> None:
    page = signed_in(chromium, ui["base"], ADMIN, "/ui/?since=2020-01-01T00:00:00Z&until=2020-01-02T00:00:00Z")
    page.wait_for_selector(".empty")
    text = page.inner_text(".empty")
    assert "No traces in this time range yet" in text
    assert ui["running"].grpc_endpoint in text and "opentelemetry-instrument" in text
    assert page.input_value("input[name=since]").startswith("20")  # the custom range is shown as such
    other = new_page(chromium)
    other.goto(ui["base"] + "/ui/usage")
    other.fill("#apikey", "shk_wrong")
    other.press("#apikey", "Enter")
    other.wait_for_selector(".keyform .error")
    assert "API key not recognised" in other.inner_text(".keyform .error")
