"""HTTP compression on the query endpoint: request bodies clients compress, responses they ask to get compressed.

ClickHouse clients compress with HTTP's own `Content-Encoding` (clickhouse-connect sends lz4, else zstd,
else gzip; others gzip or deflate); a response is compressed only when the request says
`enable_http_compression=1` and lists the method in `Accept-Encoding`, as ClickHouse does. The zstd module
is the one clickhouse-connect itself uses (`compression.zstd`, or the `backports.zstd` package before
Python 3.14); brotli only when its package is installed.

ClickHouse's own block compression (`compress=1` / `decompress=1`, CityHash-checksummed blocks) is not
spoken: clickhouse-connect uses it only when asked for explicitly, and is refused with a message saying so.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable
from typing import Any

try:  # the same module clickhouse-connect compresses with
    from compression import zstd as _zstd  # type: ignore[import-not-found]
except ImportError:  # Python before 3.14
    try:
        from backports import zstd as _zstd  # type: ignore[no-redef]
    except ImportError:
        _zstd = None  # type: ignore[assignment]
try:
    import lz4.frame as _lz4
except ImportError:
    _lz4 = None  # type: ignore[assignment]
try:
    import brotli as _brotli  # type: ignore[import-not-found]
except ImportError:
    _brotli = None


class BodyTooLarge(ValueError):
    """The request body is larger than the endpoint takes, before or after decompression."""


class BadEncoding(ValueError):
    """The body's Content-Encoding is unknown, or the body does not decompress with it."""


def available() -> list[str]:
    """Content-Encoding names this endpoint writes (and, but for br, reads), in the order it prefers them."""
    names = []
    if _lz4 is not None:
        names.append("lz4")
    if _zstd is not None:
        names.append("zstd")
    if _brotli is not None:
        names.append("br")
    return [*names, "gzip", "deflate"]


def decompress(data: bytes, encoding: str, max_bytes: int) -> bytes:
    """`data` decoded from `encoding` (as in Content-Encoding); BodyTooLarge past `max_bytes` decoded bytes."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        out = data
    else:
        decoder = _decoders().get(encoding)
        if decoder is None:
            raise BadEncoding(f"Content-Encoding {encoding!r} is not supported; use one of {', '.join(sorted(_decoders()))}")
        try:
            # One byte past the cap tells an over-large body from one exactly at it, without inflating the rest.
            out = decoder(data, max_bytes + 1)
        except BodyTooLarge:
            raise
        except Exception as exc:
            raise BadEncoding(f"the request body is not valid {encoding} data: {exc}") from None
    if len(out) > max_bytes:
        raise BodyTooLarge(f"the request body is larger than {max_bytes} bytes after decompression")
    return out


def _decoders() -> dict[str, Callable[[bytes, int], bytes]]:
    decoders: dict[str, Callable[[bytes, int], bytes]] = {
        "gzip": lambda data, cap: _zlib_limited(zlib.decompressobj(16 + zlib.MAX_WBITS), data, cap),
        "x-gzip": lambda data, cap: _zlib_limited(zlib.decompressobj(16 + zlib.MAX_WBITS), data, cap),
        "deflate": lambda data, cap: _zlib_limited(zlib.decompressobj(), data, cap),
    }
    if _zstd is not None:
        decoders["zstd"] = lambda data, cap: _zstd_limited(data, cap)
    if _lz4 is not None:
        decoders["lz4"] = lambda data, cap: _lz4_limited(data, cap)
    # No brotli for request bodies: its one-shot decoder cannot stop at a cap, so a small body could
    # inflate without bound (clickhouse-connect never compresses a query with it).
    return decoders


def _zlib_limited(decoder: Any, data: bytes, cap: int) -> bytes:
    out = decoder.decompress(data, cap)
    if not decoder.eof and len(out) < cap:
        raise ValueError("the compressed stream ends early")
    return out


def _zstd_limited(data: bytes, cap: int) -> bytes:
    decoder = _zstd.ZstdDecompressor()
    out = decoder.decompress(data, max_length=cap)
    if not decoder.eof and len(out) < cap:
        raise ValueError("the compressed stream ends early")
    return out


def _lz4_limited(data: bytes, cap: int) -> bytes:
    decoder = _lz4.LZ4FrameDecompressor()
    out = decoder.decompress(data, max_length=cap)
    if not decoder.eof and len(out) < cap:
        raise ValueError("the compressed stream ends early")
    return out


def choose(accept_encoding: str) -> str | None:
    """The first method in the client's Accept-Encoding that this endpoint writes (q=0 means refused)."""
    supported = set(available())
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if params.replace(" ", "").lower() in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        if name in supported:
            return name
    return None


def compress(data: bytes, encoding: str, level: int | None = None) -> bytes:
    """`data` encoded with `encoding` (one of available()); `level` as ClickHouse's http_zlib_compression_level."""
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=level or 3, mtime=0)
    if encoding == "deflate":
        return zlib.compress(data, level or 3)
    if encoding == "zstd":
        return _zstd.compress(data)
    if encoding == "lz4":
        return _lz4.compress(data)
    if encoding == "br":
        return _brotli.compress(data)
    raise ValueError(f"unknown encoding {encoding!r}")
