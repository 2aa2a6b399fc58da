"""The header's main menu, drawn once per language, role, page and badge counts, and kept.

Up to thirty items, each a macro call and a built URL, drawn on every logged-in page were a
good part of the smallest page's time (issue 15). The menu shows nothing of the user beyond
their role, so two officers on the same page with the same unread count see the same bytes;
the badges are counted on every request and are part of the key.
"""

from __future__ import annotations

from flask import Flask, current_app, request
from jinja2 import pass_context
from markupsafe import Markup

from .i18n import page_locale

# Languages × roles × pages × distinct badge counts stay far below this; past it the kept
# menus are dropped and drawn again, so a flood of distinct counts cannot grow the process.
MENUS_KEPT = 4096


def _badges(ctx, user) -> dict:
    """The counts shown beside the items (context processors of the partner and bank faces)."""
    if user.is_partner:
        return {"leads": ctx["leads_waiting"](), "messages": ctx["unread_messages_partner"](),
                "notifications": ctx["unread_notifications"]()}
    badges = {"messages": ctx["unread_messages_bank"]()}
    if user.role in ("channel_manager", "admin"):
        badges["held"] = ctx["held_waiting"]()
        badges["reveals"] = ctx["reveal_requests_waiting"]()
    return badges


@pass_context
def main_menu(ctx) -> Markup:
    user = ctx["current_user"]
    badges = _badges(ctx, user)
    key = (str(page_locale()), user.role, request.endpoint, request.script_root,
           tuple(badges.items()))
    kept = current_app.extensions["main_menu"]
    html = kept.get(key)
    if html is None:
        if len(kept) >= MENUS_KEPT:
            kept.clear()
        # The page's own context (its globals and context processors), not render_template's
        # second pass through every context processor.
        template = ctx.environment.get_template("_menu.html")
        # An autoescaped template's output (_menu.html), kept as the markup it is.
        html = kept[key] = Markup(  # noqa: S704  # nosec B704
            template.render(ctx.get_all(), badges=badges))
    return html


def register(app: Flask) -> None:
    app.extensions["main_menu"] = {}
    app.jinja_env.globals["main_menu"] = main_menu
