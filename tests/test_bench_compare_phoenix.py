"""bench/compare_phoenix.py's own logic: payload frames, the Phoenix side's result, counting and waiting.

Running Phoenix itself is the benchmark's job (a minute or more), not the suite's.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import compare_phoenix as cp


def test_payload_frames_round_trip(tmp_path: Path) -> None:
    payloads = [b"\x0a\x00" * 300, b"", b"x", bytes(range(256)) * 40]
    path = tmp_path / "frames.bin"
    cp.write_frames(path, payloads)
    assert cp.read_frames(path) == payloads


@pytest.mark.parametrize("cut", [2, 4 + 100])  # inside a header, inside a body
def test_truncated_frames_are_an_error_naming_the_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "frames.bin"
    cp.write_frames(path, [b"a" * 10, b"b" * 200])
    data = path.read_bytes()
    path.write_bytes(data[:14 + cut])
    with pytest.raises(ValueError, match="frames.bin"):
        cp.read_frames(path)


def test_result_is_the_last_marked_line() -> None:
    out = "\n".join(["noise", cp.RESULT_PREFIX + '{"stored": 1}', "more noise", cp.RESULT_PREFIX + '{"stored": 2}'])
    assert cp.parse_result(out) == {"stored": 2}


def test_missing_result_shows_what_the_side_printed() -> None:
    with pytest.raises(ValueError, match="Traceback: boom"):
        cp.parse_result("starting\nTraceback: boom\n")


def test_phoenix_venv_lives_in_the_user_cache() -> None:
    assert cp.default_phoenix_venv({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == Path("/c/spanhouse/bench-phoenix")
    assert cp.default_phoenix_venv({"HOME": "/h"}) == Path("/h/.cache/spanhouse/bench-phoenix")


def test_span_count_is_zero_until_phoenix_made_its_table(tmp_path: Path) -> None:
    db = tmp_path / "phoenix.db"
    assert cp.sqlite_span_count(db) == 0
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE projects (id INTEGER)")
    conn.commit()
    assert cp.sqlite_span_count(db) == 0
    conn.execute("CREATE TABLE spans (id INTEGER, span_id TEXT)")
    conn.executemany("INSERT INTO spans VALUES (?, ?)", [(i, f"s{i}") for i in range(3)])
    conn.commit()
    conn.close()
    assert cp.sqlite_span_count(db) == 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def test_wait_returns_when_the_count_is_reached() -> None:
    clock = FakeClock()
    counts = iter([0, 100, 900, 1024, 2000])
    n, t = cp.wait_for_count(lambda: next(counts), 1024, deadline=60, poll_s=0.5, clock=clock, sleep=clock.sleep)
    assert (n, t) == (1024, 1.5)


def test_wait_gives_up_at_the_deadline_with_the_last_count() -> None:
    clock = FakeClock()
    n, t = cp.wait_for_count(lambda: 7, 1024, deadline=3.2, poll_s=1.0, clock=clock, sleep=clock.sleep)
    assert (n, t) == (7, 3.2)


@pytest.mark.parametrize("flag", ["--spans", "--phoenix-spans"])
def test_shares_smaller_than_one_request_are_refused(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cp.parse_args([flag, "100"])
    assert exc.value.code == 2
    assert f"{flag} must be at least 512" in capsys.readouterr().err
