"""Write prometheusrule.yaml (a Kubernetes PrometheusRule) from rules/spanhouse.rules.yml.

The rules file is the one source: edit it, then run

    python deploy/prometheus/make_prometheusrule.py          # rewrite prometheusrule.yaml
    python deploy/prometheus/make_prometheusrule.py --check  # exit 1 if prometheusrule.yaml is stale

tests/test_prometheus_rules.py runs the check.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE / "rules" / "spanhouse.rules.yml"
TARGET = HERE / "prometheusrule.yaml"
HEADER = ("# Generated from rules/spanhouse.rules.yml by make_prometheusrule.py: edit that file, then run\n"
          "# `python deploy/prometheus/make_prometheusrule.py`. For the Prometheus Operator (kube-prometheus-stack):\n"
          "# set the label your Prometheus' ruleSelector matches (kube-prometheus-stack: release: <its release>).\n")


class _Dumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, value: str) -> Any:
    # Multi-line PromQL stays readable as a block, as in the rules file.
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _string)


def render() -> str:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    document = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "spanhouse", "labels": {"app.kubernetes.io/name": "spanhouse",
                                                     "app.kubernetes.io/component": "alert-rules"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} does not match {RULES}: run python deploy/prometheus/make_prometheusrule.py",
                  file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
