"""GET /healthz for load balancers and monitoring: 200 when the database answers, else 503.

Outside the API face: it needs no key and no rate limit, and its URL is not under /api/v1.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from portal.services.health import database_ok

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    if database_ok():
        return jsonify({"status": "ok", "database": "ok"})
    return jsonify({"status": "unavailable", "database": "unreachable"}), 503
