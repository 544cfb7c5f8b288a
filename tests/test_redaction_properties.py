"""Property tests: after redaction no detector finds anything, and JSON content stays valid JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from redaction_helpers import batch_of, span_row

from spanhouse.collector.config import RedactionConfig
from spanhouse.collector.processors.redact import COUNT_ATTRIBUTE, RULES_ATTRIBUTE, RedactProcessor
from spanhouse.collector.processors.redaction.engine import Findings
from spanhouse.collector.processors.redaction.normalize import fold

CORPUS = json.loads((Path(__file__).parent / "redaction_corpus" / "corpus.json").read_text())
VALUES = [p[1] for p in CORPUS["positives"]]
# Each sensitive value in its context (a password needs its URL, a token its `Bearer`).
SAMPLES = {p[2].replace("{}", p[1]): p[1] for p in CORPUS["positives"]}
TRAPS = [t[1] for t in CORPUS["traps"]]
FAST = RedactProcessor(RedactionConfig())
PLAIN = RedactProcessor(RedactionConfig(), use_hyperscan=False)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

filler = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
words = st.text("abcdefghijklmnopqrstuvwxyz ", min_size=1, max_size=20)
pieces = st.lists(st.one_of(filler, words, st.sampled_from(VALUES), st.sampled_from(TRAPS)), max_size=8)
texts = pieces.map("".join)
spaced = st.lists(st.one_of(words, st.sampled_from(sorted(SAMPLES))), min_size=1, max_size=6).map(" ".join)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(texts, spaced, st.integers(), st.sampled_from([4111111111111111, 5555555555554444]),
              st.booleans(), st.none()),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(words, st.sampled_from(["password", "api_key", "note"])),
                                               children, max_size=4)),
    max_leaves=12,
)


def detected(text: str) -> list[tuple[str, str]]:
    """What the exact expressions of every detector still find, with no trigger in between."""
    redactor = FAST.redactor
    return [(redactor.rules[r].name, text[s:e]) for s, e, r in redactor._matches(text, redactor.all_rule_ids)]


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return [str(value)] if isinstance(value, int) and not isinstance(value, bool) else []


def run(proc: RedactProcessor, attrs: dict[str, str]) -> dict[str, str]:
    batch = batch_of(span_row(attrs))
    proc.process(batch)
    out = dict(batch["SpanAttributes"][0])
    out.pop(COUNT_ATTRIBUTE, None)
    out.pop(RULES_ATTRIBUTE, None)
    return out


@SETTINGS
@given(texts)
def test_nothing_detectable_remains_in_plain_values(text):
    out = run(FAST, {"note": text})
    assert not detected(out.get("note", ""))


@SETTINGS
@given(spaced)
# Digits before a card number ("12/27 ") once made the whole run fail the Luhn check and hid the card.
@example("card 4111 1111 1111 1111 exp 12/27 2223003122003222")
def test_values_set_apart_by_spaces_are_gone(text):
    out = run(FAST, {"note": text})["note"]
    for sample, value in SAMPLES.items():
        if sample in text:
            assert value not in out


@SETTINGS
@given(json_values, st.booleans())
def test_json_content_stays_valid_json_and_clean(value, ascii_only):
    content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": value}]}], ensure_ascii=ascii_only)
    out = run(FAST, {"gen_ai.input.messages": content})
    parsed = json.loads(out["gen_ai.input.messages"])
    assert len(parsed) == 1 and parsed[0]["role"] == "user"
    for text in strings_in(parsed):
        assert not detected(text), text
        if text.startswith(("{", "[")):
            try:
                inner = json.loads(text)
            except ValueError:
                continue
            assert all(not detected(s) for s in strings_in(inner))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["a", "b", "gen_ai.input.messages", "db.password"]), texts, max_size=4))
def test_hyperscan_and_plain_re_engines_agree(attrs):
    assert run(FAST, attrs) == run(PLAIN, attrs)


@SETTINGS
@given(texts)
def test_redacting_twice_changes_nothing_more(text):
    once = run(FAST, {"note": text})
    assert run(FAST, once) == once


def test_findings_name_rules_never_values():
    found = Findings()
    FAST.redactor.redact_value("mail bob@example.com card 4111 1111 1111 1111", FAST.redactor.all_rule_ids, found)
    assert found.rules == {"email": 1, "credit_card": 1}


def _full_width(text: str) -> str:
    """ASCII letters, digits and punctuation as their full-width forms (U+FF01-FF5E), spaces as U+3000."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" if c == " " else c for c in text)


@SETTINGS
@given(st.sampled_from(sorted(SAMPLES)), st.data())
@example("contact bob@example.com for details", None)
def test_percent_encoded_values_are_gone_and_only_they(sample, data):
    """Percent-encode any choice of a value's characters: decoding the output shows no value,
    and the text before the value is left exactly as it was."""
    value = SAMPLES[sample]
    start = sample.index(value)
    if data is None:
        chosen = [c == "@" for c in value]
    else:
        chosen = data.draw(st.lists(st.booleans(), min_size=len(value), max_size=len(value)))
    encoded_value = "".join(quote(c, safe="") if pick and c != "\n" else c
                            for c, pick in zip(value, chosen, strict=True))
    text = sample[:start] + encoded_value + sample[start + len(value):]
    out = run(FAST, {"note": text})["note"]
    assert value not in unquote(out) and encoded_value not in out
    assert out.startswith(sample[: max(0, start - 1)])


@SETTINGS
@given(st.sampled_from(sorted(SAMPLES)))
def test_samples_encoded_whole_are_gone(sample):
    """A whole sample percent-encoded, as a URL parameter carries it (twice, for a URL inside a URL)."""
    once = quote(sample, safe="")
    # Decoding stops after two rounds: a sample already encoded once is encoded once more only.
    for encoded in (once,) if "%" in sample else (once, quote(once, safe="")):
        out = run(FAST, {"note": encoded})["note"]
        assert SAMPLES[sample] not in unquote(unquote(out))


@SETTINGS
@given(st.sampled_from(sorted(SAMPLES)), st.booleans())
def test_full_width_values_are_gone_in_plain_and_json_values(sample, in_json):
    value = SAMPLES[sample]
    wide = _full_width(value)
    text = sample.replace(value, wide)
    if in_json:
        content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
        out = json.loads(run(FAST, {"gen_ai.input.messages": content})["gen_ai.input.messages"])
        out = out[0]["parts"][0]["content"]
    else:
        out = run(FAST, {"note": text})["note"]
    assert wide not in out and value not in out
    assert out.startswith(sample[: sample.index(value)])


@SETTINGS
@given(st.lists(st.sampled_from(TRAPS), min_size=1, max_size=3).map(" ".join), st.booleans())
def test_percent_encoding_a_trap_finds_nothing(text, spaces_only):
    """Traps stay traps once encoded as a URL would carry them: decoding adds no detection."""
    assume(run(FAST, {"note": text}) == {"note": text})  # traps side by side can make a phone number
    encoded = quote(text, safe="") if not spaces_only else text.replace(" ", "%20")
    assert run(FAST, {"note": encoded}) == {"note": encoded}


# (as written, as folded): each folds on its own, whatever stands next to it.
FOLD_PIECES = [("a", "a"), ("Z9 ", "Z9 "), ("é", "é"), ("%40", "@"), ("%2540", "@"), ("４", "4"),
               ("%EF%BC%94", "4"), ("ﬁ", "fi"), ("١", "1"), ("𝟒", "4"), ("\u3000", " "), ("5% ", "5% ")]


@SETTINGS
@given(st.lists(st.sampled_from(FOLD_PIECES), min_size=1, max_size=12))
def test_fold_maps_each_folded_character_back_to_the_characters_it_came_from(pieces):
    text = "".join(written for written, _ in pieces)
    folded = fold(text)
    plain = "".join(out for _, out in pieces)
    if folded is None:
        assert plain == text
        return
    assert folded.text == plain
    pos = written_pos = 0
    for written, out in pieces:
        for i in range(pos, pos + len(out)):
            start, end = folded.span(i, i + 1)
            # Inside the piece it came from (a percent-escape or a character maps as a whole).
            assert written_pos <= start < end <= written_pos + len(written), (written, out, i)
        if len(out) > 0:
            assert folded.span(pos, pos + len(out)) == (written_pos, written_pos + len(written))
        pos += len(out)
        written_pos += len(written)
