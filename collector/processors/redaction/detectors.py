"""Built-in detectors: what PII and credentials look like, and how to confirm a candidate.

Each detector has two expressions. `trigger` is a cheap, lookaround-free
superset that the multi-pattern engine (Hyperscan) runs over every value; it
only says "this value may hold one". `pattern` is the exact Python expression
run on the values a trigger fired on; a `validate` function (Luhn, IBAN mod-97,
address parsing, digit counts) then confirms each candidate. When `pattern` has
a group named `v`, only that group is replaced (the password of a URL, the token
after `Bearer`), so the text around it stays readable.

Expressions never consume `"` or `\\`, so a match can never cross the quoting of
a JSON string it was found in. A match never starts right after `%`, and an
e-mail's local part holds no `%`: in `and%20192.168.1.1` the digits of the escape
are not part of the address (the folded text, see normalize.py, finds it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Detector:
    name: str
    # Hyperscan syntax, matched against UTF-8 bytes; several expressions act as one.
    trigger: str | tuple[str, ...]
    pattern: re.Pattern[str]
    credential: bool = False
    validate: Callable[[str], bool] | None = None
    trigger_caseless: bool = False
    # Where `pattern` can start, so that Python finds its matches sooner (see engine.fast_search):
    # a character class every match starts with; or a literal every match holds, reached from the
    # match's start through at most so many characters of a class, which the character before a
    # match never belongs to. A wrong one loses matches: tests compare with `pattern.search`.
    lead: str | None = None
    anchor: tuple[str, int, str] | None = None


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB,
# Diners, UnionPay, Maestro, Mir): a Luhn-valid run of digits that starts
# otherwise is far more often an id or a timestamp than a card.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|35|6[0245]|50|5[6-8]|220")


def _card_ok(text: str) -> bool:
    seps = {ch for ch in text if not ch.isdigit()}
    if len(seps) > 1:
        return False
    number = _digits(text)
    if not 13 <= len(number) <= 19 or not _CARD_PREFIX.match(number):
        return False
    if seps:
        # Grouped numbers come in groups of 4 (or the Amex 4-6-5 layout).
        groups = [len(g) for g in text.split(seps.pop())]
        if groups not in ([4, 6, 5], [4, 6, 4]) and any(g != 4 for g in groups[:-1]):
            return False
    return luhn_ok(number)


_IBAN_LENGTH = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27,
    "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24,
    "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}


def iban_ok(text: str) -> bool:
    iban = text.replace(" ", "").upper()
    if _IBAN_LENGTH.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _phone_ok(text: str) -> bool:
    n = sum(map(str.isdigit, text))  # len(_digits(text)), without building the string
    if text.startswith("+"):
        return 8 <= n <= 15
    if text.startswith("0"):
        return 10 <= n <= 11
    return n == 10


def _ipv4_ok(text: str) -> bool:
    # Loopback and the unspecified address identify nobody.
    return not (text.startswith("127.") or text == "0.0.0.0")


def _ipv6_ok(text: str) -> bool:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


# Query-string and fragment parameters that carry credentials (`?access_token=...`,
# `#access_token=...` of an OAuth implicit flow, presigned S3 and GCS URLs, Azure SAS `sig`).
# Names that only ever hold a secret: any value of 4 characters or more is one.
_STRONG_QUERY_NAMES = (
    "access_token", "refresh_token", "id_token", "auth_token", "session_token", "private_token",
    "api_key", "api-key", "apikey", "client_secret", "secret", "password", "passwd", "pwd",
    "x-amz-signature", "x-amz-security-token", "x-amz-credential", "x-goog-signature", "x-goog-credential",
)
# Names that also hold ordinary words (`?key=value`, `?code=200`, `?session=expired`): the value
# must look like a secret (see _secret_shaped).
_WEAK_QUERY_NAMES = ("token", "key", "sig", "signature", "code", "auth", "session", "session_id", "sessionid",
                     "sid", "jwt")
_QUERY_SECRET_NAMES = "|".join(re.escape(n) for n in sorted(_STRONG_QUERY_NAMES + _WEAK_QUERY_NAMES, key=len,
                                                            reverse=True))
# A value runs to the next parameter, fragment, space (`%20` too), quote or bracket; `{` and `$`
# start a template (`?token={token}`), not a value. Trailing sentence punctuation is not part of it.
_QUERY_CHAR = r"[^&#;\s\"'\\<>,()\[\]{}|^`%]"
_QUERY_ESCAPE = r"%(?!20|0[9aAdD])[0-9A-Fa-f]{2}"
_QUERY_END = r"[^&#;\s\"'\\<>,()\[\]{}|^`%.!?:]"
_QUERY_VALUE = rf"(?:{_QUERY_CHAR}|{_QUERY_ESCAPE})*(?:{_QUERY_END}|{_QUERY_ESCAPE})"
_STRONG_QUERY_SET = frozenset(_STRONG_QUERY_NAMES)
# What a value already masked by its producer looks like: `****`, `xxxx`, `...`.
_MASKED_VALUE = re.compile(r"[*xX.\-]+|\$.*|%s|null|undefined|none|redacted", re.I)


def _secret_shaped(value: str) -> bool:
    """At least 8 characters with a digit, or 16 or more: a random token, not a word or a status code."""
    if len(value) >= 16:
        return True
    return len(value) >= 8 and any(ch.isdigit() for ch in value)


def _query_secret_ok(text: str) -> bool:
    name, _, value = text[1:].partition("=")
    if _MASKED_VALUE.fullmatch(value):
        return False
    if name.lower() in _STRONG_QUERY_SET:
        return len(value) >= 4
    return _secret_shaped(value)


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = r"[0-9A-Fa-f]{1,4}"

BUILTIN: tuple[Detector, ...] = (
    Detector(
        "private_key",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY",
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                   r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)"),
        credential=True,
    ),
    Detector(
        "jwt",
        r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4}",
        re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
        credential=True,
    ),
    Detector(
        "anthropic_api_key",
        r"sk-ant-[A-Za-z0-9_-]{16}",
        re.compile(r"(?<![\w-])sk-ant-[A-Za-z0-9_-]{16,}"),
        credential=True,
    ),
    Detector(
        "openai_api_key",
        r"sk-[A-Za-z0-9_-]{20}",
        re.compile(r"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{20,}"),
        credential=True,
    ),
    Detector(
        "aws_access_key_id",
        r"(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|A3T[A-Z0-9])[A-Z0-9]{16}",
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"),
        credential=True,
    ),
    Detector(
        "github_token",
        r"(?:gh[pousr]_[A-Za-z0-9]{30}|github_pat_[A-Za-z0-9_]{22})",
        re.compile(r"(?<![\w-])(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})"),
        credential=True,
    ),
    Detector(
        "gitlab_token",
        r"gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20}",
        re.compile(r"(?<![\w-])gl(?:pat|dt|rt|ptt|cbt|ft|imt|oas|soat|agent)-[A-Za-z0-9_-]{20,}"),
        credential=True,
    ),
    Detector(
        "slack_token",
        r"(?:xox[abposre]-[A-Za-z0-9-]{10}|xapp-\d-[A-Za-z0-9-]{10}|hooks\.slack\.com/services/T)",
        re.compile(r"(?<![\w-])(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}"
                   r"|https://hooks\.slack\.com/services/T[A-Za-z0-9_/]+)"),
        credential=True,
    ),
    Detector(
        "bearer_token",
        r"bearer\s+[A-Za-z0-9._~+/=-]{8}",
        re.compile(r"(?ai)\bbearer\s+(?P<v>[A-Za-z0-9._~+/-]{8,}=*)"),
        credential=True,
        trigger_caseless=True,
    ),
    Detector(
        "url_password",
        r":(?:\\?/){2}[^\s/@:\"\\]*:[^\s/@\"\\]+@",
        re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?:\\?/){2}[^\s/@:\"'\\]*:(?P<v>[^\s/@\"'\\]+)@"),
        credential=True,
    ),
    Detector(
        "connection_string_password",
        r"(?:password|passwd|pwd)[\"']?\s*[=:]\s*[\"']?[^\s;\"'&,]",
        re.compile(r"(?ai)(?<![A-Za-z])(?:password|passwd|pwd)[\"']?\s*[=:]\s*[\"']?(?P<v>[^\s;\"'&,\\]+)"),
        credential=True,
        trigger_caseless=True,
    ),
    Detector(
        "url_query_secret",
        rf"[?&#;](?:{_QUERY_SECRET_NAMES})=[^&#\s\"'\\]",
        re.compile(rf"(?ai)[?&#;](?:{_QUERY_SECRET_NAMES})=(?P<v>{_QUERY_VALUE})"),
        credential=True,
        validate=_query_secret_ok,
        trigger_caseless=True,
    ),
    Detector(
        "email",
        r"@[A-Za-z0-9-]{1,63}\.[A-Za-z]",
        re.compile(r"(?<![\w.%+-])[\w+-](?:[\w.+-]{0,62}[\w+-])?@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
                   r"[A-Za-z]{2,24}(?![\w-])"),
        # The local part: 64 characters at most, of `[\w.+-]`, none of which may come before it.
        anchor=("@", 64, r"[\w.+-]"),
    ),
    Detector(
        "iban",
        r"[A-Z]{2}\d{2} ?[A-Z0-9]{4} ?[A-Z0-9]{4}",
        re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"),
        validate=iban_ok,
        lead="[A-Z]",
    ),
    Detector(
        "credit_card",
        r"\d(?:[ -]?\d){12}",
        re.compile(r"(?<![\d.,%-])\d(?:[ -]?\d){12,18}(?![\d-]|[.,]\d)"),
        validate=_card_ok,
        lead=r"\d",
    ),
    Detector(
        "us_ssn",
        r"\d{3}-\d{2}-\d{4}",
        re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])"),
        lead=r"\d",
    ),
    Detector(
        "phone",
        (r"\+\d{1,7}[ .()-]", r"\+\d{8}", r"\(\d{3}\) ?\d{3}[ .-]\d{4}", r"\d{3}[ .-]\d{3}[ .-]\d{4}",
         r"[^\w.+-]0\d{1,4}[ -]\d{2}", r"^0\d{1,4}[ -]\d{2}"),
        re.compile(
            r"(?<![\w+.-])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?)(?:[ .-]?\d{2,4}){1,5}(?![\w-]|[.,]\d)"
            r"|(?<![\w(.-])\(\d{3}\) ?\d{3}[ .-]\d{4}(?![\w-]|[.,]\d)"
            r"|(?<![\w.-])[2-9]\d{2}([ .-])\d{3}\1\d{4}(?![\w-]|[.,]\d)"
            r"|(?<![\w.+-])0\d{1,4}([ -])\d{2,8}(?:\2\d{2,4}){0,3}(?![\w-]|[.,]\d)"
        ),
        validate=_phone_ok,
        lead="[+(0-9]",
    ),
    Detector(
        "ipv6",
        # Two colons are enough to look closer (a time of day fires it too): a third one in
        # the trigger halves the scan rate.
        (r"[0-9A-Fa-f]:[0-9A-Fa-f]{1,4}:", r"[0-9A-Fa-f]::", r"::[0-9A-Fa-f]{1,4}"),
        re.compile(rf"(?<![\w:.%])(?:{_H}|:)?(?::{_H}|:){{2,8}}(?:\.\d{{1,3}}){{0,3}}(?![\w:])"),
        validate=_ipv6_ok,
        lead="[0-9A-Fa-f:]",
    ),
    Detector(
        "ipv4",
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",
        re.compile(rf"(?<![\w.%]){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?!\.?\d|\.\w)"),
        validate=_ipv4_ok,
        lead=r"\d",
    ),
)

BUILTIN_NAMES: tuple[str, ...] = tuple(d.name for d in BUILTIN)
