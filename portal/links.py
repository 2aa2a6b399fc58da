"""Where a notification's subject lives on the partner's face.

Services say what a notification is about (`("referral", 12)`); turning that into a page of a face
belongs to the application layer, which knows the faces. Built from the URL map, so it works in a
job with no request.
"""

from __future__ import annotations

from flask import current_app
from werkzeug.routing import BuildError

# subject kind -> (endpoint, the endpoint's id argument)
PARTNER_PAGES = {
    "referral": ("partner.referral", "referral_id"),
    "agreement": ("partner.agreement", "agreement_id"),
    "lead": ("partner.lead", "lead_id"),
}
# The few notices bank staff get by e-mail point at their own pages.
BANK_PAGES = {
    "held": ("bank.held", "org"),
    "bank_referral": ("bank.referral", "referral_id"),
    "bank_lead": ("bank.lead", "lead_id"),
    "site": ("bank.site", "site_id"),
}


def partner_path(subject: tuple[str, int] | None) -> str | None:
    """The portal path of the partner page a subject is shown on, or None if it has none."""
    pages = PARTNER_PAGES | BANK_PAGES
    if subject is None or subject[0] not in pages or subject[1] is None:
        return None
    endpoint, argument = pages[subject[0]]
    try:
        return current_app.url_map.bind("portal").build(endpoint, {argument: subject[1]})
    except (BuildError, ValueError):
        return None


def partner_url(subject: tuple[str, int] | None) -> str | None:
    """The same page as a full address, for e-mails (PORTAL_URL)."""
    path = partner_path(subject)
    base = current_app.config["PORTAL_URL"].rstrip("/")
    return base + path if path and base else None


def password_link(token: str) -> str:
    """A password link's full address, for the e-mail that carries it (PORTAL_URL)."""
    path = current_app.url_map.bind("portal").build("auth.reset_with_link", {"token": token})
    return current_app.config["PORTAL_URL"].rstrip("/") + path
