"""A store URL, parsed once: where the store is and which backend serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from spanhouse.collector.store.backends import EMBEDDED, SERVER, Backend
from spanhouse.collector.store.errors import StoreError


@dataclass(frozen=True)
class StoreLocation:
    """`chdb:///abs/path` or `chdb://./rel/path`: the embedded engine; `http(s)://user:pass@host:8123/db`: a server."""

    url: str
    embedded: bool
    path: Path | None  # embedded store directory
    backend: Backend = field(default=SERVER, compare=False, repr=False)

    @classmethod
    def parse(cls, url: str) -> StoreLocation:
        parts = urlsplit(url)
        if parts.scheme == "chdb":
            raw = url[len("chdb://"):]
            if not raw:
                raise StoreError(f"store URL {url!r} names no directory: use chdb:///abs/path or chdb://./rel/path")
            path = Path(raw).expanduser().resolve()
            return cls(url=f"chdb://{path}", embedded=True, path=path, backend=EMBEDDED)
        if parts.scheme in ("http", "https"):
            if not parts.hostname:
                raise StoreError(f"store URL {url!r} names no host: use http://user:pass@host:8123/db")
            return cls(url=url, embedded=False, path=None, backend=SERVER)
        raise StoreError(
            f"store URL {url!r} has unsupported scheme {parts.scheme!r}: "
            "use chdb:///path (embedded) or http(s)://user:pass@host:8123/db (server)"
        )

    def redacted(self) -> str:
        """The URL without its password, for logs and errors."""
        parts = urlsplit(self.url)
        if parts.password:
            return self.url.replace(f":{parts.password}@", ":***@", 1)
        return self.url
