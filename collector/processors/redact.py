"""redact: PII and credentials out of every stored string, before pricing, sampling and storage.

Per span, all attribute values (span, event and link attributes), event names
and link trace states are joined into one block; the blocks of a batch are
scanned in one call of the multi-pattern engine, and only values a trigger
fired on are confirmed and rewritten in Python. Resource attributes are shared by the spans of one
resource and are redacted once per resource. The plain string columns
(SpanName, StatusMessage, ServiceName, the typed GenAI columns that normalize
copied from attributes, ...) are redacted once per distinct value in the batch.

A span that had anything redacted carries `spanhouse.redaction.count` and
`spanhouse.redaction.rules` (rule names, never values).
"""

from __future__ import annotations

import logging
import re
import threading
from bisect import bisect_right
from itertools import accumulate, repeat
from operator import add

from spanhouse.collector.batch import GENAI_TABLE, SpanBatch
from spanhouse.collector.processors.redaction.config import RedactionConfig
from spanhouse.collector.processors.redaction.detectors import BUILTIN
from spanhouse.collector.processors.redaction.engine import (
    ALLOW_KEYS_RULE,
    DROP_KEYS_RULE,
    MASK_KEYS_RULE,
    NATIVE_MISSING,
    Dropped,
    Findings,
    Hits,
    KeyRules,
    Later,
    Redactor,
    Rule,
    Scanner,
    Trigger,
    _fastredact,
    _looks_like_json,
    glob_regex,
)
from spanhouse.collector.processors.redaction.normalize import could_fold, json_could_fold

COUNT_ATTRIBUTE = "spanhouse.redaction.count"
RULES_ATTRIBUTE = "spanhouse.redaction.rules"

# String columns that are not attribute maps. Each typed column names the
# attribute normalize copied it from (batch.GENAI_TABLE), so key rules reach the copy too.
COLUMN_SOURCES: dict[str, str | None] = {
    "SpanName": None,
    "StatusMessage": None,
    "TraceState": None,
    "ScopeName": None,
    "ScopeVersion": None,
    "ServiceName": "service.name",
    **{column.name: column.source for column in GENAI_TABLE
       if column.source is not None and column.clickhouse_type in ("String", "LowCardinality(String)")},
    **{column.name: column.resource_sources[0] for column in GENAI_TABLE if column.resource_sources},
}
# Columns copied from resource attributes, with every name they may come from: the allow-list does not
# apply to them (as to the resource attributes), and a key rule on any of their names reaches the copy.
RESOURCE_COLUMN_KEYS: dict[str, tuple[str, ...]] = {
    "ServiceName": ("service.name",),
    **{column.name: column.resource_sources for column in GENAI_TABLE if column.resource_sources},
}
# Columns holding a list of strings per span.
LIST_COLUMNS = ("Events.Name", "Links.TraceState", "FinishReasons")
# Resource attributes describe the process, so the allow-list leaves them alone.
_RESOURCE = "resource"

log = logging.getLogger("spanhouse.redact")
_native_warned = False


def _warn_native_missing() -> None:
    """Say once per process that e-mail, phone and card matches are confirmed in Python."""
    global _native_warned
    if NATIVE_MISSING is not None and not _native_warned:
        _native_warned = True
        log.warning("the native redaction module is not installed (%s): e-mail, phone and card matches are "
                    "confirmed in Python, several times slower on content full of PII. Install a C compiler "
                    "and the Python headers (e.g. apt-get install gcc python3-dev) and reinstall spanhouse.",
                    NATIVE_MISSING)


class RedactProcessor:
    name = "redact"

    def __init__(self, config: RedactionConfig, use_hyperscan: bool = True, reference: bool = False) -> None:
        """`reference`: confirm and replace the plain way (see Redactor), for tests to compare with."""
        self.enabled = config.enabled
        if self.enabled and not reference:
            _warn_native_missing()
        rules: list[Rule] = []
        triggers: list[Trigger] = []
        disabled = set(config.disabled_detectors)
        self.credential_rules: set[str] = {MASK_KEYS_RULE}
        for det in BUILTIN:
            if det.name in disabled:
                continue
            action = config.detector_actions.get(det.name, config.action)
            rule_id = len(rules)
            rules.append(Rule(det.name, det.pattern, action, f"<{det.name.upper()}>", det.credential, det.validate,
                              window=det.name != "private_key", lead=det.lead, anchor=det.anchor))
            for expression in (det.trigger,) if isinstance(det.trigger, str) else det.trigger:
                triggers.append(Trigger(expression, rule_id, caseless=det.trigger_caseless))
            if det.credential:
                self.credential_rules.add(det.name)
        for user in config.rules:
            pattern = re.compile(user.pattern, re.I if user.case_insensitive else 0)
            rule_id = len(rules)
            rules.append(Rule(user.name, pattern, user.action or config.action,
                              user.placeholder or f"<{user.name.upper()}>", user.credential))
            triggers.append(Trigger(user.pattern, rule_id, caseless=user.case_insensitive, prefilter=True))
            if user.credential:
                self.credential_rules.add(user.name)
        self.rule_count = len(rules)
        # A key rule can also hit a key inside JSON content: these triggers make sure the value is walked.
        for glob in list(config.drop_keys) + list(config.mask_keys):
            # A leading `*` needs no expression: the key's end is what must be found.
            key = glob_regex(glob.lstrip("*"), for_json_key=True) if glob.startswith("*") else (
                '"' + glob_regex(glob, for_json_key=True))
            triggers.append(Trigger(f'{key}"\\s*:', len(rules), caseless=True))
        # Percent-escapes and JSON `\\u` escapes may hide a match that only the folded text shows
        # (see normalize.py). Found in the same pass as everything else: a second search of every
        # value for them would cost more than the whole scan.
        self.fold_id = len(rules) + 1
        triggers.append(Trigger(r"%[0-9A-Fa-f]{2}", self.fold_id))
        triggers.append(Trigger(r"\\u[0-9A-Fa-f]{4}", self.fold_id))
        # Whether a batch holds any non-ASCII byte at all: only then is each span checked for
        # look-alikes (one match per scan, so CJK text costs no callback per character).
        self.non_ascii_id = len(rules) + 2
        triggers.append(Trigger(r"[\x80-\xff]", self.non_ascii_id, single=True))
        self.keys = KeyRules(config.allow_keys, config.drop_keys, config.mask_keys)
        try:
            self.scanner = Scanner(triggers, use_hyperscan=use_hyperscan)
        except Exception as exc:  # hyperscan.error: a user pattern it cannot compile even as a prefilter
            from spanhouse.collector.settings import ConfigError

            raise ConfigError(f"redaction.rules: a pattern cannot be compiled for scanning: {exc}") from None
        hash_key = config.hash_key.encode() if config.hash_key else None
        self.redactor = Redactor(rules, self.keys, config.mask_keys_action, hash_key, config.max_value_bytes,
                                 rescan=self.scanner.hits, reference=reference)
        self.max_value_bytes = config.max_value_bytes
        # Second scans of changed span values wait and run in one engine call per batch (see
        # Redactor.settle_later); not with user rules, whose prefilter triggers may anchor at `\A`.
        self._settle_together = not reference and not config.rules
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {r.name: 0 for r in rules}
        self._hits.update({MASK_KEYS_RULE: 0, DROP_KEYS_RULE: 0, ALLOW_KEYS_RULE: 0})
        self.spans_redacted_total = 0
        self.credential_hits_total = 0
        self.values_truncated_total = 0
        self.bytes_cut_total = 0
        self._column_verdicts = {
            column: self.keys.verdict(source)
            for column, source in COLUMN_SOURCES.items() if source is not None and column not in RESOURCE_COLUMN_KEYS
        }
        for column, names in RESOURCE_COLUMN_KEYS.items():
            verdicts = [self.keys.verdict(name, allow_list_applies=False) for name in names]
            self._column_verdicts[column] = next((v for v in verdicts if v != KeyRules.KEEP), KeyRules.KEEP)

    @property
    def engine(self) -> str:
        return self.scanner.engine

    def counters(self) -> dict[str, int]:
        with self._lock:
            out = {
                "spans_redacted_total": self.spans_redacted_total,
                "credential_hits_total": self.credential_hits_total,
                "values_truncated_total": self.values_truncated_total,
                "bytes_cut_total": self.bytes_cut_total,
            }
            out.update({f"hits_{name}_total": n for name, n in self._hits.items()})
        return out

    # -- the batch ----------------------------------------------------------------------------------
    def process(self, batch: SpanBatch) -> SpanBatch:
        if not self.enabled or not batch.size:
            return batch
        findings: dict[int, Findings] = {}
        try:
            self._span_maps(batch, findings)
            self._resources(batch, findings)
            self._columns(batch, findings)
        finally:
            self.redactor.new_batch()
        if findings:
            self._record(batch, findings)
        return batch

    def _span_maps(self, batch: SpanBatch, findings: dict[int, Findings]) -> None:
        span_attrs = batch["SpanAttributes"]
        ev_attrs, ev_names = batch["Events.Attributes"], batch["Events.Name"]
        ln_attrs, ln_states = batch["Links.Attributes"], batch["Links.TraceState"]
        keys = self.keys
        verdicts, flagged = keys._verdicts, keys.flagged
        cap = self.max_value_bytes
        spans: list[tuple[int, list[str], bool]] = []  # (span, its values, whether a key rule applies)
        blocks: list[bytes] = []  # each span's values joined: what its hits are placed in
        for i, attrs in enumerate(span_attrs):
            if not verdicts.keys() >= attrs.keys():
                keys.learn(attrs)
            flag = not flagged.isdisjoint(attrs)
            parts = list(attrs.values())
            events = ev_attrs[i]
            if events:
                flag = self._gather(events, parts) or flag
                parts.extend(ev_names[i])
            links = ln_attrs[i]
            if links:
                flag = self._gather(links, parts) or flag
                parts.extend(ln_states[i])
            if parts:
                spans.append((i, parts, flag))
                blocks.append("\n".join(parts).encode("utf-8", "surrogatepass"))
        if not blocks:
            return
        scanned = self.scanner.scan(b"\n".join(blocks))
        non_ascii = self.non_ascii_id
        batch_ascii = all(hit[0] != non_ascii for hit in scanned)
        if not batch_ascii:
            scanned = [hit for hit in scanned if hit[0] != non_ascii]
        hits = _hits_by_block(blocks, scanned)
        later = Later() if self._settle_together else None
        for k, (i, parts, flag) in enumerate(spans):
            data = blocks[k]
            span_hits = hits.get(k, [])
            if span_hits or flag or (cap and len(data) > cap) or not (batch_ascii or data.isascii()):
                found = Findings()
                self._redact_span(batch, i, parts, data, span_hits, found, later)
                if found.changes:
                    findings[i] = found
        if later is not None:
            self.redactor.settle_later(later, self.scanner.scan)

    def _scan(self, data: bytes) -> list[tuple[int, int]]:
        """Trigger hits in `data`, without the batch-level non-ASCII marker."""
        non_ascii = self.non_ascii_id
        return [hit for hit in self.scanner.scan(data) if hit[0] != non_ascii]

    def _gather(self, maps: list[dict[str, str]], parts: list[str]) -> bool:
        """Append the values of event or link attribute maps to `parts`; True if a key rule applies."""
        keys = self.keys
        verdicts, flagged = keys._verdicts, keys.flagged
        flag = False
        for attrs in maps:
            if not verdicts.keys() >= attrs.keys():
                keys.learn(attrs)
            if not flag:
                flag = not flagged.isdisjoint(attrs)
            parts.extend(attrs.values())
        return flag

    def _part_rules(self, parts: list[str], data: bytes, hits: list[tuple[int, int]]) -> dict[int, Hits]:
        """Which rules may match in which part, and where their triggers ended (offsets within the part)."""
        if not hits:
            return {}
        if len(data) == sum(map(len, parts)) + len(parts) - 1:  # ASCII: bytes == characters
            lengths = [len(p) + 1 for p in parts]
        else:
            lengths = [len(p.encode("utf-8", "surrogatepass")) + 1 for p in parts]
        starts = [0, *accumulate(lengths)]
        if _fastredact is not None:  # the same dict, without a Python step per hit
            placed = _fastredact.place(hits, starts, True)
            if placed is not None:
                return placed
        out: dict[int, Hits] = {}
        for rule_id, end in hits:
            index = bisect_right(starts, end - 1) - 1
            ends = out.setdefault(index, {}).setdefault(rule_id, [])
            assert ends is not None
            ends.append(end - starts[index])
        return out

    def _settle_folding(self, parts: list[str], data: bytes, part_rules: dict[int, Hits]) -> None:
        """Which parts need their folded form redacted: those with a percent or `\\u` escape that
        folding changes (an escaped `é` changes nothing: no need to parse that JSON), and non-ASCII
        parts with look-alike characters. Each gets an entry in `part_rules`, if only an empty one."""
        fold_id = self.fold_id
        for index in [i for i, hits in part_rules.items() if fold_id in hits]:
            hits = part_rules[index]
            part = parts[index]
            if len(hits) == 1 and not (json_could_fold(part) if _looks_like_json(part) else could_fold(part)):
                del part_rules[index]
        if data.isascii():
            return
        for index, part in enumerate(parts):
            if index not in part_rules and not part.isascii() and (
                    json_could_fold(part) if _looks_like_json(part) else could_fold(part)):
                part_rules[index] = {}

    def _rules_of(self, part_rules: dict[int, Hits], index: int, text: str) -> tuple[Hits, bool, bool] | None:
        """The rules to confirm in one part (with trigger offsets when the part is ASCII), whether
        a key rule may apply inside it, and whether it may fold (an escape, or not ASCII); None
        when no trigger fired in it."""
        hits = part_rules.get(index)
        if hits is None:
            return None
        ascii_text = text.isascii()
        if ascii_text and max(hits, default=-1) < self.rule_count:
            return hits, False, False  # the common case: only rules fired, as they are (read, never changed)
        json_keys = self.rule_count in hits
        rules = {r: (ends if ascii_text else None) for r, ends in hits.items() if r < self.rule_count}
        return rules, json_keys, self.fold_id in hits or not ascii_text

    def _redact_map(self, attrs: dict[str, str], base: int, part_rules: dict[int, Hits], found: Findings,
                    allow_list_applies: bool, later: Later | None = None) -> dict[str, str]:
        """`attrs` with key rules applied and triggered values confirmed; the same dict if nothing changed.

        Only the keys a rule may concern are looked at: the work is proportional to the hits.
        """
        keys, redactor, cap = self.keys, self.redactor, self.max_value_bytes
        end = base + len(attrs)
        todo = {p - base for p in part_rules if base <= p < end}
        if cap:
            todo.update(j for j, v in enumerate(attrs.values()) if len(v) * 4 > cap)
        flagged = keys.flagged.intersection(attrs)
        if not todo and not flagged:
            return attrs
        out = dict(attrs)
        changed = False
        for key in flagged:
            verdict = keys.verdict(key, allow_list_applies)
            if verdict == KeyRules.DROP_KEY or verdict == KeyRules.NOT_ALLOWED:
                found.add(DROP_KEYS_RULE if verdict == KeyRules.DROP_KEY else ALLOW_KEYS_RULE)
                del out[key]
                changed = True
            elif verdict == KeyRules.MASK and out[key]:
                found.add(MASK_KEYS_RULE)
                changed = True
                try:
                    out[key] = redactor.masked(out[key])
                except Dropped:
                    del out[key]
        if todo:
            items = list(attrs.items())
            for j in sorted(todo):
                key, value = items[j]
                if key in flagged and keys.verdict(key, allow_list_applies) != KeyRules.KEEP:
                    continue
                rules = self._rules_of(part_rules, base + j, value)
                hits, json_keys, fold = rules or ({}, False, True)
                if later is not None:
                    later.target = (out, key)
                try:
                    new = redactor.redact_value(value, hits, found, json_keys, fold, later)
                except Dropped as dropped:
                    found.add(str(dropped))
                    del out[key]
                    changed = True
                    continue
                if new is not value:
                    out[key] = new
                    changed = True
        return out if changed else attrs

    def _redact_list(self, values: list[str], base: int, part_rules: dict[int, Hits],
                     found: Findings) -> list[str]:
        out = list(values)
        for j, value in enumerate(values):
            rules = self._rules_of(part_rules, base + j, value)
            if rules is not None or (self.max_value_bytes and len(value) * 4 > self.max_value_bytes):
                out[j] = self._redact_string(value, rules, found)
        return out

    def _redact_string(self, value: str, rules: tuple[Hits, bool, bool] | None, found: Findings) -> str:
        hits, json_keys, fold = rules or ({}, False, True)
        try:
            return self.redactor.redact_value(value, hits, found, json_keys, fold)
        except Dropped as dropped:
            found.add(str(dropped))
            return ""

    def _redact_span(self, batch: SpanBatch, i: int, parts: list[str], data: bytes,
                     hits: list[tuple[int, int]], found: Findings, later: Later | None = None) -> None:
        part_rules = self._part_rules(parts, data, hits)
        self._settle_folding(parts, data, part_rules)
        attrs = batch["SpanAttributes"][i]
        batch["SpanAttributes"][i] = self._redact_map(attrs, 0, part_rules, found, True, later)
        pos = len(attrs)
        for maps_name, list_name in (("Events.Attributes", "Events.Name"), ("Links.Attributes", "Links.TraceState")):
            maps = batch[maps_name][i]
            if not maps:
                continue
            redacted = []
            for attrs in maps:
                redacted.append(self._redact_map(attrs, pos, part_rules, found, True, later))
                pos += len(attrs)
            batch[maps_name][i] = redacted
            values = batch[list_name][i]
            batch[list_name][i] = self._redact_list(values, pos, part_rules, found)
            pos += len(values)

    def _resources(self, batch: SpanBatch, findings: dict[int, Findings]) -> None:
        column = batch["ResourceAttributes"]
        done: dict[int, tuple[dict[str, str], Findings | None]] = {}
        keys = self.keys
        for i, res in enumerate(column):
            result = done.get(id(res))
            if result is None:
                keys.learn(res)
                parts = list(res.values())
                data = "\n".join(parts).encode("utf-8", "surrogatepass")
                hits = self._scan(data) if parts else []
                flag = any(keys.verdict(k, allow_list_applies=False) != KeyRules.KEEP for k in res)
                found: Findings | None = None
                new = res
                if hits or flag or (self.max_value_bytes and len(data) > self.max_value_bytes) \
                        or not data.isascii():
                    found = Findings()
                    part_rules = self._part_rules(parts, data, hits)
                    self._settle_folding(parts, data, part_rules)
                    new = self._redact_map(res, 0, part_rules, found, False)
                    if not found.changes:
                        found = None
                result = done[id(res)] = (new, found)
            new, found = result
            if found is not None:
                column[i] = new
                findings.setdefault(i, Findings()).merge(found)

    def _columns(self, batch: SpanBatch, findings: dict[int, Findings]) -> None:
        present = [name for name in COLUMN_SOURCES if name in batch.columns]
        # Copies of attributes the key rules remove.
        for name in present:
            verdict = self._column_verdicts.get(name, KeyRules.KEEP)
            if verdict == KeyRules.KEEP:
                continue
            values = batch[name]
            rule = {KeyRules.MASK: MASK_KEYS_RULE, KeyRules.DROP_KEY: DROP_KEYS_RULE}.get(verdict, ALLOW_KEYS_RULE)
            for i, value in enumerate(values):
                if value:
                    if verdict == KeyRules.MASK:
                        try:
                            values[i] = self.redactor.masked(value)
                        except Dropped:
                            values[i] = ""
                    else:
                        values[i] = ""
                    findings.setdefault(i, Findings()).add(rule)
        unique: set[str] = set()
        for name in present:
            unique.update(batch[name])
        if "FinishReasons" in batch.columns:
            for reasons in batch["FinishReasons"]:
                unique.update(reasons)
        unique.discard("")
        if not unique:
            return
        texts = list(unique)
        data = "\n".join(texts).encode("utf-8", "surrogatepass")
        part_rules = self._part_rules(texts, data, self._scan(data))
        self._settle_folding(texts, data, part_rules)
        cap = self.max_value_bytes
        if cap:
            for j, text in enumerate(texts):
                if len(text) * 4 > cap:
                    part_rules.setdefault(j, {})
        if not part_rules:
            return
        replaced: dict[str, tuple[str, Findings]] = {}
        for j in part_rules:
            found = Findings()
            new = self._redact_string(texts[j], self._rules_of(part_rules, j, texts[j]), found)
            if found.changes:
                replaced[texts[j]] = (new, found)
        if not replaced:
            return
        for name in present:
            values = batch[name]
            for i, value in enumerate(values):
                hit = replaced.get(value)
                if hit is not None:
                    values[i] = hit[0]
                    findings.setdefault(i, Findings()).merge(hit[1])
        if "FinishReasons" in batch.columns:
            lists = batch["FinishReasons"]
            for i, reasons in enumerate(lists):
                if any(r in replaced for r in reasons):
                    lists[i] = [replaced[r][0] if r in replaced else r for r in reasons]
                    for r in reasons:
                        if r in replaced:
                            findings.setdefault(i, Findings()).merge(replaced[r][1])

    def _record(self, batch: SpanBatch, findings: dict[int, Findings]) -> None:
        span_attrs = batch["SpanAttributes"]
        totals: dict[str, int] = {}
        truncated = cut = 0
        for i, found in findings.items():
            attrs = span_attrs[i]
            if found.count:
                attrs = dict(attrs)
                attrs[COUNT_ATTRIBUTE] = str(found.count)
                attrs[RULES_ATTRIBUTE] = ",".join(sorted(found.rules))
                span_attrs[i] = attrs
            for rule, n in found.rules.items():
                totals[rule] = totals.get(rule, 0) + n
            truncated += found.truncated
            cut += found.bytes_cut
        credential = sum(n for rule, n in totals.items() if rule in self.credential_rules)
        with self._lock:
            self.spans_redacted_total += len(findings)
            self.credential_hits_total += credential
            self.values_truncated_total += truncated
            self.bytes_cut_total += cut
            for rule, n in totals.items():
                self._hits[rule] = self._hits.get(rule, 0) + n


def _hits_by_block(blocks: list[bytes], hits: list[tuple[int, int]]) -> dict[int, list[tuple[int, int]]]:
    """Hits over `b"\\n".join(blocks)` -> block index -> the same hits with ends within that block.

    The batch is scanned once (one engine call instead of one per span); triggers cannot
    tell one span's block from the next, exactly as they cannot tell one value from the next.
    """
    if not hits:
        return {}
    starts = list(accumulate(map(add, map(len, blocks), repeat(1)), initial=0))
    if _fastredact is not None:  # the same dict, without a Python step per hit
        placed = _fastredact.place(hits, starts, False)
        if placed is not None:
            return placed
    out: dict[int, list[tuple[int, int]]] = {}
    for rule_id, end in hits:
        k = bisect_right(starts, end - 1) - 1
        out.setdefault(k, []).append((rule_id, end - starts[k]))
    return out

