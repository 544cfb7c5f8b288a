"""Back up and restore an embedded store with the engine's own BACKUP and RESTORE.

The engine writes a backup only under a path its configuration allows (`backups.allowed_path`), and
reads its configuration when the first connection of a process starts it. So both run in a process of
their own (`spanhouse backup`, `spanhouse restore`) that starts the engine on the store with a
configuration allowing the backup's folder, while no collector holds the store (chDB admits one process
per store directory). A backup is one new folder (this engine is built without zip archives): the whole
database, tables, views and materialized views, with the record of applied migrations.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from spanhouse.collector.store.backends import _held_by_other_process
from spanhouse.collector.store.errors import StoreBusyError, StoreError
from spanhouse.collector.store.location import StoreLocation

DATABASE = "default"


def _engine(store_dir: Path, backup_dir: Path, workdir: Path) -> Any:
    """The engine on `store_dir`, started in this process with `backup_dir` as the allowed backup path."""
    import chdb

    config = workdir / "backups.xml"
    config.write_text(f"<clickhouse><backups><allowed_path>{escape(str(backup_dir))}/</allowed_path>"
                      "</backups></clickhouse>", encoding="utf-8")
    return chdb.connect(f"{store_dir}?config-file={config}")


def _embedded_path(store_url: str) -> Path:
    location = StoreLocation.parse(store_url)
    if not location.embedded or location.path is None:
        raise StoreError(f"{location.redacted()} is a ClickHouse server: back it up with the server's own BACKUP "
                         "(docs/operations.md)")
    return location.path


def _check_free(path: Path) -> None:
    if _held_by_other_process(path):
        raise StoreBusyError(f"embedded store {path} is in use by another process (a running collector?): stop it "
                             "first; the engine admits one process per store")


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def backup(store_url: str, destination: Path) -> int:
    """Write the embedded store at `store_url` into the new folder `destination`; returns rows in `spans`."""
    path = _embedded_path(store_url)
    if not path.is_dir():
        raise StoreError(f"no store at {path} (the directory does not exist)")
    destination = destination.expanduser().resolve()
    if destination.exists():
        raise StoreError(f"{destination} exists: a backup goes to a new folder")
    if not destination.parent.is_dir():
        raise StoreError(f"{destination.parent} is not a directory")
    _check_free(path)
    with tempfile.TemporaryDirectory(prefix="spanhouse-backup-") as workdir:
        engine = _engine(path, destination.parent, Path(workdir))
        try:
            engine.query(f"BACKUP DATABASE {DATABASE} TO File({_quoted(str(destination))})")
            return _spans(engine)
        finally:
            engine.close()


def restore(source: Path, store_url: str) -> int:
    """Restore the backup folder `source` into a new embedded store at `store_url`; returns rows in `spans`."""
    path = _embedded_path(store_url)
    source = source.expanduser().resolve()
    if not source.exists():
        raise StoreError(f"no backup at {source}")
    if path.exists() and any(path.iterdir()):
        raise StoreError(f"{path} is not empty: restore into a new directory, then point store.url at it")
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="spanhouse-restore-") as workdir:
        engine = _engine(path, source.parent, Path(workdir))
        try:
            engine.query(f"RESTORE DATABASE {DATABASE} FROM File({_quoted(str(source))})")
            return _spans(engine)
        finally:
            engine.close()


def _spans(engine: Any) -> int:
    return int(str(engine.query(f"SELECT count() FROM {DATABASE}.spans", "CSV")).strip() or 0)
