"""The redact processor on batches: corpus, actions, key rules, JSON content, size cap, counters, config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from redaction_helpers import batch_of, span_row, stored_strings

from spanhouse.collector import config as config_mod
from spanhouse.collector.config import ConfigError, RedactionConfig, RedactionRuleConfig
from spanhouse.collector.processors.redact import COUNT_ATTRIBUTE, RULES_ATTRIBUTE, RedactProcessor
from spanhouse.collector.processors.redaction.engine import Findings

CORPUS = json.loads((Path(__file__).parent / "redaction_corpus" / "corpus.json").read_text())
POSITIVES = [tuple(p) for p in CORPUS["positives"]]
TRAPS = [tuple(t) for t in CORPUS["traps"]]
HASH_KEY = "0123456789abcdef-test-key"


@pytest.fixture(scope="module", params=["hyperscan", "re"])
def processor(request: pytest.FixtureRequest) -> RedactProcessor:
    proc = RedactProcessor(RedactionConfig(), use_hyperscan=request.param == "hyperscan")
    assert proc.engine == request.param
    return proc


def redact_one(proc: RedactProcessor, attrs: dict[str, str], **columns: object) -> dict[str, object]:
    batch = batch_of(span_row(attrs, **columns))
    proc.process(batch)
    return {name: values[0] for name, values in batch.columns.items()}


@pytest.mark.parametrize(("detector", "value", "template"), POSITIVES,
                         ids=[f"{p[0]}-{i}" for i, p in enumerate(POSITIVES)])
def test_corpus_positive_is_redacted_in_plain_and_json_values(processor, detector, value, template):
    text = template.replace("{}", value)
    content = json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])
    row = redact_one(processor, {"note": text, "gen_ai.input.messages": content})
    attrs = row["SpanAttributes"]
    assert value not in attrs["note"]
    assert f"<{detector.upper()}>" in attrs["note"]
    parsed = json.loads(attrs["gen_ai.input.messages"])
    assert value not in parsed[0]["parts"][0]["content"]
    assert detector in attrs[RULES_ATTRIBUTE].split(",")
    assert int(attrs[COUNT_ATTRIBUTE]) >= 2


@pytest.mark.parametrize(("kind", "text"), TRAPS, ids=[f"{t[0]}-{i}" for i, t in enumerate(TRAPS)])
def test_corpus_trap_is_left_untouched(processor, kind, text):
    row = redact_one(processor, {"note": text}, SpanName=text, StatusMessage=text)
    assert row["SpanAttributes"] == {"note": text}
    assert row["SpanName"] == text and row["StatusMessage"] == text


def test_every_place_a_value_can_hide(processor):
    email, card = "carol@example.net", "4111-1111-1111-1111"
    row = span_row(
        {"user": email},
        SpanName=f"lookup {email}",
        StatusMessage=f"declined {card}",
        TraceState=f"vendor={email}",
        ResourceAttributes={"service.name": "checkout", "host.owner": email},
        **{
            "Events.Name": ["exception"], "Events.Timestamp": [1],
            "Events.Attributes": [{"exception.message": f"no such user {email}",
                                   "exception.stacktrace": f"Traceback\n  ValueError: {card}"}],
            "Links.TraceId": ["4bf92f3577b34da6a3ce929d0e0e4736"], "Links.SpanId": ["00f067aa0ba902b7"],
            "Links.TraceState": [""], "Links.Attributes": [{"peer": email}],
            "ConversationId": email, "AgentName": f"agent for {email}", "ToolCallId": card,
            "FinishReasons": [f"stop {email}"],
        },
    )
    batch = batch_of(row, span_row({"other": "nothing here"}))
    processor.process(batch)
    text = stored_strings(batch)
    assert email not in text and card not in text
    assert batch["ConversationId"][0] == "<EMAIL>"
    assert batch["ResourceAttributes"][0]["service.name"] == "checkout"
    assert batch["SpanAttributes"][1] == {"other": "nothing here"}
    assert set(batch["SpanAttributes"][0][RULES_ATTRIBUTE].split(",")) == {"email", "credit_card"}


def test_resource_shared_by_spans_is_redacted_for_each_and_counted_per_span(processor):
    resource = {"service.name": "svc", "deployer": "dave@example.org"}
    batch = batch_of(*[span_row({"i": str(i)}, ResourceAttributes=resource) for i in range(3)])
    before = processor.counters()["hits_email_total"]
    processor.process(batch)
    assert all(r["deployer"] == "<EMAIL>" for r in batch["ResourceAttributes"])
    assert resource["deployer"] == "dave@example.org"  # the decoder's dict is not changed in place
    assert processor.counters()["hits_email_total"] - before == 3


def test_json_content_stays_valid_and_keys_inside_are_masked(processor):
    args = json.dumps({"user": "erin@example.com", "password": "hunter2", "card": 4111111111111111,
                       "nested": json.dumps({"api_key": "abc", "ip": "10.1.2.3"})})
    messages = json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "arguments": args}]}])
    row = redact_one(processor, {"gen_ai.output.messages": messages})
    out = json.loads(row["SpanAttributes"]["gen_ai.output.messages"])
    inner = json.loads(out[0]["parts"][0]["arguments"])
    assert inner["user"] == "<EMAIL>" and inner["password"] == "<REDACTED>" and inner["card"] == "<CREDIT_CARD>"
    nested = json.loads(inner["nested"])
    assert nested == {"api_key": "<REDACTED>", "ip": "<IPV4>"}


def test_json_without_findings_keeps_its_exact_text(processor):
    text = '[ {"role": "user",  "content": "hello there"} ]'
    row = redact_one(processor, {"gen_ai.input.messages": text, "x": "fine"})
    assert row["SpanAttributes"] == {"gen_ai.input.messages": text, "x": "fine"}


def test_hash_action_is_stable_keyed_and_never_the_value():
    cfg = RedactionConfig(detector_actions={"email": "hash"}, hash_key=HASH_KEY)
    proc = RedactProcessor(cfg)
    a = redact_one(proc, {"u": "frank@example.com"})["SpanAttributes"]["u"]
    b = redact_one(proc, {"other": "mail frank@example.com now"})["SpanAttributes"]["other"]
    c = redact_one(proc, {"u": "grace@example.com"})["SpanAttributes"]["u"]
    assert a.startswith("<EMAIL:") and "frank" not in a
    assert b == f"mail {a} now"
    assert c != a
    other_key = RedactProcessor(RedactionConfig(detector_actions={"email": "hash"}, hash_key=HASH_KEY + "x"))
    assert redact_one(other_key, {"u": "frank@example.com"})["SpanAttributes"]["u"] != a


def test_drop_action_removes_the_attribute_and_empties_columns():
    proc = RedactProcessor(RedactionConfig(detector_actions={"us_ssn": "drop"}))
    row = redact_one(proc, {"ssn": "ssn 123-45-6789", "keep": "ok"}, SpanName="123-45-6789")
    attrs = row["SpanAttributes"]
    assert "ssn" not in attrs and attrs["keep"] == "ok" and row["SpanName"] == ""
    assert attrs[RULES_ATTRIBUTE] == "us_ssn"


def test_key_rules_mask_drop_and_allow_list():
    proc = RedactProcessor(RedactionConfig(drop_keys=["enduser.*"], mask_keys=["*.password", "*authorization*"]))
    attrs = redact_one(proc, {"db.password": "plain", "http.request.header.Authorization": "Basic Zm9vOmJhcg==",
                              "enduser.id": "u-1", "keep": "x"})["SpanAttributes"]
    assert attrs["db.password"] == "<REDACTED>"
    assert attrs["http.request.header.Authorization"] == "<REDACTED>"
    assert "enduser.id" not in attrs and attrs["keep"] == "x"
    assert attrs[RULES_ATTRIBUTE] == "drop_keys,mask_keys"

    allow = RedactProcessor(RedactionConfig(allow_keys=["gen_ai.*"]))
    row = redact_one(allow, {"gen_ai.request.model": "gpt-4o", "gen_ai.conversation.id": "c1",
                             "user.email": "x", "custom": "y"},
                     ConversationId="c1", ResourceAttributes={"service.name": "svc", "host.name": "h"})
    assert set(row["SpanAttributes"]) - {COUNT_ATTRIBUTE, RULES_ATTRIBUTE} == {"gen_ai.request.model",
                                                                               "gen_ai.conversation.id"}
    assert row["ResourceAttributes"] == {"service.name": "svc", "host.name": "h"}
    assert row["ConversationId"] == "c1"

    drop_copy = RedactProcessor(RedactionConfig(drop_keys=["gen_ai.conversation.id"]))
    row = redact_one(drop_copy, {"gen_ai.conversation.id": "c1"}, ConversationId="c1")
    assert row["ConversationId"] == "" and "gen_ai.conversation.id" not in row["SpanAttributes"]


def test_user_rules_with_group_lookaround_and_credential_counting():
    cfg = RedactionConfig(rules=[
        RedactionRuleConfig(name="employee_id", pattern=r"(?<![A-Z])EMP-\d{6}\b"),
        RedactionRuleConfig(name="internal_token", pattern=r"itok=(?P<v>[a-z0-9]{12})", credential=True,
                            placeholder="[gone]"),
    ])
    proc = RedactProcessor(cfg)
    attrs = redact_one(proc, {"a": "by EMP-123456 and XEMP-654321", "b": "url?itok=abcdef123456&x=1"})["SpanAttributes"]
    assert attrs["a"] == "by <EMPLOYEE_ID> and XEMP-654321"
    assert attrs["b"] == "url?itok=[gone]&x=1"
    counters = proc.counters()
    assert counters["hits_employee_id_total"] == 1 and counters["hits_internal_token_total"] == 1
    assert counters["credential_hits_total"] == 1



@pytest.mark.parametrize("engine", ["hyperscan", "re"])
def test_anchored_user_rule_applies_to_every_value_of_every_span(engine):
    # `^`/`$` mean the value's start and end, wherever the value sits in the span and the batch.
    cfg = RedactionConfig(rules=[RedactionRuleConfig(name="ticket", pattern=r"^TCK-\d{4}$")])
    proc = RedactProcessor(cfg, use_hyperscan=engine == "hyperscan")
    rows = [span_row({"first": "nothing here", "ticket": "TCK-1234", "note": "see TCK-9999 later"},
                     **{"Events.Name": ["TCK-4321"], "Events.Attributes": [{"id": "TCK-5678"}],
                        "Events.Timestamp": [1]})
            for _ in range(3)]
    batch = batch_of(*rows)
    proc.process(batch)
    for i in range(3):
        attrs = batch["SpanAttributes"][i]
        assert attrs["ticket"] == "<TICKET>" and attrs["note"] == "see TCK-9999 later"
        assert batch["Events.Attributes"][i] == [{"id": "<TICKET>"}] and batch["Events.Name"][i] == ["<TICKET>"]
    assert proc.counters()["hits_ticket_total"] == 9

def test_disabled_detector_leaves_its_values():
    proc = RedactProcessor(RedactionConfig(disabled_detectors=["ipv4", "email"]))
    attrs = redact_one(proc, {"a": "10.1.2.3 bob@example.com 555-123-4567"})["SpanAttributes"]
    assert attrs["a"] == "10.1.2.3 bob@example.com <PHONE>"


def test_size_cap_cuts_at_character_boundary_with_marker_and_keeps_json_valid():
    proc = RedactProcessor(RedactionConfig(max_value_bytes=32))
    long_text = "é" * 40  # 80 bytes
    content = json.dumps({"content": "x" * 100, "role": "user"})
    row = redact_one(proc, {"t": long_text, "j": content, "short": "ok"}, StatusMessage="y" * 50)
    attrs = row["SpanAttributes"]
    assert attrs["t"] == "é" * 16 + "...[cut 48 bytes]"
    parsed = json.loads(attrs["j"])
    assert parsed == {"content": "x" * 32 + "...[cut 68 bytes]", "role": "user"}
    assert row["StatusMessage"] == "y" * 32 + "...[cut 18 bytes]"
    assert attrs["short"] == "ok"
    counters = proc.counters()
    assert counters["values_truncated_total"] == 3 and counters["bytes_cut_total"] == 48 + 68 + 18


def test_detection_runs_before_the_cut():
    proc = RedactProcessor(RedactionConfig(max_value_bytes=20))
    attrs = redact_one(proc, {"t": "card 4111 1111 1111 1111 end"})["SpanAttributes"]
    assert attrs["t"].startswith("card <CREDIT_CARD>") and "1111" not in attrs["t"]


def test_counters_and_spans_without_findings_are_untouched(processor):
    batch = batch_of(span_row({"a": "hello"}), span_row({"a": "key AKIAIOSFODNN7EXAMPLE"}))
    before = processor.counters()
    processor.process(batch)
    after = processor.counters()
    assert batch["SpanAttributes"][0] == {"a": "hello"}
    assert after["spans_redacted_total"] - before["spans_redacted_total"] == 1
    assert after["credential_hits_total"] - before["credential_hits_total"] == 1
    assert after["hits_aws_access_key_id_total"] - before["hits_aws_access_key_id_total"] == 1


def test_disabled_processor_changes_nothing():
    proc = RedactProcessor(RedactionConfig(enabled=False))
    assert redact_one(proc, {"a": "bob@example.com"})["SpanAttributes"] == {"a": "bob@example.com"}


@pytest.mark.parametrize(("overrides", "message"), [
    ({"action": "mask"}, "redaction.action: must be one of placeholder, hash, drop"),
    ({"detector_actions": {"email": "hash"}}, "redaction.hash_key: required because "
                                              "redaction.detector_actions.email is 'hash'"),
    ({"mask_keys_action": "hash", "hash_key": "short"}, "redaction.hash_key: must be at least 16 characters"),
    ({"disabled_detectors": ["emial"]}, "redaction.disabled_detectors: unknown detector 'emial'"),
    ({"detector_actions": {"phonez": "drop"}}, "redaction.detector_actions.phonez: unknown detector"),
    ({"rules": [{"name": "x", "pattern": "(unclosed"}]}, "redaction.rules[0].pattern: not a valid regular"),
    ({"rules": [{"name": "x", "pattern": "a*"}]}, "redaction.rules[0].pattern: matches the empty string"),
    ({"rules": [{"name": "email", "pattern": "a+"}]}, "redaction.rules[0].name: 'email' is already"),
    ({"rules": [{"name": "Bad Name", "pattern": "a+"}]}, "redaction.rules[0].name: expected a name"),
    ({"rules": [{"name": "x", "pattern": "a+", "action": "erase"}]}, "redaction.rules[0].action: must be one"),
    ({"rules": [{"name": "x", "patern": "a+"}]}, "redaction.rules[0].patern: unknown option (did you mean"),
    ({"max_value_bytes": -1}, "redaction.max_value_bytes: must be 0"),
    ({"drop_keys": [""]}, "redaction.drop_keys: empty key pattern"),
])
def test_bad_redaction_config_is_refused_with_the_key(overrides, message):
    with pytest.raises(ConfigError) as exc:
        config_mod.load(None, environ={}, overrides={"redaction": overrides})
    assert message in str(exc.value)


def test_redaction_config_from_yaml_and_environment(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("redaction:\n  detector_actions: {email: hash}\n  disabled_detectors: [ipv4]\n"
                    "  rules:\n    - name: emp\n      pattern: 'EMP-\\d+'\n      credential: true\n")
    cfg = config_mod.load(path, environ={"SPANHOUSE_REDACTION__HASH_KEY": HASH_KEY,
                                         "SPANHOUSE_REDACTION__DISABLED_DETECTORS": "ipv4,ipv6"})
    assert cfg.redaction.detector_actions == {"email": "hash"}
    assert cfg.redaction.disabled_detectors == ["ipv4", "ipv6"]
    assert cfg.redaction.rules[0].name == "emp" and cfg.redaction.rules[0].credential
    assert cfg.redaction.hash_key == HASH_KEY


def test_corpus_precision_and_recall_are_one():
    """Every positive found by its own detector and no other; no trap touched (bench/redaction.py --corpus)."""
    redactor = RedactProcessor(RedactionConfig()).redactor
    missed, wrong = [], []
    for detector, value, template in POSITIVES:
        found = Findings()
        out = redactor.redact_value(template.replace("{}", value), redactor.all_rule_ids, found)
        if value in out or detector not in found.rules:
            missed.append((detector, value))
        wrong += [(rule, value) for rule in found.rules if rule != detector]
    for _, text in TRAPS:
        found = Findings()
        redactor.redact_value(text, redactor.all_rule_ids, found)
        wrong += [(rule, text) for rule in found.rules]
    assert missed == [] and wrong == []


@pytest.mark.parametrize(("text", "expected"), [
    # Only the value goes; the parameter's name and the rest of the URL stay readable.
    ("https://api.example.com/v1/items?access_token=tok_live_9f8e7d6c5b4a3f2e1d0c&page=2",
     "https://api.example.com/v1/items?access_token=<URL_QUERY_SECRET>&page=2"),
    ("https://app.example.com/cb#ACCESS_TOKEN=ya29.a0AfH6SMBx&expires_in=3599",
     "https://app.example.com/cb#ACCESS_TOKEN=<URL_QUERY_SECRET>&expires_in=3599"),
    ("see https://x.example.com/?key=AIzaSyD4x9Q2mZ7pL1vR8tY3wK6nB0cH5jF2gD8.",
     "see https://x.example.com/?key=<URL_QUERY_SECRET>."),
    ("?apikey=abcd", "?apikey=<URL_QUERY_SECRET>"),  # a name that only holds secrets: any value of 4+
    # Names that also hold words: the value must look like a token (8+ with a digit, or 16+).
    ("pass parameters as ?key=value pairs", None),
    ("https://httpbin.org/status?code=200&session=expired", None),
    ("/cb?code=4/0AY0e-g7xK2mP9qR&state=xyz", "/cb?code=<URL_QUERY_SECRET>&state=xyz"),
    # Templates and values masked already are not secrets.
    ("GET /docs?token={token}&api_key=${API_KEY}", None),
    ("https://example.com/cb?access_token=****", None),
    # The name must be the whole parameter name, after `?`, `&`, `#` or `;`.
    ("sort_key=abcdef123456&monkey=banana12345678", None),
    ("https://deploy:Zx9-pass-Q7@git.example.com/r.git", "https://deploy:<URL_PASSWORD>@git.example.com/r.git"),
])
def test_url_query_secret_rule(processor, text, expected):
    row = redact_one(processor, {"url.full": text})
    assert row["SpanAttributes"]["url.full"] == (text if expected is None else expected)


@pytest.mark.parametrize(("text", "expected"), [
    ("mail john%40example.com now", "mail <EMAIL> now"),
    ("%6A%6F%68%6E%40example.com, thanks", "<EMAIL>, thanks"),
    ("k=sk%2Dproj%2DAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z;", "k=<OPENAI_API_KEY>;"),
    ("next=https%3A%2F%2Fa.example.com%2F%3Faccess_token%3Dtok_live_abc123def456%26x%3D1",
     "next=https%3A%2F%2Fa.example.com%2F%3Faccess_token%3D<URL_QUERY_SECRET>%26x%3D1"),
    ("twice: john%2540example.com", "twice: <EMAIL>"),
    ("カード ４１１１ １１１１ １１１１ １１１１ です", "カード <CREDIT_CARD> です"),
    ("key ＡＫＩＡＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ!", "key <AWS_ACCESS_KEY_ID>!"),
    ("ssn ١٢٣-٤٥-٦٧٨٩ ok", "ssn <US_SSN> ok"),
    ("𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟓𝟒𝟒𝟒𝟒", "<CREDIT_CARD>"),
    ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ まで", "<EMAIL> まで"),
    # Nothing to find once folded: left exactly as it was.
    ("50% off, 100%25 sure, caf%C3%A9 and Ｈｅｌｌｏ １２３", None),
])
def test_folded_matches_replace_exactly_the_original_characters(processor, text, expected):
    content = json.dumps({"content": text})  # ASCII-only JSON: full-width characters as \u escapes
    row = redact_one(processor, {"note": text, "gen_ai.input.messages": content})
    attrs = row["SpanAttributes"]
    want = text if expected is None else expected
    assert attrs["note"] == want
    assert json.loads(attrs["gen_ai.input.messages"]) == {"content": want}


def test_every_field_kind_carries_no_url_credential_or_disguised_value(processor):
    secrets = {
        "url": "https://api.example.com/v1/items?access_token=tok_live_9f8e7d6c5b4a3f2e1d0c",
        "encoded": "john%40example.com",
        "wide": "４１１１ １１１１ １１１１ １１１１",
    }
    text = " ".join(secrets.values())
    row = span_row(
        {"url.full": text}, SpanName=f"GET {text}", StatusMessage=text,
        ResourceAttributes={"service.name": "svc", "deploy.url": text},
        **{"Events.Name": [text], "Events.Timestamp": [1], "Events.Attributes": [{"http.url": text}],
           "Links.TraceId": ["4bf92f3577b34da6a3ce929d0e0e4736"], "Links.SpanId": ["00f067aa0ba902b7"],
           "Links.TraceState": [""], "Links.Attributes": [{"link.url": text}], "ToolCallId": text},
    )
    batch = batch_of(row)
    processor.process(batch)
    stored = stored_strings(batch)
    assert [name for name, value in secrets.items() if value in stored] == []
    assert "tok_live" not in stored and "john" not in stored and "１１１１" not in stored
    expected = "https://api.example.com/v1/items?access_token=<URL_QUERY_SECRET> <EMAIL> <CREDIT_CARD>"
    assert batch["SpanName"][0] == f"GET {expected}"
    assert batch["ResourceAttributes"][0]["deploy.url"] == expected
    assert batch["Events.Attributes"][0] == [{"http.url": expected}]
    assert batch["Links.Attributes"][0] == [{"link.url": expected}]
    assert batch["Events.Name"][0] == [expected] and batch["StatusMessage"][0] == expected


def test_hash_of_an_encoded_value_equals_the_hash_of_its_plain_form():
    proc = RedactProcessor(RedactionConfig(detector_actions={"email": "hash"}, hash_key=HASH_KEY))
    plain = redact_one(proc, {"u": "frank@example.com"})["SpanAttributes"]["u"]
    assert redact_one(proc, {"u": "frank%40example.com"})["SpanAttributes"]["u"] == plain
    assert redact_one(proc, {"u": "ｆｒａｎｋ＠ｅｘａｍｐｌｅ．ｃｏｍ"})["SpanAttributes"]["u"] == plain


def test_a_value_with_many_matches_is_redacted_whole(processor):
    # Hostile input: tens of thousands of matches in one value, encoded and plain (overlaps are
    # resolved by neighbours in text order, not against every match kept so far).
    value = "john%40example.com bob@example.org 4111 1111 1111 1111 " * 10_000
    before = processor.counters()
    attrs = redact_one(processor, {"v": value})["SpanAttributes"]
    assert attrs["v"] == "<EMAIL> <EMAIL> <CREDIT_CARD> " * 10_000
    assert attrs[COUNT_ATTRIBUTE] == "30000"
    after = processor.counters()
    assert after["hits_email_total"] - before["hits_email_total"] == 20_000
