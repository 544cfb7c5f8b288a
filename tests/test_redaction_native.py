"""The C confirm-and-replace of the e-mail, phone and card detectors gives the bytes Python gives.

`_fastredact.redact` replays each detector's expression, validator, search windows, shrink and
overlap rules; these tests compare it with `Redactor._matches` + `_apply` on ASCII text dense with
PII and look-alikes, compare whole batches with the reference processor, and feed it random input
(which must never crash it: it answers, or says None and leaves the value to Python).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redaction_helpers import batch_of, span_row
from spanhouse.collector.config import RedactionConfig
from spanhouse.collector.processors.redact import RedactProcessor
from spanhouse.collector.processors.redaction.engine import Findings, _looks_like_json

_fastredact = pytest.importorskip("spanhouse.collector.processors.redaction._fastredact")

FAST = RedactProcessor(RedactionConfig())
REFERENCE = RedactProcessor(RedactionConfig(), reference=True)
PROCESSORS = {cap: (RedactProcessor(RedactionConfig(max_value_bytes=cap)),
                    RedactProcessor(RedactionConfig(max_value_bytes=cap), reference=True)) for cap in (0, 64, 4096)}
NATIVE = FAST.redactor._native
TABLE = FAST.redactor._native_table
HASHING = RedactProcessor(RedactionConfig(action="hash", hash_key="0123456789abcdef-test-key"))
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

emails = st.from_regex(re.compile(r"[a-z0-9][a-z0-9._+%-]{0,8}@(?:[a-z0-9-]{1,6}\.){1,3}[a-z0-9]{1,5}"),
                       fullmatch=True)
phones = st.one_of(
    st.sampled_from(["+1 415 555 0132", "(415) 555-0132", "415-555-0132", "415.555.0132", "+44 20 7946 0958",
                     "020 7946 0958", "+4930123456", "+61 2 9374 4000", "+1 (415) 555-0132", "0301 234-5678",
                     "+00000000", "+1-800-555-0100", "(212) 5550147", "030-1234-56-78-90", "+12 3456"]),
    st.from_regex(re.compile(r"[+(0-9][0-9 ().-]{6,22}[0-9]"), fullmatch=True))
cards = st.one_of(
    st.sampled_from(["4111 1111 1111 1111", "4111111111111111", "5555-5555-5555-4444", "378282246310005",
                     "3782 822463 10005", "4111 1111 1111 1112", "4111-1111 1111-1111", "6011111111111117",
                     "12/27 2223003122003222", "4111111111111111111", "41111111111111111111"]),
    st.from_regex(re.compile(r"[0-9][0-9 -]{12,24}[0-9]"), fullmatch=True))
edges = st.sampled_from(["", " ", "  ", "\n", '"', ".", ",", "-", "+", "%", "@", "_", "1", "0", "a", "Z", "<",
                         ">", "<EMAIL>", ":", "(", ")", "{", "}", "[", "]", "'", "/", "=", "&", ".5", ",1", "x@y",
                         "a.b", "@x.co", ".com", "-1", "+1"])
words = st.text("abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=12)
# Other detectors' matches: a value holding one goes through Python's search for that rule and C's for
# the e-mail, phone and card rules, merged.
keys = st.sampled_from(["sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i", "ghp_" + "a1B2" * 9,
                        "AKIAIOSFODNN7EXAMPLE", "Bearer abcdefgh12345678", "203.0.113.42", "fe80::1:2",
                        "DE89 3704 0044 0532 0130 00", "078-05-1120", "https://a.b/?token=abcdef123456"])
piece = st.one_of(emails, phones, cards, edges, words, keys)
# Pieces run together with no space between them: matches overlap and touch the value's edges.
texts = st.lists(piece, max_size=14).map("".join)


def python_way(text: str, hits: dict[int, list[int]]) -> tuple[str, dict[str, int]] | None:
    """What Redactor._matches + _apply (+ the quote check of _redact_json_text for JSON text) give,
    all in Python (the reference redactor has no native rules)."""
    redactor = REFERENCE.redactor
    assert not redactor._native_find
    found = Findings()
    spans = redactor._matches(text, {r: list(e) for r, e in hits.items()})
    if _looks_like_json(text) and spans:
        quotes = prev = 0
        for start, end, _ in spans:
            quotes += text.count('"', prev, start)
            prev = start
            if not quotes % 2 or text.find('"', start, end) != -1 or text.find('"', end) == -1:
                return None
    out = redactor._apply(text, spans, found) if spans else text
    return out, found.rules


def native_way(text: str, hits: dict[int, list[int]]) -> tuple[str, dict[str, int]] | None:
    # `fold` off: a percent sign is the value's own here; no cap.
    done = _fastredact.redact(text, {r: list(e) for r, e in hits.items()}, TABLE, False, 0)
    if done is None:
        return None
    out, counts = done
    return out, {FAST.redactor.rules[rule_id].name: n for rule_id, n in counts}


def trigger_hits(text: str) -> dict[int, list[int]]:
    """Where the processor's own triggers fired, for the native rules (windows as in production)."""
    return {r: ends for r, ends in FAST.scanner.hits(text).items() if r in NATIVE and ends}


WRAPS = {"plain": "{}", "json string": '[{{"content": "{}"}}]', "json raw": "[{}", "json key": '{{"{}": 1}}'}


@SETTINGS
@given(texts, st.sampled_from(sorted(WRAPS)), st.booleans())
@example("mail bob@example.com call +1 415 555 0132 card 4111 1111 1111 1111", "plain", False)
@example("+61 2 9374 4000 555.123.4567", "plain", False)
@example("12/27 2223003122003222", "json string", False)
@example("a@b.com.x1 and a@b.c0m and " + "x" * 300 + " +1 415 555 0132", "plain", False)
@example('call 415-555-0132"', "json string", False)
@example("4111111111111111@example.com", "plain", True)
@example("4111111111111111sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i bob@example.com", "plain", False)
def test_native_matches_and_replaces_exactly_as_python(text, wrap, whole_text):
    """Same output and the same counts per rule, searching windows round trigger hits or the whole text."""
    text = WRAPS[wrap].format(text)
    hits = {r: [] for r in NATIVE} if whole_text else trigger_hits(text)
    if not hits:
        return
    want = python_way(text, hits)
    got = native_way(text, hits)
    if got is None:  # declined: only for a match outside the JSON strings
        assert _looks_like_json(text) and want is None
        return
    assert got == want


@SETTINGS
@given(st.lists(texts, min_size=1, max_size=4), st.booleans(), st.sampled_from([0, 64, 4096]))
def test_processor_with_native_path_gives_the_reference_bytes(contents, escaped, cap):
    """Whole batches: message JSON (escaped or not) and plain values, against the reference processor,
    with and without a cap on value size."""
    def rows() -> list[dict]:
        out = []
        for text in contents:
            messages = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}],
                                  ensure_ascii=escaped)
            out.append(span_row({"gen_ai.input.messages": messages, "note": text, "broken": messages[:-3]},
                                SpanName=text[:40]))
        return out

    fast, reference = PROCESSORS[cap]
    a, b = batch_of(*rows()), batch_of(*rows())
    fast.process(a)
    reference.process(b)
    assert a.columns == b.columns


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400), st.dictionaries(st.integers(-2, len(TABLE) + 2), st.one_of(
    st.lists(st.integers(-5, 500), max_size=6), st.none()), max_size=5), st.booleans(), st.integers(-1, 2000))
@example("\\" + "4111 1111 1111 1111", {}, False, 0)
@example("+" + "0" * 5000, {}, False, 0)
@example("[" + "a" * 70 + "@" + "b." * 3000 + "com", {}, True, 0)
def test_random_input_never_crashes_the_native_module(text, hits, fold, cap):
    hits = hits or {r: [] for r in NATIVE}
    result = _fastredact.redact(text, hits, TABLE, fold, cap)
    if result is not None:
        out, counts = result
        assert isinstance(out, str)
        assert all(rule in hits and n > 0 for rule, n in counts)


def test_bad_arguments_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="unknown detector kind 9 for rule 0"):
        _fastredact.redact("a@b.co", {0: []}, ((9, "<X>"),), False, 0)
    with pytest.raises(TypeError):
        _fastredact.redact("a@b.co", [(0, 0, [], "<X>")], TABLE, False, 0)
    with pytest.raises(ValueError, match="placeholder of rule 0 is not ASCII"):
        _fastredact.redact("a@b.co", {0: []}, ((0, "<É>"),), False, 0)


def test_values_the_native_path_declines_go_the_python_way():
    """Non-ASCII, escapes and hashing stay in Python, and still come out redacted."""
    for value in ("mail bob@example.com, café", "mail bob@example.com \\n", "mail bob%40example.com",
                  "mail bob@example.com or AKIAIOSFODNN7EXAMPLE"):
        a = batch_of(span_row({"note": value}))
        b = batch_of(span_row({"note": value}))
        FAST.process(a)
        REFERENCE.process(b)
        assert a.columns == b.columns
        assert "bob" not in a["SpanAttributes"][0]["note"]


def test_the_processor_says_once_when_the_native_module_is_missing(tmp_path):
    """Without the module the processor redacts in Python and logs why, once."""
    script = (
        "import sys, logging\n"
        "sys.modules['spanhouse.collector.processors.redaction._fastredact'] = None\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "from spanhouse.collector.config import RedactionConfig\n"
        "from spanhouse.collector.processors.redact import RedactProcessor\n"
        "p = RedactProcessor(RedactionConfig()); RedactProcessor(RedactionConfig())\n"
        "assert p.redactor._native == {}\n"
        "from redaction_helpers import batch_of, span_row\n"
        "b = batch_of(span_row({'note': 'mail bob@example.com'}))\n"
        "p.process(b)\n"
        "print(b['SpanAttributes'][0]['note'])\n"
    )
    env = {"PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path), env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mail <EMAIL>"
    assert done.stderr.count("the native redaction module is not installed") == 1


DROP_KEY = RedactionConfig(detector_actions={"openai_api_key": "drop"})
UNCOVERED = ["4111111111111111sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i",
             "+00000000+00000000+00000000 and bob@example.com", "x.AA+0000000 bob@example.com"]


@pytest.mark.parametrize("config", [RedactionConfig(), DROP_KEY], ids=["placeholder", "drop key"])
@pytest.mark.parametrize("value", UNCOVERED)
def test_values_a_replacement_uncovers_more_in_are_finished_as_the_reference_does(config, value):
    """Second scans of span values run together after the batch: a match the first round uncovered,
    or a drop it triggers, comes out as in the reference, in span and event attributes alike."""
    def rows() -> list[dict]:
        return [span_row({"note": value, "other": "mail ann@example.org", "content": f'["{value}"]'},
                         **{"Events.Name": ["log"], "Events.Timestamp": [1],
                            "Events.Attributes": [{"message": value, "plain": "nothing here"}]}),
                span_row({"note": "no pii at all"})]

    a, b = batch_of(*rows()), batch_of(*rows())
    RedactProcessor(config).process(a)
    RedactProcessor(config, reference=True).process(b)
    assert a.columns == b.columns
    if config is DROP_KEY and "sk-proj" in value:
        assert "note" not in a["SpanAttributes"][0]
        assert "message" not in a["Events.Attributes"][0][0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=8), st.lists(st.tuples(st.integers(0, 30),
       st.integers(1, 400)), max_size=30))
def test_hits_are_placed_in_blocks_and_values_as_python_places_them(lengths, hits):
    """`place` gives _hits_by_block's and _part_rules's dicts (same keys, order and offsets)."""
    from bisect import bisect_right
    from itertools import accumulate

    starts = list(accumulate((n + 1 for n in lengths), initial=0))
    hits = [(rule, min(end, starts[-1])) for rule, end in hits]
    flat: dict[int, list[tuple[int, int]]] = {}
    nested: dict[int, dict[int, list[int]]] = {}
    for rule, end in hits:
        k = bisect_right(starts, end - 1) - 1
        flat.setdefault(k, []).append((rule, end - starts[k]))
        nested.setdefault(k, {}).setdefault(rule, []).append(end - starts[k])
    for want, is_nested in ((flat, False), (nested, True)):
        got = _fastredact.place(hits, starts, is_nested)
        assert got == want and list(got) == list(want)
    assert _fastredact.place([(1, 0)], starts, False) is None  # Python's index -1: left to Python
    with pytest.raises(TypeError, match="rule_id, end"):
        _fastredact.place([(1, 2, 3)], starts, False)


@SETTINGS
@given(texts, st.booleans())
@example("4111111111111111sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i bob@example.com", False)
@example("call +1 415 555 0132 from 203.0.113.42 or fe80::1:2 " + "x" * 400 + " bob@example.com", False)
def test_matches_of_all_rules_with_the_native_ones_in_c_are_pythons(text, whole_text):
    """Any mix of rules: C's matches for its three, Python's for the rest, resolved together, equal
    what Python finds for all of them (windows round the triggers, or the whole text)."""
    hits = {r: ends for r, ends in FAST.scanner.hits(text).items() if r < FAST.rule_count}
    if whole_text:
        hits = dict.fromkeys(hits)
    want = REFERENCE.redactor._matches(text, dict(hits))
    assert FAST.redactor._matches(text, dict(hits)) == want
    assert HASHING.redactor._matches(text, dict(hits)) == want  # found in C, hashed in Python


def _python_only() -> RedactProcessor:
    from spanhouse.collector.processors.redaction import engine

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "_fastredact", None)
        processor = RedactProcessor(RedactionConfig())
    assert not processor.redactor._native_find
    return processor


PYTHON_ONLY = _python_only()


@SETTINGS
@given(st.lists(texts, min_size=1, max_size=3))
def test_without_the_native_module_python_gives_the_same_bytes(contents):
    """Where the extension is not built, every step runs in Python: the same output as the reference."""
    from spanhouse.collector.processors import redact

    rows = [span_row({"gen_ai.input.messages": json.dumps([{"content": text}]), "note": text}) for text in contents]
    a, b = batch_of(*copy.deepcopy(rows)), batch_of(*copy.deepcopy(rows))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(redact, "_fastredact", None)  # hits placed in Python too
        PYTHON_ONLY.process(a)
    REFERENCE.process(b)
    assert a.columns == b.columns
