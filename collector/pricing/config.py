"""The price processor's configuration: overrides, aliases, which operations are billed."""

from __future__ import annotations

from dataclasses import dataclass, field

from spanhouse.collector.settings import ConfigError


@dataclass
class PriceOverride:
    # One price in USD per million tokens; see docs/pricing.md.
    provider: str = ""
    model: str = ""
    effective: str = ""
    input: float | None = None
    output: float | None = None
    cache_read: float | None = None
    cache_write: float | None = None
    source: str = ""


@dataclass
class PricingConfig:
    enabled: bool = True
    # Extra price file (same format as schemas/prices/prices.yaml), layered over the built-in table.
    price_file: str = ""
    overrides: list[PriceOverride] = field(default_factory=list)
    # Model name as spans report it (an Azure deployment, a gateway alias) -> the model to price it as.
    model_aliases: dict[str, str] = field(default_factory=dict)
    # Operations that are billed LLM calls; agent, workflow and tool spans are never priced.
    operations: list[str] = field(default_factory=lambda: ["chat", "text_completion", "generate_content",
                                                           "embeddings"])

    def validate(self) -> None:
        from spanhouse.collector.pricing import PriceTableError, build_price_table

        if not self.enabled:
            return
        agents = sorted(set(self.operations) & {"invoke_agent", "create_agent", "execute_tool"})
        if agents:
            raise ConfigError(f"pricing.operations: {agents[0]!r} spans repeat or carry no LLM usage and are "
                              "never priced (a trace's cost is the sum over its LLM calls)")
        try:
            build_price_table(self)
        except PriceTableError as exc:
            raise ConfigError(str(exc)) from None
