"""The web UI for reading traces, served by the collector on the query endpoint's listener (docs/ui.md)."""
