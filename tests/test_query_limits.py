"""Every query of the endpoint runs under the engine's limits from query.*, and ingestion goes on meanwhile."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from spanhouse.collector.query import limits

from access_harness import export, http, span_request
from collector_harness import RunningCollector, start_collector

LIMITS = {"max_execution_s": 2.0, "max_memory_mib": 100, "max_result_rows": 1000, "max_result_mib": 1,
          "max_concurrent_per_caller": 1, "max_concurrent": 2}
ENDLESS = "SELECT count() FROM numbers(1e12)"


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = start_collector(tmp_path_factory.mktemp("limits") / "store",
                              query={"endpoint": "127.0.0.1:0", **LIMITS})
    try:
        yield running
    finally:
        running.collector.stop()


def wait_until(predicate: Callable[[], bool], deadline_s: float = 30.0) -> None:
    end = time.monotonic() + deadline_s
    while not predicate():
        assert time.monotonic() < end, "condition not met before the deadline"
        time.sleep(0.005)


OVER_A_LIMIT = [
    (ENDLESS, "query.max_execution_s = 2 s"),
    ("SELECT groupArray(number) FROM numbers(1e8)", "query.max_memory_mib = 100 MiB"),
    ("SELECT number FROM numbers(5000)", "query.max_result_rows = 1000 rows"),
    ("SELECT randomPrintableASCII(10000) FROM numbers(900)", "query.max_result_mib = 1 MiB"),
]


@pytest.mark.parametrize(("sql", "named"), OVER_A_LIMIT, ids=[named.split(" ")[0] for _, named in OVER_A_LIMIT])
def test_a_query_over_a_limit_is_stopped_with_the_option_named(limited: RunningCollector, sql: str,
                                                               named: str) -> None:
    status, body = http(limited.query_endpoint, "/query", sql)
    assert status == 422, body[:300]
    assert named in body, body


def test_ingestion_answers_while_a_query_runs_into_the_time_limit(limited: RunningCollector) -> None:
    policy = limited.collector.query_server._server.policy
    answer: dict[str, tuple[int, str]] = {}
    heavy = threading.Thread(target=lambda: answer.setdefault("heavy", http(limited.query_endpoint, "/query", ENDLESS)))
    heavy.start()
    wait_until(lambda: policy.slots.running() == 1)  # the heavy query holds its slot: it is running
    export(limited.grpc_endpoint, span_request("during-heavy-query", 3))  # returns only once accepted
    status, body = http(limited.query_endpoint, "/query", "SELECT 1")  # another caller? same keyless one: 429
    assert status == 429 and "query.max_concurrent_per_caller" in body, body
    still_running = heavy.is_alive()
    limited.flush()
    rows = limited.collector.store.query_rows("SELECT count() FROM spans WHERE ServiceName = 'during-heavy-query'")
    assert still_running, "the heavy query ended before ingestion was checked; the test proves nothing"
    heavy.join(60)
    assert answer["heavy"][0] == 422 and "query.max_execution_s" in answer["heavy"][1], answer
    assert rows == [(3,)]
    assert http(limited.query_endpoint, "/query", "SELECT 1")[0] == 200  # the slot was given back


def test_slots_bound_each_caller_and_the_total() -> None:
    slots = limits.CallerSlots(per_caller=1, total=2)
    with slots.hold("tenant:a"):
        with pytest.raises(limits.TooBusy, match="query.max_concurrent_per_caller"):
            with slots.hold("tenant:a"):
                pass
        with slots.hold("tenant:b"):
            with pytest.raises(limits.TooBusy, match=r"query.max_concurrent\)"):
                with slots.hold("tenant:c"):
                    pass
    assert slots.running() == 0


ENGINE_REFUSES = [
    "SELECT count() FROM numbers(10) SETTINGS max_execution_time = 1000",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM remote('127.0.0.1:9', system.one)",
    "SELECT * FROM executable('id', 'TSV', 'x String')",
]


@pytest.mark.parametrize("sql", ENGINE_REFUSES)
def test_the_engine_itself_refuses_when_the_syntax_check_is_skipped(limited: RunningCollector, sql: str) -> None:
    """The second layer: the query's own connection is readonly=1, so even SQL that got past the
    syntax-tree check could neither change a limit nor reach the host."""
    store = limited.collector.store
    cfg = limited.collector.config.query
    with pytest.raises(Exception) as raised:
        limits.run_read(store, sql, "JSONCompact", limits.engine_settings(cfg), engine_readonly=True)
    explained = limits.explain_limit(raised.value, cfg)
    assert isinstance(explained, limits.LimitExceeded) and "read-only" in str(explained), raised.value
