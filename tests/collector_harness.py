"""A real collector (real gRPC server, embedded ClickHouse) on free ports, for tests in any folder."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spanhouse.collector import config as config_mod
from spanhouse.collector.service import Collector


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningCollector:
    collector: Collector
    grpc_endpoint: str  # HOST:PORT, insecure OTLP/gRPC
    query_endpoint: str
    store_url: str

    def flush(self) -> None:
        assert self.collector.flush(60.0), "writer did not flush within 60 s"

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of `sql` after everything accepted so far has been written."""
        self.flush()
        return self.collector.store.query_rows(sql, parameters)


def start_memory_collector(data_dir: Path, sink: Any) -> Collector:
    """A started collector writing to `sink`, with no spool and room for 3 spans in memory (backpressure tests)."""
    cfg = config_mod.load(None, environ={}, overrides={
        "store": {"url": f"chdb://{data_dir}"},
        "receiver": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
        "query": {"endpoint": ""},
        "writer": {"max_batch_rows": 3, "max_pending_rows": 3, "max_wait_s": 0.05},
        "spool": {"enabled": False},  # memory is the only buffer: its bound is the backpressure
    })
    collector = Collector(cfg, sink=sink)
    collector.start()
    return collector


def start_collector(data_dir: Path, sink_factory: Any = None, **overrides: Any) -> RunningCollector:
    """A started collector on `data_dir`; `sink_factory(store)` may wrap the ClickHouse sink (fault tests)."""
    # Port 0 everywhere: each server binds a free port itself (no window for another process to take it).
    tree: dict[str, Any] = {
        "store": {"url": f"chdb://{data_dir}"},
        "receiver": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
        "query": {"endpoint": "127.0.0.1:0"},
        "writer": {"max_wait_s": 0.2},
    }
    for section, values in overrides.items():
        tree.setdefault(section, {}).update(values)
    cfg = config_mod.load(None, environ={}, overrides=tree)
    collector = Collector(cfg, sink_factory=sink_factory)
    collector.start()
    query = collector.query_server
    return RunningCollector(collector, f"127.0.0.1:{collector.grpc_port}",
                            f"127.0.0.1:{query.port}" if query is not None else "", cfg.store.url)
