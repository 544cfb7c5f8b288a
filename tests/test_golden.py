"""Golden files: OTLP/JSON requests in, the rows normalize makes of them out.

Each `tests/golden/dialects/<case>.otlp.json` is a request as an instrumentation package sends it
(the attribute sets of tests/test_dialects.py, with typed values); `<case>.rows.json` is what the
collector's receiving path (OTLP/JSON -> decode -> normalize) makes of it. A change to decoding or
normalization shows up as a diff of these files. To accept a deliberate change, regenerate them and
review the diff:

    SPANHOUSE_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from spanhouse.collector.batch import GENAI_TABLE
from spanhouse.collector.processors.normalize import NormalizeProcessor
from spanhouse.collector.receiver.decode import Decoder
from spanhouse.collector.receiver.http import json_to_protobuf

# Every test here runs with the native decoder and with the pure-Python reference (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("decoder_path")
GOLDEN = Path(__file__).parent / "golden" / "dialects"
UPDATE = os.environ.get("SPANHOUSE_UPDATE_GOLDEN") == "1"
SHOWN = ("TraceId", "SpanId", "SpanName", "ServiceName", "Timestamp", "Duration", "StatusCode",
         *(c.name for c in GENAI_TABLE if c.source))
CASES = sorted(p.name.removesuffix(".otlp.json") for p in GOLDEN.glob("*.otlp.json"))


def rows_of(request: bytes) -> list[dict[str, Any]]:
    data, _ = json_to_protobuf(request)
    result = Decoder().decode_bytes(data, "golden-tenant")
    assert result.rejected_spans == 0, result.message()
    batch = NormalizeProcessor().process(result.batch)
    return [{name: _plain(batch.column(name)[i]) for name in SHOWN} for i in range(batch.size)]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def test_there_are_golden_cases() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_rows_match_the_golden_file(case: str) -> None:
    rows = rows_of((GOLDEN / f"{case}.otlp.json").read_bytes())
    expected_file = GOLDEN / f"{case}.rows.json"
    if UPDATE:
        expected_file.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert rows == json.loads(expected_file.read_text(encoding="utf-8")), (
        f"{case}: the rows changed; if that is intended, regenerate with SPANHOUSE_UPDATE_GOLDEN=1 and review the diff")
