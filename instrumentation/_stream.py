"""Proxies around SDK streams that end the GenAI span when the stream ends.

"Ends" means any of: iterated to exhaustion, closed, left through `with`,
raised mid-way, or dropped and garbage-collected. Everything else the user
touches on the stream (response headers, helpers) passes through to the SDK
object unchanged.
"""

from __future__ import annotations

from typing import Any

import wrapt

from ._telemetry import Accumulator, Call, _clock, log_once


class _StreamState:
    """Shared bookkeeping for the sync and async proxies."""

    __slots__ = ("call", "accumulator")

    def __init__(self, call: Call, accumulator: Accumulator) -> None:
        self.call = call
        self.accumulator = accumulator

    def observe(self, item: Any) -> None:
        call = self.call
        if call.first_chunk is None:  # Call.mark_chunk, inlined: this runs for every chunk
            call.first_chunk = _clock()
        try:
            self.accumulator.observe(item)
        except Exception as exc:  # noqa: BLE001 - a bad chunk must not break the user's loop
            log_once(f"{self.call.telemetry.provider}.stream.observe", exc)

    def finish(self, error: BaseException | None = None) -> None:
        call = self.call
        if call.ended:
            return
        try:
            attributes = self.accumulator.attributes()
        except Exception as exc:  # noqa: BLE001
            log_once(f"{call.telemetry.provider}.stream.finish", exc)
            attributes = {}
        call.end(attributes, self.accumulator.output_messages, error)


class SyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Wraps a synchronous SDK stream (iterator + context manager + close())."""

    def __init__(self, wrapped: Any, call: Call, accumulator: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_state = _StreamState(call, accumulator)

    def __iter__(self) -> SyncStreamProxy:
        return self

    def __next__(self) -> Any:
        try:
            item = self.__wrapped__.__next__()
        except StopIteration:
            self._self_state.finish()
            raise
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        self._self_state.observe(item)
        return item

    def __enter__(self) -> SyncStreamProxy:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            # An exception from the user's own code in the with-body is not a failed LLM call;
            # a stream that failed has already ended its span in __next__.
            self._self_state.finish()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_state.finish()

    def __del__(self) -> None:
        # A stream dropped half-read still gets its span ended, with what was seen so far.
        state = getattr(self, "_self_state", None)
        if state is not None:
            state.finish()


class AsyncStreamProxy(wrapt.ObjectProxy):  # type: ignore[misc]
    """Wraps an asynchronous SDK stream (async iterator + async context manager + close())."""

    def __init__(self, wrapped: Any, call: Call, accumulator: Accumulator) -> None:
        super().__init__(wrapped)
        self._self_state = _StreamState(call, accumulator)

    def __aiter__(self) -> AsyncStreamProxy:
        return self

    async def __anext__(self) -> Any:
        try:
            item = await self.__wrapped__.__anext__()
        except StopAsyncIteration:
            self._self_state.finish()
            raise
        except BaseException as exc:
            self._self_state.finish(exc)
            raise
        self._self_state.observe(item)
        return item

    async def __aenter__(self) -> AsyncStreamProxy:
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_state.finish()

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            self._self_state.finish()

    async def aclose(self) -> None:
        # Not every SDK stream has aclose(); fall back to close().
        closer = getattr(self.__wrapped__, "aclose", None) or self.__wrapped__.close
        try:
            await closer()
        finally:
            self._self_state.finish()

    def __del__(self) -> None:
        state = getattr(self, "_self_state", None)
        if state is not None:
            state.finish()
