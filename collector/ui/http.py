"""GET /ui/... on the query endpoint: the static page shells and the JSON API (api.py), with security headers.

The shells (HTML, JS, CSS, the vendored chart library) hold no data and are served to anyone who can reach
the listener; the data comes only from /ui/api/..., which authenticates like /query (Authorization:
Bearer <key>) when keys are configured and runs every statement through the endpoint's ReadPolicy.
"""

from __future__ import annotations

import json
import logging
import mimetypes
import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spanhouse.collector.auth import AuthError, KeyRing, Principal
from spanhouse.collector.query.content import ContentAccessError, resolve_archived
from spanhouse.collector.query.guard import HostAccessRefused
from spanhouse.collector.query.limits import LimitExceeded, TooBusy
from spanhouse.collector.query.read_policy import NotReadOnly
from spanhouse.collector.query.render import parse_json_compact
from spanhouse.collector.query.tenant_scope import NotAllowed
from spanhouse.collector.ui import api

if TYPE_CHECKING:
    from spanhouse.collector.query.read_policy import ReadPolicy

log = logging.getLogger("spanhouse.ui")

STATIC = Path(__file__).parent / "static"
# The page routes that all load the one shell; the script reads location.pathname.
_PAGES = re.compile(r"^/ui/(?:|usage|sessions|alerts|trace/[^/]{1,64})$")
_STATIC_NAME = re.compile(r"^/ui/static/((?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_.-]+\.(?:js|css|svg|txt|png))$")
SECURITY_HEADERS = {
    # No inline script or style element, nothing from elsewhere, no framing (clickjacking), no referrer leaks
    # (trace ids are in the URLs).
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
         ".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8"}

Reply = tuple[HTTPStatus, bytes, str, dict[str, str]]


class UiEndpoint:
    """Answers GET /ui/... for one query endpoint."""

    def __init__(self, policy: ReadPolicy, keys: KeyRing | None,
                 otlp: Callable[[], dict[str, str]] | None = None) -> None:
        self.policy = policy
        self.keys = keys
        self.otlp = otlp or dict  # where to send spans, for the pages' empty states

    def get(self, path: str, query: str, authorization: str | None) -> Reply:
        if path == "/ui":
            return HTTPStatus.PERMANENT_REDIRECT, b"", "text/plain; charset=utf-8", {"Location": "/ui/"}
        if path.startswith("/ui/api/"):
            return self._api(path[len("/ui/api/"):], query, authorization)
        if _PAGES.match(path):
            return self._file(STATIC / "index.html", ".html", cache="no-cache")
        match = _STATIC_NAME.match(path)
        if match and ".." not in match.group(1):
            return self._file(STATIC / match.group(1), Path(match.group(1)).suffix, cache="max-age=300")
        return self._text(HTTPStatus.NOT_FOUND, "no such page; the UI is at /ui/\n")

    def _file(self, file: Path, suffix: str, cache: str) -> Reply:
        try:
            body = file.read_bytes()
        except OSError:
            return self._text(HTTPStatus.NOT_FOUND, "no such file\n")
        ctype = TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        return HTTPStatus.OK, body, ctype, {**SECURITY_HEADERS, "Cache-Control": cache}

    def _text(self, status: HTTPStatus, text: str) -> Reply:
        return status, text.encode(), "text/plain; charset=utf-8", dict(SECURITY_HEADERS)

    def _json(self, status: HTTPStatus, doc: Any, extra: dict[str, str] | None = None) -> Reply:
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode()
        return status, body, "application/json; charset=utf-8", {**SECURITY_HEADERS, "Cache-Control": "no-store",
                                                                  **(extra or {})}

    def _caller(self, authorization: str | None) -> Principal:
        if self.keys is None:  # no keys: a loopback-only listener where every caller sees everything
            return Principal("", admin=True)
        return self.keys.authenticate(authorization)

    def _api(self, name: str, query: str, authorization: str | None) -> Reply:
        try:
            caller = self._caller(authorization)
        except AuthError as exc:
            return self._json(HTTPStatus.UNAUTHORIZED, {"error": f"{exc}; enter an API key"},
                              {"WWW-Authenticate": "Bearer"})

        def run_sql(sql: str) -> tuple[list[str], list[list[Any]]]:
            return parse_json_compact(self.policy.run(caller, sql, "JSONCompact"))

        try:
            if name == "whoami":
                return self._json(HTTPStatus.OK, {**api.whoami(caller, self.keys is not None), **self.otlp()})
            if name.startswith("trace/"):
                status, doc = api.trace(run_sql, name[len("trace/"):], admin=caller.admin,
                                        resolve=lambda spans: resolve_archived(spans, self.policy, caller, "ui"))
                return self._json(status, doc)
            route = api.ROUTES.get(name)
            if route is None:
                return self._json(HTTPStatus.NOT_FOUND, {"error": f"unknown API path {name[:60]!r}"})
            filters = api.Filters(query, caller, parallel=self.policy.cfg.max_concurrent_per_caller)
            return self._json(HTTPStatus.OK, route(run_sql, filters))
        except api.BadRequest as exc:
            return self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except (NotReadOnly, NotAllowed, HostAccessRefused) as exc:
            return self._json(HTTPStatus.FORBIDDEN, {"error": str(exc)})
        except ContentAccessError as exc:
            return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        except TooBusy as exc:
            return self._json(HTTPStatus.TOO_MANY_REQUESTS, {"error": str(exc)})
        except LimitExceeded as exc:
            return self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(exc)})
        except Exception as exc:  # the store's own words help more than a bare 500
            log.error("UI request %s failed", name[:60], exc_info=exc)
            return self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"the query failed: {str(exc)[:500]}"})
