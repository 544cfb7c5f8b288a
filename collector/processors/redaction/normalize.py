"""Folding disguised text back to what the detectors know: percent-decoding and NFKC.

`john%40example.com`, `sk%2Dproj%2D...`, full-width `４１１１ １１１１ ...` or
`ＡＫＩＡ...` and digits of other scripts (`١٢٣`) hold the same secrets as their
plain ASCII forms, but the triggers and expressions are written for ASCII. A
value that could hide one is folded into a plain form (`Folded.text`), scanned
again, and every match found there is mapped back to the characters of the
original value that produced it (`Folded.span`), so the replacement covers the
disguised text exactly.

Folding costs a Python pass over the value, so it only runs where it can change
something: `could_fold` is a few C-speed checks (ASCII and no `%XX`: nothing to
do), and `fold` returns None when the folded text equals the original.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import lru_cache

# One or more percent-escapes in a row: decoded together, since one character can take several bytes.
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
# A JSON `\uXXXX` escape: what a full-width character looks like inside ASCII-only JSON.
# (characters outside the BMP, emoji and mathematical digits alike, as a surrogate pair).
_JSON_ESCAPE = re.compile(r"\\u(?:(d[89abAB][0-9A-Fa-f]{2})\\u(d[c-fC-F][0-9A-Fa-f]{2})|([0-9A-Fa-f]{4}))")
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# A decimal digit of another script (`\d` is every Unicode decimal digit in a str pattern).
_FOREIGN_DIGIT = re.compile(r"(?![0-9])\d")


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """The ASCII-ward form of one non-ASCII character: its NFKC form, with decimal digits of
    any script (Arabic-Indic, Devanagari, mathematical bold, ...) turned into 0-9."""
    folded = unicodedata.normalize("NFKC", ch)
    if any(not c.isascii() and c.isdecimal() for c in folded):
        folded = "".join(str(unicodedata.decimal(c)) if not c.isascii() and c.isdecimal() else c
                         for c in folded)
    return folded


def _foldable_char(ch: str) -> bool:
    return _fold_char(ch) != ch


def could_fold(text: str) -> bool:
    """Whether `fold` may change `text` (cheap; a few false alarms are fine, misses are not)."""
    if text.isascii():
        return "%" in text and _PERCENT_RUN.search(text) is not None
    if "%" in text and _PERCENT_RUN.search(text) is not None:
        return True
    if not unicodedata.is_normalized("NFKC", text):
        return True
    # NFKC leaves digits of other scripts alone; Python's `\d` and the triggers disagree on them.
    return _FOREIGN_DIGIT.search(text) is not None


def json_could_fold(text: str) -> bool:
    """`could_fold` for JSON text: also true when a `\\uXXXX` escape stands for a foldable character
    (JSON encoders escape every non-ASCII character by default)."""
    if could_fold(text):
        return True
    if "\\u" not in text:
        return False
    for high, low, single in _JSON_ESCAPE.findall(text):
        if single:
            code = int(single, 16)
        else:
            code = 0x10000 + ((int(high, 16) - 0xD800) << 10) + int(low, 16) - 0xDC00
        if _foldable_char(chr(code)):
            return True
    return False


class Folded:
    """A folded text and the way back: each piece of `text` knows the original characters it came from."""

    __slots__ = ("text", "_starts", "_pieces")

    def __init__(self, text: str, pieces: list[tuple[int, int, int, bool]]) -> None:
        self.text = text
        # (start in the folded text, start in the original, end in the original, identity):
        # an identity piece maps character for character; any other maps as a whole.
        self._pieces = pieces
        self._starts = [p[0] for p in pieces]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original characters behind `text[start:end]` (end > start)."""
        return self._at(start, first=True), self._at(end - 1, first=False)

    def _at(self, i: int, first: bool) -> int:
        k = bisect_right(self._starts, i) - 1
        fstart, ostart, oend, identity = self._pieces[k]
        if identity:
            return ostart + (i - fstart) + (0 if first else 1)
        return ostart if first else oend


class _Rebuilt:
    """A folded text built piece by piece, each piece remembering the original characters it stands for:
    (start in the folded text, start and end in the original, whether it is the original unchanged)."""

    __slots__ = ("changed", "out", "pieces", "pos", "size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[str] = []
        self.pieces: list[tuple[int, int, int, bool]] = []
        self.size = 0
        self.pos = 0  # the original up to here is placed
        self.changed = False

    def put(self, start: int, end: int, folded: str, identity: bool = False) -> None:
        """Original characters [start, end) become `folded` (the unchanged text before them is kept)."""
        if start > self.pos:
            self.pieces.append((self.size, self.pos, start, True))
            self.out.append(self.text[self.pos:start])
            self.size += start - self.pos
        self.pieces.append((self.size, start, end, identity))
        self.out.append(folded)
        self.size += len(folded)
        self.pos = end
        self.changed = self.changed or not identity

    def result(self) -> tuple[str, list[tuple[int, int, int, bool]]] | None:
        """The folded text and its pieces; None when nothing changed."""
        if not self.changed:
            return None
        if self.pos < len(self.text):
            self.pieces.append((self.size, self.pos, len(self.text), True))
            self.out.append(self.text[self.pos:])
        return "".join(self.out), self.pieces


def _percent_decode(text: str) -> tuple[str, list[tuple[int, int, int, bool]]] | None:
    rebuilt = _Rebuilt(text)
    for m in _PERCENT_RUN.finditer(text):
        run = bytes.fromhex(m.group(0).replace("%", ""))
        base = m.start()
        i = 0
        while i < len(run):
            lead = run[i]
            # The UTF-8 sequence length its lead byte announces; 0 for a byte that cannot lead one.
            n = (1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14
                 else 4 if lead >> 3 == 30 else 0)
            try:
                ch = run[i:i + n].decode("utf-8") if n and i + n <= len(run) else None
            except UnicodeDecodeError:
                ch = None
            if ch is None:  # not UTF-8: keep the escape as it was written
                n = 1
                rebuilt.put(base + 3 * i, base + 3 * i + 3, text[base + 3 * i: base + 3 * i + 3], identity=True)
            else:
                rebuilt.put(base + 3 * i, base + 3 * (i + n), ch)
            i += n
    return rebuilt.result()


class _OneToOne(dict[int, int]):
    """`str.translate` table of characters that fold to exactly one character (full-width forms,
    digits of other scripts), filled as characters are met; others map to themselves."""

    _LIMIT = 200_000

    def __missing__(self, code: int) -> int:
        folded = _fold_char(chr(code))
        out = ord(folded) if len(folded) == 1 else code
        if len(self) < self._LIMIT:
            self[code] = out
        return out


_ONE_TO_ONE = _OneToOne()


def _unicode_fold(text: str) -> tuple[str, list[tuple[int, int, int, bool]]] | None:
    # Fast path, at C speed: when every foldable character folds to one character (Japanese text
    # with full-width digits, say), positions do not move and one identity piece maps them all.
    translated = text.translate(_ONE_TO_ONE)
    if translated != text and unicodedata.is_normalized("NFKC", translated) \
            and _FOREIGN_DIGIT.search(translated) is None:
        return translated, [(0, 0, len(text), True)]
    return _unicode_fold_each(text)


def _unicode_fold_each(text: str) -> tuple[str, list[tuple[int, int, int, bool]]] | None:
    rebuilt = _Rebuilt(text)
    for m in _NON_ASCII_RUN.finditer(text):
        for i in range(m.start(), m.end()):
            ch = text[i]
            folded = _fold_char(ch)
            if folded != ch:
                rebuilt.put(i, i + 1, folded)
    return rebuilt.result()


def _compose(outer: list[tuple[int, int, int, bool]], inner: Folded) -> list[tuple[int, int, int, bool]]:
    """Pieces of a second folding (relative to `inner.text`) made relative to the original text."""
    out: list[tuple[int, int, int, bool]] = []
    for fstart, istart, iend, identity in outer:
        if not identity:
            start, end = inner.span(istart, iend)
            out.append((fstart, start, end, False))
            continue
        # An identity piece of the outer folding may cover several pieces of the inner one: split it there.
        i = istart
        while i < iend:
            j = bisect_right(inner._starts, i) - 1
            piece_end = inner._starts[j + 1] if j + 1 < len(inner._starts) else len(inner.text)
            stop = min(iend, piece_end)
            inner_fstart, ostart, oend, inner_identity = inner._pieces[j]
            if inner_identity:
                start = ostart + (i - inner_fstart)
                out.append((fstart + (i - istart), start, start + (stop - i), True))
            else:
                out.append((fstart + (i - istart), ostart, oend, False))
            i = stop
    return out


def fold(text: str) -> Folded | None:
    """`text` percent-decoded (twice at most), then NFKC-folded character by character, then
    decoded once more if folding made escapes; None if nothing changed."""
    decoded = _percent_decode(text) if "%" in text else None
    current = Folded(*decoded) if decoded is not None else None
    if current is not None and "%" in current.text:
        # Encoded twice (a URL carried in a parameter of another URL, then encoded again): once more.
        again = _percent_decode(current.text)
        if again is not None:
            current = Folded(again[0], _compose(again[1], current))
    base = current.text if current is not None else text
    unicode_folded = _unicode_fold(base) if not base.isascii() else None
    if unicode_folded is None:
        return current
    folded = Folded(*unicode_folded) if current is None else Folded(unicode_folded[0],
                                                                     _compose(unicode_folded[1], current))
    if "%" in folded.text:
        # Full-width escapes (`％４０`) are escapes once folded.
        decoded = _percent_decode(folded.text)
        if decoded is not None:
            folded = Folded(decoded[0], _compose(decoded[1], folded))
    return folded
