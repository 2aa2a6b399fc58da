"""The scoring settings, declared with their defaults in portal/config.py (docs/scoring.md)."""

from __future__ import annotations

from flask import current_app


def setting(name: str):
    """One SCORING_* setting of the running app."""
    return current_app.config[name]
