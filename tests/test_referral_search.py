"""The search box and the lists' lengths at scale (issue 15): what is stored for a search, how
it follows key rotation and retention, the partner type-ahead, and a count that stops."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from flask import render_template_string
from sqlalchemy import select, update

from blueprints import paginate
from models import Referral, utcnow
from portal.extensions import db
from portal.services import Ctx, pii, referrals, retention
from tests import factories

MOBILE = "13812345678"


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def ids(page) -> list[str]:
    return re.findall(r'data-referral-id="(\d+)"', page.get_data(as_text=True))


def test_neither_the_id_nor_the_mobile_is_stored_in_clear(world):
    national_id = factories.national_id(3, born="19720101")
    r = factories.submit(world.partner_a, national_id=national_id, mobile=MOBILE,
                         buyer_name="欧阳 Na", external_ref="Ab-77")
    db.session.commit()
    row = db.session.execute(select(Referral.__table__).where(Referral.id == r.id)).one()
    stored = " ".join(str(v) for v in row)
    assert MOBILE not in stored and national_id not in stored
    assert row.mobile_hash == pii.mobile_hash(MOBILE) != pii.id_hash(MOBILE)
    assert (row.buyer_name_key, row.external_ref_key) == ("欧阳na", "ab-77")


def test_a_mobile_is_found_during_a_key_rotation_and_after_it(world, app, as_user, cli,
                                                              monkeypatch):
    r = factories.submit(world.partner_a, mobile=MOBILE)
    db.session.commit()
    client = as_user(world.officer)
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", "next-hash-key-" + "x" * 40)
    assert ids(client.get(f"/bank/referrals?q={MOBILE}")) == [str(r.id)]  # the old hash
    result = cli.invoke(args=["pii", "rotate-key"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(Referral, r.id).mobile_hash == pii.mobile_hash(MOBILE)
    monkeypatch.setitem(app.config, "ID_HASH_KEY", app.config["ID_HASH_KEY_NEXT"])
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", None)
    assert ids(client.get(f"/bank/referrals?q=+86 {MOBILE}")) == [str(r.id)]


def test_the_backfill_command_fills_what_an_older_database_lacks(world, cli):
    r = factories.submit(world.partner_a, mobile=MOBILE, buyer_name="王芳", external_ref="X-1")
    db.session.commit()
    db.session.execute(update(Referral).values(buyer_name_key=None, external_ref_key=None,
                                               mobile_hash=None))
    db.session.commit()
    result = cli.invoke(args=["pii", "backfill-search"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    again = db.session.get(Referral, r.id)
    assert (again.buyer_name_key, again.external_ref_key) == ("王芳", "x-1")
    assert again.mobile_hash == pii.mobile_hash(MOBILE)


def test_an_anonymised_buyer_cannot_be_found_by_name_or_mobile(world, as_user):
    officer = Ctx(user=world.officer)
    r = factories.submit(world.partner_a, at=utcnow() - timedelta(days=100), mobile=MOBILE,
                         buyer_name="赵敏")
    referrals.transition(officer, r, "withdrawn", at=utcnow() - timedelta(days=90))
    db.session.commit()
    retention.anonymise_batch(Ctx(user=None), utcnow() + timedelta(days=6 * 365))
    db.session.commit()
    client = as_user(world.officer)
    assert ids(client.get("/bank/referrals?q=赵敏")) == []
    assert ids(client.get(f"/bank/referrals?q={MOBILE}")) == []


def test_a_partner_never_finds_another_partners_buyer_by_id_or_mobile(world, as_user):
    national_id = factories.national_id(4, born="19750505")
    factories.submit(world.partner_b, national_id=national_id, mobile=MOBILE)
    db.session.commit()
    client = as_user(world.partner_a)
    assert ids(client.get(f"/partner/referrals?q={national_id}")) == []
    assert ids(client.get(f"/partner/referrals?q={MOBILE}")) == []


def test_the_partner_filter_takes_a_code_and_offers_matches(world, as_user):
    a = factories.submit(world.partner_a)
    b = factories.submit(world.partner_b)
    db.session.commit()
    client = as_user(world.officer)
    assert ids(client.get("/bank/referrals?org=partnerb")) == [str(b.id)]
    assert ids(client.get(f"/bank/referrals?org={world.org_a.id}")) == [str(a.id)]  # old links
    unknown = client.get("/bank/queue?org=NOSUCH").get_data(as_text=True)
    assert "No partner has this code." in unknown and 'data-testid="queue-row"' not in unknown
    page = client.get("/bank/queue").get_data(as_text=True)
    assert "PARTNERB" not in page  # the bar lists no partners; the script asks for them
    assert 'data-partner-lookup="/bank/partners/lookup"' in page
    found = json.loads(client.get("/bank/partners/lookup?q=partner b").get_data(as_text=True))
    assert found == [{"code": "PARTNERB", "name": "Partner B"}]
    assert json.loads(client.get("/bank/partners/lookup?q=%25").get_data(as_text=True)) == []


def test_a_long_list_says_more_than_instead_of_counting_everything(world, app):
    for _ in range(5):
        factories.submit(world.partner_a)
    db.session.commit()
    macro = ('{% from "macros/tables.html" import pagination %}'
             '{{ pagination(page, "bank.referrals") }}')
    english = {"Accept-Language": "en"}
    with app.test_request_context("/bank/referrals?per_page=2", headers=english):
        page = paginate(select(Referral).order_by(Referral.id), cap=3)
        assert (page.total, page.has_next, len(page.items)) == (None, True, 2)
        html = render_template_string(macro, page=page)
    assert "1–2 of more than 3" in html and "in all" not in html
    with app.test_request_context("/bank/referrals?per_page=2&page=3"):
        page = paginate(select(Referral).order_by(Referral.id), cap=3)
        assert (page.total, page.has_next, len(page.items)) == (5, False, 1)  # the end: exact
    with app.test_request_context("/bank/referrals?per_page=2", headers=english):
        page = paginate(select(Referral).order_by(Referral.id), cap=10)
        assert page.total == 5 and "5 in all" in render_template_string(macro, page=page)
