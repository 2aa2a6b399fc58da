"""JSON columns come back as they were written, through the parser the engine is given
(pydantic-core's, portal/config.py), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import pydantic_core
from sqlalchemy import select

from models import ScorecardSnapshot, utcnow
from portal.extensions import db


def test_a_json_column_reads_back_what_was_written(app, world):
    assert app.config["SQLALCHEMY_ENGINE_OPTIONS"]["json_deserializer"] is pydantic_core.from_json
    written = {"approval_rate": {"value": 0.7312345678901234, "interval": [0.1, 1e-07],
                                 "n": 2**53 + 1, "raw": None, "withheld": False},
               "名称": "中文 “quoted” \\ \u2028", "nested": [[], {}, [12345.678, -0.5, 3]]}
    now = utcnow()
    row = ScorecardSnapshot(org_id=world.org_a.id, period_kind="month", period_key="2020-01",
                            period_start=now, period_end=now, computed_at=now, kpis=written,
                            extra={"tiers": {"1": ["core", 81.25]}})
    db.session.add(row)
    db.session.commit()
    db.session.expire_all()
    read = db.session.execute(select(ScorecardSnapshot.kpis, ScorecardSnapshot.extra).where(
        ScorecardSnapshot.id == row.id)).one()
    assert read.kpis == written == json.loads(json.dumps(written))
    assert read.extra == {"tiers": {"1": ["core", 81.25]}}
    assert type(read.kpis["approval_rate"]["n"]) is int
