"""Finding another GenAI instrumentor that `opentelemetry-instrument` will turn on for the same library.

Every vendor's OpenAI instrumentor registers the entry point name `openai`
(ours: `spanhouse_openai`), so with two installed, auto-instrumentation turns
on both and every call gets two CLIENT spans with usage, counted twice
downstream. This module only looks; `_provider` decides what to do.

"Another instrumentor for `library`" is an `opentelemetry_instrumentor`
entry point of a different distribution whose name is the library's, or
whose distribution lists the library in its `instruments` extra (or one of
the libraries `ALSO_TRACED_THROUGH` names for it). It counts
only when `opentelemetry-instrument` would really turn it on: not disabled
by `OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`, its `instruments` requirements
met by what is installed, and its entry point importable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib.metadata import Distribution, EntryPoint, entry_points

from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts
from packaging.requirements import InvalidRequirement, Requirement

GROUP = "opentelemetry_instrumentor"
# opentelemetry-instrument's own variable: entry point names it does not load.
OTEL_PYTHON_DISABLED_INSTRUMENTATIONS = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
OWN_DISTRIBUTION = "spanhouse"
_INSTRUMENTS_EXTRAS = ({"extra": "instruments"}, {"extra": "instruments-any"})
# Instrumentors named after (and declaring) another library that still trace this one's calls:
# - OpenLLMetry's Bedrock instrumentor registers as `boto3`; ours patches botocore, which every boto3 client
#   is. (opentelemetry-instrumentation-botocore, whose Bedrock extension makes GenAI spans, and
#   opentelemetry-instrumentation-google-genai, named `google-genai`, match by name already.)
# - OpenLLMetry's LangChain instrumentor registers the entry point `langchain` and declares the `langchain`
#   package, yet traces langchain-core's callbacks as ours does.
ALSO_TRACED_THROUGH: dict[str, frozenset[str]] = {
    "botocore": frozenset({"boto3"}),
    "langchain-core": frozenset({"langchain"}),
}


@dataclass(frozen=True)
class OtherInstrumentor:
    entry_point: str  # the name OTEL_PYTHON_DISABLED_INSTRUMENTATIONS takes, e.g. "openai"
    distribution: str  # the package that installed it, e.g. "opentelemetry-instrumentation-openai-v2"
    version: str


def normalize(name: str) -> str:
    """A distribution or project name as packaging compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def disabled_entry_points() -> frozenset[str]:
    """Entry point names in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, parsed as opentelemetry-instrument does."""
    raw = os.environ.get(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, "")
    return frozenset(name.strip() for name in raw.split(",") if name.strip())


def _instruments(dist: Distribution) -> set[str]:
    """The libraries a distribution declares in its `instruments` / `instruments-any` extras."""
    names: set[str] = set()
    for line in dist.requires or ():
        if "instruments" not in line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        marker = requirement.marker
        if marker is not None and any(marker.evaluate(extra) for extra in _INSTRUMENTS_EXTRAS):
            names.add(normalize(requirement.name))
    return names


def _turned_on(entry_point: EntryPoint, dist: Distribution) -> bool:
    """Whether opentelemetry-instrument would instrument with this entry point (it skips conflicts and
    import failures, and then nothing of theirs traces the library: stepping aside would lose the calls)."""
    try:
        if get_dist_dependency_conflicts(dist) is not None:
            return False
        entry_point.load()
    except Exception:  # noqa: BLE001 - a broken package of someone else's is simply not a rival
        return False
    return True


def enabled_others(library: str) -> list[OtherInstrumentor]:
    """Other instrumentors that auto-instrumentation will turn on for `library`, in entry point order."""
    library = normalize(library)
    libraries = {library, *ALSO_TRACED_THROUGH.get(library, ())}
    disabled = disabled_entry_points()
    if "*" in disabled:
        return []
    found: list[OtherInstrumentor] = []
    for entry_point in entry_points(group=GROUP):
        dist = entry_point.dist
        if dist is None or normalize(dist.metadata["Name"] or "") == OWN_DISTRIBUTION:
            continue
        if entry_point.name in disabled:
            continue
        if normalize(entry_point.name) not in libraries and not libraries & _instruments(dist):
            continue
        if _turned_on(entry_point, dist):
            found.append(OtherInstrumentor(entry_point.name, dist.metadata["Name"], dist.version))
    return found
