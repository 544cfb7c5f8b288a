"""Rendering query results for a terminal: JSONCompact answers to (names, rows), rows to a plain text table
or JSON.

Table cells are for reading: floats are shown with about 4 significant digits and no exponent
(`0.031979999999999995` -> `0.03198`, `2.1e-05` -> `0.000021`, `734.215` -> `734.2`; the integer part is never
cut: `123456.7` -> `123457`). csv, json and jsonl keep every digit the engine printed.
"""

from __future__ import annotations

import json
import math
from typing import Any

SIGNIFICANT_DIGITS = 4
# Outside this range a plain decimal would be all zeros or very long: those keep an exponent.
_PLAIN_MIN, _PLAIN_MAX = 1e-9, 1e15


def parse_json_compact(raw: bytes) -> tuple[list[str], list[list[Any]]]:
    doc = json.loads(raw or b'{"meta": [], "data": []}')
    return [m["name"] for m in doc.get("meta", [])], doc.get("data", [])


def format_float(value: float) -> str:
    """`value` rounded for reading: ~4 significant digits, no exponent for ordinary magnitudes."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if not _PLAIN_MIN <= magnitude < _PLAIN_MAX:
        return f"{value:.{SIGNIFICANT_DIGITS}g}"
    decimals = max(0, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def cell_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def format_table(names: list[str], rows: list[list[Any]]) -> str:
    """A plain text table, numbers right-aligned, floats rounded for reading, NULL blank."""
    cells = [[cell_text(v) for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) and bool(rows)
               for i in range(len(names))]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(names), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def json_array_from_lines(raw: bytes) -> str:
    """JSONEachRow output (one object per line, as the engine printed it) as one JSON array, digits untouched."""
    objects = [line for line in raw.decode("utf-8", "replace").splitlines() if line.strip()]
    if not objects:
        return "[]\n"
    return "[\n" + ",\n".join(objects) + "\n]\n"


def format_objects(names: list[str], rows: list[list[Any]], fmt: str) -> str:
    """Rows as a JSON array (`json`) or one JSON object per line (`jsonl`)."""
    objects = [dict(zip(names, row)) for row in rows]
    if fmt == "jsonl":
        return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)
    if not objects:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(o, ensure_ascii=False) for o in objects) + "\n]\n"
