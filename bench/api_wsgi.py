"""The portal as `wsgi:app` serves it, plus one route for scale in the API benchmark only: a POST
that inserts one row and commits, the least a write request can do on this stack."""

from __future__ import annotations

from flask import jsonify
from sqlalchemy import insert

from models import ScoreChange, utcnow
from portal.extensions import csrf, db
from wsgi import app


@app.post("/bench/one-insert")
@csrf.exempt
def one_insert():
    db.session.execute(insert(ScoreChange.__table__), {"org_id": 1, "at": utcnow()})
    return jsonify({"inserted": 1}), 201
