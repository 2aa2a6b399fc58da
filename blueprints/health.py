"""GET /healthz for load balancers and monitoring: 200 when the database answers, else 503;
and /favicon.ico, which browsers ask for on every site.

Outside the API face: it needs no key and no rate limit, and its URL is not under /api/v1.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from portal.extensions import talisman
from portal.services.health import database_ok

bp = Blueprint("health", __name__)


@bp.route("/healthz")
# A load balancer checks the instance directly over HTTP: no redirect to HTTPS here.
@talisman(force_https=False)
def healthz():
    if database_ok():
        return jsonify({"status": "ok", "database": "ok"})
    return jsonify({"status": "unavailable", "database": "unreachable"}), 503


@bp.route("/favicon.ico")
def favicon():
    # Browsers ask for /favicon.ico on every site whatever the page links: answer it, not a 404.
    return current_app.send_static_file("favicon.ico")
