"""The redaction engine: find candidates in many values at once, confirm them, replace them.

`Scanner` runs every rule's trigger over a block of UTF-8 text in one pass
(Hyperscan; Python's `re` when Hyperscan is not installed) and reports which
rule fired where. `Redactor` confirms candidates with the exact expressions and
validators, only in the values a trigger fired on, and applies each rule's
action. JSON values (message content, tool arguments) are parsed and redacted
leaf by leaf, so they stay valid JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import accumulate

from spanhouse.collector.processors.redaction.detectors import BUILTIN
from spanhouse.collector.processors.redaction.normalize import could_fold, fold

try:
    import hyperscan
except ImportError:  # pragma: no cover - platforms without a hyperscan wheel
    hyperscan = None

try:  # the C confirm-and-replace of the e-mail, card and phone detectors (see _fastredact.c)
    from spanhouse.collector.processors.redaction import _fastredact
except ImportError as _exc:  # built without a compiler: Python confirms every match
    _fastredact = None
    NATIVE_MISSING: str | None = str(_exc)
else:
    NATIVE_MISSING = None

PLACEHOLDER = "placeholder"
HASH = "hash"
DROP = "drop"
ACTIONS = (PLACEHOLDER, HASH, DROP)

KEY_RULE_PLACEHOLDER = "<REDACTED>"
MASK_KEYS_RULE = "mask_keys"
DROP_KEYS_RULE = "drop_keys"
ALLOW_KEYS_RULE = "allow_keys"

# Rounds of scanning a value again after a replacement uncovered a neighbour.
_MAX_RESCANS = 16
# Nesting depth up to which JSON inside JSON strings (tool arguments) is parsed again.
_MAX_JSON_DEPTH = 4
# What a placeholder or keyed hash looks like: a password group would otherwise match it again.
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*(?::[0-9a-f]{16})?>")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
# The same strings, four times sooner: runs of plain characters go in one step, not one alternative each.
_JSON_STRING_FAST = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# A numbered back-reference (`\1`), not an escaped backslash before a digit.
_BACKREF = re.compile(r"(?<!\\)((?:\\\\)*)\\([1-9])")
# Keyed hashes remembered per batch: a support chat repeats the same address in every turn.
_HASH_CACHE_SIZE = 4096
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# rule id -> end offsets of its trigger's matches in the value
Hits = dict[int, list[int] | None]


def _windows(ends: list[int], size: int, before: int = 192, after: int = 160) -> list[tuple[int, int]]:
    if len(ends) == 1:  # the common case, without sorting and merging
        return [(max(0, ends[0] - before), min(size, ends[0] + after))]
    out: list[tuple[int, int]] = []
    for end in sorted(ends):
        lo, hi = max(0, end - before), min(size, end + after)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


class Later:
    """Values whose second scan waits for `Redactor.settle_later`: (text before, first output, their
    Findings, fold, (dict, key) the final value goes to), and the (dict, key) of the next one."""

    __slots__ = ("pending", "target")

    def __init__(self) -> None:
        self.pending: list[tuple[str, str, Findings, bool, tuple[dict[str, str], str]]] = []
        self.target: tuple[dict[str, str], str] = ({}, "")


class Dropped(Exception):
    """A rule with the drop action matched: the whole value goes."""


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    action: str
    placeholder: str
    credential: bool = False
    validate: Callable[[str], bool] | None = None
    # A match lies close to where its trigger matched (see _windows); else anywhere in the value.
    window: bool = False
    # Where a match can start (see detectors.Detector and fast_search).
    lead: str | None = None
    anchor: tuple[str, int, str] | None = None

    @property
    def group(self) -> str | int:
        return "v" if "v" in self.pattern.groupindex else 0


@dataclass(frozen=True)
class Trigger:
    expression: str
    # The rule the trigger stands for; one past the last rule for key-pattern triggers.
    rule_id: int
    caseless: bool = False
    # Hyperscan prefilter mode: an approximation for constructs it cannot run
    # (lookarounds, back-references); the exact expression confirms anyway.
    prefilter: bool = False
    # Only the first match of the whole scan is reported: "somewhere in this block".
    single: bool = False


class Scanner:
    """Reports (rule id, end offset) for every place a trigger matches in a block of bytes."""

    def __init__(self, triggers: list[Trigger], use_hyperscan: bool = True) -> None:
        self.triggers = triggers
        self.engine = "hyperscan" if use_hyperscan and hyperscan is not None else "re"
        self._local = threading.local()
        if self.engine == "hyperscan":
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            flags = []
            for t in triggers:
                # Values are scanned joined by newlines: `^` and `$` must hold at each value's edges.
                f = hyperscan.HS_FLAG_MULTILINE
                if t.caseless:
                    f |= hyperscan.HS_FLAG_CASELESS
                if t.prefilter:
                    f |= hyperscan.HS_FLAG_PREFILTER
                if t.single:
                    f |= hyperscan.HS_FLAG_SINGLEMATCH
                flags.append(f)
            self._db.compile(expressions=[t.expression.encode() for t in triggers],
                             ids=[t.rule_id for t in triggers], elements=len(triggers), flags=flags)
        else:
            self._res = [(t.rule_id, re.compile(t.expression.encode(), re.M | (re.I if t.caseless else 0)),
                          t.single) for t in triggers]

    def scan(self, data: bytes) -> list[tuple[int, int]]:
        hits: list[tuple[int, int]] = []
        if self.engine == "hyperscan":
            scratch = getattr(self._local, "scratch", None)
            if scratch is None:  # a scratch space serves one thread at a time
                scratch = self._local.scratch = hyperscan.Scratch(self._db)
            self._db.scan(data, match_event_handler=_on_match, context=hits, scratch=scratch)
        else:
            for rule_id, expr, single in self._res:
                if single:
                    m = expr.search(data)
                    if m is not None:
                        hits.append((rule_id, m.end()))
                else:
                    hits.extend((rule_id, m.end()) for m in expr.finditer(data))
        return hits


    def hits(self, text: str) -> Hits:
        """Rule id -> end offsets of its triggers in `text` (offsets only when `text` is ASCII)."""
        data = text.encode("utf-8", "surrogatepass")
        ascii_text = len(data) == len(text)
        out: Hits = {}
        for rule_id, end in self.scan(data):
            ends = out.setdefault(rule_id, [] if ascii_text else None)
            if ends is not None:
                ends.append(end)
        return out


Search = Callable[[str, int, int], "re.Match[str] | None"]


def fast_search(rule: Rule) -> Search:
    """`rule.pattern.search(text, pos, endpos)`, the same match found sooner.

    Python's `re` skips, at C speed, every position whose character cannot start a match when an
    expression opens with a character class; the detectors open with a lookbehind, which turns that
    off, so a search tries the whole expression at every character. With `lead`, the finder
    `[lead](?<=(?=pattern).)` keeps the skip and tries the pattern only where it can start (its
    back-references, not allowed in a lookbehind, widened to anything: it may only find too much),
    then the pattern itself runs once at the place found. With `anchor` (a literal every match holds
    within n characters of its start, all of a class the character before a match never is), the only
    start to try before each such literal is where the run of that class before it begins.
    """
    pattern = rule.pattern
    if rule.lead is not None:
        widened = _BACKREF.sub(r"\1(?s:.*)", pattern.pattern)
        try:
            finder = re.compile(f"{rule.lead}(?<=(?={widened}).)", pattern.flags).search
        except re.error:  # an expression this cannot wrap (inline flags, a named back-reference)
            return pattern.search
        match = pattern.match

        def lead_search(text: str, pos: int, endpos: int) -> re.Match[str] | None:
            while (found := finder(text, pos, endpos)) is not None:
                start = found.start()
                m = match(text, start, endpos)
                if m is not None:
                    return m
                pos = start + 1
            return None

        return lead_search
    if rule.anchor is not None:
        literal, before, run_class = rule.anchor
        # Read backwards from the literal: the longest run of `run_class` characters before it.
        run_back = re.compile(f"{run_class}*", pattern.flags).match
        match = pattern.match

        def anchor_search(text: str, pos: int, endpos: int) -> re.Match[str] | None:
            while (at := text.find(literal, pos, endpos)) != -1:
                # A match starting before `at` holds this literal (the first one from `pos`), so only
                # `run_class` characters lie between its start and `at`, and the character before its
                # start is not one of them: the start is where the run before `at` begins.
                run = run_back(text[max(pos, at - before):at][::-1]).end()
                if run:
                    m = match(text, at - run, endpos)
                    if m is not None:
                        return m
                pos = at + 1  # the literal itself cannot start a match
            return None

        return anchor_search
    return pattern.search


def _shrink(rule: Rule, text: str, m: re.Match[str]) -> re.Match[str] | None:
    """The longest shorter match ending at a space, when the whole one failed validation:
    `+61 2 9374 4000 555.123.4567` is two phone numbers, not one with 21 digits."""
    start = m.start()
    cut = text.rfind(" ", start, m.end())
    while cut > start:
        shorter = rule.pattern.fullmatch(text, start, cut)
        if shorter is not None and rule.validate is not None and rule.validate(shorter.group(0)):
            return shorter
        cut = text.rfind(" ", start, cut)
    return None


def _on_match(rule_id: int, start: int, end: int, flags: int, hits: list[tuple[int, int]]) -> None:
    hits.append((rule_id, end))


def glob_regex(glob: str, for_json_key: bool = False) -> str:
    """`*.password` -> a regular expression; `*` and `?` never cross a JSON string's quotes."""
    any_char = r'[^"\\]' if for_json_key else "."
    out = []
    for ch in glob:
        if ch == "*":
            out.append(any_char + "*")
        elif ch == "?":
            out.append(any_char)
        else:
            out.append(re.escape(ch))
    return "".join(out)


class KeyRules:
    """Attribute keys whose values are always removed (mask), dropped, or outside the allow-list."""

    KEEP, MASK, DROP_KEY, NOT_ALLOWED = 0, 1, 2, 3
    _CACHE_LIMIT = 100_000

    def __init__(self, allow: list[str], drop: list[str], mask: list[str]) -> None:
        def compile_all(globs: list[str]) -> re.Pattern[str] | None:
            if not globs:
                return None
            return re.compile("|".join(f"(?:{glob_regex(g)})" for g in globs), re.I | re.S)

        self._allow = compile_all(allow)
        self._drop = compile_all(drop)
        self._mask = compile_all(mask)
        self.allow_mode = bool(allow)
        self.globs = list(drop) + list(mask)
        self._verdicts: dict[str, int] = {}
        # Keys with a verdict other than KEEP; `attrs.keys() & flagged` finds them in one C call.
        self.flagged: set[str] = set()

    def verdict(self, key: str, allow_list_applies: bool = True) -> int:
        v = self._verdicts.get(key)
        if v is None:
            if self._drop is not None and self._drop.fullmatch(key):
                v = self.DROP_KEY
            elif self._mask is not None and self._mask.fullmatch(key):
                v = self.MASK
            elif self._allow is not None and not self._allow.fullmatch(key):
                v = self.NOT_ALLOWED
            else:
                v = self.KEEP
            if len(self._verdicts) >= self._CACHE_LIMIT:
                self._verdicts.clear()
                self.flagged.clear()
            self._verdicts[key] = v
            if v != self.KEEP:
                self.flagged.add(key)
        if v == self.NOT_ALLOWED and not allow_list_applies:
            return self.KEEP
        return v

    def learn(self, keys: Iterable[str]) -> None:
        """Classify keys not seen before, so that `flagged` is complete for them."""
        verdicts = self._verdicts
        for key in keys:
            if key not in verdicts:
                self.verdict(key)

    def known(self, keys: Iterable[str]) -> bool:
        return self._verdicts.keys() >= keys  # type: ignore[operator]


class Findings:
    """What was redacted in one span: rule name -> hits."""

    __slots__ = ("rules", "count", "truncated", "bytes_cut")

    def __init__(self) -> None:
        self.rules: dict[str, int] = {}
        self.count = 0
        self.truncated = 0
        self.bytes_cut = 0

    @property
    def changes(self) -> int:
        return self.count + self.truncated

    def merge(self, other: Findings) -> None:
        for rule, n in other.rules.items():
            self.rules[rule] = self.rules.get(rule, 0) + n
        self.count += other.count
        self.truncated += other.truncated
        self.bytes_cut += other.bytes_cut

    def add(self, rule: str, n: int = 1) -> None:
        self.rules[rule] = self.rules.get(rule, 0) + n
        self.count += n


class Redactor:
    """Confirms candidates and applies actions to single values (plain text or JSON)."""

    def __init__(self, rules: list[Rule], keys: KeyRules, key_action: str, hash_key: bytes | None,
                 max_value_bytes: int, rescan: Callable[[str], Hits] | None = None, reference: bool = False) -> None:
        """`reference`: the plain way, each search a `pattern.search`, JSON strings found with the
        straightforward expression, no hash remembered; tests check the fast way gives the same bytes."""
        self.rules = rules
        self.reference = reference
        self._search: list[Search] = [r.pattern.search if reference else fast_search(r) for r in rules]
        self._json_string = _JSON_STRING if reference else _JSON_STRING_FAST
        self._groups = [r.group for r in rules]
        self._hashes: dict[tuple[str, str], str] = {}
        self.rescan = rescan
        self.keys = keys
        self.key_action = key_action
        self.hash_key = hash_key
        self.max_value_bytes = max_value_bytes
        self.all_rule_ids = frozenset(range(len(rules)))
        # rule id -> native kind for the rules whose matches C finds exactly (the built-in expression
        # and validator, searched in windows), and those of them it also replaces (placeholder action).
        self._native_find: dict[int, int] = {}
        if _fastredact is not None and not reference:
            self._native_find = {i: kind for i, r in enumerate(rules) if (kind := _native_kind(r)) is not None}
        self._native = {i: (kind, rules[i].placeholder) for i, kind in self._native_find.items()
                        if rules[i].action == PLACEHOLDER}
        self._native_table = tuple(self._native.get(i) for i in range(len(rules)))
        self._find_table = tuple((self._native_find[i], "") if i in self._native_find else None
                                 for i in range(len(rules)))
        self._names = [r.name for r in rules]

    # -- replacements -------------------------------------------------------------------------------
    def new_batch(self) -> None:
        """Forget the hashes of the last batch: plain values are not kept longer than their batch."""
        self._hashes.clear()

    def hashed(self, label: str, value: str) -> str:
        assert self.hash_key is not None
        key = (label, value)
        out = self._hashes.get(key)
        if out is None:
            digest = hmac.new(self.hash_key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
            out = f"<{label}:{digest[:16]}>"
            if not self.reference:
                if len(self._hashes) >= _HASH_CACHE_SIZE:
                    self._hashes.clear()
                self._hashes[key] = out
        return out

    def _replacement(self, rule: Rule, value: str) -> str:
        if rule.action == HASH:
            return self.hashed(rule.placeholder.strip("<>"), value)
        if rule.action == DROP:
            raise Dropped(rule.name)
        return rule.placeholder

    def masked(self, value: str) -> str:
        """The value of a key matched by `mask_keys`."""
        if self.key_action == HASH:
            return self.hashed("REDACTED", value)
        if self.key_action == DROP:
            raise Dropped(MASK_KEYS_RULE)
        return KEY_RULE_PLACEHOLDER

    # -- plain text ---------------------------------------------------------------------------------
    def _matches(self, text: str, rule_ids: Iterable[int] | Hits) -> list[tuple[int, int, int]]:
        """Confirmed, non-overlapping matches (start, end, rule id) of the given rules, in text order.

        With `Hits` (rule id -> end offsets of its trigger in this ASCII text), each rule's
        exact expression runs only in a window around those offsets: Python's `re` cannot
        skip ahead to a literal for these expressions, so a whole message costs far more.
        """
        windows = rule_ids if isinstance(rule_ids, dict) else dict.fromkeys(rule_ids)
        spans: list[tuple[int, int, int]] | None = None
        native = self._native_find
        if native and text.isascii() and not native.keys().isdisjoint(windows):
            # The e-mail, phone and card rules searched in C, the others here; together they are what
            # searching all of them here gives (each rule's search is its own; overlaps resolve below).
            found = _fastredact.find(text, {r: e or [] for r, e in windows.items() if r in native},
                                     self._find_table)
            if found is not None:
                native_spans, cut = found
                rest = {r: e for r, e in windows.items() if r not in native}
                other = self._rule_spans(text, rest) if rest else []
                spans = None if cut or other is None else native_spans + other
        if spans is None:
            spans = self._rule_spans(text, windows)
        if spans is None:  # a match was cut by a window: every rule over the whole text
            spans = self._rule_spans(text, dict.fromkeys(windows))
            assert spans is not None
        return self._resolve(spans)

    def _rule_spans(self, text: str, windows: dict[int, list[int] | None]) -> list[tuple[int, int, int]] | None:
        """Confirmed matches of each rule in `windows` (rule id -> trigger ends, None: the whole text),
        overlaps unresolved; None when a match reached the end of a window (search the whole text)."""
        spans: list[tuple[int, int, int]] = []
        rules = self.rules
        size = len(text)
        for rule_id, ends in windows.items():
            rule = rules[rule_id]
            group = self._groups[rule_id]
            ranges = _windows(ends, size) if ends and rule.window else [(0, size)]
            search = self._search[rule_id]
            for lo, hi in ranges:
                pos = lo
                while (m := search(text, pos, hi)) is not None:
                    if hi < size and m.end() >= hi:
                        return None  # cut by a window
                    pos = m.end() if m.end() > m.start() else m.end() + 1
                    if rule.validate is not None and not rule.validate(m.group(0)):
                        shorter = _shrink(rule, text, m)
                        if shorter is None:
                            # `12/27 2223003122003222`: the digits before the first space spoiled the
                            # match; search again from there, so the valid number after it is found.
                            space = text.find(" ", m.start(), m.end())
                            if space != -1:
                                pos = space + 1
                            continue
                        m = shorter
                        pos = m.end()
                    start, end = m.span(group)
                    if end > start and not _PLACEHOLDER.fullmatch(text, start, end):
                        spans.append((start, end, rule_id))
        return spans

    @staticmethod
    def _resolve(spans: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        if len(spans) > 1:
            # Overlaps go to the earlier rule (credentials come first), then to the earlier, longer match.
            spans.sort(key=lambda s: (s[2], s[0], s[0] - s[1]))
            # Kept spans never overlap, so only the neighbours in text order can conflict: one bisect
            # each, where comparing with every kept span made a value with many matches quadratic.
            kept: list[tuple[int, int, int]] = []
            starts: list[int] = []
            for span in spans:
                k = bisect_right(starts, span[0])
                if (k and kept[k - 1][1] > span[0]) or (k < len(kept) and kept[k][0] < span[1]):
                    continue
                starts.insert(k, span[0])
                kept.insert(k, span)
            spans = kept
        return spans

    def _apply(self, text: str, spans: list[tuple[int, int, int]], found: Findings,
               values: list[str] | None = None) -> str:
        """Replace `spans` of `text`; `values` are what the hash action hashes when not the text itself."""
        out: list[str] = []
        pos = 0
        for k, (start, end, rule_id) in enumerate(spans):
            rule = self.rules[rule_id]
            out.append(text[pos:start])
            out.append(self._replacement(rule, text[start:end] if values is None else values[k]))
            found.add(rule.name)
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def redact_text(self, text: str, rule_ids: Iterable[int] | Hits, found: Findings, fold: bool = True) -> str:
        """`text` with every confirmed match of the given rules replaced, then what only its
        percent-decoded, NFKC-folded form shows (see normalize.py; `fold=False`: the caller knows
        there is nothing to fold). Raises Dropped."""
        if rule_ids:
            spans = self._matches(text, rule_ids)
            if spans:
                text = self._apply(text, spans, found)
        if fold and could_fold(text):
            text = self._redact_folded(text, found)
        return text

    def _redact_folded(self, text: str, found: Findings) -> str:
        folded = fold(text)
        if folded is None:
            return text
        plain = folded.text
        hits = self.rescan(plain) if self.rescan is not None else dict.fromkeys(self.all_rule_ids)
        hits = {r: ends for r, ends in hits.items() if r < len(self.rules)}
        if not hits:
            return text
        spans: list[tuple[int, int, int]] = []
        values: list[str] = []
        for start, end, rule_id in self._matches(plain, hits):
            ostart, oend = folded.span(start, end)
            if spans and ostart < spans[-1][1]:  # two matches in the pieces of one disguised character
                continue
            spans.append((ostart, oend, rule_id))
            values.append(plain[start:end])  # hashed in its plain form: `a%40b.c` and `a@b.c` join
        return self._apply(text, spans, found, values) if spans else text

    def _redact_json_text(self, text: str, rule_ids: Iterable[int] | Hits, found: Findings,
                          fold: bool = True) -> str | None:
        """Replace matches in the JSON text itself when that is safe; None when it must be parsed.

        Safe: every match lies inside one JSON string, next to no escape sequence, in a
        string that holds no nested JSON; then a placeholder (no quote, no backslash)
        keeps the document valid and equal to what redacting the parsed values gives.
        """
        # Escaped or disguised characters: redact the parsed values.
        if "\\u" in text or (fold and could_fold(text)):
            return None
        spans = self._matches(text, rule_ids)
        if not spans:
            return text
        if not self.reference and "\\" not in text:
            # No escape anywhere: the strings are what lies between quotes taken in pairs, so a match
            # (which holds no quote) is inside one when an odd number of quotes comes before it and
            # another after it; the same verdict as finding every string, at C speed.
            quotes = prev = 0
            for start, end, _ in spans:  # in text order
                quotes += text.count('"', prev, start)
                prev = start
                if not quotes % 2 or text.find('"', start, end) != -1 or text.find('"', end) == -1:
                    return None
            return self._apply(text, spans, found)
        strings = [m.span() for m in self._json_string.finditer(text)]
        starts = [s[0] for s in strings]
        for start, end, _ in spans:
            if text[start - 1] == "\\" or '"' in text[start:end] or "\\" in text[start:end]:
                return None
            k = bisect_right(starts, start) - 1
            if k < 0 or end > strings[k][1] - 1 or '\\"' in text[strings[k][0]:strings[k][1]]:
                return None
        return self._apply(text, spans, found)

    # -- JSON ---------------------------------------------------------------------------------------
    def _walk(self, node: object, rule_ids: frozenset[int], found: Findings, depth: int,
              fold: bool = True) -> object:
        if isinstance(node, str):
            return self._leaf(node, rule_ids, found, depth, fold)
        if isinstance(node, dict):
            out: dict[str, object] = {}
            keys = self.keys
            for key, value in node.items():
                verdict = keys.verdict(key, allow_list_applies=False)
                if verdict == KeyRules.DROP_KEY:
                    found.add(DROP_KEYS_RULE)
                    continue
                if verdict == KeyRules.MASK and value is not None and value != "":
                    found.add(MASK_KEYS_RULE)
                    out[self._leaf(key, rule_ids, found, depth, fold)] = self.masked(
                        value if isinstance(value, str) else _to_json(value))
                    continue
                out[self._leaf(key, rule_ids, found, depth, fold)] = self._walk(value, rule_ids, found, depth,
                                                                                fold)
            return out
        if isinstance(node, list):
            return [self._walk(v, rule_ids, found, depth, fold) for v in node]
        if isinstance(node, int) and not isinstance(node, bool) and abs(node) >= 10_000_000:
            text = str(node)
            redacted = self.redact_text(text, rule_ids, found)
            return node if redacted == text else redacted
        return node

    def _leaf(self, text: str, rule_ids: Iterable[int] | Hits, found: Findings, depth: int,
              fold: bool = True) -> str:
        if depth < _MAX_JSON_DEPTH and _looks_like_json(text):
            redacted = self._redact_json(text, frozenset(rule_ids), found, depth + 1, fold)
            if redacted is not None:
                return redacted
        if rule_ids or (fold and could_fold(text)):
            text = self.redact_text(text, rule_ids, found, fold)
        if self.max_value_bytes:
            text = self.cap(text, found)
        return text

    def _redact_json(self, text: str, rule_ids: frozenset[int], found: Findings, depth: int,
                     fold: bool = True) -> str | None:
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(parsed, (dict, list)):
            return None
        before = found.changes
        result = self._walk(parsed, rule_ids, found, depth, fold)
        if found.changes == before:
            return text  # nothing changed: keep the producer's formatting
        return _to_json(result)

    # -- one attribute value ------------------------------------------------------------------------
    def redact_value(self, text: str, rules: Iterable[int] | Hits, found: Findings, json_keys: bool = False,
                     fold: bool = True, later: Later | None = None) -> str:
        """Redact one value. JSON objects and arrays are redacted leaf by leaf. Raises Dropped.

        `rules`: the rules to confirm, or `Hits` with where their triggers matched in `text`.
        `json_keys`: a key rule may apply to a key inside this JSON, so it must be parsed.
        `fold`: False when the caller knows the value has no percent-escape and is ASCII, so
        that nothing in it or in its output (placeholders are plain ASCII) can fold.
        `later`: when given, a changed value is not scanned again here but noted in it (with where
        to put the final value); `settle_later` then scans all of them in one engine call.
        """
        out = self._redact_once(text, rules, found, json_keys, fold)
        if later is not None and out != text and self.rescan is not None:
            later.pending.append((text, out, found, fold, later.target))
            return out
        return self._settle(text, out, found, fold)

    def _settle(self, text: str, out: str, found: Findings, fold: bool) -> str:
        # A replacement changes what surrounds its neighbours: `4111111111111111sk-proj-...`
        # hides the key behind the card until the card is gone. Scan again until nothing changes
        # (`+00000000+00000000+...` uncovers one more number per round; bounded against hostile input).
        for _ in range(_MAX_RESCANS):
            if out == text or self.rescan is None:
                break
            hits = {r: ends for r, ends in self.rescan(out).items() if r < len(self.rules)}
            # The folded text counts too: `x.AA+0000000０` is a phone number once the `A` before it is gone.
            if not hits and not (fold and could_fold(out)):
                break
            text, out = out, self._redact_once(out, hits, found, False, fold)
        return out

    def settle_later(self, later: Later, scan: Callable[[bytes], list[tuple[int, int]]]) -> None:
        """Finish the values `redact_value` left in `later`: what `_settle` does, one value at a time,
        for those whose output a trigger fires on; the others are final already.

        Their outputs are scanned joined by newlines, in one call: a trigger that fires in a value
        alone fires at the same place in the joined text (`^` holds after each newline), so a value
        without a hit in its stretch would have none scanned alone. A hit that spans two values only
        sends the value it ends in through `_settle`, which scans it alone.
        """
        pending = later.pending
        if not pending:
            return
        outs = [p[1] for p in pending]
        data = "\n".join(outs).encode("utf-8", "surrogatepass")
        if len(data) == sum(map(len, outs)) + len(outs) - 1:  # ASCII: bytes == characters
            starts = list(accumulate((len(o) + 1 for o in outs), initial=0))
        else:
            starts = list(accumulate((len(o.encode("utf-8", "surrogatepass")) + 1 for o in outs), initial=0))
        rule_count = len(self.rules)
        last = len(pending) - 1
        touched: set[int] = set()
        for rule_id, end in scan(data):
            if rule_id < rule_count:
                k = bisect_right(starts, end - 1) - 1
                touched.add(max(k, 0))
                touched.add(min(bisect_right(starts, end) - 1, last))  # an empty match at a value's start
        for k, (text, out, found, may_fold, (container, key)) in enumerate(pending):
            if k not in touched and not (may_fold and could_fold(out)):
                continue
            try:
                final = self._settle(text, out, found, may_fold)
            except Dropped as dropped:
                found.add(str(dropped))
                del container[key]
                continue
            if final is not out:
                container[key] = final
        pending.clear()

    def _redact_once(self, text: str, rules: Iterable[int] | Hits, found: Findings, json_keys: bool,
                     fold: bool = True) -> str:
        if self._native and rules and not json_keys and type(rules) is dict:
            # The C path gives what the rest of this method gives, or None when the value is not for it.
            done = _fastredact.redact(text, rules, self._native_table, fold, self.max_value_bytes)
            if done is not None:
                names = self._names
                for rule_id, n in done[1]:
                    found.add(names[rule_id], n)
                return done[0]
        if rules and not json_keys and _looks_like_json(text) and not (
                self.max_value_bytes and len(text) * 4 > self.max_value_bytes):
            redacted = self._redact_json_text(text, rules, found, fold)
            if redacted is not None:
                return redacted
        return self._leaf(text, rules, found, 0, fold)

    def cap(self, text: str, found: Findings) -> str:
        limit = self.max_value_bytes
        if len(text) <= limit // 4:
            return text
        data = text.encode("utf-8", "surrogatepass")
        if len(data) <= limit:
            return text
        kept = data[:limit].decode("utf-8", "ignore")
        cut = len(data) - len(kept.encode("utf-8", "surrogatepass"))
        found.truncated += 1
        found.bytes_cut += cut
        return f"{kept}...[cut {cut} bytes]"


def _native_kind(rule: Rule) -> int | None:
    """The C code's kind for a rule whose matches it finds exactly, else None."""
    if _fastredact is None or not rule.window:
        return None
    for det in BUILTIN:
        if det.name == rule.name and det.pattern is rule.pattern and det.validate is rule.validate:
            return {"email": _fastredact.EMAIL, "credit_card": _fastredact.CREDIT_CARD,
                    "phone": _fastredact.PHONE}.get(det.name)
    return None


def _looks_like_json(text: str) -> bool:
    if not text:
        return False
    first = text[0]
    if first in "{[":
        return True
    if first in " \t\r\n":
        stripped = text.lstrip()
        return bool(stripped) and stripped[0] in "{["
    return False
