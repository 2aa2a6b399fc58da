from flask import Blueprint, jsonify

from portal import database_ok

bp = Blueprint("api", __name__)
health_bp = Blueprint("health", __name__)


@health_bp.route("/healthz")
def healthz():
    if database_ok():
        return jsonify({"status": "ok", "database": "ok"})
    return jsonify({"status": "unavailable", "database": "unreachable"}), 503
