"""The README's SQL runs against demo traffic, and every configuration option is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from spanhouse.collector import config as config_mod
from spanhouse.collector import demo

ROOT = Path(__file__).resolve().parent.parent


def _keys(obj: object, prefix: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_keys(value, f"{prefix}{f.name}."))
        else:
            out.append(f"{prefix}{f.name}")
    return out


def test_every_config_option_is_documented_and_in_the_example():
    # The table in docs/configuration.md, or a processor's own page linked from it.
    doc = "\n".join(page.read_text() for page in (ROOT / "docs").glob("*.md"))
    keys = _keys(config_mod.Config())
    assert keys, "no options found"
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert not missing, f"options missing from docs/*.md: {missing}"
    example = config_mod.load(ROOT / "deploy" / "spanhouse.yaml", environ={})
    assert example.store.url.startswith("chdb://")


def test_readme_sql_examples_run_on_demo_traffic(running_collector):
    sent = demo.send(running_collector.grpc_endpoint, traces=30)
    assert sent.exported == sent.spans > 30 and sent.refused == 0
    readme = (ROOT / "README.md").read_text()
    examples = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    assert len(examples) >= 3
    for sql in examples:
        rows = running_collector.query(sql)
        assert rows, f"README example returned no rows:\n{sql}"
    per_model = running_collector.query(examples[0])
    calls_by_model = dict((r[0], r[1]) for r in per_model)
    direct = dict(running_collector.query(
        "SELECT Model, count() FROM genai_calls WHERE Model != '' GROUP BY Model"))
    assert calls_by_model == direct


def test_ci_runs_the_readme_test_command_and_installs_show_progress():
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv .venv")]
    assert len(commands) == 2, commands  # run the collector with demo traffic; run the whole suite
    ci = (ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci
    # pip -q prints nothing for the minute an install takes: a newcomer must see it working.
    assert all(" -q " not in command.split("pytest")[0] for command in commands)
