"""A new user's first minutes: `spanhouse collector --demo` prints the web UI's address; in a real browser they
find the demo traces, filter to the expensive ones, open one and read a call's conversation and cost.

With SPANHOUSE_UI_SCREENSHOTS=DIR set, the test also saves the screenshots docs/ui.md shows (light and dark at
1280 px, one at phone width) into DIR.
"""

from __future__ import annotations

import os
import queue
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector_process import CollectorProcess
from ui_helpers import browser, new_page

UI_LINE = re.compile(r"^spanhouse collector: web UI on (http://\S+/ui/)$")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    proc = CollectorProcess(tmp_path_factory.mktemp("demo") / "store", query_endpoint="127.0.0.1:0",
                            extra_args=("--demo", "--demo-traces", "60"))
    try:
        url, stored = "", False
        while not stored:  # the UI line comes at start; the demo says when its traffic is stored
            try:
                line = proc.lines.get(timeout=120)
            except queue.Empty:
                raise AssertionError(f"the demo did not finish: {proc.stderr()}") from None
            assert line is not None, f"collector exited: {proc.stderr()}"
            match = UI_LINE.match(line.strip())
            url = match.group(1) if match else url
            stored = line.startswith("Open the demo traces in the web UI:")
            if stored:
                assert line.strip().endswith(url)
        assert url == f"http://{proc.query_endpoint}/ui/"
        yield {"url": url, "proc": proc}
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    yield from browser()


def test_a_new_user_finds_the_demo_filters_to_expensive_traces_and_reads_a_call(demo: dict[str, Any],
                                                                               chromium: Any) -> None:
    page = new_page(chromium)
    page.goto(demo["url"])  # no keys configured: loopback shows everything, no key form
    page.wait_for_selector("tr[data-trace-id]")
    costs = [float(t.lstrip("$")) for t in page.locator("td[data-col=cost]").all_inner_texts()]
    assert len(costs) == 50 and page.is_enabled("nav.pager button >> nth=1")  # 60 traces: a second page
    threshold = sorted(costs)[-5]
    with page.expect_response(lambda r: "/ui/api/traces" in r.url and "min_cost=" in r.url):
        page.fill("input[name=min_cost]", str(threshold))
        page.keyboard.press("Tab")
    page.wait_for_function("() => !document.querySelector('.results').classList.contains('busy')")
    page.select_option("select[name=sort]", "cost")
    page.wait_for_function("() => new URL(location).searchParams.get('sort') === 'cost'")
    page.wait_for_function("() => !document.querySelector('.results').classList.contains('busy')")
    expensive = [float(t.lstrip("$")) for t in page.locator("td[data-col=cost]").all_inner_texts()]
    assert expensive and all(c >= threshold for c in expensive) and expensive == sorted(expensive, reverse=True)
    page.click("tr[data-trace-id] >> nth=0")
    page.wait_for_selector(".msg")
    detail = page.locator("#span-detail")
    assert detail.locator("h2").inner_text().startswith("chat ")
    assert detail.locator(".msg.role-user pre").first.inner_text().strip()
    assert detail.locator(".msg.role-system").count() == 1
    assert detail.locator("tr[data-kind=total] td >> nth=1").inner_text().startswith("$")
    assert float(page.inner_text("[data-total=cost] .card-value").lstrip("$")) == pytest.approx(expensive[0], rel=2e-3)
    assert page.errors == []
    shots = os.environ.get("SPANHOUSE_UI_SCREENSHOTS")
    if shots:
        save_screenshots(chromium, demo["url"], Path(shots))


def save_screenshots(chromium: Any, url: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page = new_page(chromium, scheme=scheme)
        for name, path in (("traces", "?sort=cost"), ("usage", "usage"), ("sessions", "sessions"),
                           ("alerts", "alerts")):
            page.goto(url + path)
            page.wait_for_selector(".results :is(table, .empty)")
            page.wait_for_timeout(300)  # charts finish drawing
            page.screenshot(path=str(folder / f"{name}-{scheme}.png"))
        page.goto(url + "?sort=cost")
        page.click("tr[data-trace-id] >> nth=0")
        page.wait_for_selector(".msg")
        page.screenshot(path=str(folder / f"trace-{scheme}.png"))
    phone = new_page(chromium, width=375, height=800)
    phone.goto(url)
    phone.wait_for_selector("tr[data-trace-id]")
    phone.screenshot(path=str(folder / "traces-phone.png"))
    phone.goto(url + "?sort=cost")
    phone.click("tr[data-trace-id] >> nth=0")
    phone.wait_for_selector(".msg")
    phone.screenshot(path=str(folder / "trace-phone.png"), full_page=False)
