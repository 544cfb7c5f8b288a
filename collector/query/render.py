"""Rendering query results for a terminal: JSONCompact answers to (names, rows), rows to a plain text table."""

from __future__ import annotations

import json
from typing import Any


def parse_json_compact(raw: bytes) -> tuple[list[str], list[list[Any]]]:
    doc = json.loads(raw or b'{"meta": [], "data": []}')
    return [m["name"] for m in doc.get("meta", [])], doc.get("data", [])


def format_table(names: list[str], rows: list[list[Any]]) -> str:
    """A plain text table, numbers right-aligned."""
    def text(v: Any) -> str:
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        return "" if v is None else str(v)

    cells = [[text(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) and bool(rows)
               for i in range(len(names))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)
