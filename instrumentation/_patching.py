"""Applying and reverting a list of patches, shared by every instrumentor.

Each patch names a module, a class and a method; a missing one (an older SDK
without the Responses API, say) is skipped, and only what was actually
wrapped is unwrapped later, so `uninstrument()` restores the exact original
function objects.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import wrapt
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.utils import unwrap

from ._telemetry import Telemetry, log_once

try:
    VERSION = version("spanhouse")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"


@dataclass(frozen=True)
class Patch:
    module: str
    cls: str
    method: str
    factory: Callable[[Telemetry], Callable[..., Any]]


def make_telemetry(provider: str, scope: str, kwargs: dict[str, Any]) -> Telemetry:
    tracer = trace.get_tracer(scope, VERSION, tracer_provider=kwargs.get("tracer_provider"))
    meter = metrics.get_meter(scope, VERSION, meter_provider=kwargs.get("meter_provider"))
    return Telemetry(provider, tracer, meter)


def apply(patches: Iterable[Patch], telemetry: Telemetry) -> list[tuple[type, str]]:
    """Wrap every patch target that exists; return (class, method) of those wrapped."""
    applied: list[tuple[type, str]] = []
    for patch in patches:
        try:
            owner = getattr(importlib.import_module(patch.module), patch.cls)
            getattr(owner, patch.method)
        except (ImportError, AttributeError):
            continue  # this SDK version has no such method; nothing to trace
        try:
            wrapt.wrap_function_wrapper(owner, patch.method, patch.factory(telemetry))
            applied.append((owner, patch.method))
        except Exception as exc:  # noqa: BLE001 - a failed patch must not stop the app from starting
            log_once(f"patch {patch.module}.{patch.cls}.{patch.method}", exc)
    return applied


def revert(applied: list[tuple[type, str]]) -> None:
    while applied:
        owner, method = applied.pop()
        unwrap(owner, method)
