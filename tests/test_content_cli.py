"""`spanhouse query` on an embedded store it opens itself: an admin's SQL on the archived content is logged with
the path `cli`, like the query endpoint's (each step a process of its own: one store per process)."""

from __future__ import annotations

from pathlib import Path

from collector_harness import free_port
from test_cli_read import make_store, spanhouse


def test_a_direct_read_of_the_archive_is_logged_as_cli(tmp_path: Path) -> None:
    url = make_store(tmp_path / "store")
    args = ["--store", url, "--query-endpoint", f"127.0.0.1:{free_port()}", "--format", "csv", "--quiet"]
    plain = spanhouse("query", *args, "SELECT count() FROM spans", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    read = spanhouse("query", *args, "SELECT count() FROM genai_content", cwd=tmp_path)
    assert read.returncode == 0, read.stderr
    logged = spanhouse("query", *args, "SELECT Path, Admin, Statement FROM genai_content_access", cwd=tmp_path)
    assert logged.returncode == 0, logged.stderr
    lines = logged.stdout.splitlines()
    # the header, then one row: the read of genai_content, not the plain one (nor the read of the log itself)
    assert len(lines) == 2 and lines[1].startswith('"cli",1,') and "genai_content" in lines[1], logged.stdout
