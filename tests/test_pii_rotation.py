"""Key rotation round trip (issue 11): buyers' data stays readable and duplicate detection keeps
working before, during and after the rotation, and the old keys can then be dropped."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from models import AuditEntry, BuyerRegistration, Referral
from portal.extensions import db
from portal.services import Ctx, pii, referrals, webhooks
from portal.services.audit import chain
from portal.services.errors import AlreadyRegistered
from tests import factories

NEXT_PII, NEXT_HASH = "next-pii-key-" + "p" * 40, "next-hash-key-" + "h" * 40


@pytest.fixture
def cli(app):
    return app.test_cli_runner()


def _reveal(world, referral_id):
    return referrals.reveal(Ctx(user=world.officer), db.session.get(Referral, referral_id),
                            "identity_verification")


def test_rotation_round_trip(app, world, cli, monkeypatch):
    third = factories.UserFactory(org=factories.OrgFactory(code="PARTNERC"),
                                  role="partner_admin")
    x, y, z = (factories.national_id() for _ in range(3))
    held_x = factories.submit(world.partner_a, national_id=x, mobile="13900000001")
    held_y = factories.submit(world.partner_a, national_id=y)
    endpoint, secret = webhooks.create_endpoint(Ctx(user=world.partner_a), world.org_a,
                                                "https://hooks.example.test/portal")
    db.session.commit()
    old_token, old_hash = held_x.national_id_enc, held_x.national_id_hash
    old_pii, old_hash_key = app.config["PII_KEY"], app.config["ID_HASH_KEY"]

    # 1. The next keys are configured: new data under them, old data still read and matched.
    monkeypatch.setitem(app.config, "PII_KEY_NEXT", NEXT_PII)
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", NEXT_HASH)
    assert _reveal(world, held_x.id) == {"national_id": x, "mobile": "13900000001"}
    assert factories.submit(world.partner_b, national_id=x).status == "conflict"
    new_z = factories.submit(world.partner_a, national_id=z)
    assert new_z.national_id_hash == pii.id_hash(z) != pii.id_hashes(z)[1]
    with pytest.raises(AlreadyRegistered):
        factories.submit(world.partner_a, national_id=x)  # held under the old hash
    db.session.commit()

    # 2. The rotation moves everything, while the portal keeps running.
    result = cli.invoke(args=["pii", "rotate-key", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "Nothing needs the old keys any more" in result.output
    db.session.expire_all()
    moved = db.session.get(Referral, held_x.id)
    assert moved.national_id_enc != old_token and moved.national_id_hash != old_hash
    assert db.session.get(BuyerRegistration, (old_hash, "housing_mortgage")) is None
    assert db.session.get(BuyerRegistration, (moved.national_id_hash, "housing_mortgage"))

    # 3. The old keys are dropped: the next ones become the keys.
    monkeypatch.setitem(app.config, "PII_KEY", NEXT_PII)
    monkeypatch.setitem(app.config, "ID_HASH_KEY", NEXT_HASH)
    monkeypatch.setitem(app.config, "PII_KEY_NEXT", None)
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", None)
    assert _reveal(world, held_x.id) == {"national_id": x, "mobile": "13900000001"}
    assert _reveal(world, held_y.id)["national_id"] == y
    assert webhooks.secret_of(db.session.get(type(endpoint), endpoint.id)) == secret
    assert factories.submit(third, national_id=y).status == "conflict"
    for nid in (x, z):
        with pytest.raises(AlreadyRegistered):
            factories.submit(world.partner_a, national_id=nid)
    # The old key reads nothing any more, so it can be destroyed.
    monkeypatch.setitem(app.config, "PII_KEY", old_pii)
    with pytest.raises(InvalidToken):
        pii.decrypt(moved.national_id_enc)
    monkeypatch.setitem(app.config, "ID_HASH_KEY", old_hash_key)
    assert pii.id_hash(x) == old_hash != moved.national_id_hash
    db.session.rollback()
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "pii.rotate_key"))
    # x and y rehashed; z and B's referral were written under the new key already.
    assert entry.detail["referrals"] == 4 and entry.detail["rehashed"] == 2
    assert entry.detail["left_on_old_keys"] == {"referrals": 0, "webhook_secrets": 0,
                                                "customer_leads": 0}
    assert chain.walk().ok


def test_rotation_needs_the_next_keys(cli, world):
    result = cli.invoke(args=["pii", "rotate-key"])
    assert result.exit_code == 1 and "PII_KEY_NEXT" in result.output


def test_rotation_reports_rows_still_on_the_old_keys(app, world, cli, monkeypatch):
    factories.submit(world.partner_a)
    db.session.commit()
    monkeypatch.setitem(app.config, "PII_KEY_NEXT", NEXT_PII)
    from portal.services import pii_rotation

    monkeypatch.setattr(pii_rotation, "referral_batch", lambda after, limit: (None, None))
    result = cli.invoke(args=["pii", "rotate-key"])
    assert result.exit_code == 1 and "Still on the old keys: 1 referrals" in result.output


def test_a_mobile_hash_left_on_the_old_key_holds_the_old_key(app, world, cli, monkeypatch,
                                                              as_user):
    """The failure this stops: the rotation says "nothing needs the old keys" while a mobile's
    hash is still under the old hash key (written by an instance without ID_HASH_KEY_NEXT, e.g.
    a `pii backfill-search` after a restore); the old key is dropped and that buyer can no longer
    be found by mobile."""
    from sqlalchemy import update

    from portal.services import pii_rotation

    mobile = "13900000077"
    held = factories.submit(world.partner_a, mobile=mobile)
    db.session.commit()
    old_mobile_hash = held.mobile_hash
    monkeypatch.setitem(app.config, "PII_KEY_NEXT", NEXT_PII)
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", NEXT_HASH)
    assert cli.invoke(args=["pii", "rotate-key"]).exit_code == 0
    db.session.execute(update(Referral).where(Referral.id == held.id)
                       .values(mobile_hash=old_mobile_hash))
    db.session.commit()

    assert pii_rotation.leftovers()["referrals"] == 1
    # Running the rotation again moves that hash; only then may the old keys go.
    result = cli.invoke(args=["pii", "rotate-key"])
    assert result.exit_code == 0 and pii_rotation.leftovers()["referrals"] == 0
    monkeypatch.setitem(app.config, "PII_KEY", NEXT_PII)
    monkeypatch.setitem(app.config, "ID_HASH_KEY", NEXT_HASH)
    monkeypatch.setitem(app.config, "PII_KEY_NEXT", None)
    monkeypatch.setitem(app.config, "ID_HASH_KEY_NEXT", None)
    page = as_user(world.officer).get(f"/bank/referrals?q={mobile}").get_data(as_text=True)
    assert f'data-referral-id="{held.id}"' in page
