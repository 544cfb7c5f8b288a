"""The price table: loading, validation and matching a span's model to a price.

The built-in table is `schemas/prices/prices.yaml` (USD per million tokens, by
provider, model and effective date). A user's own price file and the
`pricing.overrides` of the configuration are layered on top; a (provider,
model) defined in a higher layer replaces every entry of that key below it.
Matching is pure and cached; the processor in processors/price.py applies it
to batches, and `sync_model_prices` copies the merged table into ClickHouse.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spanhouse.collector.pricing.config import PricingConfig
    from spanhouse.collector.store import Store

log = logging.getLogger("spanhouse.pricing")

BUILTIN = "prices/prices.yaml"
RATE_FIELDS = ("input", "output", "cache_read", "cache_write")
ENTRY_FIELDS = {"provider", "model", "effective", "source", "long_context", *RATE_FIELDS}

# gen_ai.provider.name values (current and deprecated) -> the provider whose list price applies.
PROVIDER_FAMILY = {
    "azure.ai.openai": "openai", "az.ai.openai": "openai", "azure_openai": "openai", "azure": "openai",
    "gcp.vertex_ai": "gcp.gemini", "gcp.gen_ai": "gcp.gemini", "vertex_ai": "gcp.gemini", "vertexai": "gcp.gemini",
    "gemini": "gcp.gemini", "google": "gcp.gemini", "google_genai": "gcp.gemini",
    "mistral": "mistral_ai", "mistralai": "mistral_ai",
    "bedrock": "aws.bedrock", "aws_bedrock": "aws.bedrock",
}
# Model name prefix -> vendor, for clouds and gateways that resell several vendors' models.
_VENDOR_PREFIXES = (
    ("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"), ("chatgpt-", "openai"),
    ("text-embedding-3", "openai"), ("text-embedding-ada", "openai"),
    ("claude", "anthropic"), ("gemini", "gcp.gemini"),
    ("mistral", "mistral_ai"), ("magistral", "mistral_ai"), ("codestral", "mistral_ai"),
    ("devstral", "mistral_ai"), ("pixtral", "mistral_ai"), ("ministral", "mistral_ai"),
    ("open-mistral", "mistral_ai"), ("command", "cohere"), ("embed-", "cohere"), ("deepseek", "deepseek"),
)
# Bedrock/Vertex/gateway vendor prefixes in model ids ("anthropic.claude-...", "openai/gpt-4o").
_VENDOR_IDS = {"anthropic": "anthropic", "openai": "openai", "google": "gcp.gemini", "mistral": "mistral_ai",
               "mistralai": "mistral_ai", "cohere": "cohere", "deepseek": "deepseek", "amazon": "aws.bedrock",
               "meta": "aws.bedrock"}
# Bedrock cross-region inference profile prefixes.
_REGION_PREFIX = re.compile(r"^(?:us|eu|apac|au|ca|jp|us-gov|global)\.(?=[a-z]+\.)")
# Suffixes removed one at a time, in this order, until a name matches.
_SUFFIXES = (
    re.compile(r":\d+$"),                      # Bedrock throughput revision   amazon.nova-pro-v1:0
    re.compile(r"-v\d+(?:\.\d+)?$"),           # Bedrock/Vertex version        ...-20240620-v1, -v2
    re.compile(r"[-@]\d{4}-\d{2}-\d{2}$"),     # dated snapshot                gpt-4o-2024-08-06
    re.compile(r"[-@]\d{8}$"),                 # dated snapshot                claude-sonnet-4-5-20250929
    re.compile(r"-\d{2}-\d{4}$"),              # Cohere month-year             command-r-08-2024
    re.compile(r"-\d{4}$"),                    # month-day / year-month        gpt-4-0613, mistral-large-2411
    re.compile(r"-\d{3}$"),                    # Gemini revision               gemini-2.0-flash-001
    re.compile(r"-latest$"),                   # moving alias                  mistral-small-latest
    re.compile(r"-preview(?:-\d{2}-\d{2})?$"),  # preview of a listed model     gemini-2.5-flash-preview-05-20
    re.compile(r"-exp(?:-\d{2}-\d{2}|-\d{4})?$"),  # experimental release       gemini-2.0-flash-exp
)


class PriceTableError(ValueError):
    """A price file or override that cannot be used; the message names the file, entry and field."""


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens. cache_read/cache_write None: billed at the input rate."""

    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


@dataclass(frozen=True, slots=True)
class PriceEntry:
    provider: str
    model: str
    effective_ns: int
    rates: Rates
    long_context_above: int = 0  # input tokens above which `long_rates` apply; 0: no such tier
    long_rates: Rates | None = None
    source: str = ""
    origin: str = "builtin"  # builtin | file | config


@dataclass(frozen=True, slots=True)
class Costs:
    input: float
    output: float
    cache_read: float
    cache_write: float
    total: float
    cache_exceeds_input: bool


def cost_of(entry: PriceEntry, input_tokens: int | None, output_tokens: int | None,
            cache_read_tokens: int | None, cache_write_tokens: int | None) -> Costs:
    """Costs in USD. Input tokens include the cached ones: those are billed once, at their own rate."""
    total_in = input_tokens or 0
    read = cache_read_tokens or 0
    write = cache_write_tokens or 0
    uncached = total_in - read - write
    exceeds = uncached < 0
    if exceeds:
        uncached = 0
    rates = entry.rates
    if entry.long_context_above and entry.long_rates is not None and total_in > entry.long_context_above:
        rates = entry.long_rates
    c_in = uncached * rates.input / 1e6
    c_out = (output_tokens or 0) * rates.output / 1e6
    c_read = read * (rates.input if rates.cache_read is None else rates.cache_read) / 1e6
    c_write = write * (rates.input if rates.cache_write is None else rates.cache_write) / 1e6
    return Costs(c_in, c_out, c_read, c_write, c_in + c_out + c_read + c_write, exceeds)


def model_candidates(name: str) -> list[str]:
    """`name`, then the names it falls back to: cloud prefixes and version/date suffixes removed one by one."""
    out: list[str] = []

    def add(value: str) -> None:
        if value and value not in out:
            out.append(value)

    current = name.strip().lower()
    add(current)
    if "/" in current:  # Vertex resource paths, gateway ids: "publishers/google/models/gemini-2.5-pro", "openai/gpt-4o"
        current = current.rsplit("/", 1)[1]
        add(current)
    stripped = _REGION_PREFIX.sub("", current)
    add(stripped)
    current = stripped
    changed = True
    while changed:
        changed = False
        for pattern in _SUFFIXES:
            shorter = pattern.sub("", current)
            if shorter != current and shorter:
                current = shorter
                add(current)
                for dotted in _without_vendor_id(current):
                    add(dotted)
                changed = True
                break
    for value in list(out):
        for dotted in _without_vendor_id(value):
            add(dotted)
    return out


def _without_vendor_id(name: str) -> list[str]:
    vendor, dot, rest = name.partition(".")
    return [rest] if dot and vendor in _VENDOR_IDS and rest else []


def vendor_of(name: str) -> str:
    """The vendor whose list price applies to a model name, "" when the name says nothing."""
    lowered = name.strip().lower()
    if "/" in lowered:
        head = lowered.split("/")[-2] if lowered.count("/") >= 1 else ""
        if head in _VENDOR_IDS:
            return _VENDOR_IDS[head]
        lowered = lowered.rsplit("/", 1)[1]
    lowered = _REGION_PREFIX.sub("", lowered)
    vendor, dot, rest = lowered.partition(".")
    if dot and vendor in _VENDOR_IDS:
        return _VENDOR_IDS[vendor]
    for prefix, owner in _VENDOR_PREFIXES:
        if lowered.startswith(prefix):
            return owner
    return ""


# --- loading ------------------------------------------------------------------


def _parse_time(where: str, value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise PriceTableError(f"{where}.effective: expected a date (2025-01-31) or an ISO timestamp, "
                                  f"got {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    else:
        raise PriceTableError(f"{where}.effective: expected a date (2025-01-31), got {value!r}")
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _rate(where: str, key: str, value: Any, required: bool) -> float | None:
    if value is None:
        if required:
            raise PriceTableError(f"{where}.{key}: required (USD per million tokens)")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PriceTableError(f"{where}.{key}: expected a number of USD per million tokens, got {value!r}")
    if not value >= 0 or value == float("inf"):
        raise PriceTableError(f"{where}.{key}: must be a finite number of at least 0, got {value!r}")
    return float(value)


def _rates(where: str, raw: dict[str, Any]) -> Rates:
    return Rates(
        input=_rate(where, "input", raw.get("input"), True),  # type: ignore[arg-type]
        output=_rate(where, "output", raw.get("output"), True),  # type: ignore[arg-type]
        cache_read=_rate(where, "cache_read", raw.get("cache_read"), False),
        cache_write=_rate(where, "cache_write", raw.get("cache_write"), False),
    )


def parse_entry(where: str, raw: Any, origin: str) -> PriceEntry:
    """One price entry (a mapping from a price file or an override) -> PriceEntry, or PriceTableError."""
    if not isinstance(raw, dict):
        raise PriceTableError(f"{where}: expected a mapping with provider, model, input, output, got {raw!r}")
    unknown = sorted(set(map(str, raw)) - ENTRY_FIELDS)
    if unknown:
        raise PriceTableError(f"{where}.{unknown[0]}: unknown field (known: {', '.join(sorted(ENTRY_FIELDS))})")
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip():
        raise PriceTableError(f"{where}.model: required, the model name as spans report it")
    provider = raw.get("provider", "")
    if not isinstance(provider, str):
        raise PriceTableError(f"{where}.provider: expected a gen_ai.provider.name such as openai, got {provider!r}")
    long_above, long_rates = 0, None
    long_raw = raw.get("long_context")
    if long_raw is not None:
        if not isinstance(long_raw, dict):
            raise PriceTableError(f"{where}.long_context: expected a mapping with above_input_tokens and rates")
        above = long_raw.get("above_input_tokens")
        if isinstance(above, bool) or not isinstance(above, int) or above <= 0:
            raise PriceTableError(f"{where}.long_context.above_input_tokens: expected a positive integer, "
                                  f"got {above!r}")
        extra = sorted(set(map(str, long_raw)) - {"above_input_tokens", *RATE_FIELDS})
        if extra:
            raise PriceTableError(f"{where}.long_context.{extra[0]}: unknown field")
        long_above, long_rates = above, _rates(f"{where}.long_context", long_raw)
    source = raw.get("source") or ""
    return PriceEntry(
        provider=provider.strip().lower(), model=model.strip().lower(),
        effective_ns=_parse_time(where, raw.get("effective")), rates=_rates(where, raw),
        long_context_above=long_above, long_rates=long_rates, source=str(source), origin=origin,
    )


def parse_price_document(text: str, name: str, origin: str) -> list[PriceEntry]:
    """A price file's YAML -> its entries; PriceTableError names the file, the entry and the field."""
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PriceTableError(f"price file {name} is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("prices"), list):
        raise PriceTableError(f"price file {name}: expected a mapping with a `prices:` list of entries")
    entries = [parse_entry(f"{name}: prices[{i}]", raw, origin) for i, raw in enumerate(doc["prices"])]
    seen: dict[tuple[str, str, int], int] = {}
    for i, entry in enumerate(entries):
        key = (entry.provider, entry.model, entry.effective_ns)
        if key in seen:
            raise PriceTableError(f"{name}: prices[{i}] repeats provider {entry.provider!r}, model {entry.model!r} "
                                  f"and effective date of prices[{seen[key]}]; give it another date or remove one")
        seen[key] = i
    return entries


def builtin_entries() -> list[PriceEntry]:
    text = resources.files("spanhouse.schemas").joinpath(BUILTIN).read_text(encoding="utf-8")
    return parse_price_document(text, f"schemas/{BUILTIN}", "builtin")


# --- the merged table ------------------------------------------------------------


class PriceTable:
    """Layers of entries (lowest first); lookups search the highest layer first."""

    def __init__(self, layers: Sequence[Iterable[PriceEntry]], model_aliases: dict[str, str] | None = None) -> None:
        self.layers: list[dict[tuple[str, str], list[PriceEntry]]] = []
        for layer in layers:
            keyed: dict[tuple[str, str], list[PriceEntry]] = {}
            for entry in layer:
                keyed.setdefault((entry.provider, entry.model), []).append(entry)
            for entries in keyed.values():
                entries.sort(key=lambda e: e.effective_ns)
            self.layers.append(keyed)
        self.model_aliases = {k.strip().lower(): v.strip().lower() for k, v in (model_aliases or {}).items()}
        self._starts: dict[tuple[int, tuple[str, str]], list[int]] = {}
        self._resolved: dict[tuple[str, str, str], tuple[int, tuple[str, str]] | None] = {}

    def entries(self) -> list[PriceEntry]:
        """The effective table: for each (provider, model), the entries of the highest layer defining it."""
        merged: dict[tuple[str, str], list[PriceEntry]] = {}
        for layer in self.layers:
            merged.update(layer)
        return [e for key in sorted(merged) for e in merged[key]]

    def checksum(self) -> str:
        rows = [dataclasses.asdict(e) for e in self.entries()]
        rows.append({"aliases": sorted(self.model_aliases.items())})
        return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()

    def resolve(self, provider: str, response_model: str, request_model: str) -> tuple[int, tuple[str, str]] | None:
        """(layer, key) of the prices for a call, or None when no entry matches its model."""
        cache_key = (provider, response_model, request_model)
        try:
            return self._resolved[cache_key]
        except KeyError:
            pass
        found = self._search(provider, response_model, request_model)
        if len(self._resolved) > 50_000:
            self._resolved.clear()
        self._resolved[cache_key] = found
        return found

    def _search(self, provider: str, response_model: str, request_model: str) -> tuple[int, tuple[str, str]] | None:
        provider = provider.strip().lower()
        names: list[str] = []
        for model in (response_model, request_model):
            if not model:
                continue
            aliased = self.model_aliases.get(model.strip().lower())
            for name in ([aliased] if aliased else []) + [model]:
                for candidate in model_candidates(name):
                    if candidate not in names:
                        names.append(candidate)
        if not names:
            return None
        family = PROVIDER_FAMILY.get(provider, provider)
        for layer_index in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[layer_index]
            for name in names:
                providers = [provider, family, vendor_of(name), ""]
                for prov in dict.fromkeys(providers):
                    if (prov, name) in layer:
                        return layer_index, (prov, name)
        return None

    def price_at(self, found: tuple[int, tuple[str, str]], timestamp_ns: int) -> PriceEntry | None:
        """The entry in effect at `timestamp_ns`; None before the first effective date."""
        entries = self.layers[found[0]][found[1]]
        starts = self._starts.get(found)
        if starts is None:
            starts = self._starts[found] = [e.effective_ns for e in entries]
        index = bisect_right(starts, timestamp_ns) - 1
        return entries[index] if index >= 0 else None


def override_entries(pricing: PricingConfig) -> list[PriceEntry]:
    out = []
    for i, override in enumerate(pricing.overrides):
        raw = {k: v for k, v in dataclasses.asdict(override).items() if v is not None and v != ""}
        raw.setdefault("source", "configuration")
        out.append(parse_entry(f"pricing.overrides[{i}]", raw, "config"))
    return out


def build_price_table(pricing: PricingConfig) -> PriceTable:
    """Built-in table <- `pricing.price_file` <- `pricing.overrides`. Raises PriceTableError."""
    layers = [builtin_entries()]
    if pricing.price_file:
        path = Path(pricing.price_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PriceTableError(f"pricing.price_file: cannot read {path}: {exc.strerror}") from None
        layers.append(parse_price_document(text, str(path), "file"))
    layers.append(override_entries(pricing))
    for name, target in pricing.model_aliases.items():
        if not str(target).strip():
            raise PriceTableError(f"pricing.model_aliases.{name}: must name a model, for example gpt-4o")
    return PriceTable(layers, pricing.model_aliases)


# --- the copy in ClickHouse -------------------------------------------------------


MODEL_PRICES_COLUMNS = (
    "Provider", "Model", "EffectiveFrom", "InputPerMTok", "OutputPerMTok", "CacheReadPerMTok",
    "CacheWritePerMTok", "LongContextAboveTokens", "LongInputPerMTok", "LongOutputPerMTok",
    "LongCacheReadPerMTok", "LongCacheWritePerMTok", "Source", "Origin", "TableChecksum",
)


def _rate_or_input(value: float | None, fallback: float) -> float:
    return fallback if value is None else value


def model_prices_columns(table: PriceTable) -> list[list[Any]]:
    """The merged table as the columns of `model_prices` (cache rates filled in where they default to input)."""
    checksum = table.checksum()
    columns: list[list[Any]] = [[] for _ in MODEL_PRICES_COLUMNS]
    for e in table.entries():
        r = e.rates
        long = e.long_rates or r
        values = (
            e.provider, e.model, dt.datetime.fromtimestamp(e.effective_ns / 1e9, dt.UTC), r.input, r.output,
            _rate_or_input(r.cache_read, r.input), _rate_or_input(r.cache_write, r.input), e.long_context_above,
            long.input, long.output, _rate_or_input(long.cache_read, long.input),
            _rate_or_input(long.cache_write, long.input), e.source, e.origin, checksum,
        )
        for column, value in zip(columns, values):
            column.append(value)
    return columns


def sync_model_prices(store: Store, table: PriceTable, cluster: str = "") -> bool:
    """Load the merged table into `model_prices` unless it already holds exactly this table; True if loaded.

    On a cluster (`cluster` = store.cluster) the rows live in model_prices_local on every shard: truncating
    the Distributed table would leave them there, and each reload would add a copy.
    """
    from spanhouse.collector.store.cluster import truncate_statement

    checksum = table.checksum()
    loaded = {row[0] for row in store.query_rows("SELECT DISTINCT TableChecksum FROM model_prices")}
    if loaded == {checksum}:
        return False
    store.command(truncate_statement("model_prices", cluster))
    store.insert("model_prices", model_prices_columns(table), list(MODEL_PRICES_COLUMNS))
    log.info("loaded %d prices into model_prices", len(table.entries()))
    return True
