"""`spanhouse backup` and `spanhouse restore`: the engine's own BACKUP and RESTORE of the embedded store.

Every step runs in a process of its own, as a user runs them (the engine admits one store per process):
a collector ingests spans and stops, the store is backed up, changed, and restored into a new directory,
whose tables, views and answers equal the store's at backup time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from access_harness import export, span_request
from collector_process import CollectorProcess, clean_env

# A query a user would run, whose answer must be the same after a restore; and the views and record.
CHECKS = [
    "SELECT ServiceName, count(), groupArraySorted(100)(SpanId) FROM spans GROUP BY ServiceName ORDER BY 1",
    "SELECT count() FROM genai_calls",
    "SELECT count() FROM otel_traces",
    "SELECT count() FROM spanhouse_migrations",
]


def spanhouse(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spanhouse.collector.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=clean_env(), timeout=180)


def answers(store: Path, cwd: Path) -> list[object]:
    out = []
    for sql in CHECKS:
        done = spanhouse("query", "--store", f"chdb://{store}", "--query-endpoint", "", "--quiet", "--format",
                         "json", sql, cwd=cwd)
        assert done.returncode == 0, done.stderr
        out.append(json.loads(done.stdout))
    return out


def ingest(store: Path, service: str, count: int) -> None:
    proc = CollectorProcess(store)
    try:
        response = export(proc.grpc_endpoint, span_request(service, count))
        assert not response.HasField("partial_success"), response
    finally:
        assert proc.terminate() == 0, proc.stderr()  # SIGTERM writes everything accepted
        proc.stop()


def test_backup_then_restore_into_a_new_store_gives_the_same_answers(tmp_path: Path) -> None:
    store, restored, archive = tmp_path / "store", tmp_path / "restored", tmp_path / "backups" / "2026-12-04"
    archive.parent.mkdir()
    ingest(store, "checkout", 20)
    before = answers(store, tmp_path)

    done = spanhouse("backup", "--store", f"chdb://{store}", str(archive), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"spanhouse backup: chdb://{store} -> {archive} (20 spans)"
    assert archive.is_dir()

    ingest(store, "after-backup", 5)  # work after the backup, which the restored store must not have
    assert answers(store, tmp_path) != before

    done = spanhouse("restore", "--store", f"chdb://{restored}", str(archive), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"spanhouse restore: {archive} -> chdb://{restored} (20 spans)"
    assert answers(restored, tmp_path) == before

    ingest(restored, "after-restore", 3)  # the restored store takes new spans
    assert [row["ServiceName"] for row in answers(restored, tmp_path)[0]] == ["after-restore", "checkout"]


def make_store(path: Path) -> None:
    """An empty migrated embedded store at `path`, made in a process of its own."""
    code = ("import sys; from spanhouse.collector.store import Store; s = Store.open(sys.argv[1]); s.migrate(); "
            "s.close()")
    subprocess.run([sys.executable, "-c", code, f"chdb://{path}"], check=True, timeout=120, env=clean_env())


def test_refusals_say_what_to_do(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)
    existing = tmp_path / "taken"
    existing.mkdir()
    cases = [
        (("backup", "--store", f"chdb://{store}", str(existing)), "exists: a backup goes to a new folder"),
        (("backup", "--store", f"chdb://{tmp_path / 'nowhere'}", str(tmp_path / "b")), "no store at"),
        (("restore", "--store", f"chdb://{store}", str(existing)), "is not empty: restore into a new directory"),
        (("restore", "--store", f"chdb://{tmp_path / 'new'}", str(tmp_path / "missing")), "no backup at"),
        (("backup", "--store", "http://u:p@127.0.0.1:1/db", str(tmp_path / "c")), "is a ClickHouse server"),
    ]
    for args, message in cases:
        done = spanhouse(*args, cwd=tmp_path)
        assert done.returncode == 1 and message in done.stderr, (args, done.stderr)
    # A running collector holds the store: the backup is refused, and nothing is written.
    proc = CollectorProcess(store)
    try:
        done = spanhouse("backup", "--store", f"chdb://{store}", str(tmp_path / "busy"), cwd=tmp_path)
        assert done.returncode == 1 and "in use by another process" in done.stderr, done.stderr
        assert not (tmp_path / "busy").exists()
    finally:
        proc.stop()  # this test is about the refusal; how the collector stops is tested elsewhere
