"""What the tiers are called and coloured on the pages (the KPIs' own labels sit with their
definitions in `kpis`)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

TIER_LABELS = {
    "strategic": _l("Strategic"),
    "core": _l("Core"),
    "watch": _l("Watch"),
    "exit": _l("Exit"),
}
TIER_BADGES = {"strategic": "success", "core": "primary", "watch": "warning", "exit": "danger"}
TIER_COLOURS = {"strategic": "#198754", "core": "#0d6efd", "watch": "#ffc107", "exit": "#dc3545"}
