"""The page's strings through the request's catalogue, found once per locale.

Flask-Babel's gettext resolves the domain, the locale and the locale's name again for every
string; a long page writes a few hundred (menu items, state names, column titles), which was a
tenth of its rendering (issue 15). The labels the portal keeps at module level (labels.py,
KPI names, reasons) are lazy strings through the same path.
"""

from __future__ import annotations

import flask_babel
from babel import support
from flask import g, has_app_context, has_request_context
from flask_babel import LazyString, get_locale, get_translations
from jinja2 import pass_eval_context
from markupsafe import Markup


def page_locale():
    """Flask-Babel's get_locale, from the locale it keeps for the request once chosen (and
    swaps under force_locale): get_locale looks its namespace up again through three proxies,
    and a long page asks a few hundred times (issue 15). Anything else: get_locale itself."""
    if not has_app_context():
        return None
    kept = getattr(g.get("_flask_babel"), "babel_locale", None)
    return kept if kept is not None else get_locale()


def catalogue():
    """The translations of the current locale. force_locale swaps the locale object, so an
    e-mail rendered in another language inside a request still finds its own catalogue."""
    locale = page_locale()
    cached = g.get("_catalogue")
    if cached is None or cached[0] is not locale:
        cached = g._catalogue = (locale, get_translations())
    return cached[1]


_FORM_MESSAGES: dict[str, support.Translations] = {}


def form_messages():
    """WTForms' own messages ("This field is required.") in the page's language, read from
    disk once per language and kept: Flask-WTF reads and parses the catalogue again for every
    request that builds a form, a few percent of a list page (issue 15). None outside a
    request, as Flask-WTF answers."""
    from wtforms.i18n import messages_path

    if not has_request_context():
        return None
    locale = page_locale()
    key = str(locale)
    found = _FORM_MESSAGES.get(key)
    if found is None:
        found = _FORM_MESSAGES[key] = support.Translations.load(
            messages_path(), [locale], domain="wtforms")
    return found


def gettext(string: str, **variables) -> str:
    if not has_app_context():
        return flask_babel.gettext(string, **variables)
    text = catalogue().ugettext(string)
    return text % variables if variables else text


def lazy_gettext(string: str, **variables) -> LazyString:
    """Flask-Babel's lazy_gettext, translated through this module's gettext."""
    return LazyString(gettext, string, **variables)


@pass_eval_context
def page_gettext(eval_ctx, string: str, **variables):
    """The templates' _(): what Jinja's newstyle gettext does (the string translated, escaped
    where the template escapes, always %-formatted) without its two calls through the
    template's context, a hundred times on a list of 25 rows."""
    text = catalogue().ugettext(string)
    if eval_ctx.autoescape:
        # A catalogue's string, marked safe as Jinja's own gettext marks it; the variables
        # are escaped by Markup's %.
        text = Markup(text)  # noqa: S704  # nosec B704
    return text % variables
