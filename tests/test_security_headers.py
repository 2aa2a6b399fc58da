"""The security headers, written as the attacks they stop (issue 10).

- A script injected into a page (a buyer's name, a note) must not run: every page of every role
  carries a Content-Security-Policy without 'unsafe-inline' or 'unsafe-eval', and no template or
  rendered page holds inline code the policy would have to allow.
- The portal must not be framed (clickjacking): frame-ancestors 'none' and X-Frame-Options DENY.
- A network attacker must not downgrade a returning visitor to HTTP: HSTS on HTTPS answers, and a
  client cannot obtain it (or skip the HTTPS redirect) by claiming X-Forwarded-Proto itself.
- No cache keeps buyers' data: no-store on pages, API JSON, CSV exports and document downloads.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from portal import create_app
from portal.extensions import db
from portal.services import Ctx, documents
from tests import factories
from tests.integration_helpers import auth, make_key, pdf_bytes
from tests.test_access_matrix import (  # noqa: F401  (objects is a fixture used below)
    ROLES,
    _client_for,
    _rules,
    _url,
    objects,
)

ROOT = Path(__file__).resolve().parents[1]
# The agreement PDF's template is WeasyPrint's input, never served to a browser: its <style>
# block carries the agreement's own number into the page footer and no CSP applies to a PDF.
NOT_SERVED = {"pdf/agreement.html"}


# --- what counts as inline code -----------------------------------------------------------------

class _InlineCode(HTMLParser):
    """Collects what a strict CSP refuses: <script> without src (other than JSON data blocks),
    <style> elements, style="…" attributes, on…= handlers and javascript: URLs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        where = f"<{tag} {' '.join(f'{k}={v!r}' for k, v in attrs)}>"[:160]
        if tag == "script" and "src" not in names and names.get("type") != "application/json":
            self.found.append(f"inline script {where}")
        if tag == "style":
            self.found.append(f"style element {where}")
        for name, value in attrs:
            if name == "style":
                self.found.append(f"style attribute {where}")
            elif name.startswith("on"):
                self.found.append(f"{name} handler {where}")
            elif (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL {where}")

    handle_startendtag = handle_starttag


def inline_code(html: str) -> list[str]:
    parser = _InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def template_markup(source: str) -> str:
    """A template's HTML with the Jinja taken out: comments and statements vanish, expressions
    become a placeholder (a macro argument such as action_button(style='danger') is not HTML)."""
    source = re.sub(r"\{#.*?#\}", "", source, flags=re.S)
    source = re.sub(r"\{%.*?%\}", "", source, flags=re.S)
    return re.sub(r"\{\{.*?\}\}", "x", source, flags=re.S)


def served_templates():
    for path in sorted((ROOT / "templates").rglob("*.html")):
        name = path.relative_to(ROOT / "templates").as_posix()
        if name not in NOT_SERVED:
            yield name, path


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_strict(policy: str, what: str) -> None:
    parsed = directives(policy)
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, what
    assert "'unsafe-hashes'" not in policy and "nonce-" not in policy, what
    assert parsed["frame-ancestors"] == ["'none'"], what
    assert parsed["default-src"] == ["'self'"], what
    assert parsed["object-src"] == ["'none'"], what
    assert parsed["base-uri"] == ["'self'"] and parsed["form-action"] == ["'self'"], what
    for source in ("script-src", "style-src"):
        assert parsed.get(source, parsed["default-src"]) == ["'self'"], what


# --- (b) templates ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "path"), list(served_templates()), ids=lambda v: str(v))
def test_no_template_holds_inline_code(name, path):
    assert inline_code(template_markup(path.read_text())) == [], name


@pytest.mark.parametrize("snippet", [
    '<div class="card" style="max-width: 40rem">',
    '{% if x %}<td style="width: {{ w }}px">{% endif %}',
    '<button type="button" onclick="history.back()">',
    '<body onload="start()">',
    "<script>document.title = 'x'</script>",
    '<script type="text/javascript">var a = {{ data|tojson }};</script>',
    "<style>.x { color: red }</style>",
    '<a href="javascript:void(0)">',
    '<input\n  class="form-control"\n  onchange="this.form.submit()">',
])
def test_the_template_check_finds_inline_code(snippet):
    # The check above must fail when someone adds inline code to a template.
    assert inline_code(template_markup(snippet))


@pytest.mark.parametrize("snippet", [
    "<script src=\"{{ url_for('static', filename='portal.js') }}\"></script>",
    '<script type="application/json" id="chart-a">{{ spec|tojson }}</script>',
    "{{ action_button(url, _('Withdraw'), style='outline-danger') }}",
    '<div class="chart-box chart-h{{ height }}" data-chart="x" data-online="1">',
    '<p>Set the style= of a cell</p>',
])
def test_the_template_check_leaves_allowed_markup_alone(snippet):
    assert inline_code(template_markup(snippet)) == []


# --- (a) every page of every role ---------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_every_page_has_a_strict_policy_and_no_inline_code(app, world, objects, role):  # noqa: F811
    client = _client_for(app, world, role)
    pages = 0
    for rule in _rules(app, "GET"):
        if rule.endpoint == "auth.logout":
            continue
        url = _url(rule, objects)
        response = client.get(url)
        what = f"{role} GET {url} ({response.status_code})"
        assert_strict(response.headers.get("Content-Security-Policy", ""), what)
        assert response.headers["X-Frame-Options"] == "DENY", what
        assert response.headers["X-Content-Type-Options"] == "nosniff", what
        if response.mimetype == "text/html":
            assert inline_code(response.get_data(as_text=True)) == [], what
            pages += 1
    assert pages >= 2


def test_api_docs_json_and_errors_carry_the_policy(app, client):
    for url in ("/api/v1/docs", "/api/v1/openapi.json", "/api/v1/referrals", "/no-such-page",
                "/healthz", "/static/portal.css"):
        response = client.get(url)
        assert_strict(response.headers.get("Content-Security-Policy", ""), url)
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and inline_code(docs.get_data(as_text=True)) == []


def test_a_failed_form_shown_again_has_no_inline_code(client, world):
    response = client.post("/login", data={"email": world.officer.email, "password": "wrong"})
    assert response.status_code == 200
    assert_strict(response.headers["Content-Security-Policy"], "login refused")
    assert inline_code(response.get_data(as_text=True)) == []


# --- (d) HSTS ------------------------------------------------------------------------------------

HSTS = "max-age=31536000; includeSubDomains"


def test_hsts_over_https_only(client):
    assert client.get("/login", base_url="https://localhost").headers[
        "Strict-Transport-Security"] == HSTS
    assert "Strict-Transport-Security" not in client.get("/login").headers
    # A client's own claim to have come over HTTPS is not believed without a trusted proxy.
    claimed = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in claimed.headers


def _app(tmp_path, **settings):
    return create_app({"PORTAL_ENV": "testing", "SECRET_KEY": "t" * 40,
                       "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/h.db", **settings})


def test_hsts_behind_a_trusted_proxy_follows_the_proxys_scheme(tmp_path):
    client = _app(tmp_path, TRUSTED_PROXIES=1).test_client()
    via_https = client.get("/healthz", headers={"X-Forwarded-Proto": "https",
                                                "X-Forwarded-For": "203.0.113.7"})
    assert via_https.headers["Strict-Transport-Security"] == HSTS
    via_http = client.get("/healthz", headers={"X-Forwarded-Proto": "http",
                                               "X-Forwarded-For": "203.0.113.7"})
    assert "Strict-Transport-Security" not in via_http.headers


def test_https_is_forced_only_when_configured(tmp_path):
    relaxed = _app(tmp_path).test_client()  # testing: FORCE_HTTPS defaults off
    assert relaxed.get("/login").status_code == 200
    forced = _app(tmp_path, FORCE_HTTPS=True).test_client()
    redirect = forced.get("/login")
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith("https://localhost/login")
    # Claiming HTTPS in a header does not skip the redirect when no proxy is trusted...
    assert forced.get("/login", headers={"X-Forwarded-Proto": "https"}).status_code == 302
    assert forced.get("/login", base_url="https://localhost").status_code == 200
    # ...and the load balancer's health check over plain HTTP is answered, not redirected.
    assert forced.get("/healthz").status_code == 200


def test_production_forces_https_by_default_and_the_setting_turns_it_off(tmp_path, monkeypatch):
    production = {"PORTAL_ENV": "production", "SESSION_COOKIE_SECURE": True}
    monkeypatch.delenv("FORCE_HTTPS", raising=False)
    assert _app(tmp_path, **production).config["FORCE_HTTPS"] is True
    monkeypatch.setenv("FORCE_HTTPS", "0")
    assert _app(tmp_path, **production).config["FORCE_HTTPS"] is False


def test_talisman_leaves_the_cookie_settings_alone(client, world):
    # Talisman would mark the session cookie Secure on every request; over plain HTTP in
    # development and tests the browser would then never send it back.
    response = client.post("/login", data={"email": world.officer.email,
                                           "password": factories.PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


# --- (e) no-store -------------------------------------------------------------------------------

def test_buyers_data_is_no_store_on_pages_json_csv_and_downloads(client, world, as_user):
    referral = factories.submit(world.partner_a)
    document = documents.upload(Ctx(user=world.partner_a), referral, "income_proof", "pay.pdf",
                                pdf_bytes())
    db.session.commit()
    key = make_key(world.partner_a)
    api = client.get(f"/api/v1/referrals/{referral.id}", headers=auth(key))
    assert api.status_code == 200 and api.headers["Cache-Control"] == "no-store"
    assert api.mimetype == "application/json"
    as_user(world.partner_a)
    answers = {
        "page": client.get(f"/partner/referrals/{referral.id}"),
        "csv": client.get("/partner/referrals.csv"),
        "download": client.get(f"/partner/referrals/{referral.id}/documents/{document.id}"),
    }
    for what, response in answers.items():
        assert response.status_code == 200, what
        assert response.headers["Cache-Control"] == "no-store", what
    assert answers["csv"].mimetype == "text/csv"
    assert answers["download"].mimetype == "application/pdf"
    # The login page of a visitor carries nobody's data and may be cached as usual.
    client.post("/logout")
    assert "no-store" not in client.get("/login").headers.get("Cache-Control", "")
