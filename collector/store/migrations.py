"""The numbered schema migrations shipped in schemas/migrations, and what each table's retention is measured from."""

from __future__ import annotations

import re
from importlib import resources

MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

# Table -> the expression its TTL is measured from.
RETENTION_TIME_EXPR = {
    "spans": "toDateTime(Timestamp)",
    "spans_trace_id_ts": "End",
    "genai_calls": "toDateTime(Timestamp)",
    "genai_usage_1m": "Minute",
    "genai_usage_1h": "Hour",
    "trace_costs": "Day",
    "alerts": "toDateTime(Timestamp)",
    "genai_content": "toDateTime(Timestamp)",
    "genai_content_access": "toDateTime(Timestamp)",
}


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL text) of every migration file, in version order."""
    folder = resources.files("spanhouse.schemas").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort()
    return found
