"""After every poison value, a restart on the same store and spool, then a normal batch (its own module: the
embedded engine admits one store directory per process, and test_poison_values keeps one open)."""

from __future__ import annotations

import time
from typing import Any

from collector_harness import start_collector
from test_poison_values import POISON, TRANSPORTS, Answer, Span, Transports, stored_names


def test_after_every_poison_value_and_a_restart_a_normal_batch_is_queryable(tmp_path: Any) -> None:
    """Every poison value through every receiver, then a restart on the same store and spool: nothing is
    waiting in the spool, the writer failed nothing, and a normal batch is queryable as soon as it is flushed."""
    store_dir = tmp_path / "store"
    running = start_collector(store_dir)
    sent_normal: list[Span] = []
    try:
        transports = Transports(running)
        for param in POISON:
            start, end, _reason = param.values
            for transport in TRANSPORTS:
                normal = Span("normal", time.time_ns(), time.time_ns() + 1)
                answer = transports.send(transport, [normal, Span("poison", start, end)])
                assert (answer.status, answer.rejected) == (200, 1), answer.message
                sent_normal.append(normal)
        transports.channel.close()
        running.flush()
    finally:
        assert running.collector.stop() == 0
    again = start_collector(store_dir)
    try:
        counters = again.collector.counters()
        assert counters["writer_spans_pending"] == 0  # nothing left behind to replay
        transports = Transports(again)
        after = Span("after-restart", time.time_ns(), time.time_ns() + 1)
        assert transports.send("grpc", [after]) == Answer(200, 0, "")
        transports.channel.close()
        assert stored_names(again, *sent_normal, after).count("normal") == len(sent_normal)
        assert "after-restart" in stored_names(again, after)
        assert again.collector.counters()["writer_write_errors_total"] == 0
    finally:
        again.collector.stop()
