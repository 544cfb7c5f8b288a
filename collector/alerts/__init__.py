"""Alerts evaluated by the collector itself: rules (rules.py), state and history (engine.py), webhooks
(notify.py), secret hits from the pipeline (secrets.py), options (config.py). See docs/alerts.md."""
