"""Writer: batches accepted spans by size and age and inserts them into ClickHouse."""

from spanhouse.collector.writer.batcher import BatchingWriter, WriterFull
from spanhouse.collector.writer.clickhouse import ClickHouseSink, InMemorySink

__all__ = ["BatchingWriter", "ClickHouseSink", "InMemorySink", "WriterFull"]
