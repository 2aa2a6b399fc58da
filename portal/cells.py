"""The cells every list repeats on each row — a referral's state badge, its product's name — as
functions for the templates. They were macros, called once a row and several per row; a macro
call costs several times a function's (issue 15: in the officer queue, a fifth of the page).
A badge is written once per language and kept."""

from __future__ import annotations

from markupsafe import Markup, escape

from .i18n import page_locale
from .labels import PARTNER_STATES, STATE_BADGES, STATES

# Languages × states × the two audiences: a few hundred at most.
_BADGES: dict[tuple, Markup] = {}


def status_badge(status: str, partner_view: bool = False) -> Markup:
    """The state's badge; `partner_view`: named as the partner reads it (PARTNER_STATES)."""
    key = (str(page_locale()), status, bool(partner_view))
    badge = _BADGES.get(key)
    if badge is None:
        label = (PARTNER_STATES if partner_view else STATES).get(status, status)
        html = (f'<span class="badge text-bg-{escape(STATE_BADGES.get(status, "secondary"))}" '
                f'data-status="{escape(status)}">{escape(label)}</span>')
        badge = _BADGES[key] = Markup(html)  # noqa: S704  # nosec B704  # escaped above
    return badge


def product_name(product) -> str:
    """The product's name in the page's language; "—" for none."""
    return product.display_name(str(page_locale())) if product else "—"


def register(app) -> None:
    app.jinja_env.globals.update(status_badge=status_badge, product_name=product_name)
