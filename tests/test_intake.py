"""Referral intake: validation with per-field messages, customer class, consent, attribution."""

from datetime import UTC, date, datetime, timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select, text

from models import AuditEntry, Referral, utcnow
from portal.extensions import db
from portal.services import Ctx, pii, referrals
from portal.services.errors import AlreadyRegistered, Forbidden, ValidationFailed
from tests import factories


def _errors(user, **overrides) -> dict:
    with pytest.raises(ValidationFailed) as err:
        factories.submit(user, **overrides)
    return err.value.fields


@pytest.mark.parametrize("value", ["11010519491231002X", "110105194912310021X", "abc"])
def test_national_id_is_checked(world, value):
    # the first has a valid check digit but the buyer would be over 75
    assert "national_id" in _errors(world.partner_a, national_id=value)


def test_national_id_check_digit_and_birth_date(app):
    good = factories.national_id(123)
    assert pii.normalise_national_id(good, today=date(2026, 1, 1)) == good
    assert pii.normalise_national_id(f" {good.lower()} ", today=date(2026, 1, 1)) == good
    wrong_digit = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(ValueError):
        pii.normalise_national_id(wrong_digit)
    with pytest.raises(ValueError):  # 31 February, with a correct check digit
        pii.normalise_national_id(factories.national_id(1, born="19850231"))
    with pytest.raises(ValueError):  # a child
        pii.normalise_national_id(factories.national_id(7, born="20150101"), today=date(2026, 1, 1))
    # Shanghai Pudong (310115): stdnum's county list lacks it, the portal accepts it.
    body = "31011519850612123"
    assert pii.normalise_national_id(body + pii.ric.calc_check_digit(body + "0"))


@pytest.mark.parametrize("value,ok", [("13912345678", True), ("139 1234 5678", True),
                                      ("+86 139 1234 5678", True), ("02112345678", False),
                                      ("1391234567", False), ("phone", False)])
def test_mobile_is_checked(app, value, ok):
    if ok:
        assert pii.normalise_mobile(value) == "13912345678"
    else:
        with pytest.raises(ValueError):
            pii.normalise_mobile(value)


def test_every_bad_field_is_reported_at_once(world):
    fields = _errors(world.partner_a, product="space_loan", buyer_name="", mobile="1",
                     employer="", industry="astrology", monthly_income="lots", amount="-5",
                     term_months="0", consent=False)
    assert set(fields) >= {"product", "buyer_name", "mobile", "employer", "industry",
                           "monthly_income", "amount", "term_months", "consent"}


def test_asset_details_are_needed_for_property_and_vehicle_loans(world):
    fields = _errors(world.partner_a, asset_description="", asset_price="", down_payment="")
    assert {"asset_description", "asset_price", "down_payment"} <= set(fields)
    assert "down_payment" in _errors(world.partner_a, asset_price="100000", down_payment="200000")
    assert "amount" in _errors(world.partner_a, amount="900000")  # more than price - down payment
    referral = factories.submit(world.partner_a, product="consumer_loan", amount="50000",
                                term_months="36", asset_description="", asset_price="",
                                down_payment="")
    assert referral.asset_price is None


def test_no_referral_without_consent(world):
    assert "consent" in _errors(world.partner_a, consent=False)
    referral = factories.submit(world.partner_a, consent=True,
                                consent_notice_version="2026-03",
                                consent_obtained_at="2026-11-01T09:30:00+08:00")
    assert referral.consent_notice_version == "2026-03"
    assert referral.consent_obtained_at == datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
    assert "consent_obtained_at" in _errors(world.partner_a,
                                            consent_obtained_at="2099-01-01T00:00:00+00:00")


@pytest.mark.parametrize("industry,klass", [("government", 1), ("utilities", 1),
                                            ("real_estate_construction", 2), ("agriculture", 2),
                                            ("other", 3)])
def test_customer_class_follows_the_industry(world, industry, klass):
    assert factories.submit(world.partner_a, industry=industry).customer_class == klass


def test_personal_data_is_stored_hashed_encrypted_and_masked(world):
    nid = factories.national_id(42)
    referral = factories.submit(world.partner_a, national_id=nid, mobile="13912345678")
    db.session.commit()
    row = db.session.execute(text("SELECT * FROM referral")).mappings().one()
    assert nid not in " ".join(str(v) for v in row.values())
    assert "13912345678" not in " ".join(str(v) for v in row.values())
    assert referral.national_id_masked == nid[:3] + "*" * 11 + nid[-4:]
    assert referral.mobile_masked == "139****5678"
    assert referral.national_id_hash == pii.id_hash(nid) != pii.id_hash(factories.national_id(43))


def test_external_ref_is_unique_per_organisation(world):
    factories.submit(world.partner_a, external_ref="CRM-1")
    assert "external_ref" in _errors(world.partner_a, external_ref="CRM-1")
    factories.submit(world.partner_b, external_ref="CRM-1")  # another organisation may reuse it


def test_a_reference_taken_after_the_checks_is_refused_at_registration(world):
    # Two intakes with one reference at once: both pass `prepare`, the database refuses the
    # second registration, and the refusal reads like the early check's.
    ctx = Ctx(user=world.partner_a, ip="127.0.0.1")
    late = referrals.prepare(ctx, world.org_a, factories.intake(external_ref="CRM-9"))
    factories.submit(world.partner_a, external_ref="CRM-9")
    with pytest.raises(ValidationFailed) as err:
        referrals.register(ctx, late)
    assert set(err.value.fields) == {"external_ref"}
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Referral)) == 0


def test_a_registered_referral_is_complete_without_reloading(world):
    # Registration inserts directly and hands back the loaded referral: what it says must be
    # what the database holds.
    referral = factories.submit(world.partner_a, external_ref="CRM-10")
    said = (referral.id, referral.status, referral.clock, referral.version, referral.bank_seconds,
            [(e.to_state, e.clock) for e in referral.events],
            [(s.kind, s.status) for s in referral.stipulations], referral.org.code)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(Referral, referral.id)
    assert said == (stored.id, stored.status, stored.clock, stored.version, stored.bank_seconds,
                    [(e.to_state, e.clock) for e in stored.events],
                    [(s.kind, s.status) for s in stored.stipulations], stored.org.code)
    assert said[1:5] == ("submitted", "bank", 1, 0) and len(said[6]) >= 2
    # It moves on like any other: the version lock sees version 1 and counts on.
    officer = Ctx(user=world.officer, ip="127.0.0.1")
    referrals.transition(officer, stored, "under_review")
    db.session.commit()
    assert stored.version == 2


def test_only_active_partners_submit(world):
    world.org_a.status = "suspended"
    with pytest.raises(Forbidden):
        factories.submit(world.partner_a)


class TestAttribution:
    def test_same_organisation_twice_is_already_registered(self, world):
        nid = factories.national_id(1)
        factories.submit(world.partner_a, national_id=nid)
        with pytest.raises(AlreadyRegistered):
            factories.submit(world.agent_a, national_id=nid)

    def test_another_partner_goes_to_conflict_and_learns_nothing_more(self, world):
        nid = factories.national_id(2)
        first = factories.submit(world.partner_a, national_id=nid)
        second = factories.submit(world.partner_b, national_id=nid)
        assert (first.status, second.status) == ("submitted", "conflict")
        assert second.clock == "bank"
        assert referrals.conflict_holder(second).id == first.id
        assert all(e.partner_note is None for e in second.events)

    def test_another_product_is_a_new_registration(self, world):
        nid = factories.national_id(3)
        factories.submit(world.partner_a, national_id=nid)
        other = factories.submit(world.partner_b, national_id=nid, product="consumer_loan",
                                 amount="50000", term_months="24")
        assert other.status == "submitted"

    def test_protection_window_ends(self, world, app):
        nid = factories.national_id(4)
        window = app.config["PROTECTION_WINDOW_DAYS"]
        factories.submit(world.partner_a, national_id=nid,
                         at=utcnow() - timedelta(days=window + 1))
        assert factories.submit(world.partner_b, national_id=nid).status == "submitted"

    @pytest.mark.parametrize("closed", ["withdrawn", "declined"])
    def test_a_closed_referral_no_longer_holds_the_buyer(self, world, closed):
        nid = factories.national_id(5)
        first = factories.submit(world.partner_a, national_id=nid)
        referrals.transition(Ctx(user=world.officer), first, closed, reason_code="credit_policy")
        assert factories.submit(world.partner_b, national_id=nid).status == "submitted"

    def test_a_pending_conflict_does_not_hold_against_a_third_partner(self, world):
        nid = factories.national_id(6)
        org_c = factories.OrgFactory(code="PARTNERC")
        user_c = factories.UserFactory(org=org_c, role="partner_admin")
        factories.submit(world.partner_a, national_id=nid)
        factories.submit(world.partner_b, national_id=nid)
        third = factories.submit(user_c, national_id=nid)
        assert third.status == "conflict"
        with pytest.raises(AlreadyRegistered):  # B's pending conflict still counts for B
            factories.submit(world.partner_b, national_id=nid)

    def test_submissions_are_audited(self, world):
        factories.submit(world.partner_a)
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "referral.submit"))
        assert entry.actor_id == world.partner_a.id
        assert db.session.scalar(select(Referral.id)) == int(entry.target_id)


class TestOneDeclarationEveryFace:
    """The intake schema (services/referral_intake.py) is the one declaration of the fields:
    the web form, the API body and the history import take names, rules and messages from it."""

    @staticmethod
    def _service_message(app, field, **overrides) -> str:
        with app.test_request_context(headers={"Accept-Language": "en"}):
            from portal.services import referral_intake
            try:
                referral_intake.check(factories.intake(**overrides), {"product": None})
            except referral_intake.ValidationError as exc:
                return str(referral_intake.field_errors(exc)[field])
        raise AssertionError("the intake was accepted")

    @pytest.mark.parametrize("field,api_field,value", [
        ("mobile", "buyer.mobile", "12345"),
        ("industry", "buyer.industry", "astrology"),
        ("monthly_income", "buyer.monthly_income", "lots"),
    ])
    def test_a_rule_refuses_with_one_message_on_every_face(self, app, world, client, as_user,
                                                           field, api_field, value):
        from tests.integration_helpers import api_body, auth, make_key
        from tests.test_imports import csv_bytes, row
        message = self._service_message(app, field, **{field: value})
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        # the service
        with app.test_request_context(headers={"Accept-Language": "en"}):
            assert str(_errors(world.partner_a, **{field: value})[field]) == message
        # the web form: the message under the field of that name
        form = factories.intake(**{field: value}, consent="y")
        page = as_user(world.partner_a).post("/partner/referrals/new", data=form)
        assert page.status_code == 422
        assert f'data-error-for="{field}"' in page.get_data(as_text=True)
        assert str(escape(message)) in page.get_data(as_text=True)
        # the API, under the nested name the schema gives the field; "lots" and "astrology"
        # are refused by the body's shape first, so only the mobile reaches the rule
        body = api_body(**{api_field: value})
        response = client.post("/api/v1/referrals", json=body,
                               headers=auth(make_key(world.partner_a)))
        assert response.status_code == 422
        if field == "mobile":
            assert response.json["error"]["fields"] == {api_field: message}
        else:
            assert api_field in response.json["error"]["fields"]
        # the history import: the row's reason names the field and gives the message
        columns = {"mobile": "mobile", "industry": "industry", "monthly_income": "income"}
        with app.test_request_context(headers={"Accept-Language": "en"}):
            from portal.services import imports
            report = imports.import_referrals(
                Ctx(user=None, ip="test"), csv_bytes(row(**{columns[field]: value})))
        assert report.rejects == [(2, f"{field}: {message}")]
        assert db.session.scalar(select(func.count()).select_from(Referral)) == 0

    def test_the_form_and_the_api_take_their_field_names_from_the_schema(self, app):
        from blueprints.api import schemas
        from blueprints.partner.forms import ReferralForm
        from portal.services import imports, referral_intake
        faces = referral_intake.faces()
        shown = referral_intake.form_fields()
        with app.test_request_context():
            form = ReferralForm(meta={"csrf": False})
            assert [f.name for f in form] == [*shown, "submit"]
            for name, face in shown.items():
                assert form[name].label.text == str(face.label)
                assert bool(form[name].flags.required) == face.required
        assert set(ReferralForm.INTAKE_FIELDS) | {"consent"} == set(shown)

        def nested(model, prefix=""):
            for name, info in model.model_fields.items():
                inner = [a for a in getattr(info.annotation, "__args__", (info.annotation,))
                         if isinstance(a, type) and issubclass(a, schemas.BaseModel)]
                yield from nested(inner[0], f"{prefix}{name}.") if inner else [prefix + name]
        assert sorted(nested(schemas.ReferralIn)) == sorted(f.api for f in faces.values())
        assert schemas.INTAKE_FIELDS == {n: f.api for n, f in faces.items() if f.api != n}
        assert set(imports.INTAKE_COLUMNS) <= set(faces)
        assert set(imports.REFERRAL_COLUMNS) & set(faces) <= set(imports.INTAKE_COLUMNS)

    def test_the_api_body_maps_back_to_the_flat_intake(self, app):
        from blueprints.api import schemas
        from tests.integration_helpers import api_body
        body = schemas.ReferralIn.model_validate(api_body())
        flat = body.intake()
        from portal.services import referral_intake
        assert list(flat) == list(referral_intake.faces())
        assert flat["buyer_name"] == body.buyer.name and flat["consent"] is True

    def test_cross_field_rules_report_with_the_other_errors(self, world):
        # down payment above the price: both cross-field messages come with every field error
        fields = _errors(world.partner_a, buyer_name="", consent=False, asset_price="100000",
                         down_payment="200000")
        assert list(fields) == ["buyer_name", "down_payment", "amount", "consent"]
        assert "cannot exceed the price" in str(fields["down_payment"])
