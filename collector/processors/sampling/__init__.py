"""Trace sampling: consistent head sampling by trace id and tail policies over whole traces."""

from spanhouse.collector.processors.sampling.processor import SAMPLE_RATE, SampleProcessor

__all__ = ["SAMPLE_RATE", "SampleProcessor"]
