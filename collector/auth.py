"""API keys: who may write spans (and read them back), and which tenant their rows belong to.

Keys are stored only as the SHA-256 hex digest of the key; a caller presents
the key itself as `authorization: Bearer <key>` (gRPC metadata or an HTTP
header). API keys are long random strings (`spanhouse hash-key --generate`),
so an unsalted digest cannot be reversed by guessing, and a leaked
configuration file does not leak the keys. Neither a key nor a digest of a
presented key is ever logged or echoed back.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spanhouse.collector.settings import ConfigError, coerce

# Tenant ids end up in sort keys, file names and SQL filters: keep them plain.
TENANT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")
KEY_PREFIX = "shk_"


@dataclass
class ApiKeyConfig:
    tenant: str = ""
    # SHA-256 hex digest of the key (`spanhouse hash-key`); the key itself is never stored.
    key_sha256: str = ""
    # May query every tenant's rows through the query endpoint.
    admin: bool = False
    # A label for logs (which key was used), never the key.
    name: str = ""


@dataclass
class AuthConfig:
    # With any key configured, every OTLP call and query must present one (`authorization: Bearer <key>`).
    keys: list[ApiKeyConfig] = field(default_factory=list)
    # YAML file with more keys in the same shape, read at start-up.
    keys_file: str = ""
    # Accept unauthenticated writes on a non-loopback address (refused at start-up otherwise).
    allow_unauthenticated: bool = False


class AuthError(Exception):
    """The caller did not present a valid key; the message is safe to send back and to log."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    tenant: str
    admin: bool = False
    name: str = ""


def hash_key(key: str) -> str:
    """The digest stored in configuration for `key`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    """A new random API key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_tenant(key: str, tenant: str) -> None:
    if not TENANT_ID.match(tenant):
        raise ConfigError(f"{key}: tenant id must be 1-64 letters, digits, '.', '_' or '-' (starting with a "
                          f"letter or digit), got {tenant!r}")


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class KeyRing:
    """The configured keys; `authenticate` maps a presented key to its Principal."""

    def __init__(self, entries: Iterable[tuple[bytes, Principal]]) -> None:
        self._entries = list(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_config(cls, cfg: AuthConfig) -> KeyRing:
        """Keys from `auth.keys` and `auth.keys_file`; raises ConfigError naming the bad entry."""
        entries = [_entry(f"auth.keys[{i}]", item) for i, item in enumerate(cfg.keys)]
        if cfg.keys_file:
            entries.extend(_entry(f"auth.keys_file {cfg.keys_file}: entry {i}", item)
                           for i, item in enumerate(_read_keys_file(cfg.keys_file)))
            if not entries:
                raise ConfigError(f"auth.keys_file: {cfg.keys_file} holds no keys; every caller would be refused")
        seen: set[bytes] = set()
        for digest, principal in entries:
            if digest in seen:
                raise ConfigError(f"auth: the same key is configured twice (second time for tenant "
                                  f"{principal.tenant!r}); each key maps to one tenant")
            seen.add(digest)
        return cls(entries)

    def authenticate(self, authorization: str | None) -> Principal:
        """The Principal for an `authorization` value (`Bearer <key>`), or AuthError saying what is wrong."""
        if authorization is None:
            raise AuthError("missing API key: send `authorization: Bearer <API key>`")
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthError("malformed authorization: expected `Bearer <API key>`")
        return self.authenticate_key(key)

    def authenticate_key(self, key: str) -> Principal:
        """The Principal for a key presented on its own (the query endpoint also takes it as the password
        of HTTP Basic, `X-ClickHouse-Key` or `password=`, as ClickHouse clients send it)."""
        if not key:
            raise AuthError("missing API key")
        presented = hashlib.sha256(key.encode("utf-8")).digest()
        found: Principal | None = None
        # Compare with every key, in constant time, so timing says nothing about which (if any) matched.
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, presented):
                found = principal
        if found is None:
            raise AuthError("API key not recognised")
        return found

    def authenticate_metadata(self, metadata: Iterable[Any]) -> Principal:
        """Like `authenticate`, from gRPC invocation metadata (keys are lower case on the wire)."""
        values = [m.value for m in metadata if m.key == "authorization"]
        if len(values) > 1:
            raise AuthError("send exactly one `authorization` metadata entry")
        value = values[0] if values else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return self.authenticate(value)


def _entry(where: str, item: ApiKeyConfig) -> tuple[bytes, Principal]:
    digest = item.key_sha256.strip().lower()
    if not _HEX_DIGEST.match(digest):
        # Never echo the value: a raw key pasted here by mistake must not reach the logs.
        raise ConfigError(f"{where}.key_sha256: expected the 64 hex characters printed by `spanhouse hash-key` "
                          f"(the SHA-256 of the key, not the key itself), got a value of {len(digest)} characters")
    check_tenant(f"{where}.tenant", item.tenant)
    return bytes.fromhex(digest), Principal(item.tenant, item.admin, item.name)


def _read_keys_file(path: str) -> list[ApiKeyConfig]:
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"auth.keys_file: cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"auth.keys_file: {path} is not valid YAML") from None
    if data is None:
        return []
    if isinstance(data, dict) and set(data) == {"keys"}:
        data = data["keys"]
    if not isinstance(data, list):
        raise ConfigError(f"auth.keys_file: {path} must hold a list of keys (each with tenant and key_sha256), "
                          "or a mapping with one `keys:` list")
    return coerce(f"auth.keys_file {path}", data, list[ApiKeyConfig])
