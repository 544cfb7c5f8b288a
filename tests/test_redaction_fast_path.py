"""The fast confirm-and-replace path gives the same bytes as the plain one, on content full of PII.

`RedactProcessor(..., reference=True)` confirms every candidate with `pattern.search`, finds JSON
strings with the straightforward expression and remembers no hash: the way the redactor worked
before it was made fast. Each test runs both on the same input and compares every column.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redaction_helpers import batch_of, span_row
from spanhouse.collector.config import RedactionConfig
from spanhouse.collector.processors.redact import RedactProcessor
from spanhouse.collector.processors.redaction.detectors import BUILTIN
from spanhouse.collector.processors.redaction.engine import Rule, fast_search

CORPUS = json.loads((Path(__file__).parent / "redaction_corpus" / "corpus.json").read_text())
SAMPLES = sorted({p[2].replace("{}", p[1]) for p in CORPUS["positives"]})
VALUES = sorted({p[1] for p in CORPUS["positives"]})
TRAPS = [t[1] for t in CORPUS["traps"]]
HASH_KEY = "0123456789abcdef-test-key"
CONFIGS = {
    "placeholder": RedactionConfig(),
    "hash": RedactionConfig(action="hash", hash_key=HASH_KEY, mask_keys_action="hash"),
}
PAIRS = {name: (RedactProcessor(config), RedactProcessor(config, reference=True))
         for name, config in CONFIGS.items()}
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Generated PII, so that values differ from the corpus's and repeat within one batch.
emails = st.from_regex(re.compile(r"[a-z][a-z0-9._+-]{0,12}[a-z0-9]@[a-z]{1,8}\.(?:com|co\.uk|io)"), fullmatch=True)
phones = st.sampled_from(["+1 415 555 0132", "(415) 555-0132", "415-555-0132", "+44 20 7946 0958",
                          "020 7946 0958", "+4930123456", "+61 2 9374 4000"])
cards = st.sampled_from(["4111 1111 1111 1111", "4111111111111111", "5555-5555-5555-4444", "378282246310005"])
keys = st.sampled_from(["sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i", "ghp_" + "a1B2" * 9,
                        "AKIAIOSFODNN7EXAMPLE", "Bearer abcdefgh12345678", "eyJhbGciOi.eyJzdWIiOi.sig"])
# What sits next to a match: JSON escapes, quotes, look-alikes, separators a match must not swallow.
edges = st.sampled_from(["", " ", "\n", '"', "\\", "\\n", "\\u00e9", "\\\"", ".", "-", "+", "%", "%40", "@",
                         "é", "４", "\u3000", "1", "a", "<", ">", "<EMAIL>", ":", "(", ")", "{", "[", "0"])
filler = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
words = st.text("abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=16)
piece = st.one_of(emails, phones, cards, keys, edges, filler, words, st.sampled_from(VALUES),
                  st.sampled_from(SAMPLES), st.sampled_from(TRAPS))
# Pieces run together with no space between them: matches overlap and touch the value's edges.
texts = st.lists(piece, max_size=10).map("".join)


@st.composite
def json_text(draw: st.DrawFn) -> str:
    """Message content as an SDK writes it (escaped or not), or JSON-looking text that does not parse."""
    leaves = st.one_of(texts, st.integers(), st.sampled_from([4111111111111111, 5555555555554444]), st.none())
    tree = draw(st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.one_of(words, st.sampled_from(["content", "password", "api_key"])), children,
                            max_size=3)),
        max_leaves=8))
    text = json.dumps([{"role": "user", "parts": [{"type": "text", "content": tree}]}],
                      ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
    cut = draw(st.integers(0, 3))
    if cut == 1:  # broken: cut short, or a raw piece spliced in where a string ended
        text = text[: draw(st.integers(1, len(text)))]
    elif cut == 2:
        at = draw(st.integers(1, len(text)))
        text = text[:at] + draw(texts) + text[at:]
    return text


values = st.one_of(texts, json_text())
attributes = st.dictionaries(
    st.sampled_from(["note", "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                     "db.password", "http.url", "exception.message"]), values, max_size=5)


def rows(attrs_list: list[dict[str, str]], event: str, name: str) -> list[dict[str, Any]]:
    return [span_row(attrs, SpanName=name, StatusMessage=event,
                     **{"Events.Name": ["exception"], "Events.Timestamp": [1],
                        "Events.Attributes": [{"exception.message": event}]})
            for attrs in attrs_list]


def both(kind: str, attrs_list: list[dict[str, str]], event: str = "", name: str = "chat") -> None:
    fast, reference = PAIRS[kind]
    a = batch_of(*rows(attrs_list, event, name))
    b = batch_of(*rows(copy.deepcopy(attrs_list), event, name))
    fast.process(a)
    reference.process(b)
    assert a.columns == b.columns


@SETTINGS
@given(st.lists(attributes, min_size=1, max_size=4), texts, texts, st.sampled_from(sorted(PAIRS)))
@example([{"note": "4111111111111111sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i"}], "", "", "hash")
@example([{"gen_ai.input.messages": '[{"content": "mail bob@example.com\\n call +1 415 555 0132"}]'}],
         "", "", "placeholder")
@example([{"gen_ai.input.messages": '{"a": "bob@example.com", "b": "bob@example.com"}'}], "", "", "hash")
def test_fast_path_gives_the_same_bytes_as_the_reference(attrs_list, event, name, kind):
    both(kind, attrs_list, event, name)


@SETTINGS
@given(st.lists(st.tuples(emails, phones), min_size=1, max_size=6), st.sampled_from(sorted(PAIRS)))
def test_same_pii_repeated_across_spans_of_a_batch(contacts, kind):
    """A support chat repeats the user's address in every turn: remembered hashes must stay right."""
    attrs_list = []
    for email, phone in contacts + contacts:
        content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": f"at {email} or {phone}"}]}])
        attrs_list.append({"gen_ai.input.messages": content, "user.email": email})
    both(kind, attrs_list)


RULES = [Rule(d.name, d.pattern, "placeholder", "", lead=d.lead, anchor=d.anchor)
         for d in BUILTIN if d.lead or d.anchor]


@settings(max_examples=300, deadline=None)
@given(texts, st.data())
def test_each_fast_search_finds_what_pattern_search_finds(text, data):
    """From any start and to any end, the faster search returns the same match (same span and groups)."""
    pos = data.draw(st.integers(0, len(text)))
    endpos = data.draw(st.integers(pos, len(text)))
    for rule in RULES:
        want = rule.pattern.search(text, pos, endpos)
        got = fast_search(rule)(text, pos, endpos)
        assert (want and (want.span(), want.groups())) == (got and (got.span(), got.groups())), rule.name


def test_hashes_are_forgotten_after_each_batch():
    fast, _ = PAIRS["hash"]
    fast.process(batch_of(span_row({"note": "bob@example.com"})))
    assert fast.redactor._hashes == {}


def test_an_expression_the_finder_cannot_wrap_is_searched_the_plain_way():
    """Inline flags and named back-references cannot go inside the finder: no error, the same matches."""
    rule = Rule("doubled", re.compile(r"(?i)(?P<a>ab)(?P=a)"), "placeholder", "", lead="[a-z]")
    assert fast_search(rule)("xx ABab", 0, 7).span() == (3, 7)
