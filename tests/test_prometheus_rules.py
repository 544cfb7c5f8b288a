"""deploy/prometheus: the rules pass promtool's checks and unit tests, the PrometheusRule carries the same groups,
and every metric a rule reads is one the collector exports and docs/metrics.md lists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from metrics_helpers import prometheus_tool
from spanhouse.collector.config import Config
from spanhouse.collector.metrics.exposition import CollectorMetrics
from spanhouse.collector.processors.genai_metrics import WIDTH

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "spanhouse.rules.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([prometheus_tool("promtool"), *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO)


def test_rules_pass_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_every_alert_fires_and_stays_silent_in_promtools_rule_tests() -> None:
    tests = sorted((PROMETHEUS / "tests").glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr
    # Each alert has a case where it fires and one where it does not.
    cases: dict[str, set[bool]] = {}
    for path in tests:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case["exp_alerts"]))
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert {name: {True, False} for name in alerts} == cases


def test_scrape_config_passes_promtool_check() -> None:
    result = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheusrule_carries_the_rules_files_groups() -> None:
    check = subprocess.run([sys.executable, str(PROMETHEUS / "make_prometheusrule.py"), "--check"],
                           capture_output=True, text=True, cwd=REPO)
    assert check.returncode == 0, check.stderr
    resource = yaml.safe_load((PROMETHEUS / "prometheusrule.yaml").read_text())
    assert resource["kind"] == "PrometheusRule" and resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def exported_names() -> set[str]:
    """Every metric family the collector exports, rendered over an idle stand-in collector."""
    key = ("t", "s", "p", "m", "chat", "ok")
    series = [1.0] * WIDTH
    observed = SimpleNamespace(config=Config(), pipeline=None, spool=None, counters=lambda: {"redact_hits_jwt_total": 1},
                               genai_series=lambda: [{key: series}], process_ids=lambda: [os.getpid()])
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CollectorMetrics(observed))
    names: set[str] = set()
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        names.update(sample.name for sample in family.samples)
    return names


def test_every_metric_a_rule_reads_is_exported_and_documented() -> None:
    exprs = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    used = set(re.findall(r"\b(?:otelcol|spanhouse)_[a-z0-9_]+", "\n".join(exprs)))
    assert len(used) >= 8
    assert used <= exported_names(), used - exported_names()
    docs = (REPO / "docs" / "metrics.md").read_text()
    for name in used:
        assert f"`{name.removesuffix('_total')}" in docs, name
