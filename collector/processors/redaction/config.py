"""The redaction processor's configuration: actions, detectors, user rules, key lists, value cap."""

from __future__ import annotations

from dataclasses import dataclass, field

from spanhouse.collector.settings import ConfigError


@dataclass
class RedactionRuleConfig:
    # A user-defined detector: a Python regular expression; a group named `v`, if any, is the part replaced.
    name: str = ""
    pattern: str = ""
    # placeholder, hash or drop; "" uses redaction.action.
    action: str = ""
    # Text put in place of a match; "" means `<NAME>` in upper case.
    placeholder: str = ""
    # Count hits in credential_hits_total as well.
    credential: bool = False
    case_insensitive: bool = False


# Attribute keys whose values are always removed, whatever they hold.
DEFAULT_MASK_KEYS = [
    "*password*", "*passwd*", "*secret*", "*authorization*", "*api_key*", "*api-key*", "*apikey*",
    "*cookie*", "*access_token*", "*refresh_token*", "*id_token*", "*session_token*", "*private_key*",
]


@dataclass
class RedactionConfig:
    enabled: bool = True
    # Action for built-in detectors: placeholder (`<EMAIL>`), hash (keyed HMAC-SHA256) or drop (the attribute).
    action: str = "placeholder"
    # Per built-in detector action, e.g. {email: hash}.
    detector_actions: dict[str, str] = field(default_factory=dict)
    # Built-in detectors switched off, e.g. [ipv4, ipv6].
    disabled_detectors: list[str] = field(default_factory=list)
    rules: list[RedactionRuleConfig] = field(default_factory=list)
    # HMAC key for the hash action (at least 16 characters); required when any rule hashes.
    hash_key: str = ""
    # Non-empty: allow-list mode, span/event/link attributes whose key matches none of these globs are dropped.
    allow_keys: list[str] = field(default_factory=list)
    # Attributes whose key matches one of these globs are dropped.
    drop_keys: list[str] = field(default_factory=list)
    # Attributes whose key matches one of these globs have their value replaced.
    mask_keys: list[str] = field(default_factory=lambda: list(DEFAULT_MASK_KEYS))
    # What replaces the value of a mask_keys attribute: placeholder (`<REDACTED>`), hash or drop.
    mask_keys_action: str = "placeholder"
    # Values longer than this many UTF-8 bytes are cut, with a marker; 0 turns the cap off.
    max_value_bytes: int = 0

    def validate(self) -> None:
        import re

        from spanhouse.collector.processors.redaction.detectors import BUILTIN_NAMES
        from spanhouse.collector.processors.redaction.engine import ACTIONS, HASH

        def check_action(key: str, value: str) -> None:
            if value not in ACTIONS:
                raise ConfigError(f"{key}: must be one of {', '.join(ACTIONS)}, got {value!r}")

        check_action("redaction.action", self.action)
        check_action("redaction.mask_keys_action", self.mask_keys_action)
        hashing = [k for k, v in (("redaction.action", self.action),
                                  ("redaction.mask_keys_action", self.mask_keys_action)) if v == HASH]
        for name in self.disabled_detectors:
            if name not in BUILTIN_NAMES:
                raise ConfigError(f"redaction.disabled_detectors: unknown detector {name!r} "
                                  f"(known: {', '.join(BUILTIN_NAMES)})")
        for name, action in self.detector_actions.items():
            if name not in BUILTIN_NAMES:
                raise ConfigError(f"redaction.detector_actions.{name}: unknown detector "
                                  f"(known: {', '.join(BUILTIN_NAMES)})")
            check_action(f"redaction.detector_actions.{name}", action)
            if action == HASH:
                hashing.append(f"redaction.detector_actions.{name}")
        names = set(BUILTIN_NAMES)
        for i, rule in enumerate(self.rules):
            key = f"redaction.rules[{i}]"
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", rule.name):
                raise ConfigError(f"{key}.name: expected a name of lower-case letters, digits and _ "
                                  f"(for example employee_id), got {rule.name!r}")
            if rule.name in names:
                raise ConfigError(f"{key}.name: {rule.name!r} is already the name of another rule")
            names.add(rule.name)
            if not rule.pattern:
                raise ConfigError(f"{key}.pattern: must not be empty")
            try:
                compiled = re.compile(rule.pattern, re.I if rule.case_insensitive else 0)
            except re.error as exc:
                raise ConfigError(f"{key}.pattern: not a valid regular expression: {exc}") from None
            if compiled.fullmatch(""):
                raise ConfigError(f"{key}.pattern: matches the empty string, so it would match everywhere")
            if rule.action:
                check_action(f"{key}.action", rule.action)
            if (rule.action or self.action) == HASH:
                hashing.append(f"{key}.action")
        for list_key in ("allow_keys", "drop_keys", "mask_keys"):
            for glob in getattr(self, list_key):
                if not glob:
                    raise ConfigError(f"redaction.{list_key}: empty key pattern")
        if hashing and not self.hash_key:
            raise ConfigError(f"redaction.hash_key: required because {hashing[0]} is 'hash'; set it in the "
                              "config file or SPANHOUSE_REDACTION__HASH_KEY (at least 16 characters)")
        if hashing and len(self.hash_key) < 16:
            raise ConfigError("redaction.hash_key: must be at least 16 characters; a short key lets anyone "
                              "who sees a hash guess phone numbers and other short values")
        if self.max_value_bytes < 0:
            raise ConfigError(f"redaction.max_value_bytes: must be 0 (no cap) or a number of bytes, got "
                              f"{self.max_value_bytes}")
        if 0 < self.max_value_bytes < 16:
            raise ConfigError(f"redaction.max_value_bytes: must be at least 16 bytes, got {self.max_value_bytes}")
