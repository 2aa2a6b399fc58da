"""The security headers every answer carries: Flask-Talisman sets them; the portal adds only what
Talisman does not do (Cache-Control: no-store on everything with buyers' data).

The Content-Security-Policy allows scripts and styles from the portal's own origin only: no
'unsafe-inline', no 'unsafe-eval', no nonces. Templates therefore hold no inline <script>, no
style="…" attribute and no on…= handler (tests/test_security_headers.py checks the templates and
every page); behaviour lives in static/*.js, styling in static/portal.css. Data a script needs is
written into data-* attributes or <script type="application/json"> blocks, which are never
executed and so need nothing from script-src.
"""

from __future__ import annotations

from flask import Flask, request
from flask_login import current_user

from .extensions import talisman

SELF = "'self'"

CONTENT_SECURITY_POLICY = {
    "default-src": SELF,
    "script-src": SELF,
    "style-src": SELF,
    # Bootstrap draws its check marks, select arrows and close buttons as data: SVG images.
    "img-src": f"{SELF} data:",
    "font-src": SELF,
    "connect-src": SELF,
    "object-src": "'none'",
    "base-uri": SELF,
    "form-action": SELF,
    "frame-ancestors": "'none'",
}

# The vendored Swagger UI (/api/v1/docs, swagger-ui-dist 5.35) runs under this same policy: its
# bundle needs no eval, its validator badge is switched off (static/integration/api-docs.js), and
# React sets its inline styles through the CSSOM, which style-src does not govern. So the page
# gets no policy of its own; tests/test_browser_csp.py opens it and counts violations (none).

PERMISSIONS_POLICY = {
    "browsing-topics": "()",
    "camera": "()",
    "geolocation": "()",
    "microphone": "()",
    "payment": "()",
}


def init_app(app: Flask) -> None:
    talisman.init_app(
        app,
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy="same-origin",
        permissions_policy=PERMISSIONS_POLICY,
        # HSTS only on answers that came over HTTPS (request.is_secure: the TLS socket, or the
        # scheme a trusted proxy reported through ProxyFix; see scheme_from_trusted_proxies_only).
        strict_transport_security=True,
        strict_transport_security_max_age=31536000,
        strict_transport_security_include_subdomains=True,
        # Redirect plain HTTP to HTTPS only when the deployment says so (FORCE_HTTPS, on by
        # default in production): development and tests are served over HTTP.
        force_https=app.config["FORCE_HTTPS"],
        force_https_permanent=False,
        # The cookie settings stay those of portal/config.py: Talisman would otherwise switch the
        # session cookie to Secure on every request, also on a developer's plain-HTTP server.
        session_cookie_secure=app.config["SESSION_COOKIE_SECURE"],
        session_cookie_http_only=app.config["SESSION_COOKIE_HTTPONLY"],
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        x_content_type_options=True,
    )

    @app.after_request
    def no_store(response):
        # is_anonymous, not is_authenticated: the request has committed, and asking a logged-in
        # user whether it is active would read the user again from the database.
        private = not current_user.is_anonymous or request.path.startswith("/api/")
        if private and not request.path.startswith("/static/"):
            # Buyers' data and documents are kept by no cache, the browser's included: this
            # overrides send_file's "no-cache", which still lets a copy be stored. Talisman
            # sets no Cache-Control of its own.
            response.headers["Cache-Control"] = "no-store"
        return response


def scheme_from_trusted_proxies_only(wsgi_app):
    """Talisman also believes a bare X-Forwarded-Proto header (for its HTTPS redirect and HSTS).
    The scheme is ProxyFix's verdict alone (TRUSTED_PROXIES hops; create_app puts ProxyFix outside
    this wrapper), so the header is dropped once ProxyFix has read it: a client cannot claim
    HTTPS by sending it."""

    def app(environ, start_response):
        environ.pop("HTTP_X_FORWARDED_PROTO", None)
        return wsgi_app(environ, start_response)

    return app
