"""The instrumentor every client library shares; a provider package only declares what differs.

A provider's `__init__.py` subclasses `ProviderInstrumentor` with three
class attributes: `provider` (the `gen_ai.provider.name` value), `instruments`
(the library versions it supports, as `opentelemetry-instrument` checks them)
and `patches` (which SDK methods to wrap, and the `patch.py` factory for each).
Everything else lives here: the kill switch, the tracer and meter, applying
and reverting patches, staying quiet about a library that is not installed,
and stepping aside for another GenAI instrumentor of the same library.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any, ClassVar

from opentelemetry.instrumentation.dependencies import DependencyConflict
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from packaging.requirements import Requirement

from . import _coexist, _config
from ._patching import Patch, apply, make_telemetry, revert

_LOG = logging.getLogger("spanhouse.instrumentation")


class ProviderInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Traces one client library's methods listed in `patches`.

    `instrument(tracer_provider=..., meter_provider=...)`; both default to the global ones.
    Nothing is patched when `SPANHOUSE_INSTRUMENTATION_ENABLED=false` or `OTEL_SDK_DISABLED=true`.
    """

    provider: ClassVar[str]
    instruments: ClassVar[Sequence[str]]
    patches: ClassVar[Sequence[Patch]]

    @property
    def library(self) -> str:
        """The distribution this instrumentor traces, e.g. `openai`."""
        return Requirement(self.instruments[0]).name

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        conflict: DependencyConflict | None = super()._check_dependency_conflicts()
        if conflict is not None and not conflict.found:
            # The library is not installed at all: there is nothing to trace and nothing to tell the user
            # (BaseInstrumentor would log an ERROR for every app that simply does not use this provider).
            # An installed version outside `instruments` is still reported.
            _LOG.debug("%s: %s is not installed; nothing to instrument", type(self).__name__, self.library)
            self._library_absent = True
            return None
        self._library_absent = False
        return conflict

    def instrument(self, **kwargs: Any) -> None:
        # opentelemetry-instrument (and every distro's load_instrumentor) passes skip_dep_check=True, having
        # checked dependencies itself; a call from user code does not. Stepping aside is for the former only.
        self._auto = bool(kwargs.get("skip_dep_check"))
        self._library_absent = False  # set again by the dependency check, when there is one
        super().instrument(**kwargs)

    def _instrument(self, **kwargs: Any) -> None:
        self._applied: list[tuple[type, str]] = []
        if getattr(self, "_library_absent", False) or not _config.refresh().enabled:
            return
        if getattr(self, "_auto", False) and _config.SETTINGS.step_aside and self._step_aside():
            return
        telemetry = make_telemetry(self.provider, type(self).__module__, kwargs)
        self._applied = apply(self.patches, telemetry)
        self._started = self._start(telemetry)

    def _uninstrument(self, **kwargs: Any) -> None:
        revert(getattr(self, "_applied", []))
        if getattr(self, "_started", False):
            self._started = False
            self._stop()

    def _start(self, telemetry: Any) -> bool:
        """For a library traced through its own hooks (a callback or processor interface) rather than
        patches: register them here, return True when something was registered. Runs after the kill switch
        and stepping aside were checked, so an override need not check them."""
        return False

    def _stop(self) -> None:
        """Undo what `_start` registered."""

    def _step_aside(self) -> bool:
        """Leave the library to another enabled GenAI instrumentor, saying so in one line."""
        others = _coexist.enabled_others(self.library)
        if not others:
            return False
        names = ", ".join(f"{o.distribution} {o.version}" for o in others)
        entry_points = ",".join(sorted({o.entry_point for o in others}))
        _LOG.warning(
            "spanhouse is not tracing %s because another enabled instrumentor traces it (%s) and two would "
            "count every call twice. To use spanhouse's instead, set %s=%s; "
            "to run both anyway, set %s=false.",
            self.library, names, _coexist.OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, entry_points,
            _config.ENV_STEP_ASIDE)
        return True
