"""Redaction of PII and credentials: built-in detectors and the engine behind the redact processor."""
