"""`spanhouse collector --demo` on a collector with API keys: the demo sends SPANHOUSE_API_KEY (the read
commands' key), and without one it says what to set instead of claiming its traffic was stored."""

from __future__ import annotations

import queue
from pathlib import Path

import pytest
import yaml

from access_harness import Key
from collector_process import CollectorProcess

ACME = Key.new("acme")


def demo_lines(tmp_path: Path, env: dict[str, str]) -> tuple[list[str], CollectorProcess]:
    """The collector's stdout up to the demo's last line, and the process (still running)."""
    config = tmp_path / "spanhouse.yaml"
    config.write_text(yaml.safe_dump({"auth": {"keys": [ACME.config()]}}))
    proc = CollectorProcess(tmp_path / "store", query_endpoint="127.0.0.1:0", env=env,
                            extra_args=("--config", str(config), "--demo", "--demo-traces", "10"))
    lines: list[str] = []
    while not lines or "Press Ctrl-C to stop" not in lines[-1]:
        try:
            line = proc.lines.get(timeout=120)
        except queue.Empty:
            proc.stop()
            raise AssertionError(f"the demo did not finish: {lines} {proc.stderr()}") from None
        assert line is not None, f"collector exited: {proc.stderr()}"
        lines.append(line.rstrip("\n"))
    return lines, proc


@pytest.mark.parametrize("with_key", [True, False], ids=["SPANHOUSE_API_KEY", "no key"])
def test_the_demo_sends_the_read_commands_key_or_says_to_set_one(tmp_path: Path, with_key: bool) -> None:
    lines, proc = demo_lines(tmp_path, {"SPANHOUSE_API_KEY": ACME.key} if with_key else {})
    try:
        if with_key:
            assert any(line.startswith("Demo traffic stored.") for line in lines), lines
            assert "were not accepted" not in proc.stderr()
        else:
            assert lines[-1].startswith("spanhouse: no demo span was stored"), lines
            assert not any(line.startswith("Demo traffic stored.") for line in lines)
            assert "demo spans were not accepted" in proc.stderr() and "set SPANHOUSE_API_KEY" in proc.stderr()
    finally:
        assert proc.terminate() == 0, proc.stderr()
        proc.stop()
