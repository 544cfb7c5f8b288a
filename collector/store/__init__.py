"""The store: one URL picks the embedded engine or a ClickHouse server (backends.py), then the same client,
migrations and retention serve both."""

from spanhouse.collector.store.client import InsertLane, Store
from spanhouse.collector.store.errors import StoreBusyError, StoreError, split_statements, sql_file
from spanhouse.collector.store.location import StoreLocation
from spanhouse.collector.store.migrations import RETENTION_TIME_EXPR, available_migrations

__all__ = ["RETENTION_TIME_EXPR", "InsertLane", "Store", "StoreBusyError", "StoreError", "StoreLocation",
           "available_migrations", "split_statements", "sql_file"]
