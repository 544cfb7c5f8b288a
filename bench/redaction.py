"""Redaction benchmark: spans/s and MB/s of the redact processor, against one Python `re` per pattern.

    python bench/redaction.py            # 40,960 spans per workload, about a minute on 2 cores
    python bench/redaction.py --quick    # 10,240 spans, about 15 s
    python bench/redaction.py --corpus   # precision and recall on tests/redaction_corpus only
    python bench/redaction.py --hits     # only the no-PII and hit-dense corpora (--profile, --action hash)

Workloads, built before any timing as the receiver would hand them over
(batches of 512 decoded spans, one shared resource per batch):

- `no content`: GenAI-shaped spans with ~15 attributes (models, tokens,
  ids, server address, finish reasons), no message content.
- `content`: the same plus ~1.2 KB of `gen_ai.input.messages` /
  `gen_ai.output.messages` JSON per span.

In both, 5% of spans (`--pii`) carry PII or a credential somewhere (an e-mail in the
prompt, a card number in a tool argument, a key in an exception message), so
the confirm-and-rewrite path is part of the measurement.

Each workload runs through `RedactProcessor.process` (Hyperscan scan, Python
confirm), and a slice of it through the baseline: every exact expression
searched with Python's `re` over every value, one pattern after the other, and
the values where one matched redacted the same way (what a redactor without a
multi-pattern engine does; both give the same output, which is checked). The ratio is
processor spans/s over baseline spans/s, measured in the same run. MB/s counts
the UTF-8 bytes of all string values scanned. One core: the processor is
single-threaded in this process.

Then two content corpora of the same shape (~2.1 KB of message JSON and
system instructions per span): `no PII`, and `hit-dense`, where every span's
messages and instructions hold e-mail addresses and phone numbers and one in
ten also a card number and a key (support-chat traffic). Their time per span
is compared in the same run: redaction should not cost much more when most
values hold PII. Times are the CPU time of this process, best of `--repeat`.

`--corpus` prints precision and recall per detector on the corpus of true
positives and traps in tests/redaction_corpus/corpus.json.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from spanhouse.collector.batch import BASE_COLUMNS, SpanBatch
from spanhouse.collector.config import RedactionConfig
from spanhouse.collector.processors.redact import RedactProcessor
from spanhouse.collector.processors.redaction.engine import Dropped, Findings
from spanhouse.collector.processors.redaction.normalize import could_fold

BATCH = 512
CORPUS = Path(__file__).resolve().parent.parent / "tests" / "redaction_corpus" / "corpus.json"
WORDS = ("the", "report", "quarterly", "customer", "please", "summarize", "order", "shipping", "refund",
         "account", "invoice", "status", "policy", "request", "update", "thanks", "delivery", "ticket",
         "issue", "product", "warranty", "return", "schedule", "meeting", "analysis", "results")
SENSITIVE = ("reach me at dana.lee@example.com", "card 4111 1111 1111 1111 please", "call +44 20 7946 0958",
             "key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3i", "from 203.0.113.42",
             "IBAN DE89 3704 0044 0532 0130 00", "postgres://app:S3cr3t@db:5432/x")


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


FIRST = ("dana", "li", "omar", "sofia", "kenji", "amara", "lukas", "priya", "mateo", "ines", "noah", "yara")
LAST = ("lee", "chen", "haddad", "rossi", "tanaka", "okafor", "weber", "nair", "garcia", "silva", "berg")
DOMAINS = ("example.com", "mail.example.org", "corp.example.net", "example.co.uk")
# Support-desk contacts the system prompt names; one per agent.
DESKS = (("support@acme.example.com", "+1 800 555 0100"), ("help@acme.example.co.uk", "+44 20 7946 0000"),
         ("billing@acme.example.com", "(212) 555-0147"))
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randint(1, 999)}@{rng.choice(DOMAINS)}"


def _phone(rng: random.Random) -> str:
    a, b, c = rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice((f"+1 {a} {b} {c:04d}", f"({a}) {b}-{c:04d}", f"{a}-{b}-{c:04d}",
                       f"+44 20 {b}1 {c:04d}", f"+49 30 {b}{c:04d}"))


def _card(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa or Mastercard number, grouped in fours."""
    digits = [4] if rng.random() < 0.5 else [5, rng.randint(1, 5)]
    digits += [rng.randint(0, 9) for _ in range(15 - len(digits))]
    total = 0
    for i, d in enumerate(reversed(digits)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i:i + 4] for i in range(0, 16, 4))


def _secret(rng: random.Random) -> str:
    token = "".join(rng.choice(TOKEN_CHARS) for _ in range(40))
    return rng.choice((f"sk-proj-{token}", f"ghp_{token[:36]}", f"Bearer {token}"))


def _hit_content(rng: random.Random, desk: tuple[str, str]) -> tuple[str, str, str]:
    """Support chat: the user gives an e-mail and a phone number, the agent repeats them, the system
    prompt names the desk's; one span in ten also carries a card number and a key or token."""
    email, phone = _email(rng), _phone(rng)
    user = (f"{_sentence(rng, 40)} you can reach me at {email} or call {phone} {_sentence(rng, 20)}")
    if rng.random() < 0.1:
        user += f" my card is {_card(rng)} and the key we use is {_secret(rng)}"
    earlier = _sentence(rng, 30)
    inp = json.dumps([
        {"role": "user", "parts": [{"type": "text", "content": earlier}]},
        {"role": "assistant", "parts": [{"type": "text", "content": _sentence(rng, 25)}]},
        {"role": "user", "parts": [{"type": "text", "content": user}]}])
    out = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content":
                      f"{_sentence(rng, 30)} I have sent the details to {email} and we will call {phone} "
                      f"{_sentence(rng, 15)}"}], "finish_reason": "stop"}])
    system = json.dumps([{"type": "text", "content": f"You are the support agent of Acme. {_sentence(rng, 20)} "
                          f"Escalate to {desk[0]} or {desk[1]} when asked."}])
    return inp, out, system


def _no_pii_content(rng: random.Random) -> tuple[str, str, str]:
    """The same shape and sizes as _hit_content, with words where the PII was."""
    inp = json.dumps([
        {"role": "user", "parts": [{"type": "text", "content": _sentence(rng, 30)}]},
        {"role": "assistant", "parts": [{"type": "text", "content": _sentence(rng, 25)}]},
        {"role": "user", "parts": [{"type": "text", "content": _sentence(rng, 69)}]}])
    out = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": _sentence(rng, 56)}],
                       "finish_reason": "stop"}])
    system = json.dumps([{"type": "text", "content": f"You are the support agent of Acme. {_sentence(rng, 20)} "
                          "Escalate to the support desk when asked."}])
    return inp, out, system


def _content(rng: random.Random, pii: str | None) -> tuple[str, str]:
    user = _sentence(rng, 60)
    if pii:
        user += " " + pii
    inp = json.dumps([{"role": "system", "parts": [{"type": "text", "content": _sentence(rng, 25)}]},
                      {"role": "user", "parts": [{"type": "text", "content": user}]}])
    out = json.dumps([{"role": "assistant", "parts": [{"type": "text", "content": _sentence(rng, 55)}],
                       "finish_reason": "stop"}])
    return inp, out


def build(spans: int, content: bool, pii_share: float = 0.05, seed: int = 7, corpus: str = "sparse"
          ) -> list[SpanBatch]:
    """`corpus`: `sparse` (`pii_share` of spans carry one sensitive value), or, with content,
    `none` (no PII at all) and `hits` (every span's content is full of it, see _hit_content)."""
    rng = random.Random(seed)
    batches = []
    for b in range(0, spans, BATCH):
        resource = {"service.name": "support-bot", "service.version": "2.4.1", "deployment.environment": "prod",
                    "telemetry.sdk.language": "python", "telemetry.sdk.version": "1.27.0",
                    "host.name": f"worker-{b % 7}"}
        cols: dict[str, list[Any]] = {name: [] for name in BASE_COLUMNS}
        for i in range(BATCH):
            pii = rng.choice(SENSITIVE) if rng.random() < pii_share else None
            trace = f"{rng.getrandbits(128):032x}"
            attrs = {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(64):x}", "gen_ai.request.temperature": "0.2",
                "gen_ai.request.max_tokens": "1024", "gen_ai.usage.input_tokens": str(rng.randint(50, 4000)),
                "gen_ai.usage.output_tokens": str(rng.randint(10, 900)),
                "gen_ai.response.finish_reasons": '["stop"]', "server.address": "api.openai.com",
                "server.port": "443", "gen_ai.conversation.id": f"conv-{rng.getrandbits(48):x}",
                "gen_ai.agent.name": "support", "http.request.duration_ms": f"{rng.random() * 3000:.1f}",
            }
            if content and corpus == "hits":
                (attrs["gen_ai.input.messages"], attrs["gen_ai.output.messages"],
                 attrs["gen_ai.system_instructions"]) = _hit_content(rng, DESKS[i % len(DESKS)])
            elif content and corpus == "none":
                (attrs["gen_ai.input.messages"], attrs["gen_ai.output.messages"],
                 attrs["gen_ai.system_instructions"]) = _no_pii_content(rng)
            elif content:
                attrs["gen_ai.input.messages"], attrs["gen_ai.output.messages"] = _content(rng, pii)
            elif pii:
                attrs["user.note"] = pii
            error = rng.random() < 0.03
            row = {
                "TenantId": "default", "Timestamp": 1_732_370_700_000_000_000 + i, "TraceId": trace,
                "SpanId": f"{rng.getrandbits(64):016x}", "ParentSpanId": "", "TraceState": "",
                "SpanName": "chat gpt-4o-mini", "SpanKind": "Client", "ServiceName": "support-bot",
                "ResourceAttributes": resource, "ScopeName": "spanhouse.instrumentation.openai",
                "ScopeVersion": "0.1.0", "SpanAttributes": attrs, "Duration": 1_000_000,
                "StatusCode": "Error" if error else "Unset",
                "StatusMessage": "Rate limit reached for gpt-4o-mini" if error else "",
                "Events.Timestamp": [1] if error else [], "Events.Name": ["exception"] if error else [],
                "Events.Attributes": [{"exception.type": "RateLimitError",
                                       "exception.message": "429 Too Many Requests at 2024-11-23T14:05:00Z"}]
                if error else [],
                "Links.TraceId": [], "Links.SpanId": [], "Links.TraceState": [], "Links.Attributes": [],
            }
            for name in BASE_COLUMNS:
                cols[name].append(row[name])
        batch = SpanBatch(cols, BATCH)
        for name, value in (("Operation", "chat"), ("Provider", "openai"), ("RequestModel", "gpt-4o-mini"),
                            ("ResponseModel", "gpt-4o-mini-2024-07-18"), ("AgentName", "support")):
            batch.set_column(name, [value] * BATCH)
        batch.set_column("ConversationId", [a["gen_ai.conversation.id"] for a in cols["SpanAttributes"]])
        batch.set_column("ResponseId", [a["gen_ai.response.id"] for a in cols["SpanAttributes"]])
        batches.append(batch)
    return batches


def scanned_bytes(batches: list[SpanBatch]) -> int:
    total = 0
    for batch in batches:
        for attrs in batch["SpanAttributes"]:
            total += sum(len(v.encode()) for v in attrs.values())
        for events in batch["Events.Attributes"]:
            total += sum(len(v.encode()) for ev in events for v in ev.values())
        total += sum(len(v.encode()) for v in batch["StatusMessage"])
    return total


def baseline(proc: RedactProcessor, batches: list[SpanBatch]) -> None:
    """Every exact expression searched with Python's `re` over every span, event and resource value;
    values where one matched are then redacted like the processor does (JSON leaf by leaf)."""
    redactor = proc.redactor
    for batch in batches:
        for column in ("SpanAttributes", "ResourceAttributes"):
            values = batch[column]
            for i, attrs in enumerate(values):
                values[i] = _baseline_map(redactor, attrs)
        for events in batch["Events.Attributes"]:
            events[:] = [_baseline_map(redactor, ev) for ev in events]
        for name in ("SpanName", "StatusMessage"):
            col = batch[name]
            for i, text in enumerate(col):
                col[i] = _baseline_value(redactor, text)


def _baseline_value(redactor: Any, text: str) -> str:
    found = [i for i, rule in enumerate(redactor.rules) if rule.pattern.search(text)]
    # A value that may hide a match behind escapes or look-alikes is folded and searched again.
    return redactor.redact_value(text, found, Findings()) if found or could_fold(text) else text


def _baseline_map(redactor: Any, attrs: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, value in attrs.items():
        if redactor.keys.verdict(key) == redactor.keys.MASK:
            out[key] = redactor.masked(value)
            continue
        try:
            out[key] = _baseline_value(redactor, value)
        except Dropped:
            continue
    return out


def timed(fn: Any, batches: list[SpanBatch], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        work = [SpanBatch(copy.deepcopy(b.columns), b.size) for b in batches]
        gc.collect()
        start = time.process_time()
        for batch in work:
            fn(batch)
        best = min(best, time.process_time() - start)
    return best


def run_speed(spans: int, repeat: int, pii_share: float) -> None:
    print(f"{'workload':<12} {'engine':<22} {'spans/s':>10} {'MB/s':>8} {'ratio':>7}")
    for content in (False, True):
        name = "content" if content else "no content"
        batches = build(spans, content, pii_share)
        size = scanned_bytes(batches)
        proc = RedactProcessor(RedactionConfig())
        fast = timed(proc.process, batches, repeat)
        part = batches[: max(1, len(batches) // 8)]
        part_spans = sum(b.size for b in part)
        slow = timed(lambda b: baseline(proc, [b]), part, 1)
        check_same(proc, part)
        fast_rate = spans / fast
        slow_rate = part_spans / slow
        print(f"{name:<12} {'hyperscan + confirm':<22} {fast_rate:>10,.0f} {size / fast / 1e6:>8.1f} "
              f"{fast_rate / slow_rate:>6.1f}x")
        print(f"{name:<12} {'re per pattern':<22} {slow_rate:>10,.0f} {size / len(batches) * len(part) / slow / 1e6:>8.1f}"
              f" {1.0:>6.1f}x")
        print(f"{'':<12} bytes scanned per span: {size / spans:,.0f}")


def run_density(spans: int, repeat: int, profile: bool = False, action: str = "placeholder") -> None:
    """The content workload without any PII and with PII in every span, in the same run."""
    config = RedactionConfig(action=action, hash_key="bench-hash-key-0123456789" if action == "hash" else "")
    print(f"{'corpus':<12} {'spans/s':>10} {'us/span':>8} {'MB/s':>8}  hits per span   (action: {action})")
    rates: dict[str, float] = {}
    for corpus in ("none", "hits"):
        batches = build(spans, True, corpus=corpus)
        size = scanned_bytes(batches)
        proc = RedactProcessor(config)
        best = timed(proc.process, batches, repeat)
        hits = sum(n for name, n in proc.counters().items() if name.startswith("hits_")) / repeat / spans
        check_same(proc, batches[:1])
        rates[corpus] = spans / best
        print(f"{'no PII' if corpus == 'none' else 'hit-dense':<12} {spans / best:>10,.0f} {best / spans * 1e6:>8.1f} "
              f"{size / best / 1e6:>8.1f}  {hits:.1f}")
    print(f"hit-dense time per span / no-PII time per span: {rates['none'] / rates['hits']:.2f}x")
    if profile:
        import cProfile
        import pstats

        batches = build(spans, True, corpus="hits")
        proc = RedactProcessor(config)
        work = [SpanBatch(copy.deepcopy(b.columns), b.size) for b in batches]
        profiler = cProfile.Profile()
        profiler.enable()
        for batch in work:
            proc.process(batch)
        profiler.disable()
        print("\nwhere the time goes on the hit-dense corpus (cProfile, cumulative, top 25):")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def check_same(proc: RedactProcessor, batches: list[SpanBatch]) -> None:
    """The processor and the baseline redact the same values to the same text."""
    for batch in batches:
        a = SpanBatch(copy.deepcopy(batch.columns), batch.size)
        b = SpanBatch(copy.deepcopy(batch.columns), batch.size)
        proc.process(a)
        baseline(proc, [b])
        for x, y in zip(a["SpanAttributes"], b["SpanAttributes"], strict=True):
            x = {k: v for k, v in x.items() if not k.startswith("spanhouse.redaction.")}
            if x != y:
                sys.exit(f"processor and baseline disagree:\n{x}\n{y}")


def run_corpus() -> None:
    corpus = json.loads(CORPUS.read_text())
    proc = RedactProcessor(RedactionConfig())
    redactor = proc.redactor
    per: dict[str, list[int]] = {}  # detector -> [true positives, false negatives, false positives]
    for detector, value, template in corpus["positives"]:
        found = Findings()
        out = redactor.redact_value(template.replace("{}", value), redactor.all_rule_ids, found)
        row = per.setdefault(detector, [0, 0, 0])
        if value not in out and detector in found.rules:
            row[0] += 1
        else:
            row[1] += 1
        for rule, n in found.rules.items():
            if rule != detector:
                per.setdefault(rule, [0, 0, 0])[2] += n
    for _kind, text in corpus["traps"]:
        found = Findings()
        redactor.redact_value(text, redactor.all_rule_ids, found)
        for rule, n in found.rules.items():
            per.setdefault(rule, [0, 0, 0])[2] += n
    print(f"{'detector':<28} {'tp':>4} {'fn':>4} {'fp':>4} {'precision':>10} {'recall':>8}")
    tp = fn = fp = 0
    for detector, (t, f, p) in sorted(per.items()):
        tp, fn, fp = tp + t, fn + f, fp + p
        print(f"{detector:<28} {t:>4} {f:>4} {p:>4} {t / (t + p) if t + p else 1:>10.3f} "
              f"{t / (t + f) if t + f else 1:>8.3f}")
    print(f"{'all':<28} {tp:>4} {fn:>4} {fp:>4} {tp / (tp + fp):>10.3f} {tp / (tp + fn):>8.3f}"
          f"   ({len(corpus['positives'])} positives, {len(corpus['traps'])} traps)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=40_960)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus", action="store_true", help="only precision and recall on the corpus")
    parser.add_argument("--pii", type=float, default=0.05, help="share of spans carrying a sensitive value")
    parser.add_argument("--hits", action="store_true",
                        help="only the no-PII and hit-dense content corpora, side by side")
    parser.add_argument("--profile", action="store_true", help="with --hits: cProfile the hit-dense corpus")
    parser.add_argument("--action", choices=("placeholder", "hash"), default="placeholder",
                        help="with --hits: what replaces a match (hash: keyed HMAC-SHA256)")
    args = parser.parse_args()
    spans = 10_240 if args.quick else args.spans
    spans = spans - spans % BATCH or BATCH
    if args.hits:
        run_density(spans, args.repeat, args.profile, args.action)
        return
    if not args.corpus:
        run_speed(spans, args.repeat, args.pii)
        print()
        run_density(spans, args.repeat)
        print()
    run_corpus()


if __name__ == "__main__":
    main()
